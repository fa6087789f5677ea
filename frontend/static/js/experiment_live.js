/* One experiment's progress, live.
 *
 *   import { watchExperiment, renderProgress } from "./experiment_live.js";
 *   watchExperiment({socketPath, progressUrl, onProgress, onConnection, isRunning})
 *
 * Opens the websocket /ws/experiments/<id>/ through live.js (a whole progress snapshot per
 * message: done, failed, running, remaining, eta_s, status) and hands every snapshot to
 * onProgress. The socket reconnects by itself with exponential backoff (1 s doubling to 30 s,
 * jittered). The progress API (progressUrl) is polled only while the socket cannot open, every
 * 2 s while the experiment runs and every 10 s otherwise, and once after 30 s of silence on an
 * open socket while it runs: a run can take minutes on a small model, and a worker in another
 * embedded process (`manage.py experiment run --wait` beside `make run`) cannot push.
 * onConnection(state, text) says how the page is connected: state "connecting", "open" or "closed".
 *
 * renderProgress(container, progress) writes a snapshot into a dashboards/_progress.html block
 * (bar, counts, ETA), as text.
 */
import { socketUrl } from "./dom.js";
import { openLive } from "./live.js";

const SILENCE_MS = 30000;

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return s + " s";
  const minutes = Math.round(s / 60);
  if (minutes < 90) return minutes + " min";
  return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
}

function isProgress(progress) {
  return Boolean(progress) && typeof progress.total === "number";
}

export function renderProgress(container, progress) {
  if (!container || !isProgress(progress)) return;
  const bar = container.querySelector("[data-role=bar]");
  if (bar) {
    bar.max = Math.max(1, progress.total);
    bar.value = progress.done + progress.failed;
  }
  ["done", "failed", "running", "remaining", "total"].forEach((key) => {
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

export function watchExperiment(options) {
  const onConnection = options.onConnection || (() => {});
  const isRunning = options.isRunning || (() => true);
  const poll = { timer: null, on: false };
  let heard = Date.now();

  function deliver(progress) {
    if (isProgress(progress)) options.onProgress(progress);
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
    if (!poll.on) return;
    pollOnce().finally(() => {
      if (poll.on) poll.timer = setTimeout(pollLoop, isRunning() ? 2000 : 10000);
    });
  }

  function startPolling() {
    if (poll.on) return;
    poll.on = true;
    pollLoop();
  }

  function stopPolling() {
    poll.on = false;
    clearTimeout(poll.timer);
  }

  const live = openLive({
    url: () => socketUrl(options.socketPath),
    onOther(message) { // every frame is a whole snapshot: nothing to resume or order
      heard = Date.now();
      deliver(message);
    },
    onOpen() {
      heard = Date.now();
      stopPolling();
    },
    // It could not open, or it dropped and the reconnect failed: poll meanwhile, keep trying.
    onDown({ opened, attempts }) {
      if (!opened || attempts > 0) startPolling();
    },
    onRefused() {
      onConnection("closed", "not allowed to watch this experiment (signed out?)");
      return true;
    },
    onConnection,
    backoff: { firstMs: 1000, maxMs: 30000 },
    retryText: (seconds) => (poll.on ? "polling; " : "") + "live updates retry in " + seconds + " s",
  });

  setInterval(() => {
    if (live.isOpen() && isRunning() && Date.now() - heard > SILENCE_MS) {
      heard = Date.now();
      pollOnce();
    }
  }, 5000);
  return { pollNow: pollOnce };
}
