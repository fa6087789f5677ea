"""The heartbeat of the runs (and calibrations) this worker process is advancing
(deliberation/runs/recovery.py, deliberation/calibration/services.py).

One daemon thread per process stamps every run a task of the process holds, every
HEMICYCLE_RUN_HEARTBEAT_S, in one statement per stamp function (runs, calibrations). A thread of its own: a run's task can wait minutes
on one model call, and must not look lost meanwhile. When the process dies the stamps stop, and
beat's reclaim enqueues its runs again.

A task the process received and has not started (prefetched, or waiting out a retry's countdown)
holds its run too, from when it arrives until it starts (heartbeat_hold / heartbeat_release), with
a stamp of its own (runs.recovery.runs_waiting_heartbeat: queued runs); the thread stamps at once
when such a hold begins, so that a run is never held unstamped for a whole interval.
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings

logger = logging.getLogger(__name__)

_held: Counter[tuple[Callable[..., object], int]] = Counter()  # (stamp, id) -> tasks holding it
_received: dict[str, tuple[Callable[..., object], int]] = {}  # task id -> the key its arrival holds
_lock = threading.Lock()
_wake = threading.Event()
_thread: threading.Thread | None = None


@contextmanager
def run_heartbeat(*, run_id: int, stamp: Callable[..., object]) -> Iterator[None]:
    """Keep `run_id` stamped while the block runs: every interval, one thread of the process calls
    `stamp(run_ids=[...])` (runs.recovery.runs_heartbeat) with all the runs held. Nothing when
    HEMICYCLE_RUN_HEARTBEAT_S is 0: the embedded worker, which lives and dies with the web
    process and its start-up sweep."""
    interval = settings.HEMICYCLE_RUN_HEARTBEAT_S
    if interval <= 0:
        yield
        return
    key = (stamp, run_id)
    with _lock:
        _held[key] += 1
        _start(interval)
    try:
        yield
    finally:
        with _lock:
            _held[key] -= 1
            if _held[key] <= 0:
                del _held[key]


def heartbeat_hold(*, task_id: str, run_id: int, stamp: Callable[..., object]) -> None:
    """Hold `run_id` for task `task_id`, received and not started, until heartbeat_release; the
    first stamp comes at once. Nothing when HEMICYCLE_RUN_HEARTBEAT_S is 0 (as run_heartbeat)."""
    interval = settings.HEMICYCLE_RUN_HEARTBEAT_S
    if interval <= 0:
        return
    key = (stamp, run_id)
    with _lock:
        if task_id in _received:
            return
        _received[task_id] = key
        _held[key] += 1
        _start(interval)
    _wake.set()


def heartbeat_release(*, task_id: str) -> None:
    """The task `task_id` started (or was revoked): its arrival's hold ends. Idempotent."""
    with _lock:
        key = _received.pop(task_id, None)
        if key is None:
            return
        _held[key] -= 1
        if _held[key] <= 0:
            del _held[key]


def runs_held(stamp: Callable[..., object] | None = None) -> list[int]:
    """The ids held (those `stamp` stamps, when given)."""
    with _lock:
        return list(dict.fromkeys(held for function, held in _held if stamp is None or function is stamp))


def _held_by_stamp() -> dict[Callable[..., object], list[int]]:
    by_stamp: dict[Callable[..., object], list[int]] = {}
    with _lock:
        for stamp, held in _held:
            by_stamp.setdefault(stamp, []).append(held)
    return by_stamp


def _start(interval: float) -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=_beat, args=(interval,), name="run-heartbeat", daemon=True)
        _thread.start()


def _beat(interval: float) -> None:
    from django.db import close_old_connections

    while True:
        _wake.wait(interval)
        _wake.clear()
        by_stamp = _held_by_stamp()
        if not by_stamp:
            continue
        close_old_connections()
        for stamp, run_ids in by_stamp.items():
            try:
                stamp(run_ids=run_ids)
            except Exception:  # noqa: BLE001 - the database is away: the next beat tries again
                logger.exception("heartbeat of %s failed", run_ids)
