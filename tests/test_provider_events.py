"""What providers report reaches the change feed: every path written or deleted through
WebDAV is named in some `content` change, however the reports race, and nothing is named twice
at one ETag."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import update

from common.waiting import cancel_all
from registry.core.models import Space, table
from registry.runtime.wiring import build, closing
from registry.spaces import provider_events
from registry.spaces.provider_events import ProviderEvents
from storage import Change, HttpChangeSource, ProviderEvent, SpaceInfo
from tests.conftest import Registry
from tests.test_dav_gateway import RCLONE, dav, rclone
from tests.test_drives_api import create_project
from tests.waiting import eventually

PUTS = 40


async def content_after(client: httpx2.AsyncClient, space_id: str, cursor: str) -> list[dict]:
    """The data of every `content` change to the space after `cursor`, oldest first."""
    found = []
    while True:
        page = (await client.get("/api/v1/changes", params={"since": cursor})).json()
        found += [
            c["data"] for c in page["value"] if (c["type"], c["driveId"]) == ("content", space_id)
        ]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return found


async def named_after(client: httpx2.AsyncClient, space_id: str, cursor: str) -> set[str]:
    return {
        path for data in await content_after(client, space_id, cursor) for path in data["paths"]
    }


async def feed_names(
    client: httpx2.AsyncClient, space_id: str, cursor: str, paths: set[str]
) -> set[str]:
    """What changes after `cursor` name, once they name all of `paths` (or after 20 s)."""
    found: set[str] = set()

    async def all_named() -> bool:
        nonlocal found
        found = await named_after(client, space_id, cursor)
        return paths <= found

    await eventually(all_named, seconds=20, interval=0.2)
    return found


async def cursor_now(client: httpx2.AsyncClient) -> str:
    return str((await client.get("/api/v1/changes")).json()["cursor"])


async def test_every_path_of_concurrent_puts_and_deletes_is_in_the_feed(admin):
    project = await create_project(admin, "Burst")
    space_id = project["id"]
    cursor = await cursor_now(admin)
    names = [f"/f{n}.txt" for n in range(PUTS)]
    answers = await asyncio.gather(
        *(admin.put(dav(space_id, name[1:]), content=name.encode()) for name in names),
        admin.request("MKCOL", dav(space_id, "folder/")),  # named without its slash
    )
    assert {a.status_code for a in answers} == {201}
    written = {*names, "/folder"}
    assert written <= await feed_names(admin, space_id, cursor, written)

    cursor = await cursor_now(admin)
    gone = set(names[::2])
    deleted = await asyncio.gather(*(admin.delete(dav(space_id, name[1:])) for name in gone))
    assert {d.status_code for d in deleted} == {204}
    assert gone <= await feed_names(admin, space_id, cursor, gone)


@pytest.mark.skipif(not Path(RCLONE).exists(), reason="Debian's rclone is not installed")
async def test_a_sync_client_finds_every_uploaded_and_deleted_path_in_the_feed(
    registry: Registry, admin, tmp_path
):
    project = await create_project(admin, "Synced")
    space_id = project["id"]
    remote = [
        *("--webdav-url", f"{registry.url}{dav(space_id)}"),
        *("--webdav-bearer-token", registry.token("admin"), "--webdav-vendor", "other"),
    ]
    tree = tmp_path / "tree"
    files = [f"/dir{d}/sub{s}/file{f}.txt" for d in range(10) for s in range(3) for f in range(10)]
    for path in files:
        (tree / path[1:]).parent.mkdir(parents=True, exist_ok=True)
        (tree / path[1:]).write_text(path)
    folders = {f"/dir{d}" for d in range(10)} | {
        f"/dir{d}/sub{s}" for d in range(10) for s in range(3)
    }

    cursor = await cursor_now(admin)
    synced = await asyncio.to_thread(rclone, "sync", *remote, str(tree), ":webdav:")
    assert synced.returncode == 0, synced.stderr
    uploaded = {*files, *folders}
    assert uploaded <= await feed_names(admin, space_id, cursor, uploaded)

    cursor = await cursor_now(admin)
    removed = set(files[::7])
    for path in removed:
        (tree / path[1:]).unlink()
    synced = await asyncio.to_thread(rclone, "sync", *remote, str(tree), ":webdav:")
    assert synced.returncode == 0, synced.stderr
    assert removed <= await feed_names(admin, space_id, cursor, removed)


@pytest.fixture
async def reports(registry: Registry) -> AsyncIterator[ProviderEvents]:
    """A second ProviderEvents on the registry's database, running here: what is submitted to
    it is applied as if the registry's `local` provider had reported it."""
    async with closing(build(registry.settings)) as services:
        worker = asyncio.create_task(services.provider_events.run())
        try:
            yield services.provider_events
        finally:
            await cancel_all([worker])


async def test_a_report_of_the_etag_held_logs_only_paths_not_logged_at_it(admin, reports):
    project = await create_project(admin, "Reports")
    space_id = project["id"]
    cursor = await cursor_now(admin)

    async def report(*changes: tuple[str, tuple[str, ...]], until: str) -> None:
        for etag, paths in changes:
            await reports.submit("local", Change(space_id, etag, 7, paths))
        assert until in await feed_names(admin, space_id, cursor, {until})

    await report(('"e1"', ("/a.txt",)), until="/a.txt")  # a new ETag
    await report(('"e1"', ("/b/",)), until="/b")  # the same ETag, a path not named at it yet
    await report(
        ('"e1"', ("/b", "/a.txt")),  # a watcher repeating both: nothing
        ('"e1"', ()),  # a reconciliation: nothing
        ('"e1"', ("/c.txt", "/a.txt")),  # only what is new
        until="/c.txt",
    )
    await report(('"e2"', ()), until="/")  # moved, nobody said where: anywhere
    # a write's own report after that, at the same ETag, still names its path
    await report(('"e2"', ("/d.txt", "/")), until="/d.txt")
    logged = [(d["etag"], d["paths"]) for d in await content_after(admin, space_id, cursor)]
    assert logged == [
        ('"e1"', ["/a.txt"]),
        ('"e1"', ["/b"]),
        ('"e1"', ["/c.txt"]),
        ('"e2"', ["/"]),
        ('"e2"', ["/d.txt"]),
    ]


class ProviderService:
    """A provider told of changes over HTTP (`HttpChangeSource`), like `remote`: asked for a
    space, it says it differs from what the registry holds."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def subscribe(self, callback: object) -> Callable[[], None]:
        return lambda: None

    def workers(self) -> dict[str, object]:
        return {}

    def callback_app(self) -> object:
        return None

    async def get_space(self, space_id: str) -> SpaceInfo:
        self.asked.append(space_id)
        return SpaceInfo(space_id, space_id, '"changed"', 1, datetime.now(UTC))


async def test_reconciliation_logs_what_changed_while_down_and_goes_past_a_failing_space(
    registry: Registry, admin, monkeypatch: pytest.MonkeyPatch
):
    changed = [(await create_project(admin, f"Changed {n}"))["id"] for n in range(2)]
    unchanged, gone, served = [
        (await create_project(admin, name))["id"] for name in ("Same", "Gone", "Served")
    ]
    before = {
        space_id: (await admin.get(f"/graph/v1.0/drives/{space_id}")).json() for space_id in changed
    }
    shutil.rmtree(registry.settings.data_dir / "spaces" / gone)  # unreadable: skipped, not the end
    cursor = await cursor_now(admin)

    monkeypatch.setattr(provider_events, "RECONCILE_PAGE", 1)  # a page per space, one ahead
    async with closing(build(registry.settings)) as services:
        events = services.provider_events
        submitted: list[str] = []
        submit = events.submit

        async def spied(provider: str, event: ProviderEvent) -> None:
            if isinstance(event, Change):
                submitted.append(event.space_id)
            await submit(provider, event)

        monkeypatch.setattr(events, "submit", spied)
        # What a registry that was down holds: not the provider's ETag and usage.
        async with services.engine.begin() as conn:
            await conn.execute(
                update(table(Space))
                .where(table(Space).c.id.in_([*changed, served]))
                .values(etag='"missed"', quota_used=99)
            )
            await conn.execute(
                update(table(Space)).where(table(Space).c.id == served).values(provider="service")
            )
        service = ProviderService()
        assert isinstance(service, HttpChangeSource)
        providers = {**services.providers, "service": service}
        reconciling = asyncio.create_task(events.reconcile(providers))
        applying = None
        try:
            assert await eventually(lambda: len(submitted) == 2)
            await asyncio.sleep(0.3)
            assert not reconciling.done()  # it waits for what it found to be applied
            applying = asyncio.create_task(events.run())
            await asyncio.wait_for(reconciling, 30)
        finally:
            await cancel_all([t for t in (reconciling, applying) if t is not None])

    assert sorted(submitted) == sorted(changed)  # nothing for the unchanged or unreadable
    assert service.asked == []  # it reports every space itself after subscribing
    for space_id in changed:
        etag, used = before[space_id]["root"]["eTag"], before[space_id]["quota"]["used"]
        logged = await content_after(admin, space_id, cursor)
        assert [(d["etag"], d["paths"]) for d in logged] == [(etag, ["/"])]
        after = (await admin.get(f"/graph/v1.0/drives/{space_id}")).json()
        assert (after["root"]["eTag"], after["quota"]["used"]) == (etag, used)
    for space_id in (unchanged, gone):
        assert await content_after(admin, space_id, cursor) == []
