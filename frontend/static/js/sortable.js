/* Tables marked data-sortable sort by a column. Each header's text becomes a button (reached
 * with Tab, pressed with Enter or Space): the first press sorts ascending, the next descending,
 * and the header says which in aria-sort. Without this module the table reads as the server
 * wrote it. A header with data-sort="number" sorts numbers: a cell's data-value, else its text;
 * a cell without a number (no runs) goes last either way. Ties keep the server's order.
 *
 * Columns whose header has data-group (the paper table's strategy and model) name the row's
 * group: a cell that repeats the group of the row above is marked `same-as-above` (blank on
 * screen, still read out), as the server marks them, and marked again after every sort. */
import { el } from "./dom.js";

function cellKey(cell) {
  if (!cell) return "";
  return "value" in cell.dataset ? cell.dataset.value : cell.textContent.trim();
}

function markRepeats(table, headers) {
  const columns = headers.flatMap((th, index) => ("group" in th.dataset ? [index] : []));
  if (!columns.length) return;
  let above = null;
  for (const row of table.tBodies[0].rows) {
    const group = JSON.stringify(columns.map((index) => cellKey(row.cells[index])));
    for (const index of columns) {
      if (row.cells[index]) row.cells[index].classList.toggle("same-as-above", group === above);
    }
    above = group;
  }
}

function sortBy(table, headers, column) {
  const th = headers[column];
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  const numeric = th.dataset.sort === "number";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows, (row) => {
    const text = cellKey(row.cells[column]);
    return { row, index: Number(row.dataset.served), key: numeric ? parseFloat(text) : text.toLowerCase() };
  });
  const direction = ascending ? 1 : -1;
  rows.sort((a, b) => {
    if (numeric && (Number.isNaN(a.key) || Number.isNaN(b.key))) {
      return (Number.isNaN(a.key) - Number.isNaN(b.key)) || a.index - b.index;
    }
    const order = numeric ? a.key - b.key : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    return direction * order || a.index - b.index;
  });
  body.append(...rows.map((item) => item.row));
  headers.forEach((other) => other.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  markRepeats(table, headers);
}

export function makeSortable(root) {
  root.querySelectorAll("table[data-sortable]").forEach((table) => {
    if (!table.tHead || !table.tBodies.length || table.dataset.sortReady) return;
    table.dataset.sortReady = "true";
    const headers = Array.from(table.tHead.rows[0].cells);
    Array.from(table.tBodies[0].rows).forEach((row, index) => { row.dataset.served = index; });
    headers.forEach((th, column) => {
      const button = el("button", { type: "button", class: "sort-button", title: "Sort by this column" });
      button.append(...th.childNodes);
      th.append(button);
      button.addEventListener("click", () => sortBy(table, headers, column));
    });
  });
}

// How the sortable tables under `root` are sorted now, to sort a fresh copy of them alike (the
// dashboard reloads its results as runs finish): [table index, column, "ascending"|"descending"].
export function sortState(root) {
  return Array.from(root.querySelectorAll("table[data-sortable]")).flatMap((table, index) => {
    const th = table.tHead && table.tHead.querySelector("th[aria-sort]");
    return th ? [[index, th.cellIndex, th.getAttribute("aria-sort")]] : [];
  });
}

export function sortRestore(root, state) {
  const tables = root.querySelectorAll("table[data-sortable]");
  for (const [index, column, direction] of state) {
    const button = tables[index] && tables[index].tHead.rows[0].cells[column]?.querySelector(".sort-button");
    if (!button) continue;
    button.click();
    if (direction === "descending") button.click();
  }
}
