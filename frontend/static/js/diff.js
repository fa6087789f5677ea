/* A word diff between two drafts: the words kept, deleted (<del>) and inserted (<ins>), as text. */
import { el } from "./dom.js";

export function diffOps(before, after) {
  const a = before.split(/\s+/).filter(Boolean);
  const b = after.split(/\s+/).filter(Boolean);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const ops = a.slice(0, start).map((w) => ["same", w]);
  const n = midA.length;
  const m = midB.length;
  if (n * m > 400000) {
    midA.forEach((w) => ops.push(["del", w]));
    midB.forEach((w) => ops.push(["ins", w]));
  } else {
    // Longest common subsequence, table filled from the end so the walk goes forwards.
    const width = m + 1;
    const table = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        table[i * width + j] = midA[i] === midB[j] ? table[(i + 1) * width + j + 1] + 1 : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (midA[i] === midB[j]) { ops.push(["same", midA[i]]); i++; j++; }
      else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) { ops.push(["del", midA[i]]); i++; }
      else { ops.push(["ins", midB[j]]); j++; }
    }
    while (i < n) ops.push(["del", midA[i++]]);
    while (j < m) ops.push(["ins", midB[j++]]);
  }
  a.slice(endA).forEach((w) => ops.push(["same", w]));
  return ops;
}

export function diffNode(before, after) {
  const node = el("p", { class: "diff", dataset: { testid: "draft-diff" } });
  let kind = null;
  let words = [];
  const flush = () => {
    if (!words.length) return;
    const text = words.join(" ");
    if (node.childNodes.length) node.append(" ");
    node.append(kind === "same" ? document.createTextNode(text) : el(kind, {}, text));
    words = [];
  };
  for (const [op, word] of diffOps(before || "", after || "")) {
    if (op !== kind) { flush(); kind = op; }
    words.push(word);
  }
  flush();
  return node;
}
