/* The run page's "What if" panel: a finished run's judged scores re-tallied under other seats and
 * another rule by GET /api/v1/runs/<id>/counterfactual (no model call), the run's own outcome
 * beside. run.js calls startCounterfactual(page) once the run has finished. All data is set as
 * text. */
import { $, el, clear, fetchWhenFinished, formatNumber } from "./dom.js";

let started = false;
let page = null;
let pending = null; // the AbortController of the request in flight
let timer = null;

function params() {
  const query = new URLSearchParams();
  const seats = $("#whatif-seats").value;
  const rule = $("#whatif-rule").value;
  query.set("seats", seats);
  query.set("rule", rule);
  if (seats === "random_tenths") query.set("seed", $("#whatif-seed").value || "0");
  if (seats === "custom") {
    document.querySelectorAll("#whatif-custom input[type=range]").forEach((input) => {
      query.append("custom", `${input.dataset.code}:${input.value}`);
    });
  }
  if (rule === "veto_power") query.set("veto_group", $("#whatif-veto").value);
  if (page.token) query.set("token", page.token);
  return query;
}

function verdictText(tally, kind) {
  const u = `u = ${formatNumber(tally.weighted_total, 2)}`;
  if (kind === "ranked") {
    const winners = tally.ranking.winners;
    const mine = tally.result;
    return { text: mine ? (winners.length > 1 ? "ties for first" : "wins") : "loses", ok: mine };
  }
  if (typeof tally.result === "boolean") return { text: `${tally.result ? "passes" : "fails"} (${u})`, ok: tally.result };
  return { text: `${formatNumber(tally.result, 2)} of 9`, ok: null };
}

function showVerdict(node, tally, kind) {
  const { text, ok } = verdictText(tally, kind);
  node.textContent = text;
  node.className = ok === true ? "pass" : ok === false ? "fail" : "";
}

function powerOf(tally) {
  const out = {};
  if (tally.power) tally.power.groups.forEach((group) => { out[group.code] = group.shapley_shubik; });
  return out;
}

function render(answer) {
  const kind = answer.rule.kind;
  const before = powerOf(answer.original);
  const after = powerOf(answer.counterfactual);
  const rows = clear($("#whatif-rows"));
  page.groups.forEach((group) => {
    const code = group.code;
    const power = answer.original.power
      ? `${formatNumber(100 * before[code], 0)}% → ${formatNumber(100 * after[code], 0)}%` : "–";
    rows.append(el("tr", { dataset: { code } },
      el("td", {}, group.short_label || code),
      el("td", { class: "num" }, String(answer.scores[code])),
      el("td", { class: "num" }, `${formatNumber(100 * answer.original.seats[code], 1)}%`),
      el("td", { class: "num", dataset: { testid: "whatif-share" } }, `${formatNumber(100 * answer.counterfactual.seats[code], 1)}%`),
      el("td", { class: "num" }, power)));
  });
  showVerdict($("#whatif-original"), answer.original, kind);
  showVerdict($("#whatif-result"), answer.counterfactual, kind);
  const ranking = clear($("#whatif-ranking"));
  ranking.hidden = kind !== "ranked";
  if (kind === "ranked") {
    const drafts = Object.fromEntries(answer.drafts.map((draft) => [draft.key, draft]));
    answer.counterfactual.ranking.ranking.forEach((tier) => {
      ranking.append(el("li", {}, tier.map((key, index) => [
        index ? ", " : "",
        key === `run ${answer.run}` ? el("strong", {}, `this run (${drafts[key].strategy})`)
          : el("a", { href: drafts[key].url }, `${drafts[key].strategy} (run ${drafts[key].id})`),
      ]).flat()));
    });
    if (answer.drafts.length === 1) ranking.append(el("li", { class: "muted" }, "No other strategy's draft of this experiment cell to compete with."));
  }
}

async function refresh() {
  if (pending) pending.abort();
  pending = new AbortController();
  const error = $("#whatif-error");
  try {
    const response = await fetchWhenFinished(`/api/v1/runs/${page.run.id}/counterfactual?${params()}`, { signal: pending.signal });
    const answer = await response.json();
    if (!response.ok) {
      error.textContent = answer.error || Object.values(answer.errors || {}).flat().join(" ") || "That did not work.";
      return;
    }
    error.textContent = "";
    render(answer);
    $("#whatif-panel").dataset.state = "ready";
  } catch (failure) {
    if (failure.name !== "AbortError") error.textContent = "The server could not be reached.";
  }
}

function soon() {
  clearTimeout(timer);
  timer = setTimeout(refresh, 150);
}

function showRows() {
  const seats = $("#whatif-seats").value;
  $("#whatif-seed-row").hidden = seats !== "random_tenths";
  $("#whatif-custom").hidden = seats !== "custom";
  $("#whatif-veto-row").hidden = $("#whatif-rule").value !== "veto_power";
}

function buildSliders() {
  const box = clear($("#whatif-custom"));
  page.groups.forEach((group) => {
    const id = `whatif-custom-${group.code}`;
    const start = Math.max(1, Math.round(100 * group.seats));
    const value = el("span", { class: "num" }, `${start}`);
    const input = el("input", {
      type: "range", id, min: "1", max: "100", value: String(start),
      dataset: { code: group.code, testid: `whatif-slider-${group.code}` },
    });
    input.addEventListener("input", () => { value.textContent = input.value; soon(); });
    box.append(el("label", { for: id }, group.short_label || group.code), input, value);
  });
  box.append(el("p", { class: "muted small", style: { gridColumn: "1 / -1" } }, "Weights: they are scaled to add up to 100%."));
}

export function startCounterfactual(pageData) {
  if (started) return;
  started = true;
  page = pageData;
  $("#whatif-panel").hidden = false;
  buildSliders();
  ["#whatif-seats", "#whatif-rule", "#whatif-veto", "#whatif-seed"].forEach((selector) => {
    $(selector).addEventListener("change", () => { showRows(); soon(); });
  });
  showRows();
  refresh();
}
