/* The calibration page: draws the server-built Plotly figures (data read from json_script only). */
(function () {
  "use strict";
  if (!window.Plotly) return;
  document.querySelectorAll("#calibration-figures [data-figure]").forEach(function (node) {
    const script = document.getElementById(node.dataset.figure);
    if (!script) return;
    const figure = JSON.parse(script.textContent);
    window.Plotly.newPlot(node, figure.data, figure.layout, { responsive: true, displaylogo: false });
  });
})();
