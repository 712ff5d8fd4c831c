"""Benchmark what the ownCloud properties cost the local driver's WebDAV: PROPFIND Depth 1 of a
folder of 10,000 files with the properties sync clients ask for (recursive folder ETags, ids,
sizes, checksums, permissions), against the same PROPFIND of plain WebDAV properties and a bare
directory listing (`os.scandir` with a stat per entry); and what a write deep in a tree costs
the next listing of its top folder, whose recursive ETag it changed.

    .venv/bin/python bench/folder_etags.py [--files 10000] [--depth 20] [--rounds 5]

The driver's WebDAV app is served by uvicorn on 127.0.0.1 and asked with httpx2, as clients do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from starlette.applications import Starlette

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.dav_paths import dav_mount
from storage.local import LocalProvider
from storage.oc_props import PERMISSIONS_HEADER, QUOTA_HEADER
from tests.servers import free_port, serve

CLIENT_PROPS = (
    b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:resourcetype/>'
    b"<d:getlastmodified/><d:getcontentlength/><d:getetag/><oc:id/><oc:fileid/>"
    b"<oc:permissions/><oc:size/><oc:checksums/><oc:share-types/></d:prop></d:propfind>"
)
PLAIN_PROPS = (
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getlastmodified/>'
    b"<d:getcontentlength/><d:getetag/></d:prop></d:propfind>"
)
HEADERS = {PERMISSIONS_HEADER: "DNVWCK", QUOTA_HEADER: "0", "Depth": "1"}


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f} ms"


async def timed_propfind(client: httpx2.AsyncClient, path: str, body: bytes) -> float:
    start = time.perf_counter()
    answer = await client.request("PROPFIND", path, headers=HEADERS, content=body)
    elapsed = time.perf_counter() - start
    assert answer.status_code == 207, answer.text[:200]
    return elapsed


def bare_listing(folder: Path) -> float:
    start = time.perf_counter()
    with os.scandir(folder) as entries:
        for entry in entries:
            entry.stat(follow_symlinks=False)
    return time.perf_counter() - start


async def run(files: int, depth: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "spaces"
        provider = LocalProvider("bench", root)
        await provider.create_space("s1")
        wide = root / "s1" / "wide"
        wide.mkdir()
        for i in range(files):
            (wide / f"file-{i:05d}.txt").write_bytes(b"x" * (i % 512))
        deep = root / "s1" / "deep"
        leaf = deep.joinpath(*(f"level-{i}" for i in range(depth)))
        leaf.mkdir(parents=True)
        app = Starlette(routes=[dav_mount("/dav", provider.dav_app())])
        with serve(app, free_port()) as url:
            async with httpx2.AsyncClient(base_url=f"{url}/dav/s1", timeout=600) as client:
                first = await timed_propfind(client, "/wide/", CLIENT_PROPS)
                client_props = [await timed_propfind(client, "/wide/", CLIENT_PROPS)]
                client_props += [
                    await timed_propfind(client, "/wide/", CLIENT_PROPS) for _ in range(rounds - 1)
                ]
                plain = [await timed_propfind(client, "/wide/", PLAIN_PROPS) for _ in range(rounds)]
                bare = [bare_listing(wide) for _ in range(rounds)]
                await timed_propfind(client, "/", CLIENT_PROPS)
                after_write = []
                for i in range(rounds):
                    await client.put(
                        f"/deep/{'/'.join(leaf.relative_to(deep).parts)}/f{i}", content=b"y"
                    )
                    after_write.append(await timed_propfind(client, "/", CLIENT_PROPS))
                unchanged = [await timed_propfind(client, "/", CLIENT_PROPS) for _ in range(rounds)]
    print(f"PROPFIND Depth 1 of a folder of {files} files (median of {rounds}):")
    print(f"  client properties, first (ids given, checksums read): {first * 1000:8.1f} ms")
    print(f"  client properties, again:                             {median_ms(client_props)}")
    print(f"  plain WebDAV properties:                              {median_ms(plain)}")
    print(f"  bare directory listing (scandir + stat):              {median_ms(bare)}")
    print(f"PROPFIND Depth 1 of a space's root, {depth} folders above the file written:")
    print(f"  after a write at the bottom:                          {median_ms(after_write)}")
    print(f"  nothing written since:                                {median_ms(unchanged)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.files, args.depth, args.rounds))


if __name__ == "__main__":
    main()
