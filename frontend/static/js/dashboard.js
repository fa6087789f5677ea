/* Experiment pages.
 *
 * Dashboard: draws the server-built Plotly figures; keeps the progress bar live (done, failed,
 * running, remaining, ETA, status) and the calibration cells' table from the experiment's
 * websocket through experiment_live.js (its reconnects and its poll while the socket cannot
 * open); reloads the results fragment (tables, figures, breakdowns) when the number of settled
 * runs moves, at most every few seconds; and drives the start / resume, pause and cancel buttons
 * in place.
 *
 * List: each experiment that is not finished keeps its row's progress bar and status live.
 *
 * New-experiment form: the suggested model strings fill the models field.
 *
 * Data is only ever set as text (textContent). The results fragment is HTML the server rendered
 * (Django-escaped); it is parsed with DOMParser, which runs no script, and moved in as nodes.
 */
import { drawFigures, purgeFigures } from "./figures.js";
import { renderCalibrationCells, renderProgress, watchExperiment } from "./experiment_live.js";
import { makeSortable, sortRestore, sortState } from "./sortable.js";

(function () {

  // ---- the new-experiment form -----------------------------------------------------------------

  document.querySelectorAll("[data-model]").forEach(function (button) {
    button.addEventListener("click", function () {
      const input = document.getElementById("id_models");
      if (input) input.value = button.dataset.model;
    });
  });

  // The source decides which fields matter: a record set's tasks, or the user's saved scenarios.
  const TASK_FIELDS = ["record_set", "topic", "parties", "sample", "sample_seed"];
  const sourceInputs = document.querySelectorAll("input[name=source]");
  function showSource() {
    const checked = document.querySelector("input[name=source]:checked");
    const scenarios = checked && checked.value === "scenarios";
    document.querySelectorAll("[data-field]").forEach(function (field) {
      const name = field.dataset.field;
      if (name === "scenarios") field.hidden = !scenarios;
      else if (TASK_FIELDS.indexOf(name) >= 0) field.hidden = scenarios;
    });
  }
  sourceInputs.forEach(function (input) { input.addEventListener("change", showSource); });
  if (sourceInputs.length) showSource();

  // ---- figures ---------------------------------------------------------------------------------

  function drawResults(root) {
    makeSortable(root);
    drawFigures(root);
  }

  const initialResults = document.getElementById("experiment-results");
  if (initialResults) drawResults(initialResults);

  // ---- the experiment list: running and paused rows stay live -----------------------------------

  const MAX_WATCHED_ROWS = 20;
  Array.from(document.querySelectorAll("tr[data-socket-path]"))
    .filter(function (row) { return row.dataset.status === "running" || row.dataset.status === "paused"; })
    .slice(0, MAX_WATCHED_ROWS)
    .forEach(function (row) {
      const rowBadge = row.querySelector("[data-role=status]");
      const block = row.querySelector("[data-testid=experiment-progress]");
      watchExperiment({
        socketPath: row.dataset.socketPath,
        progressUrl: row.dataset.progressUrl,
        onProgress: function (progress) {
          renderProgress(block, progress);
          row.dataset.status = progress.status;
          rowBadge.textContent = progress.status;
          rowBadge.className = "status status-" + progress.status;
        },
        isRunning: function () { return row.dataset.status === "running"; },
      });
    });

  const live = document.getElementById("experiment-live");
  if (!live) return;

  // ---- progress --------------------------------------------------------------------------------

  const progressBlock = live.querySelector("[data-testid=experiment-progress]");
  const badge = document.getElementById("experiment-status");
  const connection = live.querySelector("[data-testid=experiment-connection]");
  const controlMessage = live.querySelector("[data-testid=control-message]");
  const cellsPanel = document.getElementById("calibration-cells");
  const state = { status: live.dataset.status, settled: null };

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
      // A finished experiment has nothing left to start, resume, pause or cancel.
      button.hidden = status === "finished";
    });
  }

  function show(progress) {
    if (!progress || typeof progress.total !== "number") return;
    renderProgress(progressBlock, progress);
    renderCalibrationCells(cellsPanel, progress.calibrations);
    live.dataset.status = progress.status;
    if (badge) {
      badge.textContent = progress.status;
      badge.className = "status status-" + progress.status;
    }
    setButtons(progress.status);
    const settled = progress.done + progress.failed;
    const statusChanged = progress.status !== state.status;
    state.status = progress.status;
    state.settled = settled;
    // The last runs settled (or the experiment stopped): show the final tables promptly.
    if (statusChanged || settled !== shownSettled()) scheduleRefresh(statusChanged && progress.status !== "running");
  }

  // ---- results: reloaded as runs settle --------------------------------------------------------

  // While runs settle: at most one reload every 3 s however fast they finish, and up to 15 s
  // apart when the server is slow to build the fragment (twice what it took: a large grid); a
  // burst of finishing runs lands first. When the experiment stops, the reload comes at once.
  const REFRESH_MIN_INTERVAL_MS = 3000;
  const REFRESH_MAX_INTERVAL_MS = 15000;
  const REFRESH_SETTLE_MS = 600;
  const refresh = { timer: null, busy: false, again: false, urgent: false, last: 0, took: 0 };

  function shownSettled() {
    const results = document.getElementById("experiment-results");
    return results ? Number(results.dataset.settled) : -1;
  }

  function scheduleRefresh(urgent) {
    if (urgent) refresh.urgent = true;
    if (refresh.busy) {
      refresh.again = true;
      return;
    }
    if (refresh.timer && !urgent) return;
    clearTimeout(refresh.timer);
    const interval = Math.min(REFRESH_MAX_INTERVAL_MS, Math.max(REFRESH_MIN_INTERVAL_MS, 2 * refresh.took));
    const wait = refresh.urgent ? REFRESH_SETTLE_MS : Math.max(REFRESH_SETTLE_MS, interval - (Date.now() - refresh.last));
    refresh.timer = setTimeout(reloadResults, wait);
  }

  async function reloadResults() {
    refresh.timer = null;
    refresh.urgent = false;
    refresh.busy = true;
    refresh.last = Date.now();
    try {
      const response = await fetch(live.dataset.resultsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } });
      const html = await response.text();
      refresh.took = Date.now() - refresh.last;
      if (response.ok) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("experiment-results");
        const current = document.getElementById("experiment-results");
        if (fresh && current) {
          const node = document.adoptNode(fresh);
          const sorted = sortState(current);
          purgeFigures(current);
          current.replaceWith(node);
          drawResults(node);
          sortRestore(node, sorted); // the reader's sort outlives the reload
        }
      }
    } catch (error) {
      /* a dropped request: the next change tries again */
    } finally {
      refresh.busy = false;
    }
    // Runs settled while the fragment was being read: read it again.
    if (refresh.again || (state.settled !== null && state.settled !== shownSettled())) {
      refresh.again = false;
      scheduleRefresh(refresh.urgent);
    }
  }

  // ---- the websocket (and the poll while it cannot open) ---------------------------------------

  function setConnection(stateName, text) {
    connection.dataset.state = stateName;
    connection.className = "connection " + stateName;
    connection.textContent = text;
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
  watchExperiment({
    socketPath: live.dataset.socketPath,
    progressUrl: live.dataset.progressUrl,
    onProgress: show,
    onConnection: setConnection,
    isRunning: function () { return state.status === "running"; },
  });
})();
