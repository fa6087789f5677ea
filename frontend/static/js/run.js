/* The live run page. Events come over a websocket in sequence order, each exactly once; a page
 * (re)load asks for everything after 0 and rebuilds the whole page from the replay.
 *
 * transcript.js renders the events (createTranscript, through the renderer registry in
 * events/index.js) and live.js keeps the socket (openLive: it reconnects by itself with
 * exponential backoff, asking for ?after=<last seq>). This file adds the run's status, banner,
 * usage totals, the owner's controls and sharing. */
import { $, el, formatNumber, csrfToken, readJson, socketUrl } from "./dom.js";
import { createTranscript, showConnection, TERMINAL } from "./transcript.js";
import { openLive } from "./live.js";
import { startCounterfactual } from "./counterfactual.js";
import { showRewards } from "./rewards.js";

const page = readJson("run-page");
if (page) runPage(page);

function runPage(page) {
  const view = createTranscript(page, {
    onStatus() {
      renderStatus();
      renderBanner();
      renderControls();
    },
    onFinish: finish,
    afterEvent(message) {
      renderUsage();
      renderCacheNote();
      noteStep(message);
    },
  });
  const state = view.state;
  let live = null;

  function renderStatus() {
    const badge = $("#run-status");
    badge.textContent = state.status;
    badge.className = `status status-${state.status}`;
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
    // Once the run has ended there is nothing left to pause, resume or stop.
    if ($("#owner-controls")) $("#owner-controls").hidden = TERMINAL.has(state.status);
    renderStep();
  }

  // A finished run whose every model call the completion cache answered: say so, offer a new seed.
  function renderCacheNote() {
    const note = $("#cache-note");
    const u = state.usage;
    const replayed = state.status === "finished" && u.calls > 0 && u.cached === u.calls;
    note.hidden = !replayed;
    if (replayed) {
      const wall = state.firstAt != null && state.lastAt != null ? (state.lastAt - state.firstAt) / 1000 : null;
      $("#cache-note-text").textContent = `All ${formatNumber(u.calls)} model answers came from the completion cache: `
        + `this scenario was played before with the same models and seed${wall == null ? "" : `, so it took ${formatNumber(wall, 2)} s`}. `
        + "A new seed asks the models again.";
    }
  }

  // ---- who has the floor now ----------------------------------------------------------------
  //
  // The engine writes an event when a step is done; while a model works on the next one (seconds
  // on a CPU model) the page says whose turn it is, from the last event and the strategy's order:
  // groups speak, amend and are scored from the largest to the smallest (Scenario.by_seats).

  const speakers = page.groups.map((g, index) => ({ ...g, index }))
    .sort((a, b) => b.seats - a.seats || a.index - b.index).map((g) => g.code);
  const rapporteur = page.run.params && page.run.params.rapporteur === "mediator" ? null : speakers[0];
  const amenders = speakers.filter((code) => code !== rapporteur);
  const step = { text: null, group: null, since: 0, timer: null };

  function after(list, code) {
    const index = list.indexOf(code);
    return index >= 0 && index + 1 < list.length ? list[index + 1] : null;
  }

  function name(code) {
    return code === "mediator" || code == null ? "the mediator" : view.groupLabel(code);
  }

  function nextStep(message) {
    const { type, data } = message;
    const debating = page.run.strategy === "parliament";
    const drafter = debating ? (rapporteur ? `${name(rapporteur)} (rapporteur)` : "The mediator") : "The drafting model";
    const speaking = (code) => ({ group: code, text: `${name(code)} is speaking` });
    const amending = (code) => (code ? { group: code, text: `${name(code)} considers an amendment` } : judging(speakers[0]));
    const judging = (code) => (code ? { group: code, text: `The judge is scoring ${name(code)}'s support` } : { text: "Counting the votes" });
    const drafting = { group: rapporteur, text: `${drafter} is writing the draft` };
    if (type === "run_started") return debating ? speaking(speakers[0]) : drafting;
    if (type === "phase") {
      if (data.phase === "opening" || data.phase === "negotiation") return speaking(speakers[0]);
      if (data.phase === "drafting") return drafting;
      if (data.phase === "amendments") return amending(amenders[0]);
      if (data.phase === "vote") return judging(speakers[0]);
    }
    if (type === "speech") {
      const next = after(speakers, data.group);
      if (next) return speaking(next);
      const more = data.phase === "opening" ? view.rounds > 0 : data.round < view.rounds;
      return more ? speaking(speakers[0]) : drafting;
    }
    if (type === "draft") return debating && data.version === 1 ? amending(amenders[0]) : judging(speakers[0]);
    if (type === "amendment") {
      if (data.text) return { group: rapporteur, text: `${drafter} decides on ${name(data.group)}'s amendment` };
      return amending(after(amenders, data.group));
    }
    if (type === "amendment_decision") return amending(after(amenders, data.group));
    if (type === "vote") return judging(after(speakers, data.group));
    return null;
  }

  // mediator, forecast and the advisor arms (engine/strategies/*.py): their groups rank, critique
  // and are forecast in the scenario's order (run_started's groups); the judge goes by seats.
  let scenarioOrder = speakers;
  const params = page.run.params || {};

  function consensusStep(message) {
    const { type, data } = message;
    const judging = (code) => (code ? { group: code, text: `The judge is scoring ${name(code)}'s support` } : { text: "Counting the votes" });
    const turn = (code, what) => (code ? { group: code, text: `${name(code)} ${what}` } : null);
    if (type === "run_started") scenarioOrder = data.groups;
    if (type === "vote") return judging(after(speakers, data.group));
    if (page.run.strategy === "mediator") {
      const k = Number(params.candidates || 4);
      const candidate = (index, revision) => ({ text: `The mediator is ${revision ? "revising the winner:" : "drafting"} candidate #${index + 1} of ${k}` });
      if (type === "run_started") return candidate(0, false);
      if (type === "candidate") return data.index + 1 < k ? candidate(data.index + 1, data.revision) : turn(scenarioOrder[0], "ranks the candidates");
      if (type === "ranking") return turn(after(scenarioOrder, data.group), "ranks the candidates");
      if (type === "schulze") return data.round < Number(params.rounds || 2) ? turn(scenarioOrder[0], "critiques the winner") : null;
      if (type === "critique") return turn(after(scenarioOrder, data.group), "critiques the winner") || candidate(0, true);
      if (type === "draft") return judging(speakers[0]);
    }
    if (page.run.strategy === "forecast") {
      const forecasting = { text: "The drafter forecasts each group's support" };
      if (type === "run_started") return forecasting;
      if (type === "plan") return { text: `The drafter writes for the coalition (round ${data.round})` };
      if (type === "draft") return data.usage ? { group: speakers[0], text: `The judge verifies ${name(speakers[0])}'s support` } : judging(speakers[0]);
      if (type === "verification") {
        const next = after(speakers, data.group);
        return next ? { group: next, text: `The judge verifies ${name(next)}'s support` } : null;
      }
      if (type === "belief_update") return data.stop ? judging(speakers[0]) : forecasting;
    }
    if (page.run.strategy.startsWith("advisor")) {
      const drafting = { text: "The drafting model is writing the draft" };
      if (type === "run_started") return page.run.strategy === "advisor" ? { text: "The advisor writes its brief" } : drafting;
      if (type === "signal") return drafting;
      if (type === "draft") return judging(speakers[0]);
    }
    return null;
  }

  function noteStep(message) {
    const consensus = ["mediator", "forecast"].includes(page.run.strategy) || page.run.strategy.startsWith("advisor");
    if (!consensus && !["parliament", "one-shot"].includes(page.run.strategy)) return;
    const next = consensus ? consensusStep(message) : nextStep(message);
    if (next) Object.assign(step, next, { since: Date.now() });
    else if (message.type !== "control" && message.type !== "error") Object.assign(step, { text: null, group: null });
    renderStep();
  }

  function renderStep() {
    const node = $("#now-step");
    if (!node) return;
    const active = step.text && (state.status === "running" || state.status === "queued") && !state.outcome;
    node.hidden = !active;
    clearInterval(step.timer);
    if (!active) return;
    const draw = () => {
      const seconds = Math.max(0, Math.floor((Date.now() - step.since) / 1000));
      node.replaceChildren(
        el("span", { class: "pulse", "aria-hidden": "true" }),
        step.group && view.groups[step.group] ? view.chipFor(step.group) : null,
        el("span", { class: "now-text" }, `${step.text}…`),
        el("span", { class: "muted small now-elapsed", dataset: { testid: "now-elapsed" } }, `${seconds} s`),
      );
      node.dataset.group = step.group || "";
    };
    draw();
    step.timer = setInterval(draw, 1000);
  }

  function renderUsage() {
    const u = state.usage;
    $("#usage-prompt").textContent = formatNumber(u.prompt);
    $("#usage-completion").textContent = formatNumber(u.completion);
    $("#usage-calls").textContent = u.cached ? `${formatNumber(u.calls)} (${formatNumber(u.cached)} cached)` : formatNumber(u.calls);
    $("#usage-seconds").textContent = `${formatNumber(u.seconds, 1)} s`;
    $("#usage-wall").textContent = state.firstAt != null && state.lastAt != null ? `${formatNumber((state.lastAt - state.firstAt) / 1000, 1)} s` : "–";
  }

  // ---- the socket ---------------------------------------------------------------------------

  function setConnection(kind, text) {
    showConnection(kind, kind === "open" && text === "live" && TERMINAL.has(state.status) ? "replayed" : text);
  }

  function runSocketUrl(after) {
    const params = new URLSearchParams({ after: String(after) });
    if (page.token) params.set("token", page.token);
    return socketUrl(`/ws/runs/${page.run.id}/?${params}`);
  }

  // The run reached its end: nothing more will come.
  function finish() {
    if (live) live.finish();
    if (state.status === "finished") {
      startCounterfactual(page);
      showRewards(page, view.groupLabel);
    }
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
        const button = event.submitter || form.querySelector("button");
        if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
        const message = $("#control-message");
        message.textContent = "";
        try {
          const { ok, answer } = await postForm(form);
          if (!ok) message.textContent = answer.error || "That did not work.";
          if (answer.status && !(TERMINAL.has(state.status) && !TERMINAL.has(answer.status))) {
            state.status = answer.status;
            renderStatus();
            renderBanner();
            renderControls();
          }
          if (answer.status && !TERMINAL.has(answer.status) && live) live.reopen();
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

  renderStatus();
  renderBanner();
  renderControls();
  renderUsage();
  wireControls();
  view.scheduleCharts();
  live = openLive({
    url: runSocketUrl,
    onEvent: view.apply,
    onConnection: setConnection,
    onRefused() {
      setConnection("closed", "not allowed to watch this run");
      return true;
    },
  });
  window.HemicycleRun = { state }; // for debugging and tests
}
