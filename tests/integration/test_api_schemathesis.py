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
from deliberation.runs.experiments import experiment_create
from deliberation.runs.services import run_create
from deliberation.scenarios.services import scenario_save
from tests.factories import make_record, make_user, scenario_config

MAX_EXAMPLES = int(os.environ.get("HEMICYCLE_SCHEMATHESIS_EXAMPLES", "8"))
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _config_with_known_ids(path: Path, *, ids: dict[str, int]) -> Path:
    """CONFIG, plus: half the generated values of each id parameter are ids that exist (the
    fuzzer's own run, experiment and record), so the operations run past their 404."""
    lines = [CONFIG.read_text(), "", "[parameters]"]
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in ids]
    for name, value in ids.items():
        lines += ["", f"[dictionaries.{name}]", f"values = [{value}]"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_schemathesis_finds_no_server_error_and_no_schema_violation(asgi_server, tmp_path):
    owner = make_user("fuzzer")
    record = make_record()
    scenario = scenario_save(owner=owner, name="fuzzed", config=scenario_config(record, user=owner))
    run = run_create(owner=owner, config=scenario_config(record, user=owner))
    experiment = experiment_create(
        owner=owner,
        name="fuzzed grid",
        goals=["simple_majority"],
        strategies=["one-shot"],
        models=["scripted:default"],
        judges=["scripted"],
        seeds=[0],
        scenario_ids=[scenario.pk],
    )
    config = _config_with_known_ids(
        tmp_path / "schemathesis.toml",
        ids={
            "record_id": record.pk,
            "run_id": run.pk,
            "experiment_id": experiment.pk,
        },
    )
    token = api_token_create(user=owner, name="schemathesis")[1]
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(config),
            "run",
            f"{asgi_server.url}/api/v1/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--seed",
            "1",
            "--header",
            f"Authorization: Bearer {token}",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
