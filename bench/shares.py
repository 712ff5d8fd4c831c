"""Benchmark of cross-domain shares, in one run, with two registries (`spacereg serve`, each
its own process, as deployed) peered over TLS on loopback:

1. share to pending: the time from Einstein's invite at zurich until the share is listed as
   pending in Marie's `sharedWithMe` at paris (delivered through zurich's outbox), p50 and max;
2. reads of 1 MB files through paris's gateway (which forwards to zurich with a share token)
   against the same files read from zurich directly: the time of one read at a time, then
   MB/s of reads four at a time as medians of paired rounds, and their ratio (target: the
   gateway at least 0.7 of direct). The bench client and both registries share the machine's
   cores: the gateway's path keeps three processes busy where the direct one keeps two.

    .venv/bin/python bench/shares.py [--shares N] [--files N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.discovery import wait_for_port
from registry.runtime.demo_ca import CertFiles, make_certs
from registry.shares.share_json import SHARES_DRIVE_ID
from tests.processes import clean_env, stop_process
from tests.servers import free_port

MB = 1024 * 1024
TARGET_RATIO = 0.7
READS_AT_ONCE = 4


@dataclass
class Registry:
    url: str
    env: dict[str, str]
    data_dir: Path

    def spacereg(self, *args: str) -> str:
        command = [sys.executable, "-m", "registry", "--data-dir", str(self.data_dir), *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, check=True)
        return done.stdout.strip().splitlines()[-1]

    def client(self, user: str, certs: CertFiles) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.spacereg('token', user)}"},
            verify=ssl.create_default_context(cafile=certs.ca_file),
            timeout=30,
        )


@contextmanager
def registries(root: Path) -> Iterator[tuple[Registry, Registry, CertFiles]]:
    certs = make_certs(root, ["127.0.0.1"])
    found = []
    with ExitStack() as stack:
        for name in ("zurich", "paris"):
            port = free_port()
            url = f"https://127.0.0.1:{port}"
            env = clean_env(
                PYTHONPATH=str(Path(__file__).resolve().parent.parent),
                SPACEREG_PORT=str(port),
                SPACEREG_BASE_URL=url,
                SPACEREG_TLS_CERTFILE=certs.cert_file,
                SPACEREG_TLS_KEYFILE=certs.key_file,
                SPACEREG_CA_FILE=certs.ca_file,
                SPACEREG_ALLOW_PRIVATE_NETWORKS="127.0.0.1/32",
            )
            registry = Registry(url, env, root / name)
            command = [sys.executable, "-m", "registry", "--data-dir", str(root / name), "serve"]
            server = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            # a registry waits at shutdown for the idle connections its peer's pool keeps to
            # it, and the peer is stopping too: not for long
            stack.callback(stop_process, server, seconds=5)
            wait_for_port(port, 60)
            found.append(registry)
        zurich, paris = found
        paris.spacereg("peer", "accept", zurich.spacereg("peer", "invite"))
        yield zurich, paris, certs


async def share_folder(
    einstein: httpx2.AsyncClient, drive: str, folder: str, recipient: str
) -> None:
    body = {"recipients": [{"objectId": recipient}], "roles": ["editor"]}
    answer = await einstein.post(f"/graph/v1beta1/drives/{drive}/root:/{folder}:/invite", json=body)
    assert answer.status_code == 200, answer.text


async def accepted(
    einstein: httpx2.AsyncClient,
    marie: httpx2.AsyncClient,
    drive: str,
    folder: str,
    recipient: str,
) -> tuple[dict[str, Any], str]:
    """Einstein shares `folder` with Marie, who accepts it: the share as she was offered it,
    and her mountpoint's drive id."""
    await share_folder(einstein, drive, folder, recipient)
    waiting = await asyncio.wait_for(pending(marie, folder), 30)
    answer = await marie.post(
        f"/graph/v1beta1/drives/{SHARES_DRIVE_ID}/root/children",
        json={"remoteItem": {"id": waiting["id"]}},
    )
    return waiting, str(answer.json()["remoteItem"]["driveId"])


async def pending(marie: httpx2.AsyncClient, name: str) -> dict[str, Any]:
    while True:
        items = (await marie.get("/graph/v1beta1/me/drive/sharedWithMe")).json()["value"]
        for item in items:
            if item["name"] == name and item["@spacereg.state"] == "pending":
                return dict(item)
        await asyncio.sleep(0.01)


async def read_all(client: httpx2.AsyncClient, urls: list[str]) -> float:
    """MB/s of reading every URL once, READS_AT_ONCE at a time."""
    start = time.perf_counter()
    total = 0

    async def one(url: str) -> None:
        nonlocal total
        async with client.stream("GET", url) as response:
            assert response.status_code == 200, response.status_code
            async for chunk in response.aiter_raw():
                total += len(chunk)

    for batch in range(0, len(urls), READS_AT_ONCE):
        await asyncio.gather(*(one(url) for url in urls[batch : batch + READS_AT_ONCE]))
    return total / MB / (time.perf_counter() - start)


async def measure(zurich: Registry, paris: Registry, certs: CertFiles, args: Any) -> None:
    recipient = f"marie@{paris.url.removeprefix('https://')}"
    async with zurich.client("einstein", certs) as einstein, paris.client("marie", certs) as marie:
        drive = (await einstein.get("/graph/v1beta1/me/drive")).json()["id"]
        seconds = []
        for number in range(args.shares):
            assert (await einstein.request("MKCOL", f"/dav/spaces/{drive}/s{number}")).is_success
            start = time.perf_counter()
            await share_folder(einstein, drive, f"s{number}", recipient)
            await asyncio.wait_for(pending(marie, f"s{number}"), 30)
            seconds.append(time.perf_counter() - start)
        p50, worst = statistics.median(seconds) * 1000, max(seconds) * 1000
        print(f"share to pending ({args.shares} shares): p50 {p50:.0f} ms, max {worst:.0f} ms")

        assert (await einstein.request("MKCOL", f"/dav/spaces/{drive}/read")).is_success
        names = [f"{number}.bin" for number in range(args.files)]
        for name in names:
            put = await einstein.put(f"/dav/spaces/{drive}/read/{name}", content=os.urandom(MB))
            assert put.status_code == 201
        waiting, mountpoint = await accepted(einstein, marie, drive, "read", recipient)
        share_space = waiting["remoteItem"]["webDavUrl"].rsplit("/", 1)[-1]
        through = [f"/dav/spaces/{mountpoint}/{name}" for name in names]
        direct = [f"/dav/spaces/{share_space}/{name}" for name in names]
        await read_all(marie, through[:READS_AT_ONCE])  # warm: the token, the connections
        await read_all(einstein, direct[:READS_AT_ONCE])
        gateway, straight = [], []
        for label, client, urls in (("paris", marie, through), ("zurich", einstein, direct)):
            start = time.perf_counter()
            for url in urls[:8]:
                await client.get(url)
            each_ms = (time.perf_counter() - start) / 8 * 1000
            print(f"  one 1 MB file at a time, via {label}: {each_ms:.1f} ms each")
        for _round in range(args.rounds):
            gateway.append(await read_all(marie, through))
            straight.append(await read_all(einstein, direct))
    via, at = statistics.median(gateway), statistics.median(straight)
    ratio = via / at
    verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
    print(
        f"1 MB reads ({args.files} files x {args.rounds} rounds, {READS_AT_ONCE} at once):"
        f" through paris {via:.1f} MB/s, zurich directly {at:.1f} MB/s, ratio {ratio:.2f}"
        f" (target >= {TARGET_RATIO}) {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=int, default=10)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root, registries(Path(root)) as (zurich, paris, certs):
        asyncio.run(measure(zurich, paris, certs, args))


if __name__ == "__main__":
    main()
