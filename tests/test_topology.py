"""`docker-compose.yml`'s topology, every service as the process its container would run
(tests/compose.py says what stands in for a container): zurich.test's PostgreSQL database, NATS
JetStream, `init` job, storage node, two replicas behind the compose file's own Caddyfile in a
real Caddy, paris.test's registry and the `peering` job. Then, end to end through the balancer:
ready, a login at the embedded IdP, a space that both replicas list, a file through the storage
node, and the two domains peered at both ends, once however often the job runs.

Only the PostgreSQL service is not run from the file (no image here): the tests' cluster holds
the databases the file names, the ones its init script makes included."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from federation.dnsserver import DnsServer
from tests.compose import IMAGE_COMMAND, Plan, Topology, image_env, load
from tests.postgres import PostgresCluster
from tests.schema import check_response
from tests.servers import free_port
from tests.test_idp import code_from, exchange, log_in, pkce
from tests.waiting import eventually

SECRET = "a-provider-secret-of-32-characters-or-more"
NATS_PORT = 4222  # the nats image's


def listening_ports(document: dict[str, Any]) -> dict[str, int]:
    """The port each server listens on in its container: the `SPACEREG_PORT` a spacereg
    server is given (or the image's), NATS's default, and what the balancer publishes."""
    found: dict[str, int] = {}
    for name, service in document["services"].items():
        image = service.get("image", "")
        command = service.get("command", IMAGE_COMMAND)
        if image.startswith("spacereg") and "entrypoint" not in service and "serve" in command:
            found[name] = int(
                service["environment"].get("SPACEREG_PORT", image_env()["SPACEREG_PORT"])
            )
        elif image.startswith("nats"):
            found[name] = NATS_PORT
        elif image.startswith("caddy"):
            found[name] = int(service["ports"][0].split(":")[-1])
    return found


def databases(document: dict[str, Any], postgres: PostgresCluster) -> dict[str, str]:
    """A database of the tests' cluster for each one the PostgreSQL service has: the one its
    environment names, and those its init scripts create."""
    service = document["services"]["postgres"]
    names = [service["environment"]["POSTGRES_DB"]]
    for config in service["configs"]:
        sql = document["configs"][config["source"]]["content"]
        names += re.findall(r"CREATE DATABASE (\w+)", sql)
    return {name: postgres.create_database() for name in names}


@pytest.fixture
def topology(tmp_path: Path, postgres: PostgresCluster) -> Iterator[Topology]:
    document = load({"PROVIDER_SECRET": SECRET})
    network = document["networks"]["default"]
    aliases = {
        alias: name
        for name, service in document["services"].items()
        for alias in service.get("networks", {}).get("default", {}).get("aliases", [])
    }
    dns = DnsServer()
    for alias in aliases:
        dns.add(alias, "A", ["127.0.0.1"])
    listens = listening_ports(document)
    ports = {name: free_port() for name in [*listens, "balancer:admin"]}
    with dns.running():
        plan = Plan(
            root=tmp_path,
            listens=listens,
            ports=ports,
            aliases=aliases,
            databases=databases(document, postgres),
            subnet=network["ipam"]["config"][0]["subnet"],
            dns_nameserver=dns.nameserver,
        )
        running = Topology(document, plan)
        try:
            yield running
        finally:
            running.down()


def peers(topology: Topology, service: str) -> list[dict[str, Any]]:
    """`spacereg peer list --json` beside the running `service`, as an operator runs it."""
    process = topology.processes[service]
    options = process.args[1:3] if process.args[1] == "--config" else []
    done = subprocess.run(
        [process.args[0], *options, "peer", "list", "--json"],
        env=process.env,
        cwd=process.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, Any]] = json.loads(done.stdout)["value"]
    return listed


def demo_password(topology: Topology, username: str) -> str:
    """The password the `init` job printed once for a demo user."""
    found = re.search(rf"(?m)^\s+{username}\s+(\S+)$", topology.log("init"))
    assert found, topology.log("init")
    return found.group(1)


async def log_in_through(client: httpx2.AsyncClient, username: str, password: str) -> str:
    """An access token from the embedded IdP's code flow with PKCE."""
    verifier, challenge = pkce()
    code = await code_from(await log_in(client, challenge, username, password))
    tokens = await exchange(client, code, verifier)
    assert tokens.status_code == 200, tokens.text
    token: str = tokens.json()["access_token"]
    return token


async def test_compose_topology_serves_a_space_through_the_balancer_and_peers_paris(topology):
    topology.up_all()
    topology.wait("peering", "service_completed_successfully")
    ports = topology.plan.ports
    balancer = f"http://127.0.0.1:{ports['balancer']}"

    async with httpx2.AsyncClient(
        base_url=balancer, event_hooks={"response": [check_response]}
    ) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        assert await eventually(ready, seconds=30)
        token = await log_in_through(client, "admin", demo_password(topology, "admin"))
        client.headers["Authorization"] = f"Bearer {token}"
        made = await client.post("/graph/v1.0/drives", json={"name": "Composed"})
        assert made.status_code == 201, made.text
        space = made.json()["id"]
        # Through the balancer (to either replica), then at each replica itself.
        for url in [
            balancer,
            *(f"http://127.0.0.1:{ports[r]}" for r in ("registry-a", "registry-b")),
        ]:
            listed = await client.get(f"{url}/graph/v1.0/me/drives")
            assert space in {d["id"] for d in listed.json()["value"]}, url
        put = await client.put(f"/dav/spaces/{space}/hello.txt", content=b"from compose")
        assert put.status_code == 201, put.text
        got = await client.get(f"/dav/spaces/{space}/hello.txt")
    assert got.content == b"from compose"
    on_storage_node = topology.plan.root / "volumes" / "storage-data" / "spaces" / space
    assert (on_storage_node / "hello.txt").read_bytes() == b"from compose"

    zurich, paris = (
        f"{d}:{ports[s]}" for d, s in (("zurich.test", "balancer"), ("paris.test", "paris"))
    )
    assert [(p["domain"], p["state"]) for p in peers(topology, "paris")] == [(zurich, "active")]
    assert [(p["domain"], p["state"]) for p in peers(topology, "registry-a")] == [(paris, "active")]
    assert topology.run_again("peering") == 0  # a second `docker compose up`
    assert f"already peered with {zurich}" in topology.log("peering")
    assert [(p["domain"], p["state"]) for p in peers(topology, "paris")] == [(zurich, "active")]
