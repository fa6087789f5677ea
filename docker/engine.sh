#!/usr/bin/env bash
# The container engine for make test-compose (and make image).
#
#   docker/engine.sh start   prints "running" when dockerd already answers; otherwise installs
#                            docker.io when dockerd is missing (Debian, as root or with sudo),
#                            starts dockerd (overlay2; vfs when overlay2 fails: set
#                            DOCKERD_STORAGE_DRIVER to choose) and prints "started"
#   docker/engine.sh stop    stops the dockerd that `start` started (var/dockerd.pid)
set -euo pipefail
cd "$(dirname "$0")/.."

PIDFILE=var/dockerd.pid
LOG=var/dockerd.log

say() { echo "[engine] $*" >&2; }

answers() { timeout 20 docker info >/dev/null 2>&1; }

start_with() {
    say "starting dockerd --storage-driver $1 (log: $LOG)"
    setsid dockerd --storage-driver "$1" >>"$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    local waited=0
    while [ $waited -lt 60 ]; do
        answers && return 0
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
        sleep 1; waited=$((waited + 1))
    done
    stop_started
    return 1
}

stop_started() {
    [ -f "$PIDFILE" ] || return 0
    local pid waited=0
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        while kill -0 "$pid" 2>/dev/null && [ $waited -lt 60 ]; do sleep 1; waited=$((waited + 1)); done
        kill -0 "$pid" 2>/dev/null && { say "dockerd $pid did not stop in 60 s: killing it"; kill -KILL "$pid"; }
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start)
        if answers; then echo running; exit 0; fi
        mkdir -p var
        if ! command -v dockerd >/dev/null; then
            make --no-print-directory apt-install PACKAGES="docker.io" >&2
        fi
        if [ "$(id -u)" -ne 0 ]; then
            say "dockerd is not running and only root can start it: sudo systemctl start docker (or run as root)"
            exit 1
        fi
        if [ -n "${DOCKERD_STORAGE_DRIVER:-}" ]; then
            start_with "$DOCKERD_STORAGE_DRIVER" || { say "dockerd did not start (see $LOG)"; exit 1; }
        elif ! start_with overlay2; then
            say "overlay2 failed here; trying vfs (slower, more disk)"
            start_with vfs || { say "dockerd did not start with overlay2 nor vfs (see $LOG)"; exit 1; }
        fi
        echo started ;;
    stop) stop_started ;;
    *) echo "usage: docker/engine.sh start|stop" >&2; exit 2 ;;
esac
