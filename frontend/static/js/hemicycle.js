/* Hemicycle: a parliament chart drawn with Plotly (vendor/plotly/plotly.min.js, a classic script
 * loaded before the page's modules: window.Plotly).
 *
 *   import { draw, purge } from "./hemicycle.js";
 *   draw(div, {                                  // div gets a Plotly chart and an HTML legend below it
 *     groups: [{code, colour, share, label?}],   // seated left to right by political position
 *                                                // (#seating-order, records.models.SEATING_ORDER)
 *     colourBy: {code: colour} | null,           // fill per group (e.g. by vote); a band outside keeps the group colour
 *     names: {code: legend name} | null,         // legend text per group (default: label and share)
 *     seats: 100,                                // how many dots
 *     centre: "text under the arc" | null,
 *     legend: true,                              // false: no legend under the chart
 *   })
 *   purge(div)
 *
 * Seats are apportioned by largest remainder and seated in concentric semicircle rows, each
 * group taking a wedge. Everything shown comes from data, so text given to Plotly is escaped.
 */
import { clear, el, readJson } from "./dom.js";

const INNER_RADIUS = 0.38;

// Far left to the right and the non-attached, as the Parliament draws its chamber; the page
// carries the order (base.html), unknown codes keep their given order after the known ones.
function seatingOrder() {
  return readJson("seating-order", []);
}

function seated(groups) {
  const order = seatingOrder();
  const rank = (code) => (order.indexOf(code) >= 0 ? order.indexOf(code) : order.length);
  return groups.map((g, index) => ({ g, index }))
    .sort((a, b) => rank(a.g.code) - rank(b.g.code) || a.index - b.index)
    .map(({ g }) => g);
}
const NEUTRAL = "#c9ced6";

// Largest remainder (Hamilton): floor of each quota, then the leftover seats to the biggest remainders.
function apportion(groups, total) {
  const sum = groups.reduce((acc, g) => acc + Math.max(0, Number(g.share) || 0), 0);
  if (sum <= 0) return Object.fromEntries(groups.map((g) => [g.code, 0]));
  const rows = groups.map((g, index) => {
    const quota = (Math.max(0, Number(g.share) || 0) / sum) * total;
    return { code: g.code, index, seats: Math.floor(quota), remainder: quota - Math.floor(quota) };
  });
  let left = total - rows.reduce((acc, r) => acc + r.seats, 0);
  const byRemainder = [...rows].sort((a, b) => b.remainder - a.remainder || a.index - b.index);
  for (let i = 0; left > 0; i = (i + 1) % byRemainder.length, left--) byRemainder[i].seats += 1;
  return Object.fromEntries(rows.map((r) => [r.code, r.seats]));
}

function rowCount(total) {
  return Math.max(2, Math.ceil(Math.sqrt(total) / 2.1));
}

// Seat positions on a unit semicircle, ordered left to right (by angle), inner rows first on ties.
function seatPositions(total) {
  const rows = rowCount(total);
  const radii = Array.from({ length: rows }, (_, i) => INNER_RADIUS + ((1 - INNER_RADIUS) * i) / (rows - 1));
  const radiusSum = radii.reduce((a, b) => a + b, 0);
  const perRow = radii.map((r) => Math.round((total * r) / radiusSum));
  perRow[rows - 1] += total - perRow.reduce((a, b) => a + b, 0);
  const seats = [];
  radii.forEach((radius, row) => {
    const n = perRow[row];
    for (let j = 0; j < n; j++) {
      const angle = n === 1 ? Math.PI / 2 : Math.PI * (1 - j / (n - 1));
      seats.push({ angle, radius, x: radius * Math.cos(angle), y: radius * Math.sin(angle) });
    }
  });
  seats.sort((a, b) => b.angle - a.angle || a.radius - b.radius);
  return { seats, rows };
}

// Plotly renders a small subset of HTML in text; data must never become markup.
function plotlyText(value) {
  return String(value == null ? "" : value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

const X_RANGE = [-1.18, 1.18];
const Y_RANGE = [-0.08, 1.16];

function markerSize(width, total, rows) {
  const unit = width / (X_RANGE[1] - X_RANGE[0]); // pixels per unit radius
  const rowGap = ((1 - INNER_RADIUS) / (rows - 1)) * unit;
  const arcGap = (Math.PI * ((1 + INNER_RADIUS) / 2) * rows * unit) / total;
  return Math.max(3, Math.min(20, 0.78 * Math.min(rowGap, arcGap)));
}

// The container holds the Plotly chart and an HTML legend (text only, from data).
function parts(container) {
  let plot = container.querySelector(":scope > .hemicycle-plot");
  let legend = container.querySelector(":scope > .hemicycle-legend");
  if (!plot) {
    plot = el("div", { class: "hemicycle-plot" });
    legend = el("ul", { class: "hemicycle-legend" });
    container.append(plot, legend);
  }
  return { plot, legend };
}

function draw(container, options) {
  if (!container || !window.Plotly) return;
  const { plot, legend } = parts(container);
  const total = options.seats || 100;
  const groups = seated((options.groups || []).filter((g) => g && g.code));
  const counts = apportion(groups, total);
  const { seats, rows } = seatPositions(total);
  const width = Math.max(200, plot.clientWidth || container.clientWidth || 360);
  const height = Math.round((width * (Y_RANGE[1] - Y_RANGE[0])) / (X_RANGE[1] - X_RANGE[0]));
  const size = markerSize(width, total, rows);
  const byVote = Boolean(options.colourBy);
  const traces = [];
  const bands = [];
  clear(legend);
  let next = 0;
  for (const g of groups) {
    const mine = seats.slice(next, next + counts[g.code]);
    next += counts[g.code];
    const colour = /^#[0-9a-f]{6}$/i.test(g.colour || "") ? g.colour : "#888888";
    const fill = byVote ? options.colourBy[g.code] || NEUTRAL : colour;
    const share = Math.round((Number(g.share) || 0) * 1000) / 10;
    const name = (options.names && options.names[g.code]) || `${g.label || g.code} ${share}%`;
    traces.push({
      type: "scatter",
      mode: "markers",
      x: mine.map((s) => s.x),
      y: mine.map((s) => s.y),
      name: plotlyText(name),
      hovertemplate: `${plotlyText(name)} · ${counts[g.code]} of ${total} seats<extra></extra>`,
      marker: { size, color: fill, line: { color: "rgba(255,255,255,0.95)", width: 0.6 } },
      showlegend: false,
    });
    if (byVote && mine.length) {
      // Coloured by vote, the groups stay recognisable by a band in their own colour outside the arc.
      const from = Math.max(...mine.map((s) => s.angle));
      const to = Math.min(...mine.map((s) => s.angle));
      const steps = 24;
      const arc = Array.from({ length: steps + 1 }, (_, i) => from + ((to - from) * i) / steps);
      bands.push({
        type: "scatter", mode: "lines", hoverinfo: "skip", showlegend: false,
        x: arc.map((a) => 1.1 * Math.cos(a)), y: arc.map((a) => 1.1 * Math.sin(a)),
        line: { color: colour, width: Math.max(4, size * 0.6) },
      });
    }
    const swatch = el("span", {
      class: "swatch",
      style: { background: fill, boxShadow: byVote ? `0 0 0 2px #fff, 0 0 0 4px ${colour}` : "" },
    });
    legend.append(el("li", {}, swatch, name));
  }
  legend.hidden = options.legend === false;
  const layout = {
    margin: { l: 0, r: 0, t: 0, b: 0 },
    height,
    xaxis: { range: X_RANGE, visible: false, fixedrange: true },
    yaxis: { range: Y_RANGE, visible: false, fixedrange: true },
    showlegend: false,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    annotations: options.centre
      ? [{ x: 0, y: 0.02, yanchor: "bottom", text: plotlyText(options.centre), showarrow: false, font: { size: 15, color: "#1d2330" } }]
      : [],
  };
  container.dataset.seats = String(total);
  container.dataset.groups = groups.map((g) => `${g.code}:${counts[g.code]}`).join(",");
  window.Plotly.react(plot, [...bands, ...traces], layout, { displayModeBar: false, responsive: true });
  container._hemicycleOptions = options;
}

function purge(container) {
  const plot = container && container.querySelector(":scope > .hemicycle-plot");
  if (plot && window.Plotly) window.Plotly.purge(plot);
  if (container) {
    container.replaceChildren();
    container.dataset.groups = "";
    delete container._hemicycleOptions;
  }
}

// Redraw on resize so the dots keep their size relative to the chart.
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    document.querySelectorAll(".hemicycle").forEach((container) => {
      if (container._hemicycleOptions) draw(container, container._hemicycleOptions);
    });
  }, 150);
});

export { draw, purge, apportion, seatPositions, plotlyText, seated, NEUTRAL };
