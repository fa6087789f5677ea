/* Renderer of the negotiation strategy's turns (engine/strategies/negotiation.py): which side
 * spoke for which groups, its proposal (or its ACCEPT), each group's judged support before and
 * after, each side's support and the speaker's reward (the change of the goal margin). */
import { el, formatNumber } from "../dom.js";

const signed = (value) => (value > 0 ? "+" : "") + formatNumber(value, 2);

function scoreTable(data, t) {
  const rows = Object.entries(data.scores_after).map(([code, after]) => {
    const before = data.scores_before ? data.scores_before[code] : null;
    return el("tr", { dataset: { group: code } }, el("td", {}, t.chipFor(code)),
      el("td", { class: "num" }, before == null ? "–" : formatNumber(before, 1)), el("td", { class: "num" }, formatNumber(after, 1)));
  });
  return el("table", { class: "small" },
    el("thead", {}, el("tr", {}, el("th", {}, "Group"), el("th", { class: "num" }, "Before"), el("th", { class: "num" }, "After"))),
    el("tbody", {}, ...rows));
}

function sideLine(data) {
  return ["A", "B"].map((side) => {
    const after = data.support_after[side];
    const before = data.support_before ? data.support_before[side] : null;
    return `side ${side} ${before == null ? "" : formatNumber(before, 1) + " → "}${formatNumber(after, 1)}`;
  }).join(" · ");
}

export const renderers = {
  turn(message, t) {
    const data = message.data;
    if (!t.state.phase) t.setPhase("drafting");
    const reward = data.reward == null ? "opening: no reward yet" : `reward ${signed(data.reward)}`;
    const node = t.eventNode(message, `speech turn side-${data.side}`,
      el("header", {}, el("span", { class: "what" }, `Turn ${data.turn} · side ${data.side}`), ...data.groups.map((code) => t.chipFor(code)),
        el("span", { class: "muted small", dataset: { testid: "turn-reward" } }, reward), t.usageText(data.usage)),
      data.accept ? el("p", { class: "what", dataset: { testid: "turn-accept" } }, "Accepts the other side's proposal.")
        : t.textNode(message, data.text || "(empty)"),
      el("p", { class: "muted small" }, `Support: ${sideLine(data)}; goal margin `,
        data.margin_before == null ? "" : `${formatNumber(data.margin_before, 2)} → `, formatNumber(data.margin_after, 2),
        data.judge_calls ? ` (${data.judge_calls} judge calls)` : ""),
      el("details", { class: "small" }, el("summary", {}, "Judged support per group"), scoreTable(data, t)));
    node.dataset.testid = "turn";
    node.dataset.side = data.side;
    t.append(node);
  },
};
