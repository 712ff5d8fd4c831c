"""The local driver's WebDAV app, mounted under a prefix on a real server, as clients see it."""

from __future__ import annotations

import asyncio
import filecmp
import logging
import os
import shutil
import subprocess
import time
from xml.etree import ElementTree

import httpx2
import pytest
from starlette.applications import Starlette

from storage.dav_paths import dav_mount
from storage.local import LocalProvider
from tests.servers import free_port, serve

PREFIX = "/dav/spaces"
DAV = "{DAV:}"

# Names no space may hold, percent-encoded as a client sends them: each control character;
# bytes that are not UTF-8 (a lone continuation byte, a cut sequence, an overlong form, a
# surrogate, a five-byte form, 0xFF); names of 256 bytes.
BAD_NAMES = [
    *(f"a%{code:02X}b" for code in (*range(0x20), 0x7F)),
    *("%80", "a%C3", "%C0%AF", "%ED%A0%80", "%F8%88%80%80%80", "a%FFb"),
    *("n" * 256, "%C3%A9" * 128),
]
LONGEST_NAMES = ["n" * 255, "%C3%A9" * 127 + "n"]  # 255 bytes: allowed
LONG_PATH = "/".join(["d" * 99] * 50)  # 5,000 bytes of short names


@pytest.fixture
async def provider(tmp_path):
    provider = LocalProvider("local", tmp_path / "spaces")
    for space_id in ("s1", "s2"):
        await provider.create_space(space_id)
    (tmp_path / "spaces" / "s2" / "secret.txt").write_text("s2 only")
    return provider


@pytest.fixture
def spaces(tmp_path):
    return tmp_path / "spaces"


@pytest.fixture
def server(provider):
    app = Starlette(routes=[dav_mount(PREFIX, provider.dav_app())])
    with serve(app, free_port()) as url:
        yield url


@pytest.fixture
async def dav(server):
    async with httpx2.AsyncClient(base_url=server + PREFIX, timeout=10) as client:
        yield client


async def raw_status(server: str, method: str, path: str, headers: str = "") -> int:
    """Send `path` exactly as written (httpx would remove dot segments); return the status."""
    host, port = server.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}"
        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


def propfind(body: bytes) -> dict[str, dict[str, str | None]]:
    """href -> {property name: text} from a multistatus answer."""
    found = {}
    for response in ElementTree.fromstring(body).iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href")
        prop = response.find(f"{DAV}propstat/{DAV}prop")
        found[href] = {child.tag.removeprefix(DAV): child.text for child in prop}
    return found


async def test_put_get_head_and_etags(dav, spaces):
    put = await dav.put("/s1/a.txt", content=b"hello")
    assert put.status_code == 201
    assert (spaces / "s1" / "a.txt").read_bytes() == b"hello"
    get = await dav.get("/s1/a.txt")
    assert (get.status_code, get.content) == (200, b"hello")
    assert get.headers["etag"] == put.headers["etag"]
    assert get.headers["etag"].startswith('"') and "last-modified" in get.headers
    head = await dav.head("/s1/a.txt")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "5")
    again = await dav.put("/s1/a.txt", content=b"HELLO")
    assert again.status_code == 204
    assert again.headers["etag"] != put.headers["etag"]
    assert (await dav.get("/s1/a.txt")).headers["etag"] == again.headers["etag"]
    assert not os.listdir(spaces / ".uploads")
    if os.geteuid() != 0:  # root may write anyway
        os.chmod(spaces / "s1" / "a.txt", 0o444)
        assert (await dav.put("/s1/a.txt", content=b"nope")).status_code == 403
        assert (spaces / "s1" / "a.txt").read_bytes() == b"HELLO"


async def test_etags_tell_apart_writes_within_one_second(dav, spaces):
    target = spaces / "s1" / "a.txt"
    second = int(time.time()) * 10**9
    etags = []
    for n, content in enumerate(("aaaa", "bbbb")):
        with target.open("w") as f:  # in place: same inode, same size
            f.write(content)
        os.utime(target, ns=(second, second + (n + 1) * 10**8))
        etags.append((await dav.get("/s1/a.txt")).headers["etag"])
    assert etags[0] != etags[1]


async def test_propfind_shows_etags_dates_and_prefixed_hrefs(dav, spaces):
    await dav.request("MKCOL", "/s1/folder")
    await dav.put("/s1/folder/b.txt", content=b"bee")
    await dav.put("/s1/a.txt", content=b"a")
    one = await dav.request("PROPFIND", "/s1/", headers={"Depth": "1"})
    assert one.status_code == 207
    listing = propfind(one.content)
    assert set(listing) == {f"{PREFIX}/s1/", f"{PREFIX}/s1/a.txt", f"{PREFIX}/s1/folder/"}
    for props in listing.values():
        assert props["getetag"].startswith('"') and props["getetag"].endswith('"')
        assert props["getlastmodified"].endswith("GMT")
    file_etag = (await dav.get("/s1/a.txt")).headers["etag"]
    assert listing[f"{PREFIX}/s1/a.txt"]["getetag"] == file_etag
    assert listing[f"{PREFIX}/s1/"]["quota-used-bytes"] == "4"  # the space's, not the disk's
    zero = await dav.request("PROPFIND", "/s1/folder", headers={"Depth": "0"})
    assert list(propfind(zero.content)) == [f"{PREFIX}/s1/folder/"]
    for depth in ({"Depth": "infinity"}, {}):
        refused = await dav.request("PROPFIND", "/s1/", headers=depth)
        assert refused.status_code == 403
        assert b"propfind-finite-depth" in refused.content


async def test_conditional_requests(dav, spaces):
    etag = (await dav.put("/s1/a.txt", content=b"one")).headers["etag"]
    assert (await dav.get("/s1/a.txt", headers={"If-None-Match": etag})).status_code == 304
    assert (await dav.get("/s1/a.txt", headers={"If-None-Match": '"other"'})).status_code == 200
    stale = await dav.put("/s1/a.txt", content=b"two", headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    exists = await dav.put("/s1/a.txt", content=b"two", headers={"If-None-Match": "*"})
    assert exists.status_code == 412
    missing = await dav.put("/s1/new.txt", content=b"x", headers={"If-Match": etag})
    assert missing.status_code == 412
    assert not (spaces / "s1" / "new.txt").exists()
    assert (spaces / "s1" / "a.txt").read_bytes() == b"one"
    fresh = await dav.put("/s1/a.txt", content=b"two", headers={"If-Match": etag})
    assert fresh.status_code == 204
    created = await dav.put("/s1/b.txt", content=b"b", headers={"If-None-Match": "*"})
    assert created.status_code == 201
    gone = await dav.request("DELETE", "/s1/b.txt", headers={"If-Match": etag})
    assert gone.status_code == 412


async def test_mkcol_and_delete(dav, spaces):
    assert (await dav.request("MKCOL", "/s1/d")).status_code == 201
    assert (await dav.request("MKCOL", "/s1/d")).status_code == 405
    assert (await dav.request("MKCOL", "/s1/no/parent")).status_code == 409
    await dav.put("/s1/d/f", content=b"f")
    assert (await dav.request("DELETE", "/s1/d/f")).status_code == 204
    assert (await dav.request("DELETE", "/s1/d")).status_code == 204
    assert (await dav.request("DELETE", "/s1/d")).status_code == 404
    assert os.listdir(spaces / "s1") == []


async def test_move_and_copy_with_an_absolute_destination(dav, server, spaces):
    await dav.put("/s1/a.txt", content=b"a")
    await dav.request("MKCOL", "/s1/d")
    move = await dav.request(
        "MOVE", "/s1/a.txt", headers={"Destination": f"{server}{PREFIX}/s1/d/b"}
    )
    assert move.status_code == 201
    assert (spaces / "s1" / "d" / "b").read_bytes() == b"a"
    assert not (spaces / "s1" / "a.txt").exists()
    copy = await dav.request("COPY", "/s1/d", headers={"Destination": f"{server}{PREFIX}/s1/e"})
    assert copy.status_code == 201
    assert (spaces / "s1" / "e" / "b").read_bytes() == b"a"
    keep = await dav.request(
        "COPY", "/s1/d/b", headers={"Destination": f"{PREFIX}/s1/e/b", "Overwrite": "F"}
    )
    assert keep.status_code == 412
    elsewhere = await dav.request("MOVE", "/s1/e", headers={"Destination": "http://other/x/s1/f"})
    assert elsewhere.status_code == 502
    outside = await dav.request("MOVE", "/s1/e", headers={"Destination": f"{server}/x/s1/f"})
    assert outside.status_code == 502


async def test_move_and_copy_across_spaces_are_refused(dav, server, spaces):
    await dav.put("/s1/a.txt", content=b"a")
    for method in ("MOVE", "COPY"):
        for target in ("/s2/a.txt", "/s2/", "/s1/", "/nope/a.txt"):
            answer = await dav.request(
                method, "/s1/a.txt", headers={"Destination": f"{server}{PREFIX}{target}"}
            )
            assert answer.status_code == 403, (method, target)
        from_s2 = await dav.request(
            method, "/s2/secret.txt", headers={"Destination": f"{server}{PREFIX}/s1/stolen"}
        )
        assert from_s2.status_code == 403
    assert sorted(os.listdir(spaces / "s1")) == ["a.txt"]
    assert sorted(os.listdir(spaces / "s2")) == ["secret.txt"]


async def test_space_roots_are_read_only(dav, server, spaces):
    assert (await dav.request("MKCOL", "/s3")).status_code == 403
    assert not (spaces / "s3").exists()
    assert (await dav.put("/s3", content=b"x")).status_code == 403
    for path in ("/s1", "/s1/"):
        assert (await dav.request("DELETE", path)).status_code == 403
        moved = await dav.request("MOVE", path, headers={"Destination": f"{server}{PREFIX}/s9"})
        assert moved.status_code == 403
    assert (spaces / "s1").is_dir()
    assert (await dav.request("PROPFIND", "/s1", headers={"Depth": "0"})).status_code == 207


async def test_only_existing_spaces_are_served(dav, spaces):
    (spaces / "not-created").write_text("a file, not a space")
    for path in ("/", "/nope/x", "/nope/", "/bad%20id/x", "/.uploads/", "/not-created", "//s1/"):
        assert (await dav.get(path)).status_code == 404, path
        propfound = await dav.request("PROPFIND", path, headers={"Depth": "0"})
        assert propfound.status_code == 404, path
    assert (await dav.put("/nope/x", content=b"x")).status_code == 404
    assert not (spaces / "nope").exists()


async def test_dot_segments_are_refused(server, spaces):
    for path in (
        "/s1/../s2/secret.txt",
        "/s1/%2e%2e/s2/secret.txt",
        "/s1/./a",
        "/s1/%2E%2e/%2e%2e/etc/passwd",
    ):
        assert await raw_status(server, "GET", PREFIX + path) == 400, path
    (spaces / "s1" / "a").write_text("a")
    destination = f"Destination: {server}{PREFIX}/s1/%2e%2e/s2/stolen\r\n"
    assert await raw_status(server, "COPY", f"{PREFIX}/s1/a", destination) == 400
    assert not (spaces / "s2" / "stolen").exists()


async def test_names_and_paths_no_file_system_holds_are_refused(dav, server, spaces):
    (spaces / "s1" / "a").write_text("a")

    async def move_to(path: str) -> int:
        destination = {"Destination": f"{server}{PREFIX}/s1/{path}"}
        return (await dav.request("MOVE", "/s1/a", headers=destination)).status_code

    for name in BAD_NAMES:
        assert (await dav.put(f"/s1/{name}", content=b"x")).status_code == 400, name
        assert (await dav.request("MKCOL", f"/s1/{name}")).status_code == 400, name
        assert await move_to(name) == 400, name
    assert (await dav.put(f"/s1/{LONG_PATH}", content=b"x")).status_code == 414
    assert (await dav.request("MKCOL", f"/s1/{LONG_PATH}")).status_code == 414
    assert await move_to(LONG_PATH) == 400
    assert os.listdir(spaces / "s1") == ["a"]
    for name in LONGEST_NAMES:
        assert (await dav.put(f"/s1/{name}", content=b"x")).status_code == 201, name


async def test_symbolic_links_are_not_followed(dav, spaces, tmp_path):
    (tmp_path / "outside.txt").write_text("outside")
    (spaces / "s1" / "to-s2").symlink_to(spaces / "s2")
    (spaces / "s1" / "to-outside").symlink_to(tmp_path / "outside.txt")
    (spaces / "s1" / "real.txt").write_text("real")
    for path in ("/s1/to-s2/secret.txt", "/s1/to-s2/", "/s1/to-outside"):
        assert (await dav.get(path)).status_code == 403, path
    assert (await dav.put("/s1/to-s2/planted", content=b"x")).status_code == 403
    assert not (spaces / "s2" / "planted").exists()
    listing = await dav.request("PROPFIND", "/s1/", headers={"Depth": "1"})
    assert set(propfind(listing.content)) == {f"{PREFIX}/s1/", f"{PREFIX}/s1/real.txt"}


async def test_names_that_are_not_utf8_are_left_out_of_listings(dav, spaces):
    (spaces / "s1" / "good.txt").write_text("good")
    (spaces / "s1" / os.fsdecode(b"bad\xff.txt")).write_bytes(b"bad")
    listing = await dav.request("PROPFIND", "/s1/", headers={"Depth": "1"})
    assert listing.status_code == 207
    assert set(propfind(listing.content)) == {f"{PREFIX}/s1/", f"{PREFIX}/s1/good.txt"}


async def test_an_interrupted_upload_keeps_the_old_content(dav, server, spaces, caplog):
    await dav.put("/s1/a.txt", content=b"old content")
    host, port = server.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"PUT {PREFIX}/s1/a.txt HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Length: 100000\r\n\r\n".encode()
        + b"x" * 1000
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    for _ in range(250):  # the server notices the hang-up in its own time
        if not os.listdir(spaces / ".uploads"):
            break
        await asyncio.sleep(0.02)
    assert os.listdir(spaces / ".uploads") == []
    assert (await dav.get("/s1/a.txt")).content == b"old content"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_interrupted_upload_of_a_new_file_leaves_nothing(server, spaces):
    host, port = server.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"PUT {PREFIX}/s1/new.txt HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Length: 100000\r\n\r\n".encode()
        + b"x" * 1000
    )
    await writer.drain()
    for _ in range(250):
        if (spaces / ".uploads").is_dir() and os.listdir(spaces / ".uploads"):
            break
        await asyncio.sleep(0.02)
    assert not (spaces / "s1" / "new.txt").exists()  # not even empty, while it uploads
    writer.close()
    for _ in range(250):
        if not os.listdir(spaces / ".uploads"):
            break
        await asyncio.sleep(0.02)
    assert os.listdir(spaces / ".uploads") == []
    assert not (spaces / "s1" / "new.txt").exists()


async def test_tens_of_concurrent_requests_while_slow_uploads_hold_threads(dav, server):
    await dav.put("/s1/a.txt", content=b"a" * 100_000)
    reads_done = asyncio.Event()

    async def trickle():
        """A body that stops after its first bytes until every read has been answered: reads
        that waited for a thread an upload holds would never be answered (30 s, then fail)."""
        yield b"x" * 10
        await reads_done.wait()
        yield b"x" * 10

    async with httpx2.AsyncClient(base_url=server + PREFIX, timeout=60) as uploader:
        uploads = [
            asyncio.create_task(uploader.put(f"/s1/slow{n}", content=trickle())) for n in range(16)
        ]
        await asyncio.sleep(0.2)
        try:
            answers = await asyncio.wait_for(
                asyncio.gather(
                    *(dav.get("/s1/a.txt") for _ in range(30)),
                    *(dav.request("PROPFIND", "/s1/", headers={"Depth": "1"}) for _ in range(30)),
                ),
                timeout=30,
            )
            assert not any(upload.done() for upload in uploads)  # all held open meanwhile
        finally:
            reads_done.set()
        assert sorted({a.status_code for a in answers}) == [200, 207]
        assert {(await u).status_code for u in uploads} == {201}


@pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone")
async def test_rclone_sync_round_trip(server, spaces, tmp_path):
    local = tmp_path / "local"
    (local / "docs" / "deep").mkdir(parents=True)
    (local / "top.txt").write_text("top")
    (local / "docs" / "with space & ü.txt").write_text("names")
    (local / "docs" / "deep" / "blob.bin").write_bytes(os.urandom(300_000))
    (local / "gone.txt").write_text("to be removed")

    def rclone(*args: str) -> subprocess.CompletedProcess[str]:
        url = f"{server}{PREFIX}/s1"
        command = ["rclone", "--config", "/dev/null", "--webdav-url", url, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    def same_trees() -> None:
        check = rclone("check", "--download", str(local), ":webdav:")
        assert check.returncode == 0, check.stderr
        compared = filecmp.dircmp(local, spaces / "s1")
        assert (compared.left_only, compared.right_only, compared.diff_files) == ([], [], [])
        for sub in compared.subdirs.values():
            assert (sub.left_only, sub.right_only, sub.diff_files) == ([], [], [])

    synced = await asyncio.to_thread(rclone, "sync", str(local), ":webdav:")
    assert synced.returncode == 0, synced.stderr
    await asyncio.to_thread(same_trees)

    (local / "top.txt").write_text("top, changed")
    (local / "gone.txt").unlink()
    (local / "docs" / "new.txt").write_text("new")
    synced = await asyncio.to_thread(rclone, "sync", str(local), ":webdav:")
    assert synced.returncode == 0, synced.stderr
    await asyncio.to_thread(same_trees)
    assert (spaces / "s1" / "top.txt").read_text() == "top, changed"
