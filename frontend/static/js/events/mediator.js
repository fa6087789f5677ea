/* Renderers of the mediator's events (engine/strategies/mediator.py, the Habermas Machine): each
 * round's candidate statements, every group's ranking of them, the Schulze result (with its
 * pairwise matrix and strongest paths in a details element), and the groups' critiques. Candidates
 * are numbered 1..K within their round; a ranking's letters were shuffled per group, the event
 * already maps them back to candidates. */
import { el, formatNumber } from "../dom.js";

const number = (index) => `#${index + 1}`;

function matrixTable(caption, rows) {
  const head = el("tr", {}, el("th", {}, ""), ...rows.map((_, j) => el("th", { class: "num" }, number(j))));
  const body = rows.map((row, i) => el("tr", {}, el("th", {}, number(i)),
    ...row.map((value, j) => el("td", { class: "num" }, i === j ? "–" : formatNumber(value, Number.isInteger(value) ? 0 : 2)))));
  return el("div", { class: "matrix" }, el("p", { class: "muted small" }, caption),
    el("table", { class: "small" }, el("thead", {}, head), el("tbody", {}, ...body)));
}

export const renderers = {
  candidate(message, t) {
    const data = message.data;
    if (!t.state.phase) t.setPhase("drafting");
    const node = t.eventNode(message, "candidate",
      el("header", {},
        el("span", { class: "what" }, `${data.revision ? "Revised candidate" : "Candidate"} ${number(data.index)}`),
        el("span", { class: "muted small" }, `round ${data.round}, by`), t.chipFor("mediator"), t.usageText(data.usage)),
      t.textNode(message, data.text || "(empty)"),
      el("p", { class: "muted small" }, "Opinions shown in this order: ", ...data.order.map((code) => t.chipFor(code))));
    node.dataset.round = data.round;
    node.dataset.index = data.index;
    t.append(node);
  },

  ranking(message, t) {
    const data = message.data;
    const node = t.eventNode(message, "ranking",
      el("header", {}, data.scores ? el("span", { class: "what" }, "The judge ranks the candidates for") : null, t.chipFor(data.group),
        data.scores ? null : el("span", { class: "what" }, "ranks the candidates"),
        el("span", { class: "muted small" }, `round ${data.round}`), t.usageText(data.usage)),
      el("p", { class: "ranking-order", dataset: { testid: "ranking-order" } }, data.order.map(number).join(" > ")),
      data.fallback ? el("p", { class: "muted small", dataset: { testid: "ranking-fallback" } },
        data.fallback === "unparsed"
          ? "The answer named no candidate: the order they were shown in stands."
          : "The answer named only some candidates: the others follow in the order shown.") : null,
      el("details", { class: "small" }, el("summary", {}, data.scores ? "The judge's scores (equal scores tie)" : "The model's answer"),
        el("p", { class: "prose small" }, data.answer || "(empty)")));
    node.dataset.group = data.group;
    t.append(node);
  },

  schulze(message, t) {
    const data = message.data;
    const tied = data.tiers[0].length > 1;
    const node = t.eventNode(message, "schulze",
      el("header", {}, el("span", { class: "what" }, `Schulze winner of round ${data.round}:`),
        el("strong", { dataset: { testid: "schulze-winner" } }, `candidate ${number(data.winner)}`)),
      el("p", { class: "small" }, `Order: ${data.order.map(number).join(" > ")}`,
        tied ? ` (a tie among ${data.tiers[0].map(number).join(", ")}, broken by the seeded TBRC rule)` : ""),
      el("details", { class: "small", dataset: { testid: "schulze-matrix" } },
        el("summary", {}, "Pairwise preferences and strongest paths"),
        el("p", { class: "muted small" }, "Ballot weights: ",
          Object.entries(data.weights).map(([code, weight]) => `${t.groupLabel(code)} ${formatNumber(weight, 2)}`).join(", ")),
        matrixTable("d[row][column]: ballot weight preferring the row's candidate", data.pairwise),
        matrixTable("p[row][column]: strength of the strongest path", data.paths)));
    t.append(node);
  },

  critique(message, t) {
    const data = message.data;
    const node = t.eventNode(message, "critique",
      el("header", {}, t.chipFor(data.group), el("span", { class: "what" }, "critiques the winner"),
        el("span", { class: "muted small" }, `before round ${data.round}`), t.usageText(data.usage)),
      t.textNode(message, data.text));
    node.dataset.group = data.group;
    t.append(node);
  },
};
