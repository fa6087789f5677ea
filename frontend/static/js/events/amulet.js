/* Renderer of the amulet strategy's setup (engine/strategies/amulet.py): the closed form's beta,
 * the parameters it comes from, and the preference sentence with the groups it names. The decoded
 * text arrives as the usual draft (debate.js shows its decoding line). */
import { el, formatNumber } from "../dom.js";

export const renderers = {
  amulet(message, t) {
    const data = message.data;
    if (!t.state.phase) t.setPhase("drafting");
    t.append(t.eventNode(message, "amulet",
      el("header", {}, el("span", { class: "what" }, "Preference decoding (amulet)"),
        el("span", { dataset: { testid: "amulet-beta" } }, `β = ${formatNumber(data.beta, 3)}`)),
      el("p", { class: "muted small" },
        `Each token maximises (1 + β)·log p(preference) − β·log p(base) over the preference prompt's ${data.top_k} most likely tokens; `,
        `β from T = ${data.iterations}, α = ${formatNumber(data.alpha, 2)}, λ = ${formatNumber(data.lam, 2)}, η = ${formatNumber(data.eta, 2)}.`),
      el("p", { class: "small" }, "Preference: ", el("q", { dataset: { testid: "amulet-preference" } }, data.preference), " ",
        ...data.favoured.map((code) => t.chipFor(code)))));
  },
};
