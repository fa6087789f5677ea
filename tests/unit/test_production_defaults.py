"""What a host gets when it sets nothing: production behaviour, not the local try-out's."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import django, os
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/no-such-page/", secure=True)
print("DEBUG", settings.DEBUG)
print("STATUS", response.status_code)
print("TECHNICAL", b"URLconf" in response.content or b"Django tried these URL patterns" in response.content)
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key not in {"DJANGO_DEBUG", "DJANGO_SECRET_KEY"}}
    # A checkout where `make run` ran has var/local.env (debug on): these probes read none.
    clean.update({"DJANGO_SETTINGS_MODULE": "deliberation.settings", "HEMICYCLE_LOCAL_ENV": "", **env})
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_debug_is_off_when_unset_and_a_404_shows_no_debug_page():
    result = _python(PROBE, DJANGO_SECRET_KEY="s" * 60)
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout
    assert "STATUS 404" in result.stdout
    assert "TECHNICAL False" in result.stdout


def test_without_debug_a_secret_key_is_required_and_the_error_says_how_to_try_it_locally():
    result = _python("import django; django.setup()")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr and "make run" in result.stderr


def test_the_makefile_turns_debug_on_for_the_local_try_out():
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_DEBUG"}
    shown = subprocess.run(
        ["make", "-s", "--eval", "show-debug: ; @echo $$DJANGO_DEBUG", "show-debug"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stdout.strip() == "1", shown.stderr


def test_no_server_command_lets_a_client_choose_its_address():
    """uvicorn trusts X-Forwarded-For from FORWARDED_ALLOW_IPS only; "*" would let any client pick
    the address that throttling keys on. `make run` has no proxy in front: no proxy headers."""
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    makefile = (REPO_ROOT / "Makefile").read_text()
    for text in (dockerfile, compose, makefile):
        assert not re.search(r"forwarded.allow.ips[\"', =]+\*", text, re.IGNORECASE)
    # make run serves through deliberation/serve.py (uvicorn in-process, one console block)
    run_line = next(line for line in makefile.splitlines() if "-m deliberation.serve" in line)
    assert "FORWARDED_ALLOW_IPS" not in run_line
    assert "proxy_headers=False" in (REPO_ROOT / "deliberation" / "serve.py").read_text()


SCHEME_PROBE = """
import django
django.setup()
from django.test import Client
response = Client().get("/healthz", HTTP_X_FORWARDED_PROTO="https")
print("STATUS", response.status_code, response.get("Location", ""))
"""


def test_a_client_saying_x_forwarded_proto_https_is_not_taken_for_https():
    """Behind no trusted proxy (a plain WSGI/ASGI request: the scope says http) the header is the
    client's word only: production settings still redirect it to https. uvicorn --proxy-headers
    turns the header into the scheme for FORWARDED_ALLOW_IPS only (tests/integration/test_proxy_headers.py)."""
    result = _python(SCHEME_PROBE, DJANGO_SECRET_KEY="s" * 60)
    assert result.returncode == 0, result.stderr
    assert "STATUS 301 https://testserver/healthz" in result.stdout


def test_manage_py_in_a_checkout_where_make_run_ran_gets_the_try_out_settings(tmp_path):
    """The README's `.venv/bin/python manage.py ...` commands work after `make run`."""
    local_env = tmp_path / "local.env"
    shown = subprocess.run(
        ["make", "-s", f"LOCAL_ENV={local_env}", str(local_env)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    result = _python(
        "import django; django.setup(); from django.conf import settings; print('DEBUG', settings.DEBUG)",
        HEMICYCLE_LOCAL_ENV=str(local_env),
    )
    assert result.returncode == 0, result.stderr
    assert "DEBUG True" in result.stdout
    production = _python("import django; django.setup()", HEMICYCLE_LOCAL_ENV=str(local_env), DJANGO_DEBUG="0")
    assert production.returncode != 0 and "DJANGO_SECRET_KEY must be set" in production.stderr  # the environment wins
