"""Classroom latency: 60 students and their teacher on one session, over real websockets.

Everything runs on loopback and is stopped on exit (bench_fanout's process helpers):
  * a temp SQLite database, migrated, with a teacher, a six-group record and a saved parliament
    scenario (1 negotiation round by default, the fast "scripted:default" model and the scripted
    judge); a classroom session of it with N students who joined three of the groups (N/3 each),
    each with a request session holding their seat token, as the join page leaves it;
  * uvicorn serving deliberation.asgi (bench_fanout.py --role server): with --layer memory the
    in-memory channel layer and the embedded Celery worker thread; with --layer redis a
    redis-server, REDIS_URL, and a Celery worker process (bench_fanout.py --role worker);
  * N + 1 clients (the `websockets` package, permessage-deflate as browsers offer it) at
    /ws/classroom/<code>/: every student with their session cookie, the teacher signed in over HTTP.

With everyone connected and the transcript replayed, the teacher starts the session and drives it
as a console would: `advance` whenever no turn is due. One student per seated group acts for it
when the state frame says it is that group's turn (after --think seconds), and votes in the vote;
the other three groups are agents, queued by the server with the reveal-speed countdown. The
session runs to its tally and outcome.

Latency of a delivery = arrival wall time at the client - RunEvent.at of the event (the row's
write; same machine, same clock), over every live event and every client; `state` frames are
timed against the event whose seq they carry. Checks: every client got every stored seq exactly
once and in order. Also: action round trip (a student's send -> their own event back).

    .venv/bin/python bench/bench_classroom.py                     # memory and redis layers
    .venv/bin/python bench/bench_classroom.py --layer redis --students 60

Writes bench/results/classroom.json (machine details, one result per layer) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_fanout as fan
from _load_client import Owner, percentile, raise_nofile
from _processes import cpu_seconds, exit_on_signal, kill_children

REPO_ROOT = fan.REPO_ROOT
RESULTS = REPO_ROOT / "bench" / "results" / "classroom.json"
PY = sys.executable
SELF = str(Path(__file__).resolve())
FANOUT = str(Path(fan.__file__).resolve())
STUDENT_GROUPS = ("EPP", "SD", "GREEN_EFA")  # the other three (ALDE, ECR, GUE_NGL) are agents
PASSWORD = "a-long-test-password"


# --- subprocess role: the session and its students -------------------------------------------


def role_setup(args: argparse.Namespace) -> None:
    fan._django()
    from django.contrib.sessions.backends.db import SessionStore

    from deliberation.classroom.services import class_session_open, seat_token, student_join
    from deliberation.scenarios.services import scenario_config_build, scenario_save
    from tests.factories import make_record, make_user

    teacher = make_user("teacher")
    record = make_record(title="Classroom bench issue", groups=fan.GROUPS)
    config = scenario_config_build(
        data={
            "record": record.pk,
            "groups": list(fan.GROUPS),
            "seat_structure": "real",
            "goal": "simple_majority",
            "strategy": "parliament",
            "model": args.model,
            "judge": "scripted",
            "seed": 7,
            "strategy_params": {"rounds": args.rounds},
        },
        user=teacher,
    )  # ScenarioInvalid says what is wrong
    scenario = scenario_save(owner=teacher, name="bench", config=config)
    session = class_session_open(
        teacher=teacher, scenario=scenario, phase_seconds=None, words_per_second=args.words_per_second
    )
    students = []
    for index in range(args.students):
        group = STUDENT_GROUPS[index % len(STUDENT_GROUPS)]
        student = student_join(class_session=session, name=f"Student {index + 1}", group=group)
        store = SessionStore()
        store[f"classroom.{session.code}"] = seat_token(student=student)
        store.save()
        students.append({"id": student.pk, "group": group, "session_key": store.session_key})
    print(
        json.dumps(
            {
                "code": session.code,
                "run_id": session.run_id,
                "username": "teacher",
                "password": PASSWORD,
                "students": students,
            }
        )
    )


# --- the clients ------------------------------------------------------------------------------


def speech_text(group: str, key: str) -> str:
    return (
        f"{group} asks for a fund for the regions hit hardest, a review after two years and "
        f"safeguards for small farms, and offers support on the budget in return ({key})."
    )


class Client:
    """One websocket: the frames it got (event seqs, state seqs, arrival times), and, for the
    teacher and one student per seated group, what it does when the state says it is its turn."""

    def __init__(self, bench: Classroom, name: str, cookie: str, group: str | None, acts: bool) -> None:
        self.bench, self.name, self.cookie, self.group, self.acts = bench, name, cookie, group, acts
        self.events: list[tuple[int, float]] = []
        self.states: list[tuple[int, float]] = []
        self.presence = 0
        self.refused: list[dict] = []
        self.acted: set[str] = set()
        self.sent_at: dict[str, float] = {}
        self.round_trips: list[float] = []
        self.ws = None
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self.hello: dict | None = None

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(
            self.bench.ws_url,
            origin=self.bench.origin,
            compression="deflate",
            additional_headers={"Cookie": self.cookie},
            max_size=None,
            ping_interval=None,
            open_timeout=60,
            close_timeout=2,
        ) as ws:
            self.ws = ws
            async for text in ws:
                arrived = time.time()
                message = json.loads(text)
                kind = message["type"]
                if "data" in message:
                    self.events.append((message["seq"], arrived))
                    if kind == "outcome":
                        self.done.set()
                        return
                    self._round_trip(message, arrived)
                elif kind == "state":
                    self.states.append((message["seq"], arrived))
                    self.ready.set()
                    if self.acts and self.bench.started:
                        self._decide(message)
                elif kind == "presence":
                    self.presence += 1
                elif kind == "hello":
                    self.hello = message
                elif kind == "refused":
                    self.refused.append(message)

    def _round_trip(self, event: dict, arrived: float) -> None:
        key = self.bench.turn_key_of(event)
        if key in self.sent_at and event["data"].get("by") == "students":
            self.round_trips.append((arrived - self.sent_at.pop(key)) * 1000)

    def _decide(self, state: dict) -> None:
        if state["status"] != "live":
            return
        turn = state["turn"]
        if self.group is None:  # the teacher
            if turn is None and state["can_advance"]:
                self._send(f"advance@{state['seq']}", {"action": "advance"}, 0.0)
            return
        if state["phase"] == "vote" and self.group not in state["voted"] and not state["vote_closed"]:
            self._send(f"vote:vote:{self.group}", {"action": "vote", "score": 7}, self.bench.think)
            return
        if turn is None or turn["by"] != "students" or turn["group"] != self.group:
            return
        text = speech_text(self.group, turn["key"])
        action = {
            "speech": {"action": "speak", "text": text},
            "draft": {"action": "draft", "text": "The European Parliament " + text},
            "amendment": {"action": "amend", "text": text},
            "decision": {
                "action": "decide",
                "accept": True,
                "reason": "it widens support",
                "text": "The European Parliament, amended, " + text,
            },
        }.get(turn["kind"])
        if action is not None:
            self._send(turn["key"], action, self.bench.think)

    def _send(self, key: str, action: dict, delay: float) -> None:
        if key in self.acted:
            return
        self.acted.add(key)

        async def later() -> None:
            await asyncio.sleep(delay)
            self.sent_at[key] = time.time()
            await self.ws.send(json.dumps(action))

        self.bench.tasks.append(asyncio.create_task(later()))


class Classroom:
    def __init__(self, base: str, setup: dict, think: float) -> None:
        self.base, self.setup, self.think = base, setup, think
        self.ws_url = base.replace("http://", "ws://") + f"/ws/classroom/{setup['code']}/?after=0"
        self.origin = base
        self.started = False
        self.tasks: list[asyncio.Task] = []

    @staticmethod
    def turn_key_of(event: dict) -> str | None:
        data, kind = event["data"], event["type"]
        if kind == "speech":
            return f"{data['phase']}{data.get('round') or ''}:speech:{data['group']}"
        if kind == "vote":
            return f"vote:vote:{data['group']}"
        if kind == "draft":
            return f"drafting:draft:{data['author']}"
        if kind == "amendment":
            return f"amendments:amendment:{data['group']}"
        if kind == "amendment_decision":
            return f"amendments:decision:{data['group']}"
        return None


def cookie_of(session_key: str) -> str:
    return f"sessionid={session_key}"


async def drive(cfg: argparse.Namespace, base: str, setup: dict, env: dict, server_pids: list[int]) -> dict:
    teacher_http = Owner(base)
    await asyncio.to_thread(teacher_http.sign_in, setup["username"], setup["password"])
    teacher_cookie = "; ".join(f"{c.name}={c.value}" for c in teacher_http.jar)
    room = Classroom(base, setup, cfg.think)
    speakers = {}
    clients = [Client(room, "teacher", teacher_cookie, None, acts=True)]
    for index, student in enumerate(setup["students"]):
        acts = student["group"] not in speakers
        speakers.setdefault(student["group"], index)
        clients.append(Client(room, f"student {index + 1}", cookie_of(student["session_key"]), student["group"], acts))

    t0 = time.monotonic()
    runners = [asyncio.create_task(client.run()) for client in clients]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), cfg.connect_timeout)
    except TimeoutError:
        failed = [r.exception() for r in runners if r.done() and r.exception()]
        raise RuntimeError(
            f"not every client connected: {sum(c.ready.is_set() for c in clients)}/{len(clients)}; {failed[:3]}"
        ) from None
    connect_s = time.monotonic() - t0
    if any(c.hello is None or c.hello["role"] != ("teacher" if c.group is None else "student") for c in clients):
        raise RuntimeError("a client got the wrong role")
    before = await asyncio.to_thread(
        fan.run_json, [PY, FANOUT, "--role", "dump", "--run-id", str(setup["run_id"])], env, 120
    )
    await asyncio.sleep(1.0)  # let the connection storm's presence frames settle

    load_before = round(os.getloadavg()[0], 2)
    cpu0 = {pid: cpu_seconds(pid, children=True) for pid in server_pids}
    started = time.time()
    room.started = True
    await clients[0].ws.send(json.dumps({"action": "start"}))
    try:
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), cfg.run_timeout)
    except TimeoutError:
        pass
    live_s = time.time() - started
    cpu = {pid: round(cpu_seconds(pid, children=True) - cpu0[pid], 2) for pid in server_pids}
    load_after = round(os.getloadavg()[0], 2)
    for task in runners + room.tasks:
        task.cancel()
    await asyncio.gather(*runners, *room.tasks, return_exceptions=True)
    after = await asyncio.to_thread(
        fan.run_json, [PY, FANOUT, "--role", "dump", "--run-id", str(setup["run_id"])], env, 120
    )
    return {
        "clients": clients,
        "before": before,
        "after": after,
        "connect_s": connect_s,
        "live_s": live_s,
        "server_cpu": cpu,
        "load_before": load_before,
        "load_after": load_after,
    }


def summary(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "samples": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(values[-1], 1) if values else None,
    }


def analyse(cfg: argparse.Namespace, raw: dict) -> dict:
    events = raw["after"]["events"]
    expected = [seq for seq, _, _ in events]
    at = {seq: stamp for seq, _, stamp in events}
    replayed = {seq for seq, _, _ in raw["before"]["events"]}
    clients: list[Client] = raw["clients"]
    latencies, state_latencies, round_trips = [], [], []
    lost = duplicated = out_of_order = complete = 0
    for client in clients:
        seqs = [seq for seq, _ in client.events]
        complete += seqs == expected
        lost += len(set(expected) - set(seqs))
        duplicated += len(seqs) - len(set(seqs))
        out_of_order += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
        latencies += [(arrived - at[seq]) * 1000 for seq, arrived in client.events if seq in at and seq not in replayed]
        state_latencies += [
            (arrived - at[seq]) * 1000 for seq, arrived in client.states if seq in at and seq not in replayed
        ]
        round_trips += client.round_trips
    types = {}
    for seq, type_, _ in events:
        if seq not in replayed:
            types[type_] = types.get(type_, 0) + 1
    return {
        "layer": cfg.layer,
        "students": cfg.students,
        "clients": len(clients),
        "agent_groups": [g for g in fan.GROUPS if g not in STUDENT_GROUPS],
        "student_groups": list(STUDENT_GROUPS),
        "rounds": cfg.rounds,
        "words_per_second": cfg.words_per_second,
        "think_s": cfg.think,
        "run_status": raw["after"]["status"],
        "events": len(expected),
        "events_replayed": len(replayed),
        "events_live": len(expected) - len(replayed),
        "live_event_types": types,
        "deliveries_expected": len(expected) * len(clients),
        "deliveries_received": sum(len(c.events) for c in clients),
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "clients_complete": complete,
        "nothing_lost": complete == len(clients),
        "event_latency_ms": summary(latencies),
        "state_latency_ms": summary(state_latencies),
        "action_round_trip_ms": summary(round_trips),
        "presence_frames": sum(c.presence for c in clients),
        "refused": [r for c in clients for r in c.refused][:5],
        "refused_count": sum(len(c.refused) for c in clients),
        "connect_s": round(raw["connect_s"], 2),
        "live_s": round(raw["live_s"], 2),
        "cpu_s_during_live": raw["server_cpu"],
        "loadavg_1min": {"before": raw["load_before"], "after": raw["load_after"]},
    }


def run_config(cfg: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="classroom-bench-"))
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "deliberation.settings",
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "1"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "HEMICYCLE_DEFAULT_MODEL": cfg.model,
        }
    )
    try:
        if cfg.layer == "redis":
            redis_bin = shutil.which("redis-server")
            if not redis_bin:
                raise SystemExit("redis-server not found: apt-get install -y redis-server")
            redis_port = fan.free_port()
            redis = fan.spawn(
                [redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                env,
                tmp / "redis.log",
            )
            fan.wait_until(lambda: fan.port_open(redis_port), 20, "redis-server", redis, tmp / "redis.log")
            env.update({"REDIS_URL": f"redis://127.0.0.1:{redis_port}", "CELERY_EMBEDDED_WORKER": "0"})
        else:
            env["CELERY_EMBEDDED_WORKER"] = "1"
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], env=env, cwd=REPO_ROOT, check=True, timeout=300)
        setup = fan.run_json(
            [
                PY,
                SELF,
                "--role",
                "setup",
                "--model",
                cfg.model,
                "--rounds",
                str(cfg.rounds),
                "--students",
                str(cfg.students),
                "--words-per-second",
                str(cfg.words_per_second),
            ],
            env,
            300,
        )
        port = fan.free_port()
        base = f"http://127.0.0.1:{port}"
        server = fan.spawn(
            [
                PY,
                FANOUT,
                "--role",
                "server",
                "--port",
                str(port),
                "--pace",
                "0",
                "--ws",
                "auto",
                "--ws-per-message-deflate",
                "on",
            ],
            env,
            tmp / "server.log",
        )
        fan.wait_until(lambda: fan.port_open(port), 60, "uvicorn", server, tmp / "server.log")
        pids = [server.pid]
        if cfg.layer == "redis":
            log = tmp / "worker.log"
            worker = fan.spawn([PY, FANOUT, "--role", "worker", "--pace", "0"], env, log)
            fan.wait_until(lambda: " ready." in log.read_text(errors="replace"), 90, "celery worker", worker, log)
            pids.append(worker.pid)
        raw = asyncio.run(drive(cfg, base, setup, env, pids))
        result = analyse(cfg, raw)
        if cfg.keep_logs:
            result["logs"] = str(tmp)
        return result
    finally:
        kill_children()
        if not cfg.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)


def table(results: list[dict]) -> str:
    lines = [
        f"{'layer':<8}{'clients':>8}{'events':>7}{'live':>6}{'received':>10}{'lost':>5}{'dup':>4}"
        f"{'p50':>7}{'p95':>7}{'p99':>7}{'max':>8}{'state p99':>10}{'action p50':>11}  status"
    ]
    for r in results:
        lat = r["event_latency_ms"]
        lines.append(
            f"{r['layer']:<8}{r['clients']:>8}{r['events']:>7}{r['events_live']:>6}"
            f"{r['deliveries_received']:>6}/{r['deliveries_expected']:<5}{r['lost']:>4}{r['duplicated']:>4}"
            f"{lat['p50']:>7}{lat['p95']:>7}{lat['p99']:>7}{lat['max']:>8}{r['state_latency_ms']['p99']:>10}"
            f"{r['action_round_trip_ms']['p50']:>11}  {r['run_status']}"
        )
    lines.append(
        "latency ms = arrival at each client - RunEvent.at (the row's write), live events, every client; "
        "action = a student's send -> their own event back"
    )
    lines.append("caveat: " + fan.CAVEAT.format(n=os.cpu_count()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["main", "setup"], default="main", help=argparse.SUPPRESS)
    parser.add_argument("--layer", nargs="+", choices=["memory", "redis"], default=["memory", "redis"])
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--model", default=fan.FAST_MODEL)
    parser.add_argument("--rounds", type=int, default=1, help="negotiation rounds")
    parser.add_argument(
        "--words-per-second",
        type=float,
        default=20.0,
        help="reveal speed: an agent's turn waits for the room to read the last agent text",
    )
    parser.add_argument("--think", type=float, default=0.5, help="seconds a student takes before acting")
    parser.add_argument("--connect-timeout", type=float, default=120)
    parser.add_argument("--run-timeout", type=float, default=300)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.role == "setup":
        role_setup(args)
        return

    signal.signal(signal.SIGTERM, exit_on_signal)
    raise_nofile()
    results = []
    try:
        for layer in args.layer:
            cfg = argparse.Namespace(**{**vars(args), "layer": layer})
            print(f"== {layer} layer, {args.students} students + teacher", flush=True)
            result = run_config(cfg)
            results.append(result)
            lat = result["event_latency_ms"]
            print(
                f"   {result['events_live']} live events, {result['deliveries_received']}/{result['deliveries_expected']} "
                f"deliveries, p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} ms, {result['run_status']}",
                flush=True,
            )
    finally:
        kill_children()
        if results:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(
                json.dumps(
                    {
                        "benchmark": "classroom websocket latency, bench/bench_classroom.py",
                        "machine": fan.machine_info(),
                        "caveat": fan.CAVEAT.format(n=os.cpu_count()),
                        "results": results,
                    },
                    indent=2,
                )
                + "\n"
            )
    print()
    print(table(results))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
