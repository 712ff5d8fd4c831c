"""WebDAV of spaces through the registry: a real client syncs, roles and quota are enforced,
every write, through WebDAV or straight on disk, reaches change subscribers, and a space can be
served by a WebDAV back end other than its provider's."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from registry.runtime.app import create_app
from registry.runtime.wiring import build
from registry.spaces.dav_backends import DavBackends, SpaceFiles
from storage import Entry, PathNotFound, SpaceInfo
from tests.conftest import Registry, migrate, registry_settings
from tests.processes import install_idp_key
from tests.servers import free_port, serve
from tests.sse import events
from tests.test_drives_api import assert_error, create_project
from tests.test_permissions_api import VIEWER, invite
from tests.test_storage_dav import BAD_NAMES, LONG_PATH, LONGEST_NAMES, propfind

RCLONE = "/usr/bin/rclone"


def dav(space_id: str, path: str = "") -> str:
    return f"/dav/spaces/{space_id}/{path}"


async def personal_space(client) -> dict:
    return (await client.get("/graph/v1.0/me/drive")).json()


def rclone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RCLONE, "--config", "/dev/null", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(not Path(RCLONE).exists(), reason="Debian's rclone is not installed")
async def test_rclone_syncs_a_space_through_the_registry(registry: Registry, einstein, tmp_path):
    space = await personal_space(einstein)
    remote = [
        "--webdav-url",
        f"{registry.url}{dav(space['id'])}",
        "--webdav-bearer-token",
        registry.token("einstein"),
        "--webdav-vendor",
        "other",
    ]
    tree = tmp_path / "tree"
    (tree / "papers" / "1905").mkdir(parents=True)
    (tree / "papers" / "1905" / "relativity.txt").write_text("E = mc^2\n")
    (tree / "notes.md").write_text("# Notes\n" * 100)
    (tree / "empty.bin").write_bytes(b"")

    for change in range(2):
        if change:
            (tree / "papers" / "1905" / "relativity.txt").write_text("E = mc^2, probably\n")
            (tree / "notes.md").unlink()
        synced = rclone("sync", *remote, str(tree), ":webdav:")
        assert synced.returncode == 0, synced.stderr
        checked = rclone("check", *remote, str(tree), ":webdav:")
        assert checked.returncode == 0, checked.stderr

    back = tmp_path / "back"
    copied = rclone("copy", *remote, ":webdav:", str(back))
    assert copied.returncode == 0, copied.stderr
    assert (back / "papers" / "1905" / "relativity.txt").read_text() == "E = mc^2, probably\n"
    assert not (back / "notes.md").exists()
    drive = await personal_space(einstein)
    assert drive["quota"]["used"] == len("E = mc^2, probably\n")
    assert drive["root"]["eTag"] != space["root"]["eTag"]


async def test_viewers_read_editors_write_and_others_see_nothing(registry: Registry, admin):
    project = await create_project(admin, "Library")
    await invite(admin, project["id"], "einstein", VIEWER)
    assert (await admin.put(dav(project["id"], "book.txt"), content=b"pages")).status_code == 201

    async with registry.client("einstein") as einstein:
        read = await einstein.get(dav(project["id"], "book.txt"))
        assert (read.status_code, read.content) == (200, b"pages")
        listing = await einstein.request("PROPFIND", dav(project["id"]), headers={"Depth": "1"})
        assert listing.status_code == 207 and b"book.txt" in listing.content
        assert_error(
            await einstein.put(dav(project["id"], "mine.txt"), content=b"x"), 403, "accessDenied"
        )
        assert_error(await einstein.delete(dav(project["id"], "book.txt")), 403, "accessDenied")
    async with registry.client("marie") as marie:
        assert_error(await marie.get(dav(project["id"], "book.txt")), 404, "itemNotFound")
    async with registry.client() as anonymous:
        assert_error(await anonymous.get(dav(project["id"], "book.txt")), 401, "unauthenticated")
    assert_error(await admin.get(dav("no-such-space", "x")), 404, "itemNotFound")


def allowed(response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


async def test_options_names_what_the_caller_may_do_and_other_methods_get_405(
    registry: Registry, admin
):
    project = await create_project(admin, "Methods")
    await invite(admin, project["id"], "einstein", VIEWER)
    writes = {"PUT", "MKCOL", "DELETE", "MOVE", "COPY", "PROPPATCH", "LOCK", "UNLOCK"}
    reads = {"OPTIONS", "GET", "HEAD", "PROPFIND"}
    for path in ("", "papers/", "notes.txt"):
        response = await admin.options(dav(project["id"], path))
        assert response.status_code == 200, response.text
        assert allowed(response) == reads | writes
        async with registry.client("einstein") as einstein:
            assert allowed(await einstein.options(dav(project["id"], path))) == reads
    for method in ("PATCH", "POST", "SEARCH"):
        response = await admin.request(method, dav(project["id"], "notes.txt"))
        assert_error(response, 405, "methodNotAllowed")
        assert allowed(response) == reads | writes


async def test_writes_over_quota_are_refused_with_507(admin):
    project = await create_project(admin, "Small", quota={"total": 1000})
    space = dav(project["id"])
    assert (await admin.put(space + "a.bin", content=b"a" * 600)).status_code == 201
    over = await admin.put(space + "b.bin", content=b"b" * 600)
    assert_error(over, 507, "quotaLimitReached")
    # Replacing a file counts only the difference.
    assert (await admin.put(space + "a.bin", content=b"a" * 900)).status_code == 204

    async def chunks():
        for _ in range(4):
            yield b"c" * 100

    chunked = await admin.put(space + "c.bin", content=chunks())
    assert_error(chunked, 507, "quotaLimitReached")
    assert (await admin.get(space + "b.bin")).status_code == 404
    assert (await admin.get(space + "c.bin")).status_code == 404


async def test_move_and_copy_stay_inside_one_space(registry: Registry, admin):
    first = await create_project(admin, "First")
    second = await create_project(admin, "Second")
    await admin.put(dav(first["id"], "f.txt"), content=b"f")
    across = await admin.request(
        "MOVE",
        dav(first["id"], "f.txt"),
        headers={"Destination": f"{registry.url}{dav(second['id'], 'f.txt')}"},
    )
    assert_error(across, 403, "accessDenied")
    inside = await admin.request(
        "MOVE",
        dav(first["id"], "f.txt"),
        headers={"Destination": f"{registry.url}{dav(first['id'], 'g.txt')}"},
    )
    assert inside.status_code == 201
    assert (await admin.get(dav(first["id"], "g.txt"))).content == b"f"


async def test_names_and_paths_no_space_can_hold_get_json_errors(registry: Registry, admin):
    project = await create_project(admin, "Names")
    await admin.put(dav(project["id"], "a"), content=b"a")

    async def move_to(path: str):
        destination = {"Destination": f"{registry.url}{dav(project['id'], path)}"}
        return await admin.request("MOVE", dav(project["id"], "a"), headers=destination)

    for name in BAD_NAMES:
        assert_error(await admin.put(dav(project["id"], name), content=b"x"), 400, "invalidRequest")
        assert_error(await admin.request("MKCOL", dav(project["id"], name)), 400, "invalidRequest")
        assert_error(await move_to(name), 400, "invalidRequest")
    assert_error(await admin.put(dav(project["id"], LONG_PATH), content=b"x"), 414, "uriTooLong")
    assert_error(await admin.request("MKCOL", dav(project["id"], LONG_PATH)), 414, "uriTooLong")
    assert_error(await move_to(LONG_PATH), 400, "invalidRequest")
    listing = await admin.request("PROPFIND", dav(project["id"]), headers={"Depth": "1"})
    assert len(propfind(listing.content)) == 2  # the space and "a"
    for name in LONGEST_NAMES:
        assert (await admin.put(dav(project["id"], name), content=b"x")).status_code == 201


async def test_webdav_write_reaches_an_sse_client_with_etag_usage_and_path(
    registry: Registry, einstein
):
    space = await personal_space(einstein)
    async with events(registry.url, registry.token("einstein")) as stream:
        assert (await einstein.put(dav(space["id"], "hello.txt"), content=b"hi")).status_code == 201
        event = await stream.next(seconds=3)
    assert (event.type, event.data["driveId"]) == ("content", space["id"])
    assert event.data["data"]["paths"] == ["/hello.txt"]
    drive = await personal_space(einstein)
    assert drive["root"]["eTag"] == event.data["data"]["etag"] != space["root"]["eTag"]
    assert drive["quota"]["used"] == event.data["data"]["used"] == 2


async def test_change_on_disk_reaches_an_sse_client(registry: Registry, einstein):
    space = await personal_space(einstein)
    on_disk = registry.settings.data_dir / "spaces" / space["id"]
    async with events(registry.url, registry.token("einstein")) as stream:
        await asyncio.sleep(0.3)  # the watcher is up
        (on_disk / "written-by-hand.txt").write_text("no WebDAV involved")
        event = await stream.next(seconds=3)
    assert event.type == "content"
    assert "/written-by-hand.txt" in event.data["data"]["paths"]
    assert event.data["data"]["used"] == len("no WebDAV involved")


class PeerBackend:
    """Stands in for the WebDAV back end of a space held by a peer (a proxy to the peer's
    WebDAV), which does not exist yet: it records the requests that reach it, answers them
    itself, and reports the space as `used` bytes full."""

    def __init__(self, used: int) -> None:
        self.used = used
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.requests.append((scope["method"], scope["path"][len(scope["root_path"]) :]))
        await PlainTextResponse("from the peer")(scope, receive, send)

    async def get_space(self, space_id: str) -> SpaceInfo:
        return SpaceInfo(space_id, f"{space_id}!{space_id}", '"peer"', self.used, datetime.now(UTC))

    async def stat(self, space_id: str, path: str) -> Entry:
        raise PathNotFound(path)


class ServedElsewhere:
    """The spaces in `served` go to the peer's back end, all others to the registry's own."""

    def __init__(self, own: DavBackends, peer: PeerBackend) -> None:
        self.own = own
        self.peer = SpaceFiles(peer, peer)
        self.served: set[str] = set()

    def for_space(self, space: Any) -> SpaceFiles | None:
        return self.peer if space.id in self.served else self.own.for_space(space)


@pytest.fixture
def peer_served(
    tmp_path: Path, idp_key_dir: Path
) -> Iterator[tuple[Registry, set[str], PeerBackend]]:
    """A registry whose gateway hands the spaces put in the yielded set to a peer back end."""
    settings = registry_settings(tmp_path / "data", free_port())
    migrate(settings)
    install_idp_key(idp_key_dir, settings.data_dir)
    services = build(settings)
    peer = PeerBackend(used=1000)
    elsewhere = ServedElsewhere(services.dav_backends, peer)
    app = create_app(settings, replace(services, dav_backends=elsewhere))
    with serve(app, settings.port) as url:
        yield Registry(url, app, settings), elsewhere.served, peer


async def test_a_space_with_another_back_end_gets_its_requests_after_the_same_checks(
    peer_served: tuple[Registry, set[str], PeerBackend],
) -> None:
    registry, served, peer = peer_served
    async with registry.client("admin") as admin:
        mounted = await create_project(admin, "Mounted", quota={"total": 1000})
        own = await create_project(admin, "Own", quota={"total": 1000})
        await invite(admin, mounted["id"], "einstein", VIEWER)
        served.add(mounted["id"])

        got = await admin.get(dav(mounted["id"], "paper.txt"))
        assert (got.status_code, got.text) == (200, "from the peer")
        # The quota is checked on the usage the peer's back end reports: it is full.
        over = await admin.put(dav(mounted["id"], "more.txt"), content=b"x")
        assert_error(over, 507, "quotaLimitReached")
        assert (await admin.put(dav(own["id"], "note.txt"), content=b"x")).status_code == 201
        assert (await admin.get(dav(own["id"], "note.txt"))).content == b"x"
    async with registry.client("einstein") as einstein:
        assert (await einstein.get(dav(mounted["id"], "paper.txt"))).text == "from the peer"
        refused = await einstein.put(dav(mounted["id"], "mine.txt"), content=b"x")
        assert_error(refused, 403, "accessDenied")
    async with registry.client("marie") as marie:
        assert_error(await marie.get(dav(mounted["id"], "paper.txt")), 404, "itemNotFound")
    assert peer.requests == [("GET", f"/{mounted['id']}/paper.txt")] * 2
