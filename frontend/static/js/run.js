/* The live run page. Events come over a websocket in sequence order, each exactly once; a page
 * (re)load asks for everything after 0 and rebuilds the whole page from the replay.
 *
 * - `state` holds everything the page knows (last seq, phase, drafts, votes, usage, outcome).
 * - `RENDER[type](event)` is the one place each event type changes the state and the DOM.
 * - The socket reconnects by itself with exponential backoff, asking for ?after=<last seq>.
 * Model output is untrusted: it only ever reaches the DOM as text (Dom.el / textContent). */
(function () {
  "use strict";

  const { el, clear, groupChip, formatNumber, csrfToken } = window.Dom;
  const $ = (selector) => document.querySelector(selector);
  const pageNode = $("#run-page");
  if (!pageNode) return;
  const page = JSON.parse(pageNode.textContent);

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
  const rounds = Number(page.run.params && page.run.params.rounds != null ? page.run.params.rounds : 2);
  const PHASES = page.run.strategy === "parliament"
    ? ["opening", ...(rounds > 0 ? ["negotiation"] : []), "drafting", "amendments", "vote", "done"]
    : ["drafting", "vote", "done"];

  const groups = Object.fromEntries(page.groups.map((g) => [g.code, g]));

  // Everything the page knows, rebuilt from the events.
  const state = {
    lastSeq: 0,
    pending: new Map(), // seq -> message that arrived ahead of a missing one
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

  const socket = { ws: null, attempts: 0, timer: null, fresh: false, stableTimer: null, gapTimer: null, closedForGood: false };

  // ---- small helpers ------------------------------------------------------------------------

  function groupLabel(code) {
    const group = groups[code];
    return group ? group.short_label : code;
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

  function append(node) {
    $("#transcript-empty").hidden = true;
    $("#transcript").append(node);
  }

  function setStatus(status) {
    if (!status) return;
    // A finished, failed or stopped run stays so; replayed older events cannot undo it.
    if (TERMINAL.has(state.status) && !TERMINAL.has(status)) return;
    state.status = status;
    const badge = $("#run-status");
    badge.textContent = status;
    badge.className = `status status-${status}`;
    renderBanner();
    renderControls();
  }

  function setPhase(phase, round) {
    state.phase = phase;
    state.round = round == null ? null : round;
    renderPhases();
  }

  // ---- one function per event type ----------------------------------------------------------

  const RENDER = {
    run_started(message) {
      const data = message.data;
      setStatus("running");
      append(eventNode(message, "minor",
        `Run started: ${data.groups.length} groups (${data.groups.map(groupLabel).join(", ")}), goal ${GOAL_LABELS[data.goal] || data.goal}${data.veto_group ? `, veto ${groupLabel(data.veto_group)}` : ""}.`));
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
      const card = eventNode(message, "speech",
        el("header", {}, chipFor(data.group), el("span", { class: "muted small" }, `${group ? group.label : data.group} · ${when}`), usageText(data.usage)),
        el("p", { class: "prose" }, data.text));
      card.dataset.testid = "speech";
      card.dataset.group = data.group;
      if (group) card.style.borderLeftColor = group.colour;
      append(card);
    },

    draft(message) {
      const data = message.data;
      const version = data.version || state.drafts.length + 1;
      state.drafts.push({ version, author: data.author, text: data.text, seq: message.seq });
      if (!state.phase || page.run.strategy !== "parliament") setPhase("drafting");
      const title = version > 1 ? `Draft version ${version}: the amended text` : `Draft version ${version}`;
      append(eventNode(message, "draft",
        el("header", {}, el("span", { class: "what" }, title), el("span", { class: "muted small" }, "by"), chipFor(data.author),
          data.source_group ? el("span", { class: "muted small" }, `(the stance of ${groupLabel(data.source_group)})`) : null,
          usageText(data.usage)),
        el("p", { class: "prose" }, data.text || "(empty)")));
      renderCurrentDraft();
    },

    amendment(message) {
      const data = message.data;
      const declined = !data.text;
      append(eventNode(message, "amendment",
        el("header", {}, chipFor(data.group), el("span", { class: "what" }, declined ? "declines to amend the draft" : "tables an amendment"), usageText(data.usage)),
        declined ? null : el("p", { class: "prose" }, data.text)));
    },

    amendment_decision(message) {
      const data = message.data;
      const changed = data.draft_after !== data.draft_before;
      const node = eventNode(message, `decision ${data.accepted ? "accepted" : "rejected"}`,
        el("header", {},
          el("span", { class: "what" }, data.accepted ? "Accepted:" : "Rejected:"),
          el("span", {}, "the amendment of"), chipFor(data.group), usageText(data.usage)),
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
      scheduleCharts();
      finish();
    },

    error(message) {
      const data = message.data;
      if (data.final) {
        state.finalError = data.message;
        setStatus("failed");
      }
      append(eventNode(message, "error-event",
        el("header", {}, el("span", { class: "what error-text" }, data.final ? "The run failed" : `Attempt ${data.attempt} failed; it will be retried`)),
        el("p", { class: "prose small" }, data.message)));
      renderBanner();
      if (data.final) finish();
    },

    control(message) {
      const { action, by } = message.data;
      const status = { paused: "paused", resumed: "running", stopped: "stopped" }[action];
      setStatus(status);
      append(eventNode(message, "minor", `${action[0].toUpperCase()}${action.slice(1)} by ${by}.`));
      if (action === "stopped") finish();
    },
  };

  // Bookkeeping every event shares: usage totals and the wall clock.
  function account(message) {
    const usage = message.data && message.data.usage;
    if (usage) {
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

  function apply(message) {
    state.lastSeq = message.seq;
    const render = RENDER[message.type];
    if (render) render(message);
    else append(eventNode(message, "minor", `(${message.type})`));
    account(message);
    renderUsage();
  }

  // ---- derived views ------------------------------------------------------------------------

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
    if (!outcome) return;
    $("#outcome-panel").hidden = false;
    const verdict = outcomeVerdict(outcome);
    const headline = $("#outcome-headline");
    headline.textContent = verdict.headline;
    headline.className = `outcome-big ${verdict.className}`;
    $("#outcome-detail").textContent = verdict.detail;
    const table = clear($("#goal-table"));
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
    const notes = [];
    if (outcome.fallbacks && outcome.fallbacks.length) notes.push(`The judge's answer could not be read for ${outcome.fallbacks.map(groupLabel).join(", ")}; fallback scores were used.`);
    if (outcome.veto_group && outcome.goal !== "veto_power") notes.push(`Veto group: ${groupLabel(outcome.veto_group)}.`);
    $("#outcome-notes").textContent = notes.join(" ");
  }

  function renderCurrentDraft() {
    const draft = state.drafts[state.drafts.length - 1];
    if (!draft) return;
    $("#current-draft").textContent = draft.text;
    $("#current-draft-meta").textContent = draft.amended
      ? `Version ${draft.version}, with the amendment of ${groupLabel(draft.author)}.`
      : `Version ${draft.version}, by ${draft.author === "mediator" ? "the mediator" : groupLabel(draft.author)}.`;
  }

  function renderPhases() {
    const list = clear($("#phases"));
    const currentIndex = state.phase ? PHASES.indexOf(state.phase) : -1;
    PHASES.forEach((phase, index) => {
      let label = PHASE_LABELS[phase];
      if (phase === "negotiation") label = state.phase === "negotiation" && state.round ? `Negotiation ${state.round}/${rounds}` : `Negotiation (${rounds})`;
      const className = index < currentIndex || (phase === "done" && currentIndex === index) ? "done" : index === currentIndex ? "current" : "";
      list.append(el("li", { class: className, dataset: { phase, testid: `phase-${phase}` }, "aria-current": index === currentIndex ? "step" : null }, label));
    });
    list.dataset.current = state.phase || "";
  }

  function renderBanner() {
    const failure = $("#failure");
    failure.hidden = !state.finalError;
    if (state.finalError) $("#failure-reason").textContent = state.finalError;
    const banner = $("#state-banner");
    banner.hidden = !(state.status === "paused" || state.status === "stopped");
    banner.className = `banner ${state.status}`;
    banner.textContent = state.status === "paused"
      ? "Paused: the run waits after its current step until it is resumed."
      : state.status === "stopped" ? "Stopped: this run was ended before its outcome." : "";
  }

  function renderControls() {
    const allowed = {
      pause: state.status === "queued" || state.status === "running",
      resume: state.status === "paused",
      stop: !TERMINAL.has(state.status),
    };
    document.querySelectorAll("[data-action]").forEach((button) => { button.disabled = !allowed[button.dataset.action]; });
  }

  function renderUsage() {
    const u = state.usage;
    $("#usage-prompt").textContent = formatNumber(u.prompt);
    $("#usage-completion").textContent = formatNumber(u.completion);
    $("#usage-calls").textContent = u.cached ? `${formatNumber(u.calls)} (${formatNumber(u.cached)} cached)` : formatNumber(u.calls);
    $("#usage-seconds").textContent = `${formatNumber(u.seconds, 1)} s`;
    $("#usage-wall").textContent = state.firstAt != null && state.lastAt != null ? `${formatNumber((state.lastAt - state.firstAt) / 1000, 1)} s` : "–";
  }

  // ---- charts (coalesced: a replay of many events draws once per frame) ---------------------

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
    if (!window.Hemicycle || typeof Plotly === "undefined") return;
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
    $("#vote-legend").hidden = !voted;
    $("#not-voted-key").hidden = page.groups.every((g) => state.votes[g.code]);
    const centre = state.tally ? `u = ${formatNumber(state.tally.weighted_total, 2)}` : null;
    const div = $("#hemicycle");
    Hemicycle.draw(div, { groups: chartGroups, colourBy, names, seats: 100, centre });
    div.dataset.coloured = voted ? "votes" : "groups";
  }

  function drawTally() {
    if (typeof Plotly === "undefined") return;
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
    const trace = {
      type: "bar",
      orientation: "h",
      x: all.map((row) => row.value),
      y: labels,
      marker: { color: all.map((row) => row.colour) },
      text: all.map((row) => formatNumber(row.value, Number.isInteger(row.value) ? 0 : 2)),
      textposition: "outside",
      cliponaxis: false,
      textfont: { size: 12 },
      hovertemplate: "%{y}: %{x:.2f}<extra></extra>",
    };
    const div = $("#tally-chart");
    Plotly.react(div, [trace], {
      margin: { l: 10, r: 34, t: 8, b: 30 },
      height: 60 + all.length * 30,
      xaxis: { range: [0, 9.6], dtick: 1, fixedrange: true, gridcolor: "#eef1f6" },
      yaxis: { fixedrange: true, automargin: true, type: "category" },
      shapes,
      showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
    }, { displayModeBar: false, responsive: true });
    div.dataset.drawn = state.tally ? "tally" : "votes";
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

  // ---- the socket ---------------------------------------------------------------------------

  function setConnection(kind, text) {
    const node = $("#connection");
    node.className = `connection ${kind}`;
    node.dataset.state = kind;
    node.textContent = text;
  }

  function receive(message) {
    if (!message || typeof message.seq !== "number") return; // e.g. {"type": "pong"}
    if (socket.fresh) {
      // The first frame of a connection comes from the log: nothing below it exists there.
      socket.fresh = false;
      if (message.seq > state.lastSeq + 1 && !state.pending.size) state.lastSeq = message.seq - 1;
    }
    if (message.seq <= state.lastSeq || state.pending.has(message.seq)) return; // shown already
    state.pending.set(message.seq, message);
    while (state.pending.has(state.lastSeq + 1)) {
      const next = state.pending.get(state.lastSeq + 1);
      state.pending.delete(next.seq);
      apply(next);
    }
    if (state.pending.size && !socket.gapTimer) {
      // A frame skipped ahead: wait briefly, then ask the log again from what we have.
      socket.gapTimer = setTimeout(() => {
        socket.gapTimer = null;
        if (state.pending.size) reconnectNow();
      }, 2000);
    }
  }

  function socketUrl() {
    const params = new URLSearchParams({ after: String(state.lastSeq) });
    if (page.token) params.set("token", page.token);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/ws/runs/${page.run.id}/?${params}`;
  }

  function connect() {
    clearTimeout(socket.timer);
    if (socket.closedForGood) return;
    setConnection("connecting", socket.attempts ? "reconnecting…" : "connecting…");
    const ws = new WebSocket(socketUrl());
    socket.ws = ws;
    socket.fresh = true;
    state.pending.clear();
    ws.addEventListener("open", () => {
      setConnection("open", TERMINAL.has(state.status) ? "replayed" : "live");
      socket.stableTimer = setTimeout(() => { socket.attempts = 0; }, 5000);
    });
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      receive(message);
    });
    ws.addEventListener("close", (event) => {
      clearTimeout(socket.stableTimer);
      if (socket.ws !== ws) return;
      socket.ws = null;
      if (socket.closedForGood) return;
      if (event.code === 4403) {
        setConnection("closed", "not allowed to watch this run");
        return;
      }
      const delay = Math.min(15000, 500 * 2 ** socket.attempts) * (0.8 + Math.random() * 0.4);
      socket.attempts += 1;
      setConnection("closed", `offline, retrying in ${Math.max(1, Math.round(delay / 1000))} s`);
      socket.timer = setTimeout(connect, delay);
    });
  }

  function reconnectNow() {
    const ws = socket.ws;
    socket.ws = null;
    if (ws) ws.close();
    connect();
  }

  // The run reached its end: nothing more will come.
  function finish() {
    socket.closedForGood = true;
    clearTimeout(socket.timer);
    clearTimeout(socket.gapTimer);
    const ws = socket.ws;
    socket.ws = null;
    if (ws) setTimeout(() => ws.close(1000), 0);
    setConnection("open", "transcript complete");
  }

  // ---- owner controls and sharing -----------------------------------------------------------

  async function postForm(form, body) {
    const response = await fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "XMLHttpRequest", Accept: "application/json" },
      body,
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (error) {
      answer = {};
    }
    return { ok: response.ok, answer };
  }

  function wireControls() {
    document.querySelectorAll("form.js-control").forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const message = $("#control-message");
        message.textContent = "";
        try {
          const { ok, answer } = await postForm(form);
          if (!ok) message.textContent = answer.error || "That did not work.";
          if (answer.status) setStatus(answer.status);
          if (answer.status && !TERMINAL.has(answer.status) && !socket.ws && !socket.closedForGood) connect();
        } catch (error) {
          message.textContent = "The server could not be reached.";
        }
      });
    });

    const visibilityForm = $("#visibility-form");
    if (!visibilityForm) return;
    const select = $("#visibility");
    const showShare = () => {
      $("#share-link").hidden = select.value !== "link";
      $("#share-note").textContent = {
        private: "Only you can open this run.",
        signed_in: "Anyone signed in to this lab can open this page.",
        link: "Anyone with the link below can watch, signed in or not.",
      }[select.value] || "";
    };
    $("#visibility-save").hidden = true;
    select.addEventListener("change", async () => {
      const body = new FormData(visibilityForm);
      const note = $("#share-note");
      try {
        const { ok } = await postForm(visibilityForm, body);
        showShare();
        if (!ok) note.textContent = "The visibility could not be saved.";
      } catch (error) {
        note.textContent = "The server could not be reached.";
      }
    });
    const copy = $("#copy-share");
    copy.addEventListener("click", async () => {
      const input = $("#share-url");
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        copy.textContent = "Copied";
      } catch (error) {
        document.execCommand("copy");
        copy.textContent = "Copied";
      }
      setTimeout(() => { copy.textContent = "Copy"; }, 1500);
    });
    showShare();
  }

  // ---- start --------------------------------------------------------------------------------

  renderPhases();
  renderBanner();
  renderControls();
  renderUsage();
  wireControls();
  scheduleCharts();
  connect();
  window.HemicycleRun = { state }; // for debugging and tests
})();
