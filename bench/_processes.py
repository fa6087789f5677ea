"""The child processes a bench starts, and their end: every bench kills what it started."""

import atexit
import os
import signal
import subprocess
import time

children: list[subprocess.Popen] = []


def kill_children() -> None:
    """SIGTERM each child's process group, then SIGKILL what is still there after 5 s."""
    for proc in reversed(children):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + 5
    for proc in reversed(children):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait(timeout=5)
    children.clear()


atexit.register(kill_children)


def exit_on_signal(signum, frame):  # SIGTERM/SIGINT: leave through finally and atexit
    raise SystemExit(128 + signum)
