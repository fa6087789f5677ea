#!/usr/bin/env bash
# Build the production image, on a host with Docker Hub or without it.
#
#   docker/build.sh image   the app image ($HEMICYCLE_IMAGE, default hemicycle:latest)
#   docker/build.sh base    only the local stand-ins for Docker Hub's images (see below)
#
# HEMICYCLE_BASE=hub    build FROM python:3.11-slim-bookworm; compose uses postgres:16, redis:7
# HEMICYCLE_BASE=local  build FROM a Debian bookworm made here (debootstrap from the mirror apt
#                       uses, then Debian's python3, postgresql-15, redis-server: docker/local/)
# HEMICYCLE_BASE=auto   (default) hub when python:3.11-slim-bookworm is here or can be pulled
#
# The host's CA bundle and its pip index settings reach pip in the build stage as BuildKit
# secrets (never a layer, never the final image); pip's cache is a BuildKit cache mount, so a
# new requirements.txt does not compile llama-cpp-python again. Prints the chosen images as
# KEY=value lines for docker-compose (.env-style) on stdout when done (`env` subcommand).
set -euo pipefail
cd "$(dirname "$0")/.."

HUB_BASE=python:3.11-slim-bookworm
LOCAL_DEBIAN=hemicycle-debian:bookworm
LOCAL_PYTHON=hemicycle-python:3.11-bookworm
LOCAL_POSTGRES=hemicycle-postgres:15-bookworm
LOCAL_REDIS=hemicycle-redis:7-bookworm
IMAGE=${HEMICYCLE_IMAGE:-hemicycle:latest}
CA_BUNDLE=${HEMICYCLE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

say() { echo "[build] $*" >&2; }
die() { echo "[build] ERROR: $*" >&2; exit 1; }

# A client that builds with BuildKit: `docker` with the buildx plugin, else Debian's docker.io
# client (20.10: BuildKit built in). A newer static `docker` without buildx refuses BuildKit.
docker_cli() {
    if [ -n "${DOCKER:-}" ]; then echo "$DOCKER"; return; fi
    if docker buildx version >/dev/null 2>&1; then echo docker; return; fi
    if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; return; fi
    echo docker
}
DOCKER_BIN=$(docker_cli)
export DOCKER_BUILDKIT=1

have_image() { "$DOCKER_BIN" image inspect "$1" >/dev/null 2>&1; }

choose_base() {
    case "${HEMICYCLE_BASE:-auto}" in
        hub) echo hub ;;
        local) echo local ;;
        auto)
            if have_image "$HUB_BASE" || timeout 300 "$DOCKER_BIN" pull -q "$HUB_BASE" >/dev/null 2>&1; then
                echo hub
            else
                echo local
            fi ;;
        *) die "HEMICYCLE_BASE must be hub, local or auto, not ${HEMICYCLE_BASE}" ;;
    esac
}

# The Debian mirror apt uses here: the first archive URI (not -security) in apt's sources.
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | sed -nE -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
        | tr ' ' '\n' | grep -E '^https?://.*/debian/?$' | head -n 1 || true)
    [ -n "$uri" ] || die "no Debian mirror in /etc/apt/sources.list*: set DEBIAN_MIRROR"
    echo "$uri"
}

build_local_bases() {
    if ! have_image "$LOCAL_DEBIAN"; then
        [ "$(id -u)" -eq 0 ] || die "debootstrap needs root (or import a Debian bookworm as $LOCAL_DEBIAN)"
        command -v debootstrap >/dev/null || make --no-print-directory apt-install PACKAGES=debootstrap >&2
        local mirror rootfs started
        mirror=$(debian_mirror)
        rootfs=$(mktemp -d /var/tmp/hemicycle-debootstrap.XXXXXX)
        started=$SECONDS
        say "debootstrap --variant=minbase bookworm from the mirror apt uses"
        if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
            tail -n 20 "$rootfs.log" >&2; rm -rf "$rootfs"; die "debootstrap failed (log above)"
        fi
        tar -C "$rootfs" -c . | "$DOCKER_BIN" import - "$LOCAL_DEBIAN" >/dev/null
        rm -rf "$rootfs" "$rootfs.log"
        say "$LOCAL_DEBIAN imported in $((SECONDS - started)) s"
    fi
    local target tag started
    for target in python:$LOCAL_PYTHON postgres:$LOCAL_POSTGRES redis:$LOCAL_REDIS; do
        tag=${target#*:}; started=$SECONDS
        "$DOCKER_BIN" build -q -f docker/local/Dockerfile --target "${target%%:*}" \
            --build-arg DEBIAN_IMAGE="$LOCAL_DEBIAN" -t "$tag" . >/dev/null \
            || die "building $tag failed (docker build -f docker/local/Dockerfile --target ${target%%:*} .)"
        say "$tag ready ($((SECONDS - started)) s)"
    done
}

# pip's index settings from the host (index-url, extra-index-url, trusted-host, timeout), only
# http(s) ones: file:// indexes and find-links are paths on this host, not in the build.
pip_config() {
    local python
    python=$(command -v .venv/bin/python || command -v python3)
    "$python" - "$CA_BUNDLE" <<'PY'
import os, subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
settings = {}
for line in out.splitlines():
    key, _, value = line.partition("=")
    name = key.rsplit(".", 1)[-1]
    settings[name] = value.strip().strip("'\"")
lines = []
for name in ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout", "retries"):
    value = settings.get(name)
    if name.endswith("index-url") and value:
        value = " ".join(url for url in value.split() if url.startswith(("http://", "https://")))
    if value:
        lines.append(f"{name} = {value}")
if os.path.isfile(sys.argv[1]):
    lines.append("cert = /run/secrets/ca")
print("[global]\n" + "\n".join(lines))
PY
}

build_image() {
    local base secrets started
    base=$(choose_base)
    [ "$base" = local ] && build_local_bases
    secrets=$(mktemp -d)
    trap 'rm -rf "$secrets"' RETURN
    pip_config > "$secrets/pip.conf"
    local args=(--secret "id=pipconf,src=$secrets/pip.conf")
    [ -f "$CA_BUNDLE" ] && args+=(--secret "id=ca,src=$CA_BUNDLE")
    local from=$HUB_BASE
    [ "$base" = local ] && from=$LOCAL_PYTHON
    say "building $IMAGE FROM $from with $DOCKER_BIN (BuildKit)"
    started=$SECONDS
    "$DOCKER_BIN" build -f docker/Dockerfile --build-arg BASE_IMAGE="$from" "${args[@]}" \
        --progress "${BUILD_PROGRESS:-plain}" -t "$IMAGE" . >&2 || die "docker build failed (output above)"
    say "$IMAGE built in $((SECONDS - started)) s"
    images_env "$base"
}

# What docker-compose needs to use these images (KEY=value lines).
images_env() {
    echo "HEMICYCLE_IMAGE=$IMAGE"
    if [ "$1" = local ]; then
        echo "POSTGRES_IMAGE=$LOCAL_POSTGRES"
        echo "REDIS_IMAGE=$LOCAL_REDIS"
    fi
}

case "${1:-image}" in
    image) build_image ;;
    base) build_local_bases ;;
    *) die "usage: docker/build.sh [image|base]" ;;
esac
