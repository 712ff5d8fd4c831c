"""The `remote` driver against a running provider service, hosted by a real Starlette app that
serves its callback and WebDAV apps: subscription, deliveries, availability, reconciliation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from common.bounded import read_body
from common.webhook_signature import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from storage import (
    Availability,
    Change,
    DavBackend,
    HttpChangeSource,
    PathNotFound,
    ProviderEvent,
    ProviderUnavailable,
    SpaceNotFound,
    StorageError,
    load_provider,
)
from storage.remote import RemoteProvider
from storage.signatures import MAX_SIGNED_BODY_BYTES, replayed
from tests.servers import free_port
from tests.test_provider_service import SECRET, Service, serve_here


class Recording:
    """Passes requests through to `app`, keeping each POST's headers and body for replays."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.posts: list[tuple[list[tuple[bytes, bytes]], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, MAX_SIGNED_BODY_BYTES)
        assert body is not None
        self.posts.append((list(scope["headers"]), body))
        await self.app(scope, replayed(body, receive), send)


@dataclass
class Host:
    """A registry stand-in: one remote provider, its callback and WebDAV apps, its worker."""

    url: str
    driver: RemoteProvider
    callbacks: Recording
    events: asyncio.Queue[ProviderEvent] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.worker = asyncio.create_task(self.driver.workers()["subscription"]())

    async def next(self, want: Callable[[ProviderEvent], bool], wait: float = 5) -> ProviderEvent:
        """The next event that `want` accepts (others are skipped)."""
        async with asyncio.timeout(wait):
            while True:
                event = await self.events.get()
                if want(event):
                    return event

    async def delivered_paths(self, space_id: str, paths: set[str]) -> Change:
        """Delivered changes of a space until they named all `paths` (the local driver's watcher
        and the service's write hook may report one write as one change or two; `/` names
        every path); the last."""
        seen: set[str] = set()
        while not (paths <= seen or "/" in seen):
            change = await self.next(change_of(space_id, delivered=True))
            assert isinstance(change, Change)
            seen.update(change.paths)
        return change

    def quiet(self) -> list[ProviderEvent]:
        drained = []
        while not self.events.empty():
            drained.append(self.events.get_nowait())
        return drained


def available(state: bool) -> Callable[[ProviderEvent], bool]:
    return lambda e: isinstance(e, Availability) and e.available is state


def change_of(space_id: str, delivered: bool) -> Callable[[ProviderEvent], bool]:
    return lambda e: (
        isinstance(e, Change) and e.space_id == space_id and (e.event_id is not None) is delivered
    )


@pytest.fixture
def service(tmp_path: Path) -> Any:
    running = Service(tmp_path / "provider", min_lease_seconds=1)
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def hosted(service: Service, **options: Any) -> AsyncIterator[Host]:
    port = free_port()
    driver = RemoteProvider(
        "p1",
        service.url,
        options.pop("secret", SECRET),
        f"http://127.0.0.1:{port}/callbacks/p1",
        probe_seconds=0.2,
        retry_seconds=(0.05, 0.3),
        **options,
    )
    callbacks = Recording(driver.callback_app())
    app = Starlette(
        routes=[
            Route("/callbacks/p1", callbacks, methods=["GET", "POST"]),
            Mount("/dav/spaces", app=driver.dav_app()),
        ]
    )
    async with serve_here(app, port) as url:
        host = Host(url, driver, callbacks)

        async def record(event: ProviderEvent) -> None:
            await host.events.put(event)

        driver.subscribe(record)
        try:
            yield host
        finally:
            if host.worker is not None:
                host.worker.cancel()
                await asyncio.gather(host.worker, return_exceptions=True)
            await driver.close()


@pytest.fixture
async def host(service: Service) -> AsyncIterator[Host]:
    async for running in hosted(service):
        yield running


async def test_subscribing_reports_every_space_then_deliveries(host, service):
    await host.driver.create_space("before")  # no subscription yet: only reconciliation tells
    host.start()
    await host.next(available(True))
    reconciled = await host.next(change_of("before", delivered=False))
    assert reconciled.paths == ()  # a reconciliation names no paths
    assert reconciled.etag == (await host.driver.get_space("before")).etag
    created = await host.driver.create_space("s1")
    delivered = await host.next(change_of("s1", delivered=True))
    assert (delivered.etag, delivered.used) == (created.etag, 0)


async def test_a_webdav_write_through_the_host_reaches_the_driver(host):
    host.start()
    await host.next(available(True))
    await host.driver.create_space("s1")
    await host.next(change_of("s1", delivered=True))
    async with httpx2.AsyncClient(base_url=host.url, timeout=10) as client:
        put = await client.put("/dav/spaces/s1/notes.txt", content=b"relativity")
        assert put.status_code in (201, 204), put.text
        change = await host.delivered_paths("s1", {"/notes.txt"})
        assert change.used == 10
        assert change.etag == (await host.driver.get_space("s1")).etag
        assert (await client.get("/dav/spaces/s1/notes.txt")).content == b"relativity"
        listing = await client.request("PROPFIND", "/dav/spaces/s1/", headers={"Depth": "1"})
        assert listing.status_code == 207
        assert b"/dav/spaces/s1/notes.txt" in listing.content
        moved = await client.request(
            "MOVE",
            "/dav/spaces/s1/notes.txt",
            headers={"Destination": f"{host.url}/dav/spaces/s1/moved.txt"},
        )
        assert moved.status_code in (201, 204), moved.text
        await host.delivered_paths("s1", {"/notes.txt", "/moved.txt"})
    entry = await host.driver.stat("s1", "/moved.txt")
    assert (entry.is_dir, entry.size) == (False, 10)


async def test_a_repeated_delivery_is_dropped_and_a_forged_one_refused(host):
    host.start()
    await host.next(available(True))
    await host.driver.create_space("s1")
    await host.next(change_of("s1", delivered=True))
    headers, body = host.callbacks.posts[-1]
    signed = {ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER}
    plain = {k.decode(): v.decode() for k, v in headers if k.decode() in signed}
    async with httpx2.AsyncClient(timeout=10) as client:
        url = f"{host.url}/callbacks/p1"
        repeated = await client.post(url, content=body, headers=plain)
        assert repeated.status_code == 204
        forged = await client.post(url, content=body.replace(b"s1", b"s2"), headers=plain)
        assert forged.status_code == 401
        asked = await client.get(
            url, params={"mode": "subscribe", "topic": "disk1", "challenge": "c"}
        )
        assert asked.status_code == 404  # no subscription is being requested now
    await asyncio.sleep(0.2)
    # Neither the repeat nor the forgery was delivered. (The driver's reconciliation after it
    # subscribed may still report s1, undelivered, if it listed the space after its creation.)
    delivered = [e for e in host.quiet() if isinstance(e, Change) and e.event_id is not None]
    assert delivered == []


async def test_errors_of_the_service_become_storage_errors(host, service):
    with pytest.raises(SpaceNotFound):
        await host.driver.get_space("nope")
    await host.driver.create_space("s1")
    with pytest.raises(PathNotFound):
        await host.driver.stat("s1", "/missing")
    with pytest.raises(StorageError) as invalid:
        await host.driver.create_space("../x")
    assert not isinstance(invalid.value, (SpaceNotFound, ProviderUnavailable))
    await host.driver.set_quota("s1", 100)
    assert await host.driver.list_spaces() == ["s1"]
    await host.driver.delete_space("s1")
    assert await host.driver.list_spaces() == []


async def test_a_wrong_shared_secret_makes_the_provider_unavailable(service):
    async for host in hosted(service, secret="w" * 40):
        with pytest.raises(ProviderUnavailable, match="401"):
            await host.driver.list_spaces()
        event = await host.next(available(False))
        assert "401" in event.reason


async def test_provider_down_then_up_is_reported_and_reconciled(host, service):
    await host.driver.create_space("s1")
    host.start()
    await host.next(available(True))
    await host.next(change_of("s1", delivered=False))
    await asyncio.to_thread(service.stop)
    with pytest.raises(ProviderUnavailable):
        await host.driver.list_spaces()
    assert (await host.next(available(False))).reason
    async with httpx2.AsyncClient(base_url=host.url, timeout=10) as client:
        down = await client.get("/dav/spaces/s1/")
        assert down.status_code == 502
        assert down.json()["error"]["code"] == "providerUnavailable"
    # Changed while no one could tell: only reconciliation reports it.
    (service.root / "s1" / "offline.txt").write_bytes(b"while down")
    await asyncio.to_thread(service.start)
    await host.next(available(True))
    reconciled = await host.next(change_of("s1", delivered=False))
    assert reconciled.used == len(b"while down")
    assert [e for e in host.quiet() if isinstance(e, Availability)] == []  # each state once


async def test_the_lease_is_renewed_before_it_runs_out(service):
    async for host in hosted(service, lease_seconds=1):
        await host.driver.create_space("s1")
        host.start()
        for _ in range(3):  # subscribed, then renewed twice: each time reconciled
            await host.next(change_of("s1", delivered=False), wait=3)
        assert len([e for e in host.quiet() if isinstance(e, Availability)]) == 0


def test_options_are_checked(tmp_path):
    good = {"url": "http://p:9200", "secret": SECRET, "callback_url": "http://r/cb/p1"}
    provider = load_provider("p1", "remote", good)
    assert isinstance(provider, RemoteProvider)
    assert isinstance(provider, DavBackend) and isinstance(provider, HttpChangeSource)
    for bad, complaint in [
        ({**good, "secret": "short"}, "secret"),
        ({**good, "url": "p:9200"}, "url"),
        ({k: v for k, v in good.items() if k != "callback_url"}, "callback_url"),
        ({**good, "lease_seconds": "soon"}, "bad number"),
        ({**good, "lease_seconds": 0}, "must be > 0"),
        ({**good, "colour": "blue"}, "unknown options colour"),
    ]:
        with pytest.raises(StorageError, match=complaint):
            load_provider("p1", "remote", bad)
