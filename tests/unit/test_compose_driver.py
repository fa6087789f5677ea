"""tests/compose/drive.py's pure parts: the stack's environment and the transcript it compares."""

from pathlib import Path

from tests.compose.drive import REPO, transcript, write_env


def env_values(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_stack_runs_with_the_production_values_of_env_example(tmp_path):
    example = env_values(REPO / ".env.example")
    written = env_values(write_env(tmp_path, port=18123))
    changed = {key for key in example if written[key] != example[key]}
    # ... and this host is the TLS proxy: its X-Forwarded-Proto is believed from docker's networks only.
    assert changed == {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "WEB_PORT", "FORWARDED_ALLOW_IPS"}
    assert "*" not in written["FORWARDED_ALLOW_IPS"] and "127.0.0.1" in written["FORWARDED_ALLOW_IPS"]
    assert written["WEB_PORT"] == "18123" and len(written["DJANGO_SECRET_KEY"]) >= 50
    assert written["DJANGO_DEBUG"] == "0" and written["DJANGO_SECURE_SSL_REDIRECT"] == "1"
    assert env_values(write_env(tmp_path, port=1))["DJANGO_SECRET_KEY"] != written["DJANGO_SECRET_KEY"]


def test_transcripts_ignore_times_and_usage_but_not_what_was_said():
    event = {
        "seq": 1,
        "type": "speech",
        "at": "2026-01-01T00:00:00Z",
        "data": {"text": "yes", "usage": {"prompt_tokens": 3}},
    }
    later = {**event, "at": "2026-01-02T00:00:00Z", "data": {"text": "yes", "usage": {"prompt_tokens": 9}}}
    assert transcript([event]) == transcript([later])
    assert transcript([event]) != transcript([{**event, "data": {"text": "no"}}])
