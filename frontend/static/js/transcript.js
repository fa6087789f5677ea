/* A run's event log rendered as a page: the transcript, the phases, the current draft, the
 * hemicycle coloured by vote, the tally and the outcome. Shared by the run page (run.js) and the
 * classroom pages (classroom.js); each page brings its own socket handling and controls.
 *
 *   const view = Transcript.create(page, hooks)   // page: {run: {strategy, params, status, error,
 *                                                 //   veto_group}, goal: {key, label, kind, threshold},
 *                                                 //   groups: [{code, label, short_label, colour, seats}]}
 *   view.apply(message)                           // one stored event, in sequence order, once
 *
 * hooks (all optional): render {type: fn(message)} adds or replaces an event type's rendering;
 * text(node, message, text) fills a text paragraph (default: all at once); highlight() names the group
 * drawn in full colour in the hemicycle before the vote; onStatus(status); onFinish(); afterEvent(message). Elements are found by id (#transcript, #phases, #current-draft, #hemicycle,
 * #tally-chart, #outcome-panel, ...); a page without one of them simply does not show that part.
 * Model and student text is untrusted: it only ever reaches the DOM as text (Dom.el / textContent). */
(function () {
  "use strict";

  const { el, clear, groupChip, formatNumber } = window.Dom;
  const $ = (selector) => document.querySelector(selector);

  const VOTE_COLOURS = { for: "#2e9d4e", abstain: "#e0a100", against: "#d0342c" };
  const GOAL_LABELS = {
    simple_majority: "Simple majority",
    two_thirds_majority: "Two-thirds majority",
    veto_power: "Veto power",
    rawlsian: "Rawlsian (lowest support)",
    utilitarian: "Utilitarian (mean support)",
  };
  const PHASE_LABELS = {
    opening: "Opening statements",
    negotiation: "Negotiation",
    drafting: "Drafting",
    amendments: "Amendments",
    vote: "Vote",
    done: "Done",
  };
  const TERMINAL = new Set(["finished", "failed", "stopped"]);

  function create(page, hooks) {
    hooks = hooks || {};
    const rounds = Number(page.run.params && page.run.params.rounds != null ? page.run.params.rounds : 2);
    const debating = page.run.strategy === "parliament" || page.run.strategy === "classroom";
    const PHASES = debating
      ? ["opening", ...(rounds > 0 ? ["negotiation"] : []), "drafting", "amendments", "vote", "done"]
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

    // ---- one function per event type --------------------------------------------------------

    const RENDER = {
      run_started(message) {
        const data = message.data;
        if (!data.classroom) setStatus("running");
        append(eventNode(message, "minor",
          `${data.classroom ? "Session opened" : "Run started"}: ${data.groups.length} groups (${data.groups.map(groupLabel).join(", ")}), goal ${GOAL_LABELS[data.goal] || data.goal}${data.veto_group ? `, veto ${groupLabel(data.veto_group)}` : ""}.`));
      },

      phase(message) {
        const { phase, round } = message.data;
        setPhase(phase, round);
        const label = phase === "negotiation" && round ? `Negotiation · round ${round} of ${rounds}` : PHASE_LABELS[phase] || phase;
        append(eventNode(message, "phase-marker", label));
      },

      speech(message) {
        const data = message.data;
        const group = groups[data.group];
        const when = data.phase === "negotiation" ? `round ${data.round}` : data.phase;
        const card = eventNode(message, `speech${data.skipped ? " skipped" : ""}`,
          el("header", {}, chipFor(data.group), el("span", { class: "muted small" }, `${group ? group.label : data.group} · ${when}`),
            byline(data), usageText(data.usage)),
          textNode(message, data.text));
        card.dataset.testid = "speech";
        card.dataset.group = data.group;
        if (data.by) card.dataset.by = data.by;
        if (group) card.style.borderLeftColor = group.colour;
        append(card);
      },

      draft(message) {
        const data = message.data;
        const version = data.version || state.drafts.length + 1;
        state.drafts.push({ version, author: data.author, text: data.text, seq: message.seq });
        if (!state.phase || !debating) setPhase("drafting");
        const title = version > 1 ? `Draft version ${version}: the amended text` : `Draft version ${version}`;
        append(eventNode(message, "draft",
          el("header", {}, el("span", { class: "what" }, title), el("span", { class: "muted small" }, "by"), chipFor(data.author),
            data.source_group ? el("span", { class: "muted small" }, `(the stance of ${groupLabel(data.source_group)})`) : null,
            byline(data), usageText(data.usage)),
          textNode(message, data.text || "(empty)")));
        renderCurrentDraft();
      },

      amendment(message) {
        const data = message.data;
        const declined = !data.text;
        append(eventNode(message, "amendment",
          el("header", {}, chipFor(data.group), el("span", { class: "what" }, declined ? "declines to amend the draft" : "tables an amendment"),
            byline(data), usageText(data.usage)),
          declined ? null : textNode(message, data.text)));
      },

      amendment_decision(message) {
        const data = message.data;
        const changed = data.draft_after !== data.draft_before;
        const node = eventNode(message, `decision ${data.accepted ? "accepted" : "rejected"}`,
          el("header", {},
            el("span", { class: "what" }, data.accepted ? "Accepted:" : "Rejected:"),
            el("span", {}, "the amendment of"), chipFor(data.group), byline(data), usageText(data.usage)),
          el("p", { class: "prose small" }, data.reason || ""));
        if (changed) {
          node.append(el("p", { class: "muted small" }, "The change to the draft:"), diffNode(data.draft_before, data.draft_after));
          state.drafts.push({ version: state.drafts.length + 1, author: data.group, text: data.draft_after, seq: message.seq, amended: true });
          renderCurrentDraft();
        } else if (data.accepted) {
          node.append(el("p", { class: "muted small" }, "The draft text did not change."));
        }
        append(node);
      },

      vote(message) {
        const data = message.data;
        state.votes[data.group] = data;
        if (state.phase !== "vote") setPhase("vote");
        const node = eventNode(message, "vote-line",
          chipFor(data.group),
          el("span", { class: `vote vote-${data.position}` }, data.position),
          el("span", {}, `support ${data.score}/9`),
          byline(data),
          data.fallback ? el("span", { class: "muted small", title: "The judge's answer could not be read; a fallback score was used." }, "(fallback score)") : null,
          data.attempts > 1 ? el("span", { class: "muted small" }, `${data.attempts} attempts`) : null,
          usageText(data.usage));
        node.dataset.group = data.group;
        append(node);
        scheduleCharts();
      },

      tally(message) {
        const data = message.data;
        state.tally = data;
        const text = data.threshold == null
          ? `Tally: seat-weighted support u = ${formatNumber(data.weighted_total, 2)} of 9.`
          : `Tally: seat-weighted support u = ${formatNumber(data.weighted_total, 2)} of 9, threshold ${formatNumber(data.threshold, 2)}.`;
        append(eventNode(message, "minor", text));
        renderTallySummary();
        scheduleCharts();
      },

      outcome(message) {
        const data = message.data;
        state.outcome = data;
        setPhase("done");
        setStatus("finished");
        const verdict = outcomeVerdict(data);
        append(eventNode(message, "outcome-event",
          el("header", {}, el("span", { class: "what" }, "Outcome")),
          el("p", { class: `outcome-big ${verdict.className}` }, verdict.headline),
          el("p", { class: "muted small" }, verdict.detail)));
        renderOutcome();
        renderTallySummary();
        scheduleCharts();
        finish();
      },

      seat_joined(message) {
        const { name, group } = message.data;
        append(eventNode(message, "minor joined", name, group ? " takes a seat with " : " watches", group ? chipFor(group) : null));
      },

      error(message) {
        const data = message.data;
        if (data.turn) { // a classroom agent's turn failed; the turn stays due
          append(eventNode(message, "error-event",
            el("header", {}, el("span", { class: "what error-text" }, "The agent could not take its turn"), chipFor(data.turn.group)),
            el("p", { class: "prose small" }, data.message || ""),
            el("p", { class: "small muted" }, "The teacher can skip the turn, or pause and resume to try again.")));
          return;
        }
        if (data.final) {
          state.finalError = data.message;
          setStatus("failed");
        }
        append(eventNode(message, "error-event",
          el("header", {}, el("span", { class: "what error-text" }, data.final ? "The run failed" : `Attempt ${data.attempt} failed; it will be retried`)),
          el("p", { class: "prose small" }, data.message)));
        if (hooks.onStatus) hooks.onStatus(state.status);
        if (data.final) finish();
      },

      control(message) {
        const data = message.data;
        const { action, by } = data;
        const status = { paused: "paused", resumed: "running", stopped: "stopped", ended: "stopped" }[action];
        setStatus(status);
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
        append(eventNode(message, "minor", text || `${action[0].toUpperCase()}${action.slice(1)} by ${by}.`));
        if (action === "stopped" || action === "ended") finish();
      },
    };
    Object.assign(RENDER, hooks.render || {});

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
      const render = RENDER[message.type];
      if (render) render(message);
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
          headline: `${result ? "Passed" : "Failed"}: ${GOAL_LABELS[goal] || goal}`,
          className: result ? "pass" : "fail",
          detail: page.goal.threshold != null ? `${u}; the goal needs ${formatNumber(page.goal.threshold, 2)}${goal === "veto_power" ? " and the veto group at 6 or more" : ""}.` : u,
        };
      }
      return {
        headline: `${GOAL_LABELS[goal] || goal}: ${formatNumber(result, 2)} of 9`,
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
            el("td", {}, GOAL_LABELS[key] || key, key === outcome.goal ? " (this run's goal)" : ""),
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
        let label = PHASE_LABELS[phase];
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
        drawHemicycle();
        drawTally();
      });
    }

    function drawHemicycle() {
      const div = $("#hemicycle");
      if (!div || !window.Hemicycle || typeof Plotly === "undefined") return;
      const voted = Object.keys(state.votes).length > 0;
      const chartGroups = page.groups.map((g) => ({ code: g.code, label: g.short_label, colour: g.colour, share: g.seats }));
      let colourBy = null;
      let names = null;
      if (voted) {
        colourBy = {};
        names = {};
        for (const g of page.groups) {
          const vote = state.votes[g.code];
          colourBy[g.code] = vote ? VOTE_COLOURS[vote.position] : Hemicycle.NEUTRAL;
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
      Hemicycle.draw(div, { groups: chartGroups, colourBy, names, seats: 100, centre });
      div.dataset.coloured = voted ? "votes" : "groups";
    }

    function drawTally() {
      const div = $("#tally-chart");
      if (!div || typeof Plotly === "undefined") return;
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
      const labels = all.map((row) => Hemicycle.plotlyText(row.label));
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
      Plotly.react(div, [trace], {
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

    renderPhases();
    return {
      state, apply, append, eventNode, chipFor, groupLabel, groups, phases: PHASES, rounds,
      scheduleCharts, outcomeVerdict, PHASE_LABELS, VOTE_COLOURS, TERMINAL,
    };
  }

  // ---- word diff between two drafts ---------------------------------------------------------

  function diffOps(before, after) {
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

  function diffNode(before, after) {
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

  // The page's connection badge (#connection): kind connecting | open | closed.
  function showConnection(kind, text) {
    const node = $("#connection");
    if (!node) return;
    node.className = `connection ${kind}`;
    node.dataset.state = kind;
    node.textContent = text;
  }

  // ---- the socket: replay after the last sequence, then live; reconnect with backoff ---------
  //
  //   const live = Transcript.connect({url(after), onEvent(message), onOther(message),
  //                                    onConnection(kind, text), onRefused(code) -> true to stop})
  //   live.send(object) · live.reconnectNow() · live.finish(text) · live.lastSeq()
  // Frames that are not stored events (the classroom's; a state frame carries the seq it reflects).
  const NOT_EVENTS = new Set(["hello", "state", "presence", "refused", "pong"]);

  function connect(options) {
    const socket = { ws: null, attempts: 0, timer: null, fresh: false, stableTimer: null, gapTimer: null, closedForGood: false };
    const pending = new Map(); // seq -> message that arrived ahead of a missing one
    let lastSeq = 0;
    const setConnection = options.onConnection || showConnection;

    function receive(message) {
      if (!message) return;
      if (typeof message.seq !== "number" || NOT_EVENTS.has(message.type)) {
        if (options.onOther) options.onOther(message);
        return;
      }
      if (socket.fresh) {
        // The first frame of a connection comes from the log: nothing below it exists there.
        socket.fresh = false;
        if (message.seq > lastSeq + 1 && !pending.size) lastSeq = message.seq - 1;
      }
      if (message.seq <= lastSeq || pending.has(message.seq)) return; // shown already
      pending.set(message.seq, message);
      while (pending.has(lastSeq + 1)) {
        const next = pending.get(lastSeq + 1);
        pending.delete(next.seq);
        lastSeq = next.seq;
        options.onEvent(next);
      }
      if (pending.size && !socket.gapTimer) {
        // A frame skipped ahead: wait briefly, then ask the log again from what we have.
        socket.gapTimer = setTimeout(() => {
          socket.gapTimer = null;
          if (pending.size) reconnectNow();
        }, 2000);
      }
    }

    function open() {
      clearTimeout(socket.timer);
      if (socket.closedForGood) return;
      setConnection("connecting", socket.attempts ? "reconnecting…" : "connecting…");
      const ws = new WebSocket(options.url(lastSeq));
      socket.ws = ws;
      socket.fresh = true;
      pending.clear();
      ws.addEventListener("open", () => {
        setConnection("open", "live");
        socket.stableTimer = setTimeout(() => { socket.attempts = 0; }, 5000);
      });
      ws.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        // Several events at once come as one array (the server fell behind: live/fanout.py).
        if (Array.isArray(message)) message.forEach(receive);
        else receive(message);
      });
      ws.addEventListener("close", (event) => {
        clearTimeout(socket.stableTimer);
        if (socket.ws !== ws) return;
        socket.ws = null;
        if (socket.closedForGood) return;
        if (event.code === 4403 && (!options.onRefused || options.onRefused(event.code))) return;
        const delay = Math.min(15000, 500 * 2 ** socket.attempts) * (0.8 + Math.random() * 0.4);
        socket.attempts += 1;
        setConnection("closed", `offline, retrying in ${Math.max(1, Math.round(delay / 1000))} s`);
        socket.timer = setTimeout(open, delay);
      });
    }

    function reconnectNow() {
      const ws = socket.ws;
      socket.ws = null;
      if (ws) ws.close();
      open();
    }

    // Nothing more will come: close for good.
    function finish(text) {
      socket.closedForGood = true;
      clearTimeout(socket.timer);
      clearTimeout(socket.gapTimer);
      const ws = socket.ws;
      socket.ws = null;
      if (ws) setTimeout(() => ws.close(1000), 0);
      setConnection("open", text || "transcript complete");
    }

    function send(object) {
      if (!socket.ws || socket.ws.readyState !== WebSocket.OPEN) return false;
      socket.ws.send(typeof object === "string" ? object : JSON.stringify(object));
      return true;
    }

    open();
    return {
      send, reconnectNow, finish,
      lastSeq: () => lastSeq,
      isOpen: () => Boolean(socket.ws),
      closedForGood: () => socket.closedForGood,
      reopen: () => { if (!socket.ws && !socket.closedForGood) open(); },
    };
  }

  window.Transcript = { create, connect, showConnection, diffNode, GOAL_LABELS, PHASE_LABELS, VOTE_COLOURS, TERMINAL };
})();
