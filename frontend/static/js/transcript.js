/* A run's event log rendered as a page: the transcript, the phases, the current draft, the
 * hemicycle coloured by vote, the tally and the outcome. Shared by the run page (run.js) and the
 * classroom pages (classroom.js); each page brings its own socket (live.js) and controls.
 *
 *   const view = createTranscript(page, hooks)   // page: {run: {strategy, params, status, error,
 *                                                //   veto_group}, goal: {key, label, kind, threshold},
 *                                                //   groups: [{code, label, short_label, colour, seats}]}
 *   view.apply(message)                          // one stored event, in sequence order, once
 *
 * Each event type is drawn by its renderer in the registry (events/index.js: how to add one).
 * hooks (all optional): text(node, message, text) fills a text paragraph (default: all at once);
 * highlight() names the group drawn in full colour in the hemicycle before the vote;
 * onStatus(status); onFinish(); afterEvent(message). Elements are found by id (#transcript,
 * #phases, #current-draft, #hemicycle, #tally-chart, #outcome-panel, ...); a page without one of
 * them simply does not show that part. Model and student text is untrusted: it only ever reaches
 * the DOM as text (el() / textContent). */
import { $, el, clear, groupChip, formatNumber } from "./dom.js";
import { draw as drawHemicycle, plotlyText, NEUTRAL } from "./hemicycle.js";
import { debatePhases, goalLabel, phaseLabel } from "./labels.js";
import { RENDERERS } from "./events/index.js";

export const VOTE_COLOURS = { for: "#2e9d4e", abstain: "#e0a100", against: "#d0342c" };
export const TERMINAL = new Set(["finished", "failed", "stopped"]);

export function createTranscript(page, hooks = {}) {
  const rounds = Number(page.run.params && page.run.params.rounds != null ? page.run.params.rounds : 2);
  const debating = page.run.strategy === "parliament" || page.run.strategy === "classroom";
  // The steps the phase list shows: a debate's phases (no negotiation without rounds); a
  // one-shot run has no phase events, only a draft and a vote.
  const PHASES = debating
    ? [...debatePhases().filter((phase) => phase !== "negotiation" || rounds > 0), "done"]
    : ["drafting", "vote", "done"];
  const groups = Object.fromEntries(page.groups.map((g) => [g.code, g]));

  // Everything the page knows, rebuilt from the events.
  const state = {
    lastSeq: 0,
    status: page.run.status,
    phase: null,
    round: null,
    drafts: [], // {version, author, text, seq}
    votes: {}, // group -> vote data
    tally: null,
    outcome: null,
    usage: { prompt: 0, completion: 0, seconds: 0, calls: 0, cached: 0 },
    firstAt: null,
    lastAt: null,
    finalError: page.run.status === "failed" ? page.run.error : null,
  };

  // ---- small helpers ----------------------------------------------------------------------

  function groupLabel(code) {
    const group = groups[code];
    return group ? group.short_label : code === "mediator" ? "Mediator" : code;
  }

  function chipFor(code) {
    const group = groups[code];
    if (!group) return el("span", { class: "chip", style: { background: "#5b6475", color: "#fff" } }, code === "mediator" ? "Mediator" : code);
    return groupChip(group.short_label, group.colour);
  }

  function usageText(usage) {
    if (!usage || (!usage.cached && !usage.prompt_tokens && !usage.completion_tokens && !usage.seconds)) return null;
    const tokens = (usage.prompt_tokens || 0) + (usage.completion_tokens || 0);
    const time = usage.cached ? "cached" : `${formatNumber(usage.seconds, 2)} s`;
    return el("span", { class: "usage", title: `${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens` }, `${formatNumber(tokens)} tokens · ${time}`);
  }

  function eventNode(message, className, ...children) {
    return el("article", {
      class: `event ${className}`,
      dataset: { seq: message.seq, type: message.type, testid: `event-${message.type}` },
    }, ...children);
  }

  // A paragraph of event text; the page may reveal it word by word (hooks.text).
  function textNode(message, text, className) {
    const node = el("p", { class: className || "prose" });
    if (hooks.text) hooks.text(node, message, text);
    else node.textContent = text;
    return node;
  }

  function append(node) {
    const empty = $("#transcript-empty");
    if (empty) empty.hidden = true;
    const transcript = $("#transcript");
    if (transcript) transcript.append(node);
  }

  function setStatus(status) {
    if (!status) return;
    // A finished, failed or stopped run stays so; replayed older events cannot undo it.
    if (TERMINAL.has(state.status) && !TERMINAL.has(status)) return;
    state.status = status;
    if (hooks.onStatus) hooks.onStatus(status);
  }

  function setPhase(phase, round) {
    state.phase = phase;
    state.round = round == null ? null : round;
    renderPhases();
  }

  function finish() {
    if (hooks.onFinish) hooks.onFinish();
  }

  // The status may not have changed, but what shows it must be redrawn (an error event).
  function statusShown() {
    if (hooks.onStatus) hooks.onStatus(state.status);
  }

  // Who spoke for a group in a classroom: its students (by name) or the agent; judge votes say so.
  function byline(data) {
    if (data.skipped) return el("span", { class: "muted small byline" }, "(skipped)");
    if (data.by === "students") return el("span", { class: "byline students" }, data.name ? `by ${data.name}` : "by the students");
    if (data.by === "judge") return el("span", { class: "muted small byline" }, "(scored by the judge)");
    if (data.by === "agent") return el("span", { class: "muted small byline" }, "agent");
    return null;
  }

  // Bookkeeping every event shares: usage totals and the wall clock.
  function account(message) {
    const usage = message.data && message.data.usage;
    // A model call has tokens or came from the cache; the scripted and oracle judges record
    // none (runs/selectors.py uncached_steps counts the same way).
    if (usage && (usage.cached || usage.prompt_tokens || usage.completion_tokens)) {
      state.usage.prompt += usage.prompt_tokens || 0;
      state.usage.completion += usage.completion_tokens || 0;
      state.usage.calls += 1;
      if (usage.cached) state.usage.cached += 1;
      else state.usage.seconds += usage.seconds || 0;
    }
    if (message.at) {
      const at = Date.parse(message.at);
      if (!Number.isNaN(at)) {
        if (state.firstAt == null) state.firstAt = at;
        state.lastAt = at;
      }
    }
  }

  // A step whose model calls answered only after retries says so under its event (usage.retries).
  function noteRetries(message) {
    const retries = message.data && message.data.usage && message.data.usage.retries;
    const transcript = $("#transcript");
    if (!retries || !retries.length || !transcript) return;
    const node = transcript.querySelector(`article[data-seq="${message.seq}"]`);
    if (!node) return;
    for (const retry of retries) {
      node.append(el("p", { class: "muted small retry-note", dataset: { testid: "retry-note" } },
        `The model ${retry.model} answered after ${retry.attempts} attempts (${(retry.errors || []).join("; ")}).`));
    }
  }

  function apply(message) {
    state.lastSeq = message.seq;
    const render = RENDERERS[message.type];
    if (render) render(message, t);
    else append(eventNode(message, "minor", `(${message.type})`));
    noteRetries(message);
    account(message);
    if (hooks.afterEvent) hooks.afterEvent(message);
  }

  // ---- derived views ----------------------------------------------------------------------

  function outcomeVerdict(outcome) {
    const goal = outcome.goal || page.goal.key;
    const result = outcome.goals ? outcome.goals[goal] : undefined;
    const u = `seat-weighted support u = ${formatNumber(outcome.weighted_total, 2)} of 9`;
    if (typeof result === "boolean") {
      return {
        headline: `${result ? "Passed" : "Failed"}: ${goalLabel(goal)}`,
        className: result ? "pass" : "fail",
        detail: page.goal.threshold != null ? `${u}; the goal needs ${formatNumber(page.goal.threshold, 2)}${goal === "veto_power" ? " and the veto group at 6 or more" : ""}.` : u,
      };
    }
    return {
      headline: `${goalLabel(goal)}: ${formatNumber(result, 2)} of 9`,
      className: "",
      detail: `${u}.`,
    };
  }

  function renderOutcome() {
    const outcome = state.outcome;
    if (!outcome || !$("#outcome-panel")) return;
    $("#outcome-panel").hidden = false;
    const verdict = outcomeVerdict(outcome);
    const headline = $("#outcome-headline");
    headline.textContent = verdict.headline;
    headline.className = `outcome-big ${verdict.className}`;
    $("#outcome-detail").textContent = verdict.detail;
    const table = $("#goal-table");
    if (table) {
      clear(table);
      table.append(el("thead", {}, el("tr", {}, el("th", {}, "Goal"), el("th", { class: "num" }, "Result"))));
      const body = el("tbody");
      for (const [key, value] of Object.entries(outcome.goals || {})) {
        const result = typeof value === "boolean"
          ? el("span", { class: value ? "pass" : "fail" }, value ? "passes" : "fails")
          : el("span", {}, `${formatNumber(value, 2)} / 9`);
        body.append(el("tr", { class: key === outcome.goal ? "this-goal" : null, dataset: { goal: key } },
          el("td", {}, goalLabel(key), key === outcome.goal ? " (this run's goal)" : ""),
          el("td", { class: "num" }, result)));
      }
      table.append(body);
    }
    const notes = [];
    if (outcome.fallbacks && outcome.fallbacks.length) notes.push(`The judge's answer could not be read for ${outcome.fallbacks.map(groupLabel).join(", ")}; fallback scores were used.`);
    if (outcome.veto_group && outcome.goal !== "veto_power") notes.push(`Veto group: ${groupLabel(outcome.veto_group)}.`);
    if ($("#outcome-notes")) $("#outcome-notes").textContent = notes.join(" ");
  }

  // The Tally card's sentence: the rule until the votes are in, then the count and the verdict.
  function renderTallySummary() {
    const result = $("#tally-result");
    if (!result || !state.tally) return;
    if ($("#tally-pending")) $("#tally-pending").hidden = true;
    const u = `Seat-weighted support u = ${formatNumber(state.tally.weighted_total, 2)} of 9`;
    result.textContent = state.outcome ? `${u}: ${outcomeVerdict(state.outcome).headline}.` : `${u}.`;
  }

  function renderCurrentDraft() {
    const draft = state.drafts[state.drafts.length - 1];
    if (!draft || !$("#current-draft")) return;
    $("#current-draft").textContent = draft.text;
    $("#current-draft-meta").textContent = draft.amended
      ? `Version ${draft.version}, with the amendment of ${groupLabel(draft.author)}.`
      : `Version ${draft.version}, by ${draft.author === "mediator" ? "the mediator" : groupLabel(draft.author)}.`;
  }

  function renderPhases() {
    const list = $("#phases");
    if (!list) return;
    clear(list);
    const currentIndex = state.phase ? PHASES.indexOf(state.phase) : -1;
    PHASES.forEach((phase, index) => {
      let label = phaseLabel(phase);
      if (phase === "negotiation") label = state.phase === "negotiation" && state.round ? `Negotiation ${state.round}/${rounds}` : `Negotiation (${rounds})`;
      const className = index < currentIndex || (phase === "done" && currentIndex === index) ? "done" : index === currentIndex ? "current" : "";
      list.append(el("li", { class: className, dataset: { phase, testid: `phase-${phase}` }, "aria-current": index === currentIndex ? "step" : null }, label));
    });
    list.dataset.current = state.phase || "";
  }

  // ---- charts (coalesced: a replay of many events draws once per frame) -------------------

  let chartsQueued = false;
  function scheduleCharts() {
    if (chartsQueued) return;
    chartsQueued = true;
    requestAnimationFrame(() => {
      chartsQueued = false;
      drawChamber();
      drawTally();
    });
  }

  function drawChamber() {
    const div = $("#hemicycle");
    if (!div || !window.Plotly) return;
    const voted = Object.keys(state.votes).length > 0;
    const chartGroups = page.groups.map((g) => ({ code: g.code, label: g.short_label, colour: g.colour, share: g.seats }));
    let colourBy = null;
    let names = null;
    if (voted) {
      colourBy = {};
      names = {};
      for (const g of page.groups) {
        const vote = state.votes[g.code];
        colourBy[g.code] = vote ? VOTE_COLOURS[vote.position] : NEUTRAL;
        names[g.code] = vote ? `${g.short_label}: ${vote.position} ${vote.score}` : `${g.short_label}: not voted`;
      }
    }
    const speaking = !voted && hooks.highlight ? hooks.highlight() : null;
    if (speaking && groups[speaking]) {
      // The group that has the floor in full colour, the others faded (their band stays).
      colourBy = Object.fromEntries(page.groups.map((g) => [g.code, g.code === speaking ? g.colour : "#dfe3ea"]));
    }
    div.dataset.speaking = speaking || "";
    if ($("#vote-legend")) $("#vote-legend").hidden = !voted;
    if ($("#not-voted-key")) $("#not-voted-key").hidden = page.groups.every((g) => state.votes[g.code]);
    const centre = state.tally ? `u = ${formatNumber(state.tally.weighted_total, 2)}` : null;
    drawHemicycle(div, { groups: chartGroups, colourBy, names, seats: 100, centre });
    div.dataset.coloured = voted ? "votes" : "groups";
  }

  function drawTally() {
    const div = $("#tally-chart");
    if (!div || !window.Plotly) return;
    const scores = state.tally ? state.tally.scores : Object.fromEntries(Object.entries(state.votes).map(([code, v]) => [code, v.score]));
    const codes = page.groups.map((g) => g.code).filter((code) => code in scores);
    if (!codes.length) return;
    const goal = page.goal;
    // Each row may carry a marker: the goal's threshold on u, the veto group's minimum of 6.
    const rows = codes.map((code) => {
      const veto = goal.key === "veto_power" && code === page.run.veto_group;
      return {
        label: veto ? `${groupLabel(code)} (veto, needs 6)` : groupLabel(code),
        value: scores[code],
        colour: VOTE_COLOURS[(state.votes[code] && state.votes[code].position) || "abstain"],
        marker: veto ? 6 : null,
      };
    });
    if (state.tally) {
      const values = codes.map((code) => scores[code]);
      if (goal.kind === "score") {
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        rows.push({ label: "mean (utilitarian)", value: mean, colour: goal.key === "utilitarian" ? "#1f4fa8" : "#8fa3c8" });
        rows.push({ label: "min (Rawlsian)", value: Math.min(...values), colour: goal.key === "rawlsian" ? "#1f4fa8" : "#8fa3c8" });
      } else {
        rows.push({ label: `u (needs ${formatNumber(goal.threshold, 2)})`, value: state.tally.weighted_total, colour: "#1f4fa8", marker: goal.threshold });
      }
    }
    const all = rows.reverse(); // Plotly draws the first category at the bottom
    const labels = all.map((row) => plotlyText(row.label));
    const shapes = all.flatMap((row, index) => (row.marker == null ? [] : [{
      type: "line", x0: row.marker, x1: row.marker, y0: index - 0.48, y1: index + 0.48, line: { color: "#1d2330", width: 2, dash: "dot" },
    }]));
    const big = div.classList.contains("big");
    const trace = {
      type: "bar",
      orientation: "h",
      x: all.map((row) => row.value),
      y: labels,
      marker: { color: all.map((row) => row.colour) },
      text: all.map((row) => formatNumber(row.value, Number.isInteger(row.value) ? 0 : 2)),
      textposition: "outside",
      cliponaxis: false,
      textfont: { size: big ? 22 : 12 },
      hovertemplate: "%{y}: %{x:.2f}<extra></extra>",
    };
    window.Plotly.react(div, [trace], {
      margin: { l: 10, r: 34, t: 8, b: 30 },
      height: (big ? 80 : 60) + all.length * (big ? 48 : 30),
      font: { size: big ? 20 : 12 },
      xaxis: { range: [0, 9.6], dtick: 1, fixedrange: true, gridcolor: "#eef1f6" },
      yaxis: { fixedrange: true, automargin: true, type: "category" },
      shapes,
      showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
    }, { displayModeBar: false, responsive: true });
    div.dataset.drawn = state.tally ? "tally" : "votes";
  }

  // What a renderer (events/index.js) draws with.
  const t = {
    page, state, groups, rounds, debating,
    append, eventNode, textNode, chipFor, groupLabel, byline, usageText,
    setPhase, setStatus, finish, scheduleCharts, statusShown,
    renderCurrentDraft, renderOutcome, renderTallySummary, outcomeVerdict,
  };

  renderPhases();
  return { state, apply, chipFor, groupLabel, groups, rounds, scheduleCharts };
}

// The page's connection badge (#connection): kind connecting | open | closed.
export function showConnection(kind, text) {
  const node = $("#connection");
  if (!node) return;
  node.className = `connection ${kind}`;
  node.dataset.state = kind;
  node.textContent = text;
}
