/* Experiment pages.
 *
 * Dashboard: draws the server-built Plotly figures; keeps the progress bar live from the
 * websocket /ws/experiments/<id>/ (a whole progress snapshot per message: done, failed, running,
 * remaining, ETA, status); reconnects with exponential backoff, and polls the progress API only
 * while the socket cannot open (and once after 30 s of silence while running); reloads the
 * results fragment (tables, figures, breakdowns) when the number of settled runs moves, at most
 * every few seconds; and drives the start / resume, pause and cancel buttons in place.
 *
 * New-experiment form: the suggested model strings fill the models field.
 *
 * Data is only ever set as text (textContent). The results fragment is HTML the server rendered
 * (Django-escaped); it is parsed with DOMParser, which runs no script, and moved in as nodes.
 */
(function () {
  "use strict";

  // ---- the new-experiment form -----------------------------------------------------------------

  document.querySelectorAll("[data-model]").forEach(function (button) {
    button.addEventListener("click", function () {
      const input = document.getElementById("id_models");
      if (input) input.value = button.dataset.model;
    });
  });

  // ---- figures ---------------------------------------------------------------------------------

  function drawFigures(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-figure]").forEach(function (node) {
      const script = document.getElementById(node.dataset.figure);
      if (!script) return;
      const figure = JSON.parse(script.textContent);
      window.Plotly.newPlot(node, figure.data, figure.layout, { responsive: true, displaylogo: false });
    });
  }

  function purgeFigures(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-figure]").forEach(function (node) {
      try {
        window.Plotly.purge(node);
      } catch (error) {
        /* never drawn */
      }
    });
  }

  const initialResults = document.getElementById("experiment-results");
  if (initialResults) drawFigures(initialResults);

  const live = document.getElementById("experiment-live");
  if (!live) return;

  // ---- progress --------------------------------------------------------------------------------

  const bar = live.querySelector("[data-role=bar]");
  const eta = live.querySelector("[data-role=eta]");
  const badge = document.getElementById("experiment-status");
  const connection = live.querySelector("[data-testid=experiment-connection]");
  const controlMessage = live.querySelector("[data-testid=control-message]");
  const state = { status: live.dataset.status, settled: null };

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + " s";
    const minutes = Math.round(s / 60);
    if (minutes < 90) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function setButtons(status) {
    live.querySelectorAll("[data-control]").forEach(function (button) {
      const control = button.dataset.control;
      let enabled = false;
      if (control === "start") {
        enabled = status !== "running" && status !== "finished";
        button.textContent = status === "draft" ? "Start" : "Resume";
      } else if (control === "pause") {
        enabled = status === "running";
      } else if (control === "cancel") {
        enabled = status === "running" || status === "paused" || status === "draft";
      }
      button.disabled = !enabled;
    });
  }

  function show(progress) {
    if (!progress || typeof progress.total !== "number") return;
    bar.max = Math.max(1, progress.total);
    bar.value = progress.done + progress.failed;
    ["done", "failed", "running", "remaining", "total"].forEach(function (key) {
      const node = live.querySelector("[data-count=" + key + "]");
      if (node) node.textContent = String(progress[key]);
    });
    eta.textContent = progress.eta_s != null && progress.status === "running"
      ? " · about " + formatDuration(progress.eta_s) + " left" : "";
    live.dataset.status = progress.status;
    live.querySelector("[data-testid=experiment-progress]").dataset.status = progress.status;
    if (badge) {
      badge.textContent = progress.status;
      badge.className = "status status-" + progress.status;
    }
    setButtons(progress.status);
    const settled = progress.done + progress.failed;
    const statusChanged = progress.status !== state.status;
    state.status = progress.status;
    state.settled = settled;
    if (statusChanged || settled !== shownSettled()) scheduleRefresh();
  }

  // ---- results: reloaded as runs settle --------------------------------------------------------

  // At most one reload every 3 s however fast runs finish, and never more than a fifth of the
  // time on reloads when the fragment is slow to build (a large grid); a burst of finishing runs
  // lands first.
  const REFRESH_MIN_INTERVAL_MS = 3000;
  const REFRESH_SETTLE_MS = 600;
  const refresh = { timer: null, busy: false, again: false, last: 0, took: 0 };

  function shownSettled() {
    const results = document.getElementById("experiment-results");
    return results ? Number(results.dataset.settled) : -1;
  }

  function scheduleRefresh() {
    if (refresh.busy) {
      refresh.again = true;
      return;
    }
    if (refresh.timer) return;
    const interval = Math.max(REFRESH_MIN_INTERVAL_MS, 5 * refresh.took);
    const wait = Math.max(REFRESH_SETTLE_MS, interval - (Date.now() - refresh.last));
    refresh.timer = setTimeout(reloadResults, wait);
  }

  async function reloadResults() {
    refresh.timer = null;
    refresh.busy = true;
    refresh.last = Date.now();
    try {
      const response = await fetch(live.dataset.resultsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.ok) {
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = doc.getElementById("experiment-results");
        const current = document.getElementById("experiment-results");
        if (fresh && current) {
          const node = document.adoptNode(fresh);
          purgeFigures(current);
          current.replaceWith(node);
          drawFigures(node);
        }
      }
    } catch (error) {
      /* a dropped request: the next change tries again */
    } finally {
      refresh.busy = false;
      refresh.took = Date.now() - refresh.last;
    }
    // Runs settled while the fragment was being read: read it again.
    if (refresh.again || (state.settled !== null && state.settled !== shownSettled())) {
      refresh.again = false;
      scheduleRefresh();
    }
  }

  // ---- the websocket, and the poll while it cannot open ----------------------------------------

  const socket = { ws: null, attempts: 0, timer: null, stableTimer: null, pollTimer: null, polling: false, heard: Date.now() };
  // An open socket that stays silent this long while the experiment runs gets one poll: a run can
  // take minutes on a small model, and a process without the channel layer (an embedded worker in
  // another process: `manage.py experiment run --wait` beside `make run`) cannot push at all.
  const SILENCE_MS = 30000;

  function setConnection(stateName, text) {
    connection.dataset.state = stateName;
    connection.className = "connection " + stateName;
    connection.textContent = text;
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return scheme + "://" + location.host + live.dataset.socketPath;
  }

  function connect() {
    clearTimeout(socket.timer);
    setConnection("connecting", socket.attempts ? "reconnecting…" : "connecting…");
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (error) {
      startPolling();
      return;
    }
    socket.ws = ws;
    let opened = false;
    ws.addEventListener("open", function () {
      opened = true;
      socket.heard = Date.now();
      stopPolling();
      setConnection("open", "live");
      socket.stableTimer = setTimeout(function () { socket.attempts = 0; }, 5000);
    });
    ws.addEventListener("message", function (event) {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      socket.heard = Date.now();
      show(message);
    });
    ws.addEventListener("close", function (event) {
      clearTimeout(socket.stableTimer);
      if (socket.ws !== ws) return;
      socket.ws = null;
      if (event.code === 4403) {
        setConnection("closed", "not allowed to watch this experiment (signed out?)");
        return;
      }
      // The socket could not open (or dropped): poll meanwhile, and keep trying it.
      if (!opened || socket.attempts > 0) startPolling();
      const delay = Math.min(30000, 1000 * 2 ** socket.attempts) * (0.8 + Math.random() * 0.4);
      socket.attempts += 1;
      setConnection("closed", (socket.polling ? "polling; " : "") + "live updates retry in " + Math.max(1, Math.round(delay / 1000)) + " s");
      socket.timer = setTimeout(connect, delay);
    });
  }

  async function pollOnce() {
    try {
      const response = await fetch(live.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) show(await response.json());
    } catch (error) {
      /* offline: try again at the next tick */
    }
  }

  function pollLoop() {
    if (!socket.polling) return;
    pollOnce().finally(function () {
      if (socket.polling) socket.pollTimer = setTimeout(pollLoop, state.status === "running" ? 2000 : 10000);
    });
  }

  function startPolling() {
    if (socket.polling) return;
    socket.polling = true;
    pollLoop();
  }

  function stopPolling() {
    socket.polling = false;
    clearTimeout(socket.pollTimer);
  }

  // ---- start / resume, pause, cancel -----------------------------------------------------------

  live.querySelectorAll("form.js-control").forEach(function (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      controlMessage.textContent = "";
      try {
        // (form.action would be the input named "action": the form posts to this page.)
        const response = await fetch(form.getAttribute("action") || location.pathname, {
          method: "POST",
          credentials: "same-origin",
          headers: { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" },
          body: new FormData(form),
        });
        let answer = {};
        try {
          answer = await response.json();
        } catch (error) {
          answer = {};
        }
        if (answer.error) controlMessage.textContent = answer.error;
        else if (!response.ok) controlMessage.textContent = "The server refused (" + response.status + ").";
        show(answer);
      } catch (error) {
        controlMessage.textContent = "Could not reach the server; try again.";
      } finally {
        setButtons(state.status);
      }
    });
  });

  setButtons(state.status);
  connect();
  setInterval(function () {
    if (socket.ws && socket.ws.readyState === WebSocket.OPEN && state.status === "running" &&
        Date.now() - socket.heard > SILENCE_MS) {
      socket.heard = Date.now();
      pollOnce();
    }
  }, 5000);
})();
