/* One experiment's progress, live: window.ExperimentLive.
 *
 *   ExperimentLive.watch({socketPath, progressUrl, onProgress, onConnection, isRunning})
 *
 * Opens the websocket /ws/experiments/<id>/ (a whole progress snapshot per message: done, failed,
 * running, remaining, eta_s, status) and hands every snapshot to onProgress. The socket
 * reconnects by itself with exponential backoff (1 s doubling to 30 s, jittered). The progress
 * API (progressUrl) is polled only while the socket cannot open, every 2 s while the experiment
 * runs and every 10 s otherwise, and once after 30 s of silence on an open socket while it runs:
 * a run can take minutes on a small model, and a worker in another embedded process
 * (`manage.py experiment run --wait` beside `make run`) cannot push. onConnection(state, text)
 * says how the page is connected: state "connecting", "open" or "closed".
 *
 * ExperimentLive.render(container, progress) writes a snapshot into a dashboards/_progress.html
 * block (bar, counts, ETA), as text.
 */
(function () {
  "use strict";

  const SILENCE_MS = 30000;
  const MAX_BACKOFF_MS = 30000;

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + " s";
    const minutes = Math.round(s / 60);
    if (minutes < 90) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function isProgress(progress) {
    return Boolean(progress) && typeof progress.total === "number";
  }

  function render(container, progress) {
    if (!container || !isProgress(progress)) return;
    const bar = container.querySelector("[data-role=bar]");
    if (bar) {
      bar.max = Math.max(1, progress.total);
      bar.value = progress.done + progress.failed;
    }
    ["done", "failed", "running", "remaining", "total"].forEach(function (key) {
      const node = container.querySelector("[data-count=" + key + "]");
      if (node) node.textContent = String(progress[key]);
    });
    const eta = container.querySelector("[data-role=eta]");
    if (eta) {
      eta.textContent = progress.eta_s != null && progress.status === "running"
        ? " · about " + formatDuration(progress.eta_s) + " left" : "";
    }
    container.dataset.status = progress.status;
  }

  function watch(options) {
    const onConnection = options.onConnection || function () {};
    const isRunning = options.isRunning || function () { return true; };
    const socket = { ws: null, attempts: 0, timer: null, stableTimer: null, pollTimer: null, polling: false, heard: Date.now() };

    function deliver(progress) {
      if (isProgress(progress)) options.onProgress(progress);
    }

    function socketUrl() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      return scheme + "://" + location.host + options.socketPath;
    }

    async function pollOnce() {
      try {
        const response = await fetch(options.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) deliver(await response.json());
      } catch (error) {
        /* offline: try again at the next tick */
      }
    }

    function pollLoop() {
      if (!socket.polling) return;
      pollOnce().finally(function () {
        if (socket.polling) socket.pollTimer = setTimeout(pollLoop, isRunning() ? 2000 : 10000);
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

    function connect() {
      clearTimeout(socket.timer);
      onConnection("connecting", socket.attempts ? "reconnecting…" : "connecting…");
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
        onConnection("open", "live");
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
        deliver(message);
      });
      ws.addEventListener("close", function (event) {
        clearTimeout(socket.stableTimer);
        if (socket.ws !== ws) return;
        socket.ws = null;
        if (event.code === 4403) {
          onConnection("closed", "not allowed to watch this experiment (signed out?)");
          return;
        }
        // It could not open, or it dropped and the reconnect failed: poll meanwhile, keep trying.
        if (!opened || socket.attempts > 0) startPolling();
        const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** socket.attempts) * (0.8 + Math.random() * 0.4);
        socket.attempts += 1;
        onConnection("closed", (socket.polling ? "polling; " : "") + "live updates retry in " + Math.max(1, Math.round(delay / 1000)) + " s");
        socket.timer = setTimeout(connect, delay);
      });
    }

    connect();
    setInterval(function () {
      if (socket.ws && socket.ws.readyState === WebSocket.OPEN && isRunning() && Date.now() - socket.heard > SILENCE_MS) {
        socket.heard = Date.now();
        pollOnce();
      }
    }, 5000);
    return { pollNow: pollOnce };
  }

  window.ExperimentLive = { watch: watch, render: render, formatDuration: formatDuration };
})();
