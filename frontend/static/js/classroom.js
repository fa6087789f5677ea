/* The classroom pages: the teacher's console, the projector and a student's seat.
 *
 * One websocket, /ws/classroom/<code>/?after=<seq> (docs/classroom.md): the stored events, which
 * transcript.js renders exactly as on the run page, plus `hello` (who I am), `state` (status,
 * phase, the due turn, timer, reveal speed), `presence` (who sits where, connected or not) and
 * `refused` (why my last action was not taken). Actions go back as JSON {"action": ...}; the
 * server decides who may do what, the page only hides what would be refused.
 *
 * Agents' text appears word by word at the session's reveal speed, counted from the time the
 * event was stored (server clock), so a reload shows what the room has already read.
 * Student and model text only ever reaches the DOM as text (el() / textContent). */
import { $, el, clear, readJson, socketUrl } from "./dom.js";
import { createTranscript, showConnection } from "./transcript.js";
import { phaseLabel, votePosition } from "./labels.js";
import { openLive } from "./live.js";

const page = readJson("classroom-page");
if (page) classroomPage(page);

function classroomPage(page) {
  const classroom = page.classroom;
  const role = classroom.role; // teacher | projector | student
  // Server time = Date.now() + offset. server_now was taken as the page was rendered: compare it
  // with when the page's first byte arrived, not with now (scripts run after the page loaded).
  const navigation = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
  const renderedAt = navigation && navigation.responseStart ? performance.timeOrigin + navigation.responseStart : Date.now();
  const clockOffset = Date.parse(classroom.server_now) - renderedAt;
  const serverNow = () => Date.now() + clockOffset;

  const STATUS_TEXT = { lobby: "waiting to start", live: "live", paused: "paused", ended: "ended" };
  const TURN_TEXT = {
    speech: "speaks",
    draft: "drafts the resolution",
    amendment: "may table an amendment",
    decision: "decides on an amendment",
    vote: "votes",
  };

  // What the server said last (state), who is where (presence), and me (hello).
  const server = { status: "lobby", phase: null, round: null, turn: null, deadline: null, can_advance: false, words_per_second: classroom.words_per_second };
  const room = { seats: {}, watchers: [], voteClosed: false, amendments: {} };
  let me = classroom.student || null;
  let revealSpeed = classroom.words_per_second || 0; // the speed in force at the event being applied
  let live = null;

  // ---- word-by-word reveal ------------------------------------------------------------------

  const revealing = new Set();
  let revealTimer = null;

  function revealText(node, message, text) {
    const data = message.data || {};
    const at = Date.parse(message.at);
    if (data.by !== "agent" || !revealSpeed || !text || Number.isNaN(at)) {
      node.textContent = text;
      if (data.by === "agent") node.dataset.revealed = "true";
      return;
    }
    const item = { node, tokens: text.split(/(\s+)/), start: at, speed: revealSpeed, text };
    if (!step(item)) return;
    node.classList.add("revealing");
    node.dataset.revealed = "false";
    revealing.add(item);
    if (!revealTimer) revealTimer = setInterval(tick, 100);
  }

  // Shows the words due by now; false once the whole text shows.
  function step(item) {
    const words = Math.max(1, Math.floor(((serverNow() - item.start) / 1000) * item.speed));
    let shown = 0;
    let cut = item.tokens.length;
    for (let i = 0; i < item.tokens.length; i++) {
      if (item.tokens[i].trim()) {
        shown += 1;
        if (shown > words) { cut = i; break; }
      }
    }
    if (cut >= item.tokens.length) {
      item.node.textContent = item.text;
      item.node.classList.remove("revealing");
      item.node.dataset.revealed = "true";
      return false;
    }
    item.node.textContent = item.tokens.slice(0, cut).join("");
    return true;
  }

  function tick() {
    for (const item of revealing) if (!step(item)) revealing.delete(item);
    if (!revealing.size) {
      clearInterval(revealTimer);
      revealTimer = null;
    }
  }

  // ---- the transcript, with the classroom's own events --------------------------------------

  // The transcript renders every event as on the run page; here, what the room's state takes from them.
  const view = createTranscript(page, {
    text: revealText,
    highlight: () => (server.turn && server.turn.kind !== "vote" ? server.turn.group : null),
    onFinish: finish,
    afterEvent(message) {
      const data = message.data || {};
      if (message.type === "amendment") room.amendments[data.group] = data.text;
      if (message.type === "run_started") revealSpeed = Number(data.words_per_second) || 0;
      if (message.type === "control") {
        // The speed in force for the events that follow; the status until the next state frame.
        if (data.action === "reveal_speed") revealSpeed = Number(data.words_per_second) || 0;
        if (data.action === "vote_closed") room.voteClosed = true;
        server.status = { started: "live", resumed: "live", paused: "paused", ended: "ended" }[data.action] || server.status;
      }
      if (role === "projector") {
        const box = $("#transcript-box");
        box.scrollTop = box.scrollHeight;
      }
      renderAll();
    },
  });
  // ---- rendering the room -------------------------------------------------------------------

  function groupName(code) {
    const group = view.groups[code];
    return group ? group.label : code === "mediator" ? "The mediator" : code;
  }

  function studentsOf(code) {
    return (room.seats[code] || []).filter((s) => s.connected !== false);
  }

  function renderNow() {
    const badge = $("#session-status");
    badge.textContent = STATUS_TEXT[server.status] || server.status;
    badge.className = `status status-${server.status === "live" ? "running" : server.status === "ended" ? "finished" : server.status === "lobby" ? "queued" : server.status}`;
    badge.dataset.status = server.status;
    document.body.dataset.sessionStatus = server.status;
    const phase = view.state.phase && view.state.phase !== "done"
      ? (view.state.phase === "negotiation" && view.state.round ? `Negotiation · round ${view.state.round} of ${view.rounds}` : phaseLabel(view.state.phase))
      : "";
    $("#now-phase").textContent = phase;
    const line = clear($("#now-turn"));
    const turn = server.turn;
    line.dataset.turn = turn ? turn.key : "";
    if (server.status === "lobby") line.append("Waiting for the teacher to start.");
    else if (server.status === "ended" || view.state.outcome) line.append(view.state.outcome ? "The session has ended: the outcome is in." : "The session has ended.");
    else if (view.state.phase === "vote") {
      const pending = page.groups.filter((g) => !view.state.votes[g.code]);
      line.append(pending.length ? "Voting. Still to vote: " : "Counting the votes…", ...pending.map((g) => view.chipFor(g.code)));
    } else if (turn) {
      const mine = me && me.group && turn.group === me.group && turn.by === "students";
      line.append(view.chipFor(turn.group), ` ${TURN_TEXT[turn.kind] || turn.kind}`);
      if (turn.kind === "decision" && turn.about) line.append(" of ", view.chipFor(turn.about));
      const names = studentsOf(turn.group).map((s) => s.name);
      line.append(el("span", { class: "turn-by" }, turn.by === "students"
        ? (mine ? " · your group's turn" : ` · students${names.length ? `: ${names.join(", ")}` : ""}`)
        : turn.group === "mediator" ? " · agent (mediator)" : " · agent"));
    } else if (view.state.phase) line.append("Every turn of this phase is done: the teacher moves on.");
    if (server.status === "paused") line.append(el("strong", { class: "paused-note" }, " (paused)"));
  }

  function renderTimer() {
    const node = $("#timer");
    const paused = server.status === "paused" && server.remaining != null;
    if (!paused && (!server.deadline || server.status !== "live")) {
      node.hidden = true;
      return;
    }
    const left = paused ? Math.round(server.remaining) : Math.max(0, Math.round((Date.parse(server.deadline) - serverNow()) / 1000));
    node.hidden = false;
    node.textContent = `${paused ? "paused · " : ""}${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    node.classList.toggle("low", left <= 10);
  }

  function renderSeats() {
    const box = $("#seats");
    if (!box) return;
    clear(box);
    for (const group of page.groups) {
      const students = room.seats[group.code] || [];
      const row = el("div", { class: "seat-row", dataset: { group: group.code, testid: `seat-${group.code}` } },
        view.chipFor(group.code), el("span", { class: "seat-label" }, group.label));
      const list = el("ul", { class: "seat-students" });
      if (!students.length) list.append(el("li", { class: "muted small", dataset: { testid: "agent-seat" } }, "agent"));
      for (const student of students) {
        const item = el("li", { class: `student ${student.connected ? "connected" : "away"}`, dataset: { student: student.id, testid: "student" } },
          el("span", { class: "presence-dot", title: student.connected ? "connected" : "not connected" }),
          el("span", { class: "student-name" }, student.name),
          student.muted ? el("span", { class: "muted-tag" }, "muted") : null);
        if (role === "teacher") {
          item.append(
            el("button", { type: "button", class: "chip-button", dataset: { studentAction: student.muted ? "unmute" : "mute", testid: student.muted ? "unmute" : "mute" } }, student.muted ? "Unmute" : "Mute"),
            el("button", { type: "button", class: "chip-button danger", dataset: { studentAction: "remove", testid: "remove" } }, "Remove"));
        }
        list.append(item);
      }
      row.append(list);
      box.append(row);
    }
    const watchers = $("#watchers");
    if (watchers) watchers.textContent = room.watchers.length ? `Watching: ${room.watchers.map((w) => w.name).join(", ")}` : "";
  }

  function renderTeacherControls() {
    if (role !== "teacher") return;
    const turn = server.turn;
    const allowed = {
      start: server.status === "lobby",
      pause: server.status === "live",
      resume: server.status === "paused",
      advance: Boolean(server.can_advance),
      skip_turn: (server.status === "live" || server.status === "paused") && Boolean(turn) && !["draft", "vote"].includes(turn.kind),
      end: server.status !== "ended",
    };
    document.querySelectorAll("[data-classroom-action]").forEach((button) => { button.disabled = !allowed[button.dataset.classroomAction]; });
    $("[data-classroom-action=advance]").textContent = view.state.phase === "vote" ? "Close the vote" : "Next phase";
  }

  // ---- a student's turn ---------------------------------------------------------------------

  let actKey = null;

  function actMode() {
    if (!me || !me.group || me.muted || server.status !== "live") return null;
    if (view.state.phase === "vote") return !view.state.votes[me.group] && !room.voteClosed && !server.vote_closed ? "vote" : null;
    const turn = server.turn;
    if (turn && turn.by === "students" && turn.group === me.group && turn.kind !== "vote") return turn.kind;
    return null;
  }

  function renderAct() {
    if (role !== "student") return;
    const banner = $("#seat-banner");
    banner.hidden = !(me && me.muted);
    if (me && me.muted) banner.textContent = "The teacher has muted you: you can follow the sitting, but not speak for now.";
    const mode = actMode();
    const key = mode === "vote" ? "vote" : mode ? `${mode}:${server.turn.key}` : null;
    $("#act").hidden = !mode;
    $("#act").dataset.mode = mode || "";
    if (key === actKey) return;
    actKey = key;
    $("#text-form").hidden = !["speech", "draft", "amendment"].includes(mode);
    $("#decide-form").hidden = mode !== "decision";
    $("#vote-form").hidden = mode !== "vote";
    $("#refused").textContent = "";
    document.querySelectorAll("#act button").forEach((b) => { b.disabled = false; });
    if (!mode) return;
    const help = {
      speech: view.state.phase === "opening" ? "State your group's position: what it wants from this text and why." : "Answer the others: where can your group meet them, and where not?",
      draft: "Write the draft resolution that the chamber will amend and vote on.",
      amendment: "Table an amendment to the draft (the change your group wants), or pass.",
      decision: "As rapporteur, accept the amendment (revise the draft below) or reject it, with a reason.",
      vote: "How much does your group support the final text?",
    }[mode];
    $("#act-help").textContent = help;
    $("#act-label").textContent = { speech: "Your group's speech", draft: "The draft", amendment: "Your amendment" }[mode] || "";
    $("#act-none").hidden = mode !== "amendment";
    $("#act-text").value = typedBefore(); // what this browser typed for this turn, if anything
    if (mode === "decision") {
      const about = server.turn.about;
      clear($("#decide-group")).append(view.chipFor(about));
      $("#decide-amendment").textContent = room.amendments[about] || "";
      const draft = view.state.drafts[view.state.drafts.length - 1];
      // Accepting keeps the amendment: it is written into the draft below, ready to edit.
      const amendment = (room.amendments[about] || "").trim();
      const text = draft ? draft.text : "";
      const holds = amendment && text.split(/\s+/).join(" ").includes(amendment.split(/\s+/).join(" "));
      $("#decide-text").value = amendment && !holds ? `${text.trimEnd()}\n\n${amendment}`.trim() : text;
      $("#decide-reason").value = "";
    }
    if (mode === "vote") {
      // The text under the vote, beside the slider (on a phone the draft panel is far below).
      const draft = view.state.drafts[view.state.drafts.length - 1];
      $("#vote-draft").textContent = draft ? draft.text : "(no draft)";
      showVote();
    }
  }

  function showVote() {
    const score = Number($("#vote-score").value);
    const position = votePosition(score);
    const output = $("#vote-output");
    output.textContent = `${score} · ${position}`;
    output.className = `vote vote-${position}`;
  }

  function act(payload) {
    $("#refused").textContent = "";
    if (!live || !live.send(payload)) {
      $("#refused").textContent = "Not connected: wait a moment and try again.";
      return;
    }
    document.querySelectorAll("#act button").forEach((b) => { b.disabled = true; });
  }

  // Typed text survives a reload of the page during the same turn (storage may be disabled).
  function draftKey() {
    return `classroom.${classroom.code}.${actKey}`;
  }

  function typedBefore() {
    try {
      return sessionStorage.getItem(draftKey()) || "";
    } catch (error) {
      return "";
    }
  }

  function wireStudent() {
    const count = () => { $("#act-count").textContent = `${$("#act-text").value.length} / 2000`; };
    $("#act-text").addEventListener("input", () => {
      count();
      try {
        sessionStorage.setItem(draftKey(), $("#act-text").value);
      } catch (error) {
        // full or disabled: the text just does not survive a reload
      }
    });
    $("#text-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const action = { speech: "speak", draft: "draft", amendment: "amend" }[actMode()];
      const text = $("#act-text").value.trim();
      if (!text) {
        $("#refused").textContent = "Write something first.";
        return;
      }
      act({ action, text });
    });
    $("#act-none").addEventListener("click", () => act({ action: "amend", text: "" }));
    document.querySelectorAll("[data-decide]").forEach((button) => button.addEventListener("click", () => {
      const accept = button.dataset.decide === "accept";
      act({ action: "decide", accept, reason: $("#decide-reason").value.trim(), text: accept ? $("#decide-text").value.trim() : "" });
    }));
    $("#vote-score").addEventListener("input", showVote);
    $("#vote-form").addEventListener("submit", (event) => {
      event.preventDefault();
      act({ action: "vote", score: Number($("#vote-score").value) });
    });
  }

  function renderMe() {
    if (role !== "student" || !me) return;
    const seat = $("#my-seat");
    clear(seat);
    if (me.group) seat.append("· ", view.chipFor(me.group));
    else seat.append("(watching)");
    const box = $("#my-group");
    clear(box);
    if (!me.group) {
      box.append(el("p", { class: "muted small" }, "You are watching: join a seat to take part."));
      return;
    }
    box.append(el("p", {}, view.chipFor(me.group), " ", groupName(me.group)));
    const names = (room.seats[me.group] || []).map((s) => `${s.name}${s.id === me.id ? " (you)" : ""}${s.connected ? "" : " (away)"}`);
    box.append(el("p", { class: "small muted" }, names.length ? `In this seat: ${names.join(", ")}` : ""));
  }

  // ---- teacher's controls -------------------------------------------------------------------

  function teacherSend(payload) {
    $("#refused").textContent = "";
    if (!live || !live.send(payload)) $("#refused").textContent = "Not connected: wait a moment and try again.";
  }

  function wireTeacher() {
    document.querySelectorAll("[data-classroom-action]").forEach((button) => {
      button.addEventListener("click", () => {
        if (button.dataset.classroomAction === "end" && !window.confirm("End the session now? It cannot go on afterwards.")) return;
        teacherSend({ action: button.dataset.classroomAction });
      });
    });
    $("#reveal-form").addEventListener("submit", (event) => {
      event.preventDefault();
      teacherSend({ action: "reveal_speed", words_per_second: Number($("#reveal-speed").value) });
    });
    $("#seats").addEventListener("click", (event) => {
      const button = event.target.closest("[data-student-action]");
      if (!button) return;
      const student = Number(button.closest("[data-student]").dataset.student);
      if (button.dataset.studentAction === "remove" && !window.confirm("Remove this student from the session?")) return;
      teacherSend({ action: button.dataset.studentAction, student });
    });
  }

  // ---- messages that are not events ---------------------------------------------------------

  function onOther(message) {
    if (message.type === "pong") {
      awaitingPong = false;
      return;
    }
    if (message.type === "hello") {
      if (message.student) me = message.student;
      renderRoom();
    } else if (message.type === "state") {
      Object.assign(server, message);
      if ($("#reveal-speed") && document.activeElement !== $("#reveal-speed") && message.words_per_second != null) {
        $("#reveal-speed").value = message.words_per_second;
      }
      if (view) view.scheduleCharts();
    } else if (message.type === "presence") {
      room.seats = message.seats || {};
      room.watchers = message.watchers || [];
      if (me) {
        const mine = Object.values(room.seats).flat().concat(room.watchers).find((s) => s.id === me.id);
        if (mine) me = { ...me, muted: Boolean(mine.muted) };
      }
      renderRoom();
    } else if (message.type === "refused") {
      const node = $("#refused");
      if (node) node.textContent = message.message || "That is not allowed now.";
      document.querySelectorAll("#act button").forEach((b) => { b.disabled = false; });
    }
    renderAll();
  }

  // Seats are redrawn only when presence changes, so that a button the teacher is clicking stays put.
  function renderRoom() {
    renderSeats();
    renderMe();
  }

  function renderAll() {
    renderNow();
    renderTimer();
    renderTeacherControls();
    renderAct();
  }

  // ---- the socket ---------------------------------------------------------------------------


  // The sitting is over; the socket stays open for presence and the teacher's seat controls.
  function finish() {
    server.turn = null;
  }

  if (role === "student") {
    wireStudent();
    // On a phone the brief starts folded: its summaries stay, a tap opens them.
    if (window.matchMedia("(max-width: 640px)").matches) {
      document.querySelectorAll(".brief-part").forEach((part) => { part.open = false; });
    }
  }
  if (role === "teacher") wireTeacher();
  renderRoom();
  renderAll();
  view.scheduleCharts();
  setInterval(renderTimer, 500);
  live = openLive({
    // The session's own status badge already says "live": the socket's badge says "connected".
    onConnection(kind, text) {
      showConnection(kind, kind === "open" && text === "live" ? "connected" : text);
    },
    url: (after) => socketUrl(`/ws/classroom/${encodeURIComponent(classroom.code)}/?after=${after}`),
    onEvent: view.apply,
    onOther,
    onRefused() {
      showConnection("closed", role === "student" ? "you are not in this session" : "not allowed");
      if (role === "student") {
        const banner = $("#seat-banner");
        banner.hidden = false;
        clear(banner).append("You are no longer in this session. Ask your teacher, or ", el("a", { href: `/join/${encodeURIComponent(classroom.code)}/` }, "join again"), ".");
        $("#act").hidden = true;
      }
      return true;
    },
  });
  // A phone that slept or changed network may hold a dead socket: ping every 20 s (it also keeps
  // the student's presence fresh), and reconnect when a ping went unanswered or the page shows again.
  let awaitingPong = false;
  setInterval(() => {
    if (!live.isOpen()) return;
    if (awaitingPong) {
      awaitingPong = false;
      live.reconnectNow();
      return;
    }
    awaitingPong = live.send("ping");
  }, 20000);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) live.reopen();
  });
  window.HemicycleClassroom = { send: (payload) => live.send(payload), state: view.state, server, room }; // for tests
}
