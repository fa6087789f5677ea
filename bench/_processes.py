"""The child processes a bench starts, and their end: every bench kills what it started."""

import atexit
import os
import signal
import subprocess
import time
from pathlib import Path

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


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime of a process (threads included) from /proc, with `children` the time of the
    children it has reaped too; 0.0 where the process is gone or /proc cannot say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(value) for value in fields[11 : 15 if children else 13]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
