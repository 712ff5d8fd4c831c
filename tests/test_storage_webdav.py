"""The webdav driver against a real `rclone serve webdav`, and its proxy served by uvicorn."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from storage import (
    Availability,
    Change,
    ChangeSource,
    HttpChangeSource,
    PathNotFound,
    ProviderEvent,
    ProviderUnavailable,
    SpaceNotFound,
    StorageError,
    load_provider,
)
from storage.davclient import parse_xml
from storage.webdav import WebDavProvider, from_config, next_interval
from tests.servers import free_port, serve

USER, PASSWORD = "spacereg", "dav-secret"
_ids = itertools.count()


class Rclone:
    """`rclone serve webdav` on a fixed port, so it can be stopped and started again. The VFS
    directory cache is off: files written straight into `root` must show at once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("rclone", "--config", "/dev/null", "serve", "webdav", "--dir-cache-time", "0s"),
                *("--addr", f"127.0.0.1:{self.port}", "--user", USER, "--pass", PASSWORD),
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx2.request("OPTIONS", self.url, timeout=1)
                return
            except httpx2.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("rclone serve webdav did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="module")
def rclone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rclone]:
    root = tmp_path_factory.mktemp("dav")
    (root / "spaces").mkdir()
    server = Rclone(root)
    server.start()
    yield server
    server.stop()


def options(url: str, **extra: object) -> dict[str, object]:
    return {"url": url, "username": USER, "password": PASSWORD, "timeout_seconds": 2, **extra}


@pytest.fixture
async def provider(rclone: Rclone) -> AsyncIterator[WebDavProvider]:
    provider = from_config("dav", options(f"{rclone.url}/spaces/", poll_min_seconds=0.1))
    yield provider
    await provider.close()


@pytest.fixture
def space_id() -> str:
    return f"space-{next(_ids)}"


def listen(provider: ChangeSource) -> asyncio.Queue[ProviderEvent]:
    events: asyncio.Queue[ProviderEvent] = asyncio.Queue()

    async def put(event: ProviderEvent) -> None:
        events.put_nowait(event)

    provider.subscribe(put)
    return events


async def wait_for(
    events: asyncio.Queue[ProviderEvent], match: Callable[[ProviderEvent], bool], seconds: float = 5
) -> ProviderEvent:
    async with asyncio.timeout(seconds):
        while not match(event := await events.get()):
            pass
    return event


@asynccontextmanager
async def polling(provider: ChangeSource) -> AsyncIterator[None]:
    task = asyncio.create_task(provider.workers()["poll"]())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_space_lifecycle(provider, rclone, space_id):
    info = await provider.create_space(space_id)
    assert (rclone.root / "spaces" / space_id).is_dir()
    assert (info.space_id, info.root_id, info.used) == (space_id, f"{space_id}!{space_id}", 0)
    assert (await provider.create_space(space_id)).etag == info.etag  # idempotent
    assert space_id in await provider.list_spaces()

    (rclone.root / "spaces" / space_id / "docs").mkdir()
    (rclone.root / "spaces" / space_id / "docs" / "a b.txt").write_bytes(b"x" * 1000)
    (rclone.root / "spaces" / space_id / "top.txt").write_bytes(b"y" * 24)
    info2 = await provider.get_space(space_id)
    assert info2.used == 1024 and info2.etag != info.etag

    entry = await provider.stat(space_id, "/docs/a b.txt")
    assert (entry.path, entry.is_dir, entry.size) == ("/docs/a b.txt", False, 1000)
    folder = await provider.stat(space_id, "docs")
    assert (folder.is_dir, folder.size) == (True, 1000)
    root = await provider.stat(space_id, "/")
    assert (root.etag, root.size) == (info2.etag, 1024)

    await provider.set_quota(space_id, 10_000)
    await provider.delete_space(space_id)
    assert not (rclone.root / "spaces" / space_id).exists()
    assert space_id not in await provider.list_spaces()


async def test_root_etag_changes_when_a_nested_file_changes(provider, rclone, space_id):
    await provider.create_space(space_id)
    deep = rclone.root / "spaces" / space_id / "a" / "b"
    deep.mkdir(parents=True)
    etags = [(await provider.get_space(space_id)).etag]
    (deep / "f.txt").write_text("one")
    etags.append((await provider.get_space(space_id)).etag)
    (deep / "f.txt").write_text("two")  # same size: rclone's file ETag follows the mtime
    etags.append((await provider.get_space(space_id)).etag)
    (deep / "f.txt").rename(deep.parent / "g.txt")
    etags.append((await provider.get_space(space_id)).etag)
    assert len(set(etags)) == len(etags)


async def test_unknown_spaces_and_paths(provider, space_id):
    for call in (
        provider.get_space("nope"),
        provider.set_quota("nope", 1),
        provider.delete_space("nope"),
        provider.stat("nope", "/x"),
    ):
        with pytest.raises(SpaceNotFound):
            await call
    await provider.create_space(space_id)
    for path in ("/missing", "/missing/deeper", "/../other"):
        with pytest.raises(PathNotFound):
            await provider.stat(space_id, path)
    for bad in ("../escape", "s1\n"):
        with pytest.raises(StorageError, match="invalid space id"):
            await provider.create_space(bad)


async def test_unreachable_server_is_provider_unavailable():
    provider = from_config("dav", {"url": f"http://127.0.0.1:{free_port()}/spaces/"})
    for call in (provider.get_space("s"), provider.list_spaces(), provider.create_space("s")):
        with pytest.raises(ProviderUnavailable):
            await call
    await provider.close()


async def test_wrong_password_is_a_storage_error_not_unavailability(rclone):
    provider = from_config("dav", {**options(f"{rclone.url}/spaces/"), "password": "wrong"})
    with pytest.raises(StorageError, match="401") as raised:
        await provider.list_spaces()
    assert not isinstance(raised.value, ProviderUnavailable)
    await provider.close()


@pytest.mark.parametrize(
    ("bad", "option"),
    [
        ({}, "url"),
        ({"url": "ftp://example.test/"}, "url"),
        ({"url": "http://h/", "username": "u"}, "password"),
        ({"url": "http://h/", "password": "p"}, "username"),
        ({"url": "http://h/", "username": "u", "password": "p", "bearer_token": "t"}, "bearer"),
        ({"url": "http://h/", "poll_min_seconds": 0}, "poll_min_seconds"),
        ({"url": "http://h/", "poll_min_seconds": "soon"}, "poll_min_seconds"),
        ({"url": "http://h/", "poll_min_seconds": 5, "poll_max_seconds": 2}, "poll_max_seconds"),
        ({"url": "http://h/", "timeout_seconds": -1}, "timeout_seconds"),
    ],
)
def test_bad_options_name_the_option(bad, option):
    with pytest.raises(StorageError, match=option):
        load_provider("dav", "webdav", bad)


def test_driver_is_found_by_entry_point():
    provider = load_provider("dav", "webdav", {"url": "http://h/x", "callback_url": "http://c/"})
    assert isinstance(provider, WebDavProvider)
    assert provider.url == "http://h/x/" and not isinstance(provider, HttpChangeSource)


def test_poll_interval_backs_off_and_drops_back_after_a_change():
    intervals = [0.5]
    for changed in (False, False, False, False, False, True, False):
        intervals.append(next_interval(intervals[-1], changed, 0.5, 6))
    assert intervals == [0.5, 1, 2, 4, 6, 6, 0.5, 1]


async def test_poller_notices_a_file_written_on_the_server(provider, rclone, space_id):
    await provider.create_space(space_id)
    events = listen(provider)
    async with polling(provider):
        (rclone.root / "spaces" / space_id / "docs").mkdir()
        (rclone.root / "spaces" / space_id / "docs" / "hello.txt").write_text("hello")
        change = await wait_for(events, lambda e: isinstance(e, Change) and e.used == 5)
    assert isinstance(change, Change)
    assert change.space_id == space_id
    assert "/docs/hello.txt" in change.paths
    assert change.etag == (await provider.get_space(space_id)).etag


async def test_poller_reports_listed_spaces_once_then_only_changes(provider, rclone, space_id):
    (rclone.root / "spaces" / space_id).mkdir()
    await provider.list_spaces()
    events = listen(provider)
    async with polling(provider):
        first = await wait_for(events, lambda e: isinstance(e, Change) and e.space_id == space_id)
        await asyncio.sleep(0.5)
    assert first.paths == ()  # polled: nobody said where
    assert all(getattr(e, "space_id", None) != space_id for e in drain(events))


async def test_written_emits_at_once_and_only_once(provider, rclone, space_id):
    await provider.create_space(space_id)
    events = listen(provider)
    (rclone.root / "spaces" / space_id / "new.txt").write_text("new")
    await provider.written(space_id, ["/new.txt"])
    await provider.written(space_id, ["/new.txt"])
    changes = drain(events)
    assert [(c.space_id, c.paths, c.used) for c in changes] == [(space_id, ("/new.txt",), 3)]


async def test_availability_is_reported_once_each_way(tmp_path):
    server = Rclone(tmp_path)
    server.start()
    provider = from_config("dav", options(server.url, poll_min_seconds=0.05, poll_max_seconds=0.2))
    await provider.create_space("s1")
    events = listen(provider)
    try:
        async with polling(provider):
            server.stop()
            down = await wait_for(events, lambda e: isinstance(e, Availability))
            await asyncio.sleep(0.5)
            assert not any(isinstance(e, Availability) for e in drain(events))
            server.start()
            up = await wait_for(events, lambda e: isinstance(e, Availability))
    finally:
        server.stop()
        await provider.close()
    assert down == Availability("dav", False, down.reason) and "s1" in down.reason
    assert up == Availability("dav", True)


def drain(events: asyncio.Queue[ProviderEvent]) -> list[ProviderEvent]:
    found = []
    while not events.empty():
        found.append(events.get_nowait())
    return found


def test_multistatus_with_a_doctype_is_refused():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><m xmlns="DAV:">&b;</m>'
    )
    with pytest.raises(StorageError, match="DOCTYPE"):
        parse_xml(bomb)
    with pytest.raises(StorageError, match="malformed"):
        parse_xml(b"<m>&undeclared;</m>")


@pytest.fixture(scope="module")
def proxy(rclone: Rclone) -> Iterator[str]:
    """The proxy of a provider on rclone under /dav/spaces, and of one on a dead port under
    /dav/dead, served by uvicorn in its own thread (so each provider lives in that loop)."""
    live = from_config("dav", options(f"{rclone.url}/spaces/"))
    dead = from_config("dead", {"url": f"http://127.0.0.1:{free_port()}/spaces/"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await live.close()
        await dead.close()

    app = Starlette(
        routes=[Mount("/dav/spaces", app=live.dav_app()), Mount("/dav/dead", app=dead.dav_app())],
        lifespan=lifespan,
    )
    with serve(app, free_port()) as url:
        yield url


async def test_proxy_put_get_propfind_move(proxy, provider, rclone, space_id):
    await provider.create_space(space_id)
    folder = f"/dav/spaces/{space_id}"
    big = bytes(range(256)) * 8192  # 2 MiB, streamed in chunks both ways

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    async with httpx2.AsyncClient(base_url=proxy, headers={"Authorization": "Bearer host"}) as c:
        assert (await c.request("MKCOL", f"{folder}/docs/")).status_code == 201
        put = await c.put(f"{folder}/docs/big file.bin", content=chunks())
        assert put.status_code == 201
        assert (rclone.root / "spaces" / space_id / "docs" / "big file.bin").read_bytes() == big
        got = await c.get(f"{folder}/docs/big%20file.bin")
        assert got.status_code == 200 and got.content == big

        listing = await c.request("PROPFIND", f"{folder}/docs/", headers={"Depth": "1"})
        assert listing.status_code == 207
        hrefs = [r.findtext("{DAV:}href") for r in parse_xml(listing.content)]
        assert hrefs == [f"{folder}/docs/", f"{folder}/docs/big%20file.bin"]

        destination = f"{proxy}{folder}/moved.bin"
        moved = await c.request(
            "MOVE", f"{folder}/docs/big%20file.bin", headers={"Destination": destination}
        )
        assert moved.status_code in (201, 204)
        assert (rclone.root / "spaces" / space_id / "moved.bin").read_bytes() == big
        assert not (rclone.root / "spaces" / space_id / "docs" / "big file.bin").exists()


async def test_proxy_keeps_requests_inside_one_space(proxy, provider, space_id):
    await provider.create_space(space_id)
    (await provider.create_space(f"{space_id}-other"))
    async with httpx2.AsyncClient(base_url=proxy) as c:
        assert (await c.put(f"/dav/spaces/{space_id}/f.txt", content=b"f")).status_code == 201
        across = await c.request(
            "MOVE",
            f"/dav/spaces/{space_id}/f.txt",
            headers={"Destination": f"{proxy}/dav/spaces/{space_id}-other/f.txt"},
        )
        assert across.status_code == 502
        escape = await c.get(f"/dav/spaces/{space_id}/%2e%2e/{space_id}-other/")
        assert escape.status_code == 404
        everything = await c.request("PROPFIND", "/dav/spaces/", headers={"Depth": "1"})
        assert everything.status_code == 404


async def test_proxy_answers_502_when_the_server_is_down(proxy):
    async with httpx2.AsyncClient(base_url=proxy) as c:
        response = await c.get("/dav/dead/s1/f.txt")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "providerUnavailable"


async def test_proxy_rewrites_hrefs_across_chunk_boundaries(proxy, provider, rclone, space_id):
    await provider.create_space(space_id)
    for n in range(400):
        (rclone.root / "spaces" / space_id / f"file {n:03}.txt").write_text("x")
    async with httpx2.AsyncClient(base_url=proxy) as c:
        listing = await c.request("PROPFIND", f"/dav/spaces/{space_id}/", headers={"Depth": "1"})
    assert len(listing.content) > 200_000  # many chunks from rclone and uvicorn
    hrefs = [r.findtext("{DAV:}href") for r in parse_xml(listing.content)]
    assert len(hrefs) == 401
    assert all(h.startswith(f"/dav/spaces/{space_id}/") for h in hrefs)
