"""The container files: what `docker-compose.yml` and the `Dockerfile` promise an operator.

No container engine runs on the test machines, so nothing here builds or starts a container;
the same topology runs as processes in tests/test_replicas.py and tests/test_remote_provider.py.
`docker compose config` validates the file where the compose plugin is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
REPLICAS = ("registry-a", "registry-b")


def services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    found: dict[str, Any] = document["services"]
    return found


def compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return done.returncode == 0


@pytest.mark.skipif(not compose_plugin(), reason="the `docker compose` plugin is not installed")
def test_docker_compose_accepts_the_file() -> None:
    env = {**os.environ, "PROVIDER_SECRET": "a-provider-secret-of-32-characters-or-more"}
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr


def test_no_service_mounts_the_sources_or_installs_at_start() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            assert not str(volume).startswith("."), (name, volume)
        command = " ".join(map(str, [*service.get("entrypoint", []), *service.get("command", [])]))
        assert "pip" not in command, name


def test_replicas_start_after_one_job_made_the_keys_they_share() -> None:
    found = services()
    init = found["init"]
    assert "spacereg keys" in " ".join(init["entrypoint"])
    for name in REPLICAS:
        replica = found[name]
        assert replica["depends_on"]["init"] == {"condition": "service_completed_successfully"}
        assert replica["volumes"] == init["volumes"], name  # the data directory with the keys


def test_the_image_is_built_from_a_wheel_and_runs_unprivileged_with_a_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert " AS build" in dockerfile
    assert "pip wheel" in dockerfile
    assert "--no-index --find-links /wheels" in dockerfile
    user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user and user[-1] not in {"root", "0"}
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
