/* Experiment dashboard: draws the server-built Plotly figures and keeps the progress bar live. */
(function () {
  "use strict";

  document.querySelectorAll("[data-figure]").forEach(function (node) {
    const script = document.getElementById(node.dataset.figure);
    if (!script || !window.Plotly) return;
    const figure = JSON.parse(script.textContent);
    window.Plotly.newPlot(node, figure.data, figure.layout, { responsive: true, displaylogo: false });
  });

  const live = document.getElementById("experiment-live");
  if (!live) return;
  const bar = live.querySelector("[data-role=bar]");
  const text = live.querySelector("[data-role=text]");
  const badge = document.getElementById("experiment-status");
  let status = live.dataset.status;

  function show(progress) {
    bar.max = Math.max(1, progress.total);
    bar.value = progress.done + progress.failed;
    let line = progress.done + " finished, " + progress.failed + " failed, " + progress.running +
      " in flight, " + progress.remaining + " to play of " + progress.total;
    if (progress.eta_s != null) line += " · about " + Math.round(progress.eta_s) + " s left";
    text.textContent = line;
    if (badge) {
      badge.textContent = progress.status;
      badge.className = "status status-" + progress.status;
    }
  }

  async function poll() {
    try {
      const response = await fetch(live.dataset.progressUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const progress = await response.json();
        show(progress);
        // The tables are rendered by the server: reload once the experiment stops running.
        if (status === "running" && progress.status !== "running") {
          window.location.reload();
          return;
        }
        status = progress.status;
      }
    } catch (error) {
      /* a dropped request: try again at the next tick */
    }
    if (status === "running") window.setTimeout(poll, 2000);
  }

  if (status === "running") window.setTimeout(poll, 2000);
})();
