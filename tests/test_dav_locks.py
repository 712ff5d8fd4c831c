"""WebDAV locks through the registry: a lock keeps writers without its token out (423), its
token in an If header lets them in, UNLOCK and the timeout end it, a locked folder protects
what is below it, and bad LOCK and UNLOCK requests get JSON errors."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from registry.core.models import DavLock
from tests.clock import FakeClock
from tests.conftest import Registry, running_registry
from tests.rows import rows_of
from tests.test_dav_gateway import dav, personal_space
from tests.test_drives_api import assert_error, create_project
from tests.test_permissions_api import invite

EDITOR = "editor"


def lockinfo(scope: str = "exclusive", owner: str = "einstein's editor") -> bytes:
    return (
        '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:">'
        f"<d:lockscope><d:{scope}/></d:lockscope><d:locktype><d:write/></d:locktype>"
        f"<d:owner>{owner}</d:owner></d:lockinfo>"
    ).encode()


async def lock(client, url: str, **headers: str) -> str:
    response = await client.request("LOCK", url, content=lockinfo(), headers=headers)
    assert response.status_code in (200, 201), response.text
    assert "<d:lockdiscovery>" in response.text
    return response.headers["lock-token"].strip("<>")


async def test_a_lock_keeps_writers_without_its_token_out(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    url = dav(space, "paper.txt")
    await einstein.put(url, content=b"draft")
    token = await lock(einstein, url)
    assert token.startswith("opaquelocktoken:")

    assert_error(await einstein.put(url, content=b"theirs"), 423, "locked")
    assert_error(await einstein.delete(url), 423, "locked")
    moved = await einstein.request("MOVE", url, headers={"Destination": dav(space, "x.txt")})
    assert_error(moved, 423, "locked")
    ours = await einstein.put(url, content=b"final", headers={"If": f"(<{token}>)"})
    assert ours.status_code == 204, ours.text
    wrong_etag = await einstein.put(url, content=b"x", headers={"If": f'(<{token}> ["nope"])'})
    assert_error(wrong_etag, 412, "preconditionFailed")
    # An If header holds on reads too: it names the current entity tag or it fails.
    etag = (await einstein.head(url)).headers["etag"]
    assert (await einstein.get(url, headers={"If": f"([{etag}])"})).content == b"final"
    assert_error(await einstein.get(url, headers={"If": '(["old"])'}), 412, "preconditionFailed")

    found = await einstein.request(
        "PROPFIND",
        url,
        headers={"Depth": "0"},
        content=b'<d:propfind xmlns:d="DAV:"><d:prop><d:lockdiscovery/></d:prop></d:propfind>',
    )
    assert token in found.text and "einstein's editor" in found.text

    unlocked = await einstein.request("UNLOCK", url, headers={"Lock-Token": f"<{token}>"})
    assert unlocked.status_code == 204
    assert (await einstein.put(url, content=b"free")).status_code == 204
    assert (await einstein.get(url)).content == b"free"


async def test_a_locked_folder_protects_what_is_below_it(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    await einstein.request("MKCOL", dav(space, "book"))
    token = await lock(einstein, dav(space, "book/"), Depth="infinity")
    assert_error(await einstein.put(dav(space, "book/ch1.txt"), content=b"x"), 423, "locked")
    assert_error(await einstein.delete(dav(space, "book")), 423, "locked")
    tagged = {"If": f"<{registry.url}{dav(space, 'book/')}> (<{token}>)"}
    inside = await einstein.request("LOCK", dav(space, "book/new.txt"), content=lockinfo())
    assert_error(inside, 423, "locked")  # and nothing was made for that lock
    assert (await einstein.get(dav(space, "book/new.txt"))).status_code == 404
    made = await einstein.put(dav(space, "book/ch1.txt"), content=b"x", headers=tagged)
    assert made.status_code == 201, made.text
    assert (await einstein.delete(dav(space, "book"), headers=tagged)).status_code == 204
    # The lock went with the folder: a new one at the same place is free.
    await einstein.request("MKCOL", dav(space, "book"))
    assert (await einstein.put(dav(space, "book/ch1.txt"), content=b"x")).status_code == 201


async def test_a_depth_0_lock_on_a_folder_protects_its_membership(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    await einstein.request("MKCOL", dav(space, "box"))
    await einstein.put(dav(space, "box/old.txt"), content=b"old")
    token = await lock(einstein, dav(space, "box/"), Depth="0")
    assert_error(await einstein.put(dav(space, "box/new.txt"), content=b"x"), 423, "locked")
    assert_error(await einstein.request("MKCOL", dav(space, "box/sub")), 423, "locked")
    assert_error(await einstein.delete(dav(space, "box/old.txt")), 423, "locked")
    # A member's content is not the folder's membership: it may change without the token.
    assert (await einstein.put(dav(space, "box/old.txt"), content=b"new")).status_code == 204
    tagged = {"If": f"<{registry.url}{dav(space, 'box/')}> (<{token}>)"}
    made = await einstein.put(dav(space, "box/new.txt"), content=b"x", headers=tagged)
    assert made.status_code == 201, made.text


async def test_exclusive_and_shared_locks(registry: Registry, admin):
    project = await create_project(admin, "Shared locks")
    await invite(admin, project["id"], "einstein", EDITOR)
    url = dav(project["id"], "notes.txt")
    await admin.put(url, content=b"n")
    shared = lockinfo("shared")
    first = await admin.request("LOCK", url, content=shared)
    assert first.status_code == 200
    async with registry.client("einstein") as einstein:
        second = await einstein.request("LOCK", url, content=shared)
        assert second.status_code == 200, second.text
        assert_error(await einstein.request("LOCK", url, content=lockinfo()), 423, "locked")
        # A token is its taker's: einstein cannot remove the admin's lock, nor use its token.
        admins = first.headers["lock-token"]
        assert_error(
            await einstein.request("UNLOCK", url, headers={"Lock-Token": admins}),
            403,
            "accessDenied",
        )
        theirs = {"If": f"({admins})"}
        mine = {"If": f"({second.headers['lock-token']})"}
        assert_error(await einstein.put(url, content=b"x", headers=theirs), 423, "locked")
        assert (await einstein.put(url, content=b"x", headers=mine)).status_code == 204


async def test_a_lock_ends_at_its_timeout_and_refreshes(tmp_path: Path, idp_key_dir: Path):
    clock = FakeClock()
    with running_registry(tmp_path / "data", idp_key_dir, clock) as registry:
        async with registry.client("einstein") as einstein:
            space = (await personal_space(einstein))["id"]
            url = dav(space, "a.txt")
            await einstein.put(url, content=b"a")
            token = await lock(einstein, url, Timeout="Second-60")
            clock.advance(timedelta(seconds=50))
            refreshed = await einstein.request(
                "LOCK", url, headers={"If": f"(<{token}>)", "Timeout": "Second-60"}
            )
            assert refreshed.status_code == 200, refreshed.text
            assert re.search(r"Second-60<", refreshed.text)
            clock.advance(timedelta(seconds=50))
            assert_error(await einstein.put(url, content=b"b"), 423, "locked")
            clock.advance(timedelta(seconds=11))
            assert (await einstein.put(url, content=b"b")).status_code == 204
        await registry.app.state.services.retention.sweep(clock.now())
        assert await rows_of(registry, DavLock) == 0


async def test_lock_and_unlock_failures_are_json_errors(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    url = dav(space, "a.txt")
    await einstein.put(url, content=b"a")
    assert_error(await einstein.request("LOCK", url, content=b"<broken"), 400, "invalidRequest")
    assert_error(await einstein.request("LOCK", url, content=b"<a/>"), 400, "invalidRequest")
    one = await einstein.request("LOCK", url, content=lockinfo(), headers={"Depth": "1"})
    assert_error(one, 400, "invalidRequest")
    no_scope = b'<d:lockinfo xmlns:d="DAV:"><d:locktype><d:write/></d:locktype></d:lockinfo>'
    assert_error(await einstein.request("LOCK", url, content=no_scope), 400, "invalidRequest")
    assert_error(await einstein.request("LOCK", url), 400, "invalidRequest")  # refresh of what?
    refresh = await einstein.request("LOCK", url, headers={"If": "(<opaquelocktoken:nope>)"})
    assert_error(refresh, 412, "preconditionFailed")
    assert_error(await einstein.request("UNLOCK", url), 400, "invalidRequest")
    unknown = await einstein.request("UNLOCK", url, headers={"Lock-Token": "<opaquelocktoken:x>"})
    assert_error(unknown, 409, "lockTokenMatchesRequestUri")
    assert_error(
        await einstein.put(url, content=b"x", headers={"If": "(<a"}), 400, "invalidRequest"
    )
    assert_error(await einstein.put(url, content=b"x", headers={"If": "()"}), 400, "invalidRequest")
    assert (await einstein.get(url)).content == b"a"


async def test_a_lock_on_nothing_makes_an_empty_file(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    made = await einstein.request("LOCK", dav(space, "new.txt"), content=lockinfo())
    assert made.status_code == 201, made.text
    assert (await einstein.get(dav(space, "new.txt"))).content == b""
    nowhere = await einstein.request("LOCK", dav(space, "no/such/dir.txt"), content=lockinfo())
    assert nowhere.status_code == 409
    options = await einstein.options(dav(space, ""))
    assert options.headers["dav"] == "1, 2"
