/* Small DOM helpers shared by our pages (the only ones: a page imports what it needs from here).
 * Data is only ever set as text (textContent), never as HTML. */

export const $ = (selector, root = document) => root.querySelector(selector);

// el("span", {class: "badge", dataset: {seq: 3}}, "text or", childNode, ...)
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// The data of a json_script block (Django's json_script: escaped, never executed); `fallback` when absent.
export function readJson(id, fallback = null) {
  const node = document.getElementById(id);
  if (!node) return fallback;
  try {
    return JSON.parse(node.textContent);
  } catch (error) {
    return fallback;
  }
}

// Black or white text, whichever reads better on `hex` (WCAG relative luminance).
export function textColourOn(hex) {
  const match = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  if (!match) return "#fff";
  const n = parseInt(match[1], 16);
  const channel = (c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  const lum = 0.2126 * channel((n >> 16) & 255) + 0.7152 * channel((n >> 8) & 255) + 0.0722 * channel(n & 255);
  return lum > 0.4 ? "#111" : "#fff";
}

// A group's short label as a coloured chip.
export function groupChip(label, colour, extraClass) {
  const safe = /^#[0-9a-f]{6}$/i.test(colour || "") ? colour : "#888888";
  return el("span", {
    class: "chip" + (extraClass ? " " + extraClass : ""),
    style: { background: safe, color: textColourOn(safe) },
  }, label);
}

export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
}

export function formatNumber(value, digits) {
  if (value == null || Number.isNaN(Number(value))) return "–";
  const d = digits || 0;
  return Number(value).toLocaleString("en-GB", { maximumFractionDigits: d, minimumFractionDigits: d });
}

// `value` with `digits` decimals as Django's floatformat writes it (so a live table reads as the
// server's): rounded half away from zero from its shortest decimal form, no "-0.00"; "n/a" for none.
export function floatFormat(value, digits) {
  if (value == null || !Number.isFinite(Number(value))) return "n/a";
  const x = Number(value);
  const magnitude = String(Math.abs(x));
  const scaled = magnitude.includes("e") ? Math.abs(x) * 10 ** digits : Number(magnitude + "e" + digits);
  const units = Math.round(scaled);
  return (x < 0 && units !== 0 ? "-" : "") + (units / 10 ** digits).toFixed(digits);
}

// GET `url` about a run whose outcome event has just arrived: the run's finish is stored right
// after that event (runs.services.run_finish), so the server may answer 409 for a moment; ask
// again with backoff (about 16 s in all). The last response, whatever its status.
export async function fetchWhenFinished(url, { signal, tries = 7, firstMs = 250 } = {}) {
  let response;
  for (let attempt = 0; attempt < tries; attempt += 1) {
    if (attempt) await new Promise((resolve) => setTimeout(resolve, firstMs * 2 ** (attempt - 1)));
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, signal });
    if (response.status !== 409) break;
  }
  return response;
}

// A websocket URL on this host for `path` (wss on an https page).
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}
