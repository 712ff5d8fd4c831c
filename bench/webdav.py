"""Benchmark the registry's WebDAV against the local disk, in the same run on the same disk.

Starts `spacereg serve` as its own process on 127.0.0.1 (SQLite, the local provider under a
temporary folder), then measures, each the best of `--rounds`:

- a PUT and a GET of one `--megabytes` file through `/dav/spaces/...` (httpx2, streamed),
  against writing and reading the same bytes to a file next to the provider's root;
- PROPFIND Depth 1 of a folder of `--entries` files (asking what a sync client asks, and a dead
  property), against a bare listing of that folder
  (`os.scandir` with a `stat` of each entry), plain and with a dead property on one entry
  (which makes the gateway complete the back end's answer with the registry's properties);
- `--readers` GETs and as many PROPFINDs at once, alone and while `--uploads` PUTs hold
  their requests open (sent their first byte, not their last).

    .venv/bin/python bench/webdav.py [--megabytes 100] [--entries 10000] [--rounds 3]
        [--readers 30] [--uploads 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.processes import RegistryProcess
from tests.servers import free_port

PIECE_BYTES = 1024 * 1024
MB = 1024 * 1024
# What a sync client asks of each entry, and the dead property set on one of them.
PROPERTIES_ASKED = (
    b'<d:propfind xmlns:d="DAV:" xmlns:x="urn:bench"><d:prop><d:resourcetype/>'
    b"<d:getcontentlength/><d:getetag/><d:getlastmodified/><x:colour/></d:prop></d:propfind>"
)
DEAD_PROPERTY = (
    b'<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:bench"><d:set><d:prop>'
    b"<x:colour>blue</x:colour></d:prop></d:set></d:propertyupdate>"
)


async def best(rounds: int, run: Callable[[], Awaitable[object]]) -> float:
    """The shortest of `rounds` runs, in seconds."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await run()
        times.append(time.perf_counter() - started)
    return min(times)


def disk_write(path: Path, data: bytes) -> None:
    with path.open("wb") as file:
        for start in range(0, len(data), PIECE_BYTES):
            file.write(data[start : start + PIECE_BYTES])


def disk_read(path: Path) -> None:
    with path.open("rb") as file:
        while file.read(PIECE_BYTES):
            pass


def bare_listing(folder: Path) -> int:
    count = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            entry.stat()
            count += 1
    return count


async def pieces(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), PIECE_BYTES):
        yield data[start : start + PIECE_BYTES]


async def run(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="spacereg-bench-webdav-"))
    server = RegistryProcess(directory / "data", free_port())
    try:
        await asyncio.to_thread(server.start)
        headers = {"Authorization": f"Bearer {server.token('einstein')}"}
        async with httpx2.AsyncClient(base_url=server.url, headers=headers, timeout=300) as dav:
            space = (await dav.get("/graph/v1.0/me/drive")).json()["id"]
            await transfer(dav, space, directory, args)
            await listing(dav, space, directory / "data" / "spaces" / space, args)
            await reads_beside_uploads(dav, space, args)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def transfer(
    dav: httpx2.AsyncClient, space: str, directory: Path, args: argparse.Namespace
) -> None:
    data = os.urandom(args.megabytes * MB)
    url = f"/dav/spaces/{space}/big.bin"
    local = directory / "big.bin"

    async def put() -> None:
        response = await dav.put(url, content=pieces(data))
        assert response.status_code in (201, 204), response.text

    async def get() -> None:
        size = 0
        async with dav.stream("GET", url) as response:
            async for chunk in response.aiter_raw():
                size += len(chunk)
        assert size == len(data)

    put_s = await best(args.rounds, put)
    get_s = await best(args.rounds, get)
    write_s = await best(args.rounds, lambda: asyncio.to_thread(disk_write, local, data))
    read_s = await best(args.rounds, lambda: asyncio.to_thread(disk_read, local))
    size = args.megabytes
    print(f"== {size} MB file, best of {args.rounds} ==")
    print(rate("WebDAV PUT", put_s, size))
    print(rate("disk write", write_s, size) + f"   PUT/write {put_s / write_s:5.1f}x")
    print(rate("WebDAV GET", get_s, size))
    print(rate("disk read", read_s, size) + f"   GET/read {get_s / read_s:5.1f}x")


def rate(what: str, seconds: float, megabytes: int) -> str:
    return f"  {what:<11} {seconds:7.3f} s  {megabytes / seconds:8.1f} MB/s"


async def listing(
    dav: httpx2.AsyncClient, space: str, root: Path, args: argparse.Namespace
) -> None:
    folder = root / "many"
    folder.mkdir()
    for n in range(args.entries):
        (folder / f"file-{n:06d}.txt").write_bytes(b"x")
    await asyncio.sleep(2)  # let the provider's watcher take the new files in first
    url = f"/dav/spaces/{space}/many/"

    async def propfind() -> None:
        response = await dav.request(
            "PROPFIND", url, headers={"Depth": "1"}, content=PROPERTIES_ASKED
        )
        assert response.status_code == 207
        assert response.text.count("file-") >= args.entries

    plain_s = await best(args.rounds, propfind)
    patched = await dav.request("PROPPATCH", f"{url}file-000000.txt", content=DEAD_PROPERTY)
    assert patched.status_code == 207, patched.text
    completed_s = await best(args.rounds, propfind)
    bare_s = await best(args.rounds, lambda: asyncio.to_thread(bare_listing, folder))
    print(f"== PROPFIND Depth 1 of {args.entries:,} entries, best of {args.rounds} ==")
    print(f"  PROPFIND                       {plain_s * 1000:8.1f} ms")
    print(f"  PROPFIND, with dead properties {completed_s * 1000:8.1f} ms")
    print(f"  scandir + stat                 {bare_s * 1000:8.1f} ms", end="")
    print(f"   PROPFIND/bare {plain_s / bare_s:6.1f}x")


async def reads_beside_uploads(
    dav: httpx2.AsyncClient, space: str, args: argparse.Namespace
) -> None:
    """Reads (GET and PROPFIND) at once, alone and while uploads hold requests open: whether
    slow uploads (a phone on a bad network) hold up everyone else's reads."""
    folder = f"/dav/spaces/{space}/reads"
    assert (await dav.request("MKCOL", folder)).status_code == 201
    assert (await dav.put(f"{folder}/a.txt", content=b"a" * 100_000)).status_code == 201

    async def reads() -> None:
        answers = await asyncio.gather(
            *(dav.get(f"{folder}/a.txt") for _ in range(args.readers)),
            *(
                dav.request("PROPFIND", f"{folder}/", headers={"Depth": "1"})
                for _ in range(args.readers)
            ),
        )
        assert {a.status_code for a in answers} == {200, 207}

    alone_s = await best(args.rounds, reads)
    release = asyncio.Event()

    async def held_open() -> AsyncIterator[bytes]:
        yield b"x"
        await release.wait()

    uploads = [
        asyncio.create_task(dav.put(f"{folder}/slow-{n}", content=held_open()))
        for n in range(args.uploads)
    ]
    await asyncio.sleep(0.5)  # every upload has begun
    beside_s = await best(args.rounds, reads)
    release.set()
    await asyncio.gather(*uploads)
    print(f"== {2 * args.readers} reads at once, best of {args.rounds} ==")
    print(f"  alone                          {alone_s * 1000:8.1f} ms")
    print(f"  beside {args.uploads:3d} held-open uploads  {beside_s * 1000:8.1f} ms", end="")
    print(f"   beside/alone {beside_s / alone_s:6.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--readers", type=int, default=30, help="GETs, and as many PROPFINDs")
    parser.add_argument("--uploads", type=int, default=16, help="uploads held open meanwhile")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
