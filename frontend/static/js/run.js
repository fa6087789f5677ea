/* The live run page. Events come over a websocket in sequence order, each exactly once; a page
 * (re)load asks for everything after 0 and rebuilds the whole page from the replay.
 *
 * transcript.js renders the events (Transcript.create) and keeps the socket (Transcript.connect:
 * it reconnects by itself with exponential backoff, asking for ?after=<last seq>). This file adds
 * the run's status, banner, usage totals, the owner's controls and sharing. */
(function () {
  "use strict";

  const { formatNumber, csrfToken } = window.Dom;
  const $ = (selector) => document.querySelector(selector);
  const pageNode = $("#run-page");
  if (!pageNode) return;
  const page = JSON.parse(pageNode.textContent);
  const { TERMINAL } = window.Transcript;

  const view = window.Transcript.create(page, {
    onStatus() {
      renderStatus();
      renderBanner();
      renderControls();
    },
    onFinish: finish,
    afterEvent: renderUsage,
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
    window.Transcript.showConnection(kind, kind === "open" && text === "live" && TERMINAL.has(state.status) ? "replayed" : text);
  }

  function socketUrl(after) {
    const params = new URLSearchParams({ after: String(after) });
    if (page.token) params.set("token", page.token);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/ws/runs/${page.run.id}/?${params}`;
  }

  // The run reached its end: nothing more will come.
  function finish() {
    if (live) live.finish();
    if (state.status === "finished" && window.Counterfactual) window.Counterfactual.start(page);
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
  live = window.Transcript.connect({
    url: socketUrl,
    onEvent: view.apply,
    onConnection: setConnection,
    onRefused() {
      setConnection("closed", "not allowed to watch this run");
      return true;
    },
  });
  window.HemicycleRun = { state }; // for debugging and tests
})();
