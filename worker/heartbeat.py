"""The heartbeat of the runs this worker process is advancing (deliberation/runs/recovery.py).

One daemon thread per process stamps every run a task of the process holds, every
HEMICYCLE_RUN_HEARTBEAT_S, in one statement. A thread of its own: a run's task can wait minutes
on one model call, and must not look lost meanwhile. When the process dies the stamps stop, and
beat's reclaim enqueues its runs again.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings

logger = logging.getLogger(__name__)

_held: Counter[int] = Counter()
_lock = threading.Lock()
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
    with _lock:
        _held[run_id] += 1
        _start(interval, stamp)
    try:
        yield
    finally:
        with _lock:
            _held[run_id] -= 1
            if _held[run_id] <= 0:
                del _held[run_id]


def runs_held() -> list[int]:
    with _lock:
        return list(_held)


def _start(interval: float, stamp: Callable[..., object]) -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=_beat, args=(interval, stamp), name="run-heartbeat", daemon=True)
        _thread.start()


def _beat(interval: float, stamp: Callable[..., object]) -> None:
    from django.db import close_old_connections

    while True:
        time.sleep(interval)
        run_ids = runs_held()
        if not run_ids:
            continue
        try:
            close_old_connections()
            stamp(run_ids=run_ids)
        except Exception:  # noqa: BLE001 - the database is away: the next beat tries again
            logger.exception("heartbeat of runs %s failed", run_ids)
