/* Server-built Plotly figures: a node `data-figure="<id>"` is drawn from the json_script block
 * `<id>` (plain JSON built by the figures.py of dashboards and calibration; never executed).
 * Plotly is the classic script loaded before the page's modules (window.Plotly). */
import { readJson } from "./dom.js";

export function drawFigures(root) {
  if (!root || !window.Plotly) return;
  root.querySelectorAll("[data-figure]").forEach((node) => {
    const figure = readJson(node.dataset.figure);
    if (figure) window.Plotly.newPlot(node, figure.data, figure.layout, { responsive: true, displaylogo: false });
  });
}

export function purgeFigures(root) {
  if (!root || !window.Plotly) return;
  root.querySelectorAll("[data-figure]").forEach((node) => {
    try {
      window.Plotly.purge(node);
    } catch (error) {
      /* never drawn */
    }
  });
}
