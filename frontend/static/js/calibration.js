/* The calibration page: draws the server-built Plotly figures (data read from json_script only). */
import { readJson } from "./dom.js";

if (window.Plotly) {
  document.querySelectorAll("#calibration-figures [data-figure]").forEach((node) => {
    const figure = readJson(node.dataset.figure);
    if (figure) window.Plotly.newPlot(node, figure.data, figure.layout, { responsive: true, displaylogo: false });
  });
}
