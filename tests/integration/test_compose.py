"""docker-compose.yml is valid and describes the production stack the README promises."""

import shutil
import subprocess

import yaml

from tests.integration.servers import REPO_ROOT


def compose_config(tmp_path, *profiles: str) -> dict:
    """`docker-compose config` on a copy of the file beside an .env made from .env.example."""
    shutil.copy(REPO_ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text((REPO_ROOT / ".env.example").read_text())
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose is missing: make test installs it"
    args = [docker_compose, "--project-directory", str(tmp_path), "-f", str(tmp_path / "docker-compose.yml")]
    args += [item for profile in profiles for item in ("--profile", profile)]
    result = subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_describes_the_production_services(tmp_path):
    services = compose_config(tmp_path)["services"]
    assert {"postgres", "redis", "web", "worker-runs", "worker-models", "beat"} <= set(services)
    assert "-Q" in services["worker-runs"]["command"] and "runs" in services["worker-runs"]["command"]
    models = services["worker-models"]["command"]
    assert models[models.index("-Q") + 1] == "models"
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "web"))
    # uploaded record files are stored by web and read by the runs worker's import task
    for name in ("web", "worker-runs"):
        assert "uploads:/app/var/media:rw" in services[name]["volumes"]


def test_the_gpu_profile_adds_vllm_and_a_gpu_models_worker(tmp_path):
    services = compose_config(tmp_path, "gpu")["services"]
    assert "vllm" in services
    assert any("models" in name and name != "worker-models" for name in services)


def test_images_and_env_file_can_be_named_for_hosts_without_docker_hub(tmp_path, monkeypatch):
    # make image prints these when it built the local Debian stand-ins (docker/build.sh)
    monkeypatch.setenv("HEMICYCLE_IMAGE", "hemicycle:test")
    monkeypatch.setenv("POSTGRES_IMAGE", "hemicycle-postgres:15-bookworm")
    monkeypatch.setenv("REDIS_IMAGE", "hemicycle-redis:7-bookworm")
    services = compose_config(tmp_path)["services"]
    assert services["postgres"]["image"] == "hemicycle-postgres:15-bookworm"
    assert services["redis"]["image"] == "hemicycle-redis:7-bookworm"
    assert {services[name]["image"] for name in ("web", "worker-runs", "worker-models", "beat", "migrate")} == {
        "hemicycle:test"
    }
    # Debian's redis-server keeps protected mode on unless told (the official image turns it off)
    assert "--protected-mode" in services["redis"]["command"]
    assert services["web"]["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim-bookworm"
