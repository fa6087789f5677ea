"""schemathesis, an independent API client, against the real server on PostgreSQL.

It reads /api/v1/openapi.json and sends every operation generated requests, valid and invalid
(boundary values, wrong types, control characters, bodies that are not JSON), with an API token,
then runs all its checks on the answers: no server error, every status and body declared in the
schema and matching it, invalid input refused, missing auth refused. Examples are bounded so the
run takes a few minutes at most.
"""

import os
import subprocess
import sys
from pathlib import Path

from deliberation.api.services import api_token_create
from tests.factories import make_record, make_user

MAX_EXAMPLES = int(os.environ.get("HEMICYCLE_SCHEMATHESIS_EXAMPLES", "8"))
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(asgi_server, tmp_path):
    owner = make_user("fuzzer")
    make_record()
    token = api_token_create(user=owner, name="schemathesis")[1]
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG),
            "run", f"{asgi_server.url}/api/v1/openapi.json",
            "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--seed", "1",
            "--header", f"Authorization: Bearer {token}", "--request-timeout", "30",
            "--suppress-health-check", "all", "--no-color",
        ],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
