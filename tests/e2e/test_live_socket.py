"""live.js, the one websocket helper of the run page, the classroom and the experiment pages, in
Chromium against a scripted socket: each event shown once and in sequence order, whatever order
or repeats the frames come in; a reconnection asks for the events after the last one shown; a
refusal stops it; a feed without events hands every frame on."""

from playwright.sync_api import Page

# A WebSocket stand-in the test drives: it opens, sends frames and closes when told.
FAKE_SOCKET_JS = """
window.sockets = [];
class FakeSocket extends EventTarget {
  constructor(url) { super(); this.url = url; this.readyState = 0; this.sent = []; window.sockets.push(this); }
  open() { this.readyState = 1; this.dispatchEvent(new Event("open")); }
  frame(data) { this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(data) })); }
  close(code = 1006) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.dispatchEvent(new CloseEvent("close", { code }));
  }
  send(text) { this.sent.push(text); }
}
FakeSocket.OPEN = 1;
window.WebSocket = FakeSocket;
window.socketNumber = async (n) => {
  const deadline = Date.now() + 5000;
  while (window.sockets.length < n) {
    if (Date.now() > deadline) throw new Error(`no socket number ${n}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return window.sockets[n - 1];
};
"""

RESUME_JS = """async () => {
  const { openLive } = await import("/static/js/live.js");
  const shown = [];
  const others = [];
  const live = openLive({
    url: (after) => `ws://test/?after=${after}`,
    onEvent: (message) => shown.push(message.seq),
    onOther: (message) => others.push(message.type),
    backoff: { firstMs: 1, maxMs: 1 },
  });
  const first = await socketNumber(1);
  first.open();
  first.frame({ seq: 1, type: "speech" });
  first.frame([{ seq: 2, type: "speech" }, { seq: 3, type: "speech" }]);  // a batch
  first.frame({ seq: 2, type: "speech" });                                   // a repeat
  first.frame({ seq: 5, type: "vote" });                                     // ahead of 4: held
  first.frame({ seq: 4, type: "state" });                                    // not an event
  const beforeGap = [...shown];
  first.frame({ seq: 4, type: "draft" });                                    // fills the gap
  first.close();
  const second = await socketNumber(2);
  second.open();
  second.frame({ seq: 5, type: "vote" });                                    // already shown
  second.frame({ seq: 6, type: "outcome" });
  const sent = live.send({ action: "ping" });
  return { shown, beforeGap, others, urls: sockets.map((s) => s.url), sent, wire: second.sent };
}"""

REFUSED_JS = """async () => {
  const { openLive } = await import("/static/js/live.js");
  const refused = [];
  const said = [];
  openLive({ url: () => "ws://test/", onEvent() {}, onRefused: (code) => { refused.push(code); return true; },
             onConnection: (kind, text) => said.push(text), backoff: { firstMs: 1, maxMs: 1 } });
  const first = await socketNumber(1);
  first.open();
  first.close(4403);  // a retry would be announced here, synchronously, before its timer
  return { refused, said };
}"""

SNAPSHOTS_JS = """async () => {
  const { openLive } = await import("/static/js/live.js");
  const snapshots = [];
  openLive({ url: () => "ws://test/", onOther: (message) => snapshots.push(message.done) });
  const first = await socketNumber(1);
  first.open();
  first.frame({ total: 4, done: 1 });
  first.frame({ total: 4, done: 1 });
  first.frame({ total: 4, done: 3 });
  return snapshots;
}"""


def open_blank(page: Page) -> None:
    page.add_init_script(FAKE_SOCKET_JS)
    page.goto("/healthz")  # any page of the server: the module is imported from its origin


def test_events_show_once_in_order_and_a_reconnection_resumes_after_the_last(page: Page) -> None:
    open_blank(page)
    result = page.evaluate(RESUME_JS)
    assert result["beforeGap"] == [1, 2, 3]
    assert result["shown"] == [1, 2, 3, 4, 5, 6]
    assert result["others"] == ["state"]
    assert result["urls"] == ["ws://test/?after=0", "ws://test/?after=5"]
    assert result["sent"] is True and result["wire"] == ['{"action":"ping"}']


def test_a_refusal_stops_reconnecting(page: Page) -> None:
    open_blank(page)
    assert page.evaluate(REFUSED_JS) == {"refused": [4403], "said": ["connecting…", "live"]}


def test_a_feed_without_events_hands_on_every_frame(page: Page) -> None:
    open_blank(page)
    assert page.evaluate(SNAPSHOTS_JS) == [1, 1, 3]
