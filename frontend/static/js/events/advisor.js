/* Renderer of the advisor strategies' signal (engine/strategies/advisor.py): the brief the drafter
 * reads, which arm wrote it, and the pivotal groups the scenario's seats make. */
import { el } from "../dom.js";

const ARMS = { advisor: "The advisor's brief", random: "A random brief (the prior arm)", none: "No brief (the no-signal arm)" };

export const renderers = {
  signal(message, t) {
    const data = message.data;
    if (!t.state.phase) t.setPhase("drafting");
    t.append(t.eventNode(message, "signal",
      el("header", {}, el("span", { class: "what" }, ARMS[data.arm] || data.arm),
        data.model ? el("span", { class: "muted small" }, `by ${data.model}`) : null, t.usageText(data.usage)),
      el("p", { class: "muted small" }, "Pivotal groups: ", ...data.pivotal.map((code) => t.chipFor(code))),
      data.text ? el("p", { class: "prose", style: { whiteSpace: "pre-line" }, dataset: { testid: "brief" } }, data.text) : null,
      data.fallback ? el("p", { class: "muted small" }, "The advisor's answer was empty: the brief names the pivotal groups only.") : null));
  },
};
