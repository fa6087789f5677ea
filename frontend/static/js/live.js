/* The one websocket helper: resume by sequence, reconnect with backoff, each event once, in order.
 * Used by the run page (run.js), the classroom (classroom.js) and the experiment pages
 * (experiment_live.js).
 *
 *   const live = openLive({
 *     url(after),                  // the socket URL asking for the stored events after `after` (0: all)
 *     onEvent(message),            // a stored event {seq, type, at, data}: in sequence order, exactly once
 *     onOther(message),            // any other frame (no seq, or a NOT_EVENTS type: the classroom's
 *                                  // hello/state/presence); every frame when there is no onEvent
 *                                  // (an experiment's progress snapshots)
 *     onConnection(kind, text),    // kind: connecting | open | closed; text says it in words
 *     onRefused(code) -> bool,     // the server closed with 4403: true stops for good
 *     onOpen(), onDown({opened, attempts}),   // the socket opened; it closed (before a retry)
 *     backoff: {firstMs, maxMs},   // delay before retry n: min(maxMs, firstMs * 2^n), jittered ±20%
 *     retryText(seconds),          // what onConnection says while waiting to retry
 *   })
 *   live.send(object) · live.reconnectNow() · live.reopen() · live.finish(text) · live.lastSeq() · live.isOpen()
 *
 * A (re)connection asks for ?after=<last seq shown>, so nothing is shown twice and nothing is
 * lost across a drop; a frame that skips ahead is held until the missing ones arrive, or the log is
 * asked again after 2 s. Several events may come as one array (the server fell behind:
 * live/fanout.py). */

// Frames that are not stored events (the classroom's; a state frame carries the seq it reflects).
const NOT_EVENTS = new Set(["hello", "state", "presence", "refused", "pong"]);
const STABLE_MS = 5000; // open this long: the next drop starts the backoff again
const GAP_MS = 2000;

export function openLive(options) {
  const { firstMs = 500, maxMs = 15000 } = options.backoff || {};
  const retryText = options.retryText || ((seconds) => `offline, retrying in ${seconds} s`);
  const setConnection = options.onConnection || (() => {});
  const socket = { ws: null, attempts: 0, timer: null, fresh: false, stableTimer: null, gapTimer: null, closedForGood: false };
  const pending = new Map(); // seq -> message that arrived ahead of a missing one
  let lastSeq = 0;

  function receive(message) {
    if (!message) return;
    if (!options.onEvent || typeof message.seq !== "number" || NOT_EVENTS.has(message.type)) {
      if (options.onOther) options.onOther(message);
      return;
    }
    if (socket.fresh) {
      // The first frame of a connection comes from the log: nothing below it exists there.
      socket.fresh = false;
      if (message.seq > lastSeq + 1 && !pending.size) lastSeq = message.seq - 1;
    }
    if (message.seq <= lastSeq || pending.has(message.seq)) return; // shown already
    pending.set(message.seq, message);
    while (pending.has(lastSeq + 1)) {
      const next = pending.get(lastSeq + 1);
      pending.delete(next.seq);
      lastSeq = next.seq;
      options.onEvent(next);
    }
    if (pending.size && !socket.gapTimer) {
      // A frame skipped ahead: wait briefly, then ask the log again from what we have.
      socket.gapTimer = setTimeout(() => {
        socket.gapTimer = null;
        if (pending.size) reconnectNow();
      }, GAP_MS);
    }
  }

  function retryLater(opened) {
    if (options.onDown) options.onDown({ opened, attempts: socket.attempts });
    const delay = Math.min(maxMs, firstMs * 2 ** socket.attempts) * (0.8 + Math.random() * 0.4);
    socket.attempts += 1;
    setConnection("closed", retryText(Math.max(1, Math.round(delay / 1000))));
    socket.timer = setTimeout(open, delay);
  }

  function open() {
    clearTimeout(socket.timer);
    if (socket.closedForGood) return;
    setConnection("connecting", socket.attempts ? "reconnecting…" : "connecting…");
    let ws;
    try {
      ws = new WebSocket(options.url(lastSeq));
    } catch (error) {
      retryLater(false);
      return;
    }
    socket.ws = ws;
    socket.fresh = true;
    pending.clear();
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
      setConnection("open", "live");
      if (options.onOpen) options.onOpen();
      socket.stableTimer = setTimeout(() => { socket.attempts = 0; }, STABLE_MS);
    });
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (Array.isArray(message)) message.forEach(receive);
      else receive(message);
    });
    ws.addEventListener("close", (event) => {
      clearTimeout(socket.stableTimer);
      if (socket.ws !== ws) return;
      socket.ws = null;
      if (socket.closedForGood) return;
      if (event.code === 4403 && (!options.onRefused || options.onRefused(event.code))) return;
      retryLater(opened);
    });
  }

  function reconnectNow() {
    const ws = socket.ws;
    socket.ws = null;
    if (ws) ws.close();
    open();
  }

  // Nothing more will come: close for good.
  function finish(text) {
    socket.closedForGood = true;
    clearTimeout(socket.timer);
    clearTimeout(socket.gapTimer);
    const ws = socket.ws;
    socket.ws = null;
    if (ws) setTimeout(() => ws.close(1000), 0);
    setConnection("open", text || "transcript complete");
  }

  function send(object) {
    if (!socket.ws || socket.ws.readyState !== WebSocket.OPEN) return false;
    socket.ws.send(typeof object === "string" ? object : JSON.stringify(object));
    return true;
  }

  open();
  return {
    send, reconnectNow, finish,
    lastSeq: () => lastSeq,
    isOpen: () => Boolean(socket.ws && socket.ws.readyState === WebSocket.OPEN),
    closedForGood: () => socket.closedForGood,
    reopen: () => { if (!socket.ws && !socket.closedForGood) open(); },
  };
}
