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
 * (bar, counts, ETA), as text. The bar is the server's (progress.bar): runs and calibration cells,
 * a cell weighing as one run and filling as its scores are stored (runs.selectors.experiment_progress).
 *
 * renderCalibrationCells(panel, calibrations) writes the snapshot's calibration cells into the
 * dashboard's Calibration cells table (status, scores made of total, and Pearson r, MAE and bias
 * once finished, as the server renders them), adding the rows of cells created since the page was
 * drawn; model output never reaches it, and every value is set as text.
 */
import { clear, el, floatFormat, socketUrl } from "./dom.js";
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
    const drawn = progress.bar || { max: progress.total, value: progress.done + progress.failed };
    bar.max = Math.max(1, drawn.max);
    bar.value = drawn.value;
  }
  ["done", "failed", "running", "remaining", "total"].forEach((key) => {
    const node = container.querySelector("[data-count=" + key + "]");
    if (node) node.textContent = String(progress[key]);
  });
  const calibrations = progress.calibrations;
  const calibrationText = container.querySelector("[data-role=calibrations]");
  if (calibrationText && calibrations) {
    calibrationText.hidden = !calibrations.total;
    ["settled", "total", "scored", "scores"].forEach((key) => {
      const node = calibrationText.querySelector("[data-count=calibrations-" + key + "]");
      if (node) node.textContent = String(calibrations[key]);
    });
  }
  const eta = container.querySelector("[data-role=eta]");
  if (eta) {
    eta.textContent = progress.eta_s != null && progress.status === "running"
      ? " · about " + formatDuration(progress.eta_s) + " left" : "";
  }
  container.dataset.status = progress.status;
}

const CELL_METRICS = [["pearson", 3], ["mae", 2], ["bias", 2]];

function cellRow(cell, detailUrl) {
  const num = (col) => el("td", { class: "num", dataset: { col } });
  return el("tr", { dataset: { calibration: cell.id } },
    el("td", { dataset: { col: "judge" } }, el("a", { href: detailUrl.replace(/0\/$/, cell.id + "/") }, el("code", {}, cell.judge))),
    el("td", { dataset: { col: "model" } }, cell.judge_model ? el("code", {}, cell.judge_model) : el("span", { class: "muted" }, "–")),
    el("td", { dataset: { col: "status" } }, el("span", { dataset: { role: "status" } }), " ",
      el("span", { class: "small fail", dataset: { role: "error" } })),
    num("scores"), ...CELL_METRICS.map(([key]) => num(key)));
}

export function renderCalibrationCells(panel, calibrations) {
  if (!panel || !calibrations || !Array.isArray(calibrations.cells)) return;
  const body = panel.querySelector("[data-role=cells]");
  if (!body) return;
  calibrations.cells.forEach((cell) => {
    let row = body.querySelector("tr[data-calibration='" + Number(cell.id) + "']");
    if (!row) {
      const placeholder = body.querySelector("[data-role=no-cells]");
      if (placeholder) placeholder.remove();
      row = body.appendChild(cellRow(cell, panel.dataset.detailUrl || ""));
    }
    row.dataset.status = cell.status;
    const finished = cell.status === "finished";
    const set = (selector, text) => {
      const node = row.querySelector(selector);
      if (node) node.textContent = text;
    };
    set("[data-role=status]", cell.status);
    set("[data-role=error]", cell.error || "");
    set("[data-col=scores]", cell.scored + " / " + cell.total);
    CELL_METRICS.forEach(([key, digits]) => set("[data-col=" + key + "]", finished ? floatFormat(cell[key], digits) : "–"));
  });
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
