/* Renderers of the events every run has: it started, a phase began, an error, a control. */
import { el, formatNumber } from "../dom.js";
import { goalLabel, phaseLabel } from "../labels.js";

export const renderers = {
  run_started(message, t) {
    const data = message.data;
    if (!data.classroom) t.setStatus("running");
    t.append(t.eventNode(message, "minor",
      `${data.classroom ? "Session opened" : "Run started"}: ${data.groups.length} groups (${data.groups.map(t.groupLabel).join(", ")}), goal ${goalLabel(data.goal)}${data.veto_group ? `, veto ${t.groupLabel(data.veto_group)}` : ""}.`));
  },

  phase(message, t) {
    const { phase, round } = message.data;
    t.setPhase(phase, round);
    const label = phase === "negotiation" && round ? `Negotiation · round ${round} of ${t.rounds}` : phaseLabel(phase);
    t.append(t.eventNode(message, "phase-marker", label));
  },

  error(message, t) {
    const data = message.data;
    if (data.turn) { // a classroom agent's turn failed; the turn stays due
      t.append(t.eventNode(message, "error-event",
        el("header", {}, el("span", { class: "what error-text" }, "The agent could not take its turn"), t.chipFor(data.turn.group)),
        el("p", { class: "prose small" }, data.message || ""),
        el("p", { class: "small muted" }, "The teacher can skip the turn, or pause and resume to try again.")));
      return;
    }
    if (data.final) {
      t.state.finalError = data.message;
      t.setStatus("failed");
    }
    t.append(t.eventNode(message, "error-event",
      el("header", {}, el("span", { class: "what error-text" }, data.final ? "The run failed" : `Attempt ${data.attempt} failed; it will be retried`)),
      el("p", { class: "prose small" }, data.message)));
    t.statusShown();
    if (data.final) t.finish();
  },

  control(message, t) {
    const data = message.data;
    const { action, by } = data;
    const status = { paused: "paused", resumed: "running", stopped: "stopped", ended: "stopped" }[action];
    t.setStatus(status);
    const speed = Number(data.words_per_second);
    const text = { // a classroom's actions (docs/classroom.md)
      started: "The sitting is open.",
      ended: "The session has ended.",
      vote_closed: "The vote is closed: the judge scores the groups that did not vote.",
      reveal_speed: speed ? `Agents' text now appears at ${formatNumber(speed, Number.isInteger(speed) ? 0 : 1)} words per second.` : "Agents' text now appears at once.",
      muted: `${data.name} was muted by the teacher.`,
      unmuted: `${data.name} may speak again.`,
      removed: `${data.name} was removed from the session.`,
    }[action] || (action === "resumed" && data.reason === "worker_lost"
      ? `Resuming after a worker was lost (attempt ${data.attempt}): the run continues from its last stored event.`
      : null);
    t.append(t.eventNode(message, "minor", text || `${action[0].toUpperCase()}${action.slice(1)} by ${by}.`));
    if (action === "stopped" || action === "ended") t.finish();
  },
};
