"""Benchmark of cross-domain shares, in one run, with two registries (zurich.test and
paris.test) peered over TLS on loopback with the tests' DNS server, as `tests/federation`
runs them (in this process, each server in a thread):

1. share to pending: the time from Einstein's invite at zurich until the share is listed as
   pending in Marie's `sharedWithMe` at paris (delivered through zurich's outbox), p50 and max;
2. reads of 1 MB files through paris's gateway (which forwards to zurich with a share token)
   against the same files read from zurich directly, MB/s as medians of paired rounds, and
   their ratio (target: the gateway at least 0.7 of direct).

    .venv/bin/python bench/shares.py [--shares N] [--files N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.auth.idp.keys import IdpKeys
from tests.federation.test_peering import Pair, peered, two_registries
from tests.federation.test_shares import (
    SHARES_DRIVE,
    project_with_folder,
    share,
    waiting_for_marie,
)

MB = 1024 * 1024
TARGET_RATIO = 0.7


class TempDirs:
    """What `two_registries` asks of pytest's tmp_path_factory."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self._root))


async def share_to_pending(pair: Pair, count: int) -> list[float]:
    drive = await project_with_folder(pair, "Bench timing", "timed")
    seconds = []
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        for number in range(count):
            folder = f"a/rel/timed/{number}"
            assert (
                await einstein.request("MKCOL", f"/dav/spaces/{drive}/{folder}")
            ).status_code == 201
            start = time.perf_counter()
            assert (await share(pair.zurich, pair, drive, folder)).status_code == 200
            await waiting_for_marie(pair, str(number))
            seconds.append(time.perf_counter() - start)
    return seconds


async def read_all(client: httpx2.AsyncClient, urls: list[str]) -> float:
    """MB/s of reading every URL once, four at a time."""
    start = time.perf_counter()
    total = 0

    async def one(url: str) -> None:
        nonlocal total
        async with client.stream("GET", url) as response:
            assert response.status_code == 200, response.status_code
            async for chunk in response.aiter_raw():
                total += len(chunk)

    for batch in range(0, len(urls), 4):
        await asyncio.gather(*(one(url) for url in urls[batch : batch + 4]))
    return total / MB / (time.perf_counter() - start)


async def gateway_against_direct(pair: Pair, files: int, rounds: int) -> tuple[float, float]:
    drive = await project_with_folder(pair, "Bench reads", "read")
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        for number in range(files):
            put = await einstein.put(
                f"/dav/spaces/{drive}/a/rel/read/{number}.bin", content=bytes(MB)
            )
            assert put.status_code == 201
    granted = await share(pair.zurich, pair, drive, "/a/rel/read")
    assert granted.status_code == 200
    waiting = await waiting_for_marie(pair, "read")
    async with pair.paris.client(pair.certs, "marie") as marie:
        accepted = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
    mountpoint = accepted.json()["remoteItem"]["driveId"]
    share_space = waiting["remoteItem"]["webDavUrl"].rsplit("/", 1)[-1]
    names = [f"{number}.bin" for number in range(files)]
    through = [f"/dav/spaces/{mountpoint}/{name}" for name in names]
    direct = [f"/dav/spaces/{share_space}/{name}" for name in names]
    gateway_mbs, direct_mbs = [], []
    async with (
        pair.paris.client(pair.certs, "marie") as marie,
        pair.zurich.client(pair.certs, "einstein") as einstein,
    ):
        marie.event_hooks["response"] = []  # no schema checks on file bodies
        einstein.event_hooks["response"] = []
        await read_all(marie, through[:1])  # warm: the token, the connections
        await read_all(einstein, direct[:1])
        for _round in range(rounds):
            gateway_mbs.append(await read_all(marie, through))
            direct_mbs.append(await read_all(einstein, direct))
    return statistics.median(gateway_mbs), statistics.median(direct_mbs)


async def measure(pair: Pair, args: argparse.Namespace) -> None:
    await peered(pair)
    seconds = await share_to_pending(pair, args.shares)
    print(
        f"share to pending ({args.shares} shares): p50 {statistics.median(seconds) * 1000:.0f} ms,"
        f" max {max(seconds) * 1000:.0f} ms"
    )
    gateway, direct = await gateway_against_direct(pair, args.files, args.rounds)
    ratio = gateway / direct
    verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
    print(
        f"1 MB reads ({args.files} files x {args.rounds} rounds): through paris {gateway:.1f}"
        f" MB/s, zurich directly {direct:.1f} MB/s, ratio {ratio:.2f}"
        f" (target >= {TARGET_RATIO}) {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=int, default=10)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        dirs = TempDirs(Path(root))
        key_dir = dirs.mktemp("idp-key")
        IdpKeys.load_or_create(key_dir)
        with two_registries(dirs, key_dir) as pair:  # type: ignore[arg-type]
            asyncio.run(measure(pair, args))


if __name__ == "__main__":
    main()
