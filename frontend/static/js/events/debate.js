/* Renderers of a debate's events (parliament, one-shot, the baselines, the classroom): speeches,
 * drafts, amendments and decisions, the vote, the tally and the outcome. */
import { el, formatNumber } from "../dom.js";
import { diffNode } from "../diff.js";

export const renderers = {
  speech(message, t) {
    const data = message.data;
    const group = t.groups[data.group];
    const when = data.phase === "negotiation" ? `round ${data.round}` : data.phase;
    const card = t.eventNode(message, `speech${data.skipped ? " skipped" : ""}`,
      el("header", {}, t.chipFor(data.group), el("span", { class: "muted small" }, `${group ? group.label : data.group} · ${when}`),
        t.byline(data), t.usageText(data.usage)),
      t.textNode(message, data.text));
    card.dataset.testid = "speech";
    card.dataset.group = data.group;
    if (data.by) card.dataset.by = data.by;
    if (group) card.style.borderLeftColor = group.colour;
    t.append(card);
  },

  draft(message, t) {
    const data = message.data;
    const state = t.state;
    const version = data.version || state.drafts.length + 1;
    state.drafts.push({ version, author: data.author, text: data.text, seq: message.seq });
    if (!state.phase || !t.debating) t.setPhase("drafting");
    const title = version > 1 && t.debating ? `Draft version ${version}: the amended text` : `Draft version ${version}`;
    t.append(t.eventNode(message, "draft",
      el("header", {}, el("span", { class: "what" }, title), el("span", { class: "muted small" }, "by"), t.chipFor(data.author),
        data.source_group ? el("span", { class: "muted small" }, `(the stance of ${t.groupLabel(data.source_group)})`) : null,
        t.byline(data), t.usageText(data.usage)),
      t.textNode(message, data.text || "(empty)"),
      data.decoding ? el("p", { class: "muted small" }, `Decoded ${data.decoding.tokens} tokens with ${data.decoding.calls} next-token calls; `,
        data.decoding.stopped === "end" ? "the model ended its turn." : "the token limit ended it.") : null,
      data.agreed_turn ? el("p", { class: "muted small", dataset: { testid: "agreed" } }, `Agreed at turn ${data.agreed_turn}: the accepted proposal, verbatim.`) : null));
    t.renderCurrentDraft();
  },

  amendment(message, t) {
    const data = message.data;
    const declined = !data.text;
    t.append(t.eventNode(message, "amendment",
      el("header", {}, t.chipFor(data.group), el("span", { class: "what" }, declined ? "declines to amend the draft" : "tables an amendment"),
        t.byline(data), t.usageText(data.usage)),
      declined ? null : t.textNode(message, data.text)));
  },

  amendment_decision(message, t) {
    const data = message.data;
    const changed = data.draft_after !== data.draft_before;
    const node = t.eventNode(message, `decision ${data.accepted ? "accepted" : "rejected"}`,
      el("header", {},
        el("span", { class: "what" }, data.accepted ? "Accepted:" : "Rejected:"),
        el("span", {}, "the amendment of"), t.chipFor(data.group), t.byline(data), t.usageText(data.usage)),
      el("p", { class: "prose small" }, data.reason || ""));
    if (changed) {
      node.append(el("p", { class: "muted small" }, "The change to the draft:"), diffNode(data.draft_before, data.draft_after));
      t.state.drafts.push({ version: t.state.drafts.length + 1, author: data.group, text: data.draft_after, seq: message.seq, amended: true });
      t.renderCurrentDraft();
    } else if (data.accepted) {
      node.append(el("p", { class: "muted small" }, "The draft text did not change."));
    }
    t.append(node);
  },

  vote(message, t) {
    const data = message.data;
    t.state.votes[data.group] = data;
    if (t.state.phase !== "vote") t.setPhase("vote");
    const node = t.eventNode(message, "vote-line",
      t.chipFor(data.group),
      el("span", { class: `vote vote-${data.position}` }, data.position),
      el("span", {}, `support ${data.score}/9`),
      t.byline(data),
      data.fallback ? el("span", { class: "muted small", title: "The judge's answer could not be read; a fallback score was used." }, "(fallback score)") : null,
      data.attempts > 1 ? el("span", { class: "muted small" }, `${data.attempts} attempts`) : null,
      t.usageText(data.usage));
    node.dataset.group = data.group;
    t.append(node);
    t.scheduleCharts();
  },

  tally(message, t) {
    const data = message.data;
    t.state.tally = data;
    const text = data.threshold == null
      ? `Tally: seat-weighted support u = ${formatNumber(data.weighted_total, 2)} of 9.`
      : `Tally: seat-weighted support u = ${formatNumber(data.weighted_total, 2)} of 9, threshold ${formatNumber(data.threshold, 2)}.`;
    t.append(t.eventNode(message, "minor", text));
    t.renderTallySummary();
    t.scheduleCharts();
  },

  outcome(message, t) {
    const data = message.data;
    t.state.outcome = data;
    t.setPhase("done");
    t.setStatus("finished");
    const verdict = t.outcomeVerdict(data);
    t.append(t.eventNode(message, "outcome-event",
      el("header", {}, el("span", { class: "what" }, "Outcome")),
      el("p", { class: `outcome-big ${verdict.className}` }, verdict.headline),
      el("p", { class: "muted small" }, verdict.detail)));
    t.renderOutcome();
    t.renderTallySummary();
    t.scheduleCharts();
    t.finish();
  },
};
