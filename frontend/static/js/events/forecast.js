/* Renderers of the forecast strategy's events (engine/strategies/forecast.py, ProAgent): the
 * drafter's forecast per group, the coalition it plans for, the judge's verification of each
 * group beside the forecast, and the belief update with the goal margin. */
import { el, formatNumber } from "../dom.js";

export const renderers = {
  forecast(message, t) {
    const data = message.data;
    if (!t.state.phase) t.setPhase("drafting");
    const rows = Object.entries(data.predicted).map(([code, score]) => el("tr", { dataset: { group: code } },
      el("td", {}, t.chipFor(code)), el("td", { class: "num" }, formatNumber(score, 1)),
      el("td", { class: "small" }, data.red_lines[code] || (data.fallback.includes(code) ? "(not forecast: last known score)" : ""))));
    t.append(t.eventNode(message, "forecast",
      el("header", {}, el("span", { class: "what" }, `Round ${data.round}: the drafter forecasts each group's support`), t.usageText(data.usage)),
      el("table", { class: "small" }, el("thead", {}, el("tr", {}, el("th", {}, "Group"), el("th", { class: "num" }, "Forecast"), el("th", {}, "Red line"))),
        el("tbody", {}, ...rows)),
      data.fallback.length ? el("details", { class: "small" }, el("summary", {}, "The model's answer (some groups were not forecast)"),
        el("p", { class: "prose small" }, data.answer || "(empty)")) : null));
  },

  plan(message, t) {
    const data = message.data;
    const members = data.coalition.length ? data.coalition.map((code) => t.chipFor(code)) : [el("span", {}, "no group in particular")];
    t.append(t.eventNode(message, "plan",
      el("header", {}, el("span", { class: "what" }, "Chosen coalition:"), el("span", { dataset: { testid: "coalition" } }, ...members)),
      el("p", { class: "muted small" }, `Lift ${formatNumber(data.lift, 1)} points`,
        data.feasible === false ? "; no coalition reaches the goal on these forecasts, so every group is targeted" : "")));
  },

  verification(message, t) {
    const data = message.data;
    const gap = data.score - data.forecast;
    const node = t.eventNode(message, "vote-line verification",
      t.chipFor(data.group),
      el("span", {}, `forecast ${formatNumber(data.forecast, 1)}`),
      el("span", {}, "→"),
      el("span", { class: `vote vote-${data.position}` }, `judged ${formatNumber(data.score, 1)}`),
      el("span", { class: "muted small" }, `(${gap >= 0 ? "+" : ""}${formatNumber(gap, 1)}; the plan expected ${formatNumber(data.expected, 1)})`),
      t.usageText(data.usage));
    node.dataset.group = data.group;
    t.append(node);
  },

  belief_update(message, t) {
    const data = message.data;
    const verdict = data.passes == null ? `goal score ${formatNumber(data.margin, 2)}`
      : `${data.passes ? "passes" : "fails"} (margin ${formatNumber(data.margin, 2)})`;
    t.append(t.eventNode(message, "minor",
      `Round ${data.round}: the draft ${verdict}; mean forecast error ${formatNumber(data.bias, 2)}.`,
      data.stop ? ` Stops: ${data.reason}.` : " Next round: the forecasts learn from these scores."));
  },
};
