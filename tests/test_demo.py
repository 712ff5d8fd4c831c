"""`spacereg demo --share` as a newcomer runs it: a process of its own, reached over its DNS
and TLS, walked through the acceptance story, stopped with Ctrl-C (SIGINT), started again.

HTTP goes to the address the demo's DNS gives for each registry's name (this machine's
resolver knows no `*.test`), verified against the demo's CA.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.resolver
import httpx2
import pytest

from federation.config import DiscoveryConfig
from federation.discovery import Discovery
from registry.shares.share_json import SHARES_DRIVE_ID
from tests.processes import SPACEREG, clean_env, stop_process, wait_until
from tests.schema import check_response
from tests.servers import free_port

READY = "Ctrl-C stops both"


@dataclass
class Demo:
    data_dir: Path
    ports: dict[str, int]
    dns_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the demo; its printed instructions once both registries serve."""
        out = self.data_dir.parent / "demo.out"
        out.write_text("")
        args = ["demo", "--data-dir", str(self.data_dir), "--share"]
        args += ["--zurich-port", str(self.ports["zurich.test"])]
        args += ["--paris-port", str(self.ports["paris.test"]), "--dns-port", str(self.dns_port)]
        with out.open("wb") as sink:
            self.process = subprocess.Popen(
                [*SPACEREG, *args], stdout=sink, stderr=subprocess.STDOUT, env=clean_env()
            )
        assert wait_until(lambda: READY in out.read_text(), self.process, 90), out.read_text()
        return out.read_text()

    def stop(self) -> int:
        assert self.process is not None
        stop_process(self.process, signal.SIGINT, 30)
        return self.process.returncode

    def token(self, domain: str, user: str) -> str:
        config = self.data_dir / domain / "spacereg.toml"
        done = subprocess.run(
            [*SPACEREG, "--config", str(config), "token", user],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def address(self, host: str) -> str:
        """`host` as the demo's DNS answers for it."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], self.dns_port
        return str(resolver.resolve(host, "A")[0])

    def client(self, domain: str, user: str) -> httpx2.AsyncClient:
        """Every answer is checked against registry/openapi.yaml."""
        ip = self.address(f"registry.{domain}")
        return httpx2.AsyncClient(
            base_url=f"https://{ip}:{self.ports[domain]}",
            headers={"Authorization": f"Bearer {self.token(domain, user)}"},
            verify=ssl.create_default_context(cafile=str(self.data_dir / "ca.pem")),
            timeout=30,
            event_hooks={"response": [check_response]},
        )


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    ports = {"zurich.test": free_port(), "paris.test": free_port()}
    running = Demo(tmp_path / "demo", ports, free_port())
    try:
        yield running
    finally:
        if running.process is not None:
            stop_process(running.process, signal.SIGKILL)


def serving(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def curl_lines(printed: str) -> list[str]:
    return [line.strip() for line in printed.splitlines() if line.startswith("  curl ")]


def pasted(line: str) -> list[dict[str, Any]]:
    """A printed command run as pasted into a shell whose PATH has no spacereg on it."""
    done = subprocess.run(
        ["bash", "-c", line],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(PATH="/usr/bin:/bin"),
    )
    assert done.returncode == 0, done.stderr
    drives: list[dict[str, Any]] = json.loads(done.stdout)["value"]
    return drives


async def pending_for_marie(demo: Demo) -> list[dict[str, Any]]:
    async with demo.client("paris.test", "marie") as marie:
        response = await marie.get("/graph/v1beta1/me/drive/sharedWithMe")
    assert response.status_code == 200, response.text
    return [item for item in response.json()["value"] if item["@spacereg.state"] == "pending"]


async def test_demo_walks_from_discovery_to_maries_accepted_share(demo: Demo) -> None:
    printed = demo.start()
    zurich, paris = (f"https://registry.{d}:{demo.ports[d]}" for d in ("zurich.test", "paris.test"))
    assert zurich in printed and paris in printed
    assert "marie / radioactivity" in printed and str(demo.data_dir / "ca.pem") in printed
    assert "--host-resolver-rules='MAP *.test 127.0.0.1'" in printed
    curl = f"--resolve registry.paris.test:{demo.ports['paris.test']}:127.0.0.1"
    assert f"curl -s --cacert {demo.data_dir / 'ca.pem'} {curl}" in printed
    zurich_drives, paris_drives = (pasted(line) for line in curl_lines(printed))
    assert {d["driveAlias"] for d in zurich_drives} >= {"personal/einstein"}
    assert SHARES_DRIVE_ID in {d["id"] for d in paris_drives}

    config = DiscoveryConfig(
        dns_nameservers=(f"127.0.0.1:{demo.dns_port}",),
        allow_private_networks=("127.0.0.1/32",),
        ca_file=str(demo.data_dir / "ca.pem"),
    )
    async with Discovery(config) as discovery:
        found = await discovery.discover("marie@paris.test")
    assert (found.location.how, found.location.origin) == ("dns-srv", paris)
    assert found.metadata.domain == "paris.test"

    waiting = await pending_for_marie(demo)
    assert [item["name"] for item in waiting] == ["Research"]
    assert waiting[0]["remoteItem"]["shared"]["owner"]["user"]["id"] == "einstein@zurich.test"
    async with demo.client("paris.test", "marie") as marie:
        accepted = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE_ID}/root/children",
            json={"remoteItem": {"id": waiting[0]["id"]}},
        )
        assert accepted.status_code == 201, accepted.text
        mountpoint = accepted.json()["remoteItem"]["driveId"]
        drives = (await marie.get("/graph/v1.0/me/drives")).json()["value"]
        assert {d["id"]: d["driveType"] for d in drives}[mountpoint] == "mountpoint"
        read = await marie.get(f"/dav/spaces/{mountpoint}/welcome.txt")
    assert read.status_code == 200, read.text
    assert read.content.startswith(b"Hello Marie")

    assert demo.stop() == 0
    assert not any(serving(port) for port in (*demo.ports.values(), demo.dns_port))


async def test_a_second_start_reuses_the_data_directory(demo: Demo) -> None:
    demo.start()
    ca = (demo.data_dir / "ca.pem").read_bytes()
    keys = sorted(p.name for p in (demo.data_dir / "zurich.test" / "federation-keys").iterdir())
    assert demo.stop() == 0

    printed = demo.start()

    assert (demo.data_dir / "ca.pem").read_bytes() == ca
    again = sorted(p.name for p in (demo.data_dir / "zurich.test" / "federation-keys").iterdir())
    assert again == keys
    async with demo.client("zurich.test", "admin") as admin:
        peers = (await admin.get("/api/v1/peers")).json()["value"]
    assert [(p["domain"], p["state"]) for p in peers] == [("paris.test", "active")]
    assert [item["name"] for item in await pending_for_marie(demo)] == ["Research"]
    assert re.search(r"Demo project/Research .* \(pending", printed)
    assert demo.stop() == 0


def test_a_port_in_use_is_refused_before_anything_starts(demo: Demo) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", demo.ports["paris.test"]))
        taken.listen()
        args = ["demo", "--data-dir", str(demo.data_dir)]
        args += ["--zurich-port", str(demo.ports["zurich.test"])]
        args += ["--paris-port", str(demo.ports["paris.test"]), "--dns-port", str(demo.dns_port)]
        done = subprocess.run(
            [*SPACEREG, *args], capture_output=True, text=True, timeout=60, env=clean_env()
        )
    assert done.returncode == 1, done.stderr
    assert "spacereg demo:" in done.stderr and "in use" in done.stderr
    assert not serving(demo.ports["zurich.test"])
