"""Cross-domain shares between two real registries, zurich.test and paris.test, peered, over
TLS on loopback with the real DNS server of these tests: Einstein at zurich shares a folder
(or a whole space) with marie@paris.test; paris records it pending; Marie accepts or declines;
the mountpoint comes and goes in her drives and change feed; Einstein sees the state.

The registries are those of `test_peering` (one pair per module)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx2
import pytest
from defusedxml import ElementTree

from federation.safe_http import SafeHttpClient
from federation.signing import OcmSignatureAuth
from registry.auth import user_store
from registry.changes import log as changes_log
from registry.runtime.federation_wiring import discovery_config
from registry.shares.store import incoming_by_id
from tests.federation import test_peering
from tests.federation.peer_pair import Pair, Site, peered, signed_post
from tests.sse import EventReader

pair = test_peering.pair  # the module's own pair of registries

SHARES_DRIVE = "a0ca6a90a3654782871ed44447bbc668"
EDITOR = "58c63c02-1d89-4572-916a-870abc5a1b7d"
VIEWER = "a8d5fe5e-96e3-418d-825b-534dbdf22b99"
T = TypeVar("T")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def eventually(probe: Callable[[], Awaitable[T | None]], seconds: float = 15) -> T:
    """The first answer of `probe` that is not None, within `seconds` (a queued delivery)."""
    for _attempt in range(int(seconds * 10)):
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("not within time")


async def project_with_folder(pair: Pair, name: str, leaf: str = "path") -> str:
    """A project space at zurich that Einstein manages, holding /a/rel/<leaf>/hello.txt
    (each test shares a folder of its own name: Marie's lists hold every test's shares)."""
    zurich, certs = pair.zurich, pair.certs
    async with zurich.client(certs) as admin:
        created = await admin.post("/graph/v1beta1/drives", json={"name": name})
        assert created.status_code == 201, created.text
        drive = str(created.json()["id"])
        invite = {"recipients": [{"objectId": "einstein"}], "roles": ["manager"]}
        assert (
            await admin.post(f"/graph/v1beta1/drives/{drive}/root/invite", json=invite)
        ).is_success
    async with zurich.client(certs, "einstein") as einstein:
        for folder in ("a", "a/rel", f"a/rel/{leaf}"):
            made = await einstein.request("MKCOL", f"/dav/spaces/{drive}/{folder}")
            assert made.status_code == 201, made.text
        put = await einstein.put(f"/dav/spaces/{drive}/a/rel/{leaf}/hello.txt", content=b"E = mc^2")
        assert put.status_code == 201, put.text
    return drive


async def share(
    site: Site, pair: Pair, drive: str, path: str, role: str = EDITOR
) -> httpx2.Response:
    body = {
        "recipients": [{"objectId": "marie@paris.test", "@libre.graph.recipient.type": "user"}],
        "roles": [role],
    }
    where = "root/invite" if path == "/" else f"root:/{path.strip('/')}:/invite"
    async with site.client(pair.certs, "einstein") as einstein:
        return await einstein.post(f"/graph/v1beta1/drives/{drive}/{where}", json=body)


async def waiting_for_marie(pair: Pair, name: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        async with pair.paris.client(pair.certs, "marie") as marie:
            items = (await marie.get("/graph/v1beta1/me/drive/sharedWithMe")).json()["value"]
        return next(
            (i for i in items if i["name"] == name and i["@spacereg.state"] == "pending"), None
        )

    return await eventually(probe)


async def state_at_zurich(pair: Pair, share_name: str, state: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        async with pair.zurich.client(pair.certs, "einstein") as einstein:
            items = (await einstein.get("/graph/v1beta1/me/drive/sharedByMe")).json()["value"]
        found = [
            i
            for i in items
            if i["name"] == share_name and i["permissions"][0]["@spacereg.state"] == state
        ]
        return found[-1] if found else None  # the newest

    return await eventually(probe)


async def marie_drives(pair: Pair) -> dict[str, dict[str, Any]]:
    async with pair.paris.client(pair.certs, "marie") as marie:
        response = await marie.get("/graph/v1beta1/me/drives")
    assert response.status_code == 200
    return {drive["id"]: drive for drive in response.json()["value"]}


async def test_a_shared_folder_waits_for_marie_is_accepted_listed_and_removed(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Relativity")
    async with pair.paris.client(pair.certs, "marie") as marie:
        cursor = (await marie.get("/api/v1/changes")).json()["cursor"]

    response = await share(pair.zurich, pair, drive, "/a/rel/path")

    assert response.status_code == 200, response.text
    granted = response.json()["value"][0]
    assert granted["grantedToV2"]["remote"]["id"] == "marie@paris.test"
    assert granted["roles"] == [EDITOR]
    waiting = await waiting_for_marie(pair, "path")
    assert waiting["@client.synchronize"] is False
    shares_drive = (await marie_drives(pair))[SHARES_DRIVE]
    assert (shares_drive["driveType"], shares_drive["driveAlias"]) == ("virtual", "virtual/shares")
    assert "webDavUrl" not in shares_drive["root"]  # its shares are drives with URLs of their own
    assert waiting["remoteItem"]["shared"]["owner"]["user"]["id"] == "einstein@zurich.test"
    assert waiting["remoteItem"]["permissions"][0]["roles"] == [EDITOR]
    sent = await state_at_zurich(pair, "path", "pending")
    share_space = sent["remoteItem"]["driveId"]
    assert waiting["remoteItem"]["webDavUrl"] == f"{pair.zurich.base_url}/dav/spaces/{share_space}"

    async with pair.paris.client(pair.certs, "marie") as marie:
        accepted = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["@client.synchronize"] is True
    mountpoint_id = accepted.json()["remoteItem"]["driveId"]
    mountpoint = (await marie_drives(pair))[mountpoint_id]
    assert mountpoint["driveType"] == "mountpoint"
    assert mountpoint["name"] == "path"
    assert mountpoint["root"]["webDavUrl"] == f"{pair.paris.base_url}/dav/spaces/{mountpoint_id}"
    assert mountpoint["root"]["remoteItem"]["webDavUrl"] == waiting["remoteItem"]["webDavUrl"]
    assert mountpoint["root"]["permissions"][0]["roles"] == [EDITOR]
    async with pair.paris.client(pair.certs, "marie") as marie:
        feed = (await marie.get("/api/v1/changes", params={"since": cursor})).json()["value"]
    assert [(c["driveId"], c["type"]) for c in feed] == [(mountpoint_id, "created")]
    await state_at_zurich(pair, "path", "accepted")

    # Marie's files, through paris: read what Einstein wrote, write what he then reads.
    files = f"/dav/spaces/{mountpoint_id}"
    async with pair.paris.client(pair.certs, "marie") as marie:
        read = await marie.get(f"{files}/hello.txt")
        assert (read.status_code, read.content) == (200, b"E = mc^2")
        etag = read.headers["etag"]
        assert (
            await marie.get(f"{files}/hello.txt", headers={"If-None-Match": etag})
        ).status_code == 304
        listing = await marie.request("PROPFIND", f"{files}/", headers={"Depth": "1"})
        assert listing.status_code == 207
        assert f"{files}/hello.txt" in listing.text
        assert share_space not in listing.text
        wrote = await marie.put(f"{files}/from-marie.txt", content=b"radium")
        assert wrote.status_code == 201, wrote.text
        stale = await marie.put(f"{files}/hello.txt", content=b"x", headers={"If-Match": '"old"'})
        assert stale.status_code == 412
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        held = await einstein.get(f"/dav/spaces/{drive}/a/rel/path/from-marie.txt")
    assert held.content == b"radium"

    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        removed = await einstein.delete(
            f"/graph/v1beta1/drives/{share_space}/root/permissions/{granted['id']}"
        )
    assert removed.status_code == 204

    async def gone() -> bool | None:
        return True if mountpoint_id not in await marie_drives(pair) else None

    await eventually(gone)
    async with pair.paris.client(pair.certs, "marie") as marie:
        assert (await marie.get(f"{files}/hello.txt")).status_code == 404
        feed = (await marie.get("/api/v1/changes", params={"since": cursor})).json()["value"]
    assert (mountpoint_id, "deleted") in [(c["driveId"], c["type"]) for c in feed]


async def test_marie_declines_and_einstein_sees_it(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Declined")
    assert (await share(pair.zurich, pair, drive, "/a/rel")).status_code == 200
    waiting = await waiting_for_marie(pair, "rel")

    async with pair.paris.client(pair.certs, "marie") as marie:
        declined = await marie.delete(f"/graph/v1beta1/drives/{SHARES_DRIVE}/items/{waiting['id']}")
        assert declined.status_code == 204
        again = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "share_state_conflict"
    sent = await state_at_zurich(pair, "rel", "declined")
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        space = await einstein.get(f"/graph/v1beta1/drives/{sent['remoteItem']['driveId']}")
    members = [p["grantedToV2"] for p in space.json()["root"]["permissions"]]
    assert all("remote" not in m for m in members)  # the declined recipient lost access


async def test_sharing_twice_is_idempotent(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Twice")
    first = await share(pair.zurich, pair, drive, "/a")
    second = await share(pair.zurich, pair, drive, "a/")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    await waiting_for_marie(pair, "a")
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        items = (await einstein.get("/graph/v1beta1/me/drive/sharedByMe")).json()["value"]
    assert len([i for i in items if i["parentReference"]["driveId"] == drive]) == 1


async def test_a_folder_named_by_its_item_id_is_the_folder_of_its_path(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "By id", leaf="by-id")
    other = await project_with_folder(pair, "Other", leaf="other")
    body = {"recipients": [{"objectId": "marie@paris.test"}], "roles": [EDITOR]}
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        found = await einstein.request(
            "PROPFIND",
            f"/dav/spaces/{drive}/a/rel/by-id/",
            headers={"Depth": "0"},
            content=b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
            b"<d:prop><oc:id/><oc:fileid/></d:prop></d:propfind>",
        )
        assert found.status_code == 207, found.text
        props = ElementTree.fromstring(found.content)
        item_id = props.findtext(".//{http://owncloud.org/ns}id")
        file_id = props.findtext(".//{http://owncloud.org/ns}fileid")
        assert item_id and file_id, found.text

        async def invite(drive_id: str, item: str) -> httpx2.Response:
            url = f"/graph/v1beta1/drives/{drive_id}/items/{item}/invite"
            return await einstein.post(url, json=body)

        by_id, by_file_id = await invite(drive, item_id), await invite(drive, file_id)
        elsewhere, unknown = await invite(other, item_id), await invite(drive, f"{drive}!9999")
    by_path = await share(pair.zurich, pair, drive, "/a/rel/by-id")
    assert by_id.status_code == by_file_id.status_code == by_path.status_code == 200, by_id.text
    assert by_id.json() == by_file_id.json() == by_path.json()  # one share, however named
    assert (elsewhere.status_code, unknown.status_code) == (404, 404)
    assert (await waiting_for_marie(pair, "by-id"))["name"] == "by-id"


async def test_a_share_space_serves_its_folder_and_nothing_above(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Folder", "served")
    assert (await share(pair.zurich, pair, drive, "/a/rel/served")).status_code == 200
    sent = await state_at_zurich(pair, "served", "pending")
    share_space = sent["remoteItem"]["driveId"]
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        listing = await einstein.request(
            "PROPFIND", f"/dav/spaces/{share_space}/", headers={"Depth": "1"}
        )
        assert listing.status_code == 207
        assert f"/dav/spaces/{share_space}/hello.txt" in listing.text
        assert drive not in listing.text
        read = await einstein.get(f"/dav/spaces/{share_space}/hello.txt")
        assert read.content == b"E = mc^2"
        refused = await einstein.delete(f"/dav/spaces/{share_space}/")
        assert refused.status_code == 403
        above = await einstein.get(f"/dav/spaces/{share_space}/../rel/served/hello.txt")
        assert above.status_code in (400, 404)

        before = {
            d: (await einstein.get(f"/graph/v1beta1/drives/{d}")).json()["root"]["eTag"]
            for d in (drive, share_space)
        }
        put = await einstein.put(f"/dav/spaces/{share_space}/new.txt", content=b"new")
        assert put.status_code == 201
        held = await einstein.get(f"/dav/spaces/{drive}/a/rel/served/new.txt")
        assert held.content == b"new"

        async def both_changed() -> bool | None:
            for d in (drive, share_space):
                now = (await einstein.get(f"/graph/v1beta1/drives/{d}")).json()["root"]["eTag"]
                if now == before[d]:
                    return None
            return True

        await eventually(both_changed)


async def test_a_whole_space_is_shared_with_a_federated_member(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Whole")
    response = await share(pair.zurich, pair, drive, "/", VIEWER)
    assert response.status_code == 200, response.text
    waiting = await waiting_for_marie(pair, "Whole")
    assert waiting["remoteItem"]["webDavUrl"] == f"{pair.zurich.base_url}/dav/spaces/{drive}"
    assert waiting["remoteItem"]["permissions"][0]["roles"] == [VIEWER]
    async with pair.paris.client(pair.certs, "marie") as marie:
        accepted = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
        files = f"/dav/spaces/{accepted.json()['remoteItem']['driveId']}"
        read = await marie.get(f"{files}/a/rel/path/hello.txt")
        assert (read.status_code, read.content) == (200, b"E = mc^2")
        assert (await marie.request("MKCOL", f"{files}/mine")).status_code == 403  # a viewer
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        space = (await einstein.get(f"/graph/v1beta1/drives/{drive}")).json()
    remote = [
        p["grantedToV2"]["remote"]
        for p in space["root"]["permissions"]
        if "remote" in p["grantedToV2"]
    ]
    assert [r["id"] for r in remote] == ["marie@paris.test"]


async def test_share_unshared_by_the_recipient_is_a_decline(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Unshared", "left")
    await share(pair.zurich, pair, drive, "/a/rel/left")
    sent = await state_at_zurich(pair, "left", "pending")
    notice = {
        "notificationType": "SHARE_UNSHARED",
        "resourceType": "folder",
        "providerId": sent["id"],
    }
    status, _answer, _headers = await signed_post(
        pair.paris, pair.zurich.base_url + "/ocm/notifications", notice
    )
    assert status == 201
    await state_at_zurich(pair, "left", "declined")
    status, answer, _headers = await signed_post(
        pair.zurich, pair.zurich.base_url + "/ocm/notifications", notice
    )
    assert status in (401, 403), answer  # zurich itself is no peer of this share


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"recipients": [{"objectId": "marie@nowhere.test"}], "roles": ["editor"]}, 403),
        ({"recipients": [{"objectId": "einstein"}], "roles": ["editor"]}, 403),
        ({"recipients": [{"objectId": "marie@paris.test"}], "roles": ["owner"]}, 400),
    ],
)
async def test_a_folder_share_that_cannot_be_made_is_refused(
    pair: Pair, body: dict[str, Any], status: int
) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, f"Refused {status} {len(str(body))}")
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        response = await einstein.post(f"/graph/v1beta1/drives/{drive}/root:/a:/invite", json=body)
        missing = await einstein.post(
            f"/graph/v1beta1/drives/{drive}/root:/nothing/here:/invite",
            json={"recipients": [{"objectId": "marie@paris.test"}], "roles": ["editor"]},
        )
    assert response.status_code == status, response.text
    assert missing.status_code == 404, missing.text


async def test_a_viewer_reads_but_cannot_write_and_a_role_change_reaches_her(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Viewer", "viewed")
    granted = (await share(pair.zurich, pair, drive, "/a/rel/viewed", VIEWER)).json()["value"][0]
    waiting = await waiting_for_marie(pair, "viewed")
    sent = await state_at_zurich(pair, "viewed", "pending")
    async with pair.paris.client(pair.certs, "marie") as marie:
        accepted = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
        files = f"/dav/spaces/{accepted.json()['remoteItem']['driveId']}"
        assert (await marie.get(f"{files}/hello.txt")).content == b"E = mc^2"
        refused = await marie.put(f"{files}/nope.txt", content=b"no")
        assert refused.status_code == 403

    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        changed = await einstein.patch(
            f"/graph/v1beta1/drives/{sent['remoteItem']['driveId']}/root/permissions/{granted['id']}",
            json={"roles": [EDITOR]},
        )
    assert changed.status_code == 200, changed.text

    async def may_write() -> bool | None:
        async with pair.paris.client(pair.certs, "marie") as marie:
            wrote = await marie.put(f"{files}/now.txt", content=b"yes")
        return True if wrote.status_code == 201 else None

    await eventually(may_write)


async def test_a_share_token_opens_its_share_only_and_ends_with_it(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Tokens", "tokened")
    await share(pair.zurich, pair, drive, "/a/rel/tokened")
    waiting = await waiting_for_marie(pair, "tokened")
    sent = await state_at_zurich(pair, "tokened", "pending")
    share_space = sent["remoteItem"]["driveId"]
    async with pair.paris.services.engine.connect() as conn:
        secret = (await incoming_by_id(conn, waiting["id"])).secret  # paris's to know
    token_url = pair.zurich.base_url + "/ocm/token"
    form = {"grant_type": "authorization_code", "client_id": "paris.test", "code": secret}

    status, answer = await signed_form(pair.paris, token_url, form)
    assert status == 200, answer
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 600
    token = answer["access_token"]
    status, wrong = await signed_form(pair.paris, token_url, {**form, "code": "guess"})
    assert (status, wrong["error"]) == (400, "invalid_grant")
    status, wrong = await signed_form(pair.paris, token_url, {**form, "client_id": "zurich.test"})
    assert status in (400, 401, 403)

    async with pair.zurich.client(pair.certs) as anyone:
        anyone.headers["Authorization"] = f"Bearer {token}"
        assert (await anyone.get(f"/dav/spaces/{share_space}/hello.txt")).content == b"E = mc^2"
        assert (await anyone.get(f"/dav/spaces/{drive}/a/rel/tokened/hello.txt")).status_code == 404
        async with pair.zurich.client(pair.certs, "einstein") as einstein:
            await einstein.delete(f"/graph/v1beta1/drives/{share_space}")  # disable
            purged = await einstein.delete(
                f"/graph/v1beta1/drives/{share_space}", headers={"Purge": "T"}
            )
            assert purged.status_code == 204, purged.text
        assert (await anyone.get(f"/dav/spaces/{share_space}/hello.txt")).status_code == 401

    async def mountpoint_gone() -> bool | None:  # the purge was told paris: SHARE_UNSHARED
        async with pair.paris.client(pair.certs, "marie") as marie:
            items = (await marie.get("/graph/v1beta1/me/drive/sharedWithMe")).json()["value"]
        return True if all(item["id"] != waiting["id"] for item in items) else None

    await eventually(mountpoint_gone)


async def signed_form(sender: Site, url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    auth = OcmSignatureAuth(sender.services.signing_keys, sender.services.clock)
    client = SafeHttpClient(discovery_config(sender.settings))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        answer = await client.exchange(
            url, urlencode(form).encode(), headers, what="test", auth=auth
        )
    finally:
        await client.aclose()
    return answer.status, answer.json_object("answer")


async def test_a_share_space_writes_within_its_holding_space_s_quota(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Quota", "full")
    async with pair.zurich.client(pair.certs) as admin:
        patched = await admin.patch(
            f"/graph/v1beta1/drives/{drive}", json={"quota": {"total": 100}}
        )
        assert patched.status_code == 200, patched.text
    assert (await share(pair.zurich, pair, drive, "/a/rel/full")).status_code == 200
    share_space = (await state_at_zurich(pair, "full", "pending"))["remoteItem"]["driveId"]
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        over = await einstein.put(f"/dav/spaces/{share_space}/big.bin", content=bytes(200))
        assert over.status_code == 507, over.text
        fits = await einstein.put(f"/dav/spaces/{share_space}/small.bin", content=bytes(50))
        assert fits.status_code == 201, fits.text


async def test_the_same_share_asked_for_at_once_is_made_once(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "At once", "once")
    answers = await asyncio.gather(
        *(share(pair.zurich, pair, drive, "/a/rel/once") for _ in range(3))
    )
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.json()["value"][0]["id"] for answer in answers}) == 1
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        items = (await einstein.get("/graph/v1beta1/me/drive/sharedByMe")).json()["value"]
    assert [i["parentReference"]["driveId"] for i in items].count(drive) == 1


async def test_an_invite_names_a_local_user_before_a_federated_one(pair: Pair) -> None:
    """`einstein@zurich.test` at zurich is Einstein, and a local username holding an `@`
    (as an outside identity provider may give) is that user: neither is shared with over
    OCM, though paris.test is a peer."""
    await peered(pair)
    async with pair.zurich.services.engine.begin() as conn:
        ada, _created = await user_store.upsert(
            conn, "https://sso.example.test", "ada", "ada@paris.test", "Ada", None, NOW
        )
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        assert (await einstein.get("/graph/v1beta1/me/drives")).status_code == 200  # signed in
    async with pair.zurich.services.engine.begin() as conn:
        me = await user_store.user_id_named(conn, "einstein")
    async with pair.zurich.client(pair.certs) as admin:
        created = await admin.post("/graph/v1beta1/drives", json={"name": "Locals"})
        drive = created.json()["id"]
        recipients = [{"objectId": "einstein@zurich.test"}, {"objectId": "ada@paris.test"}]
        invited = await admin.post(
            f"/graph/v1beta1/drives/{drive}/root/invite",
            json={"recipients": recipients, "roles": [VIEWER]},
        )
        assert invited.status_code == 200, invited.text
        space = (await admin.get(f"/graph/v1beta1/drives/{drive}")).json()
    granted = [p["grantedToV2"] for p in space["root"]["permissions"]]
    assert all("remote" not in g for g in granted), granted
    assert {me, ada} <= {g["user"]["id"] for g in granted if "user" in g}


async def test_purging_a_space_ends_the_shares_of_its_folders(pair: Pair) -> None:
    """Each share space of the purged space is logged `deleted` in the purge's transaction,
    so its members hear it go: Marie's registry is told, and her mountpoint goes."""
    await peered(pair)
    drive = await project_with_folder(pair, "Purged", "purged")
    await share(pair.zurich, pair, drive, "/a/rel/purged")
    waiting = await waiting_for_marie(pair, "purged")
    share_space = (await state_at_zurich(pair, "purged", "pending"))["remoteItem"]["driveId"]
    async with pair.paris.client(pair.certs, "marie") as marie:
        accepted = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
    mountpoint_id = accepted.json()["remoteItem"]["driveId"]
    async with pair.zurich.services.engine.begin() as conn:
        before = await changes_log.latest(conn)
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        assert (await einstein.delete(f"/graph/v1.0/drives/{drive}")).status_code == 204
        purged = await einstein.delete(f"/graph/v1.0/drives/{drive}", headers={"Purge": "T"})
        assert purged.status_code == 204, purged.text
    async with pair.zurich.services.engine.begin() as conn:
        logged = await changes_log.after(conn, before, 100)
    deleted = {c.space_id: c for c in logged if c.kind == "deleted"}
    assert set(deleted) == {share_space, drive}
    assert deleted[share_space].seq < deleted[drive].seq
    assert ("remote", "marie@paris.test") in deleted[share_space].lost

    async def gone() -> bool | None:
        return True if mountpoint_id not in await marie_drives(pair) else None

    await eventually(gone)


async def test_marie_s_event_stream_carries_her_mountpoint_coming_and_going(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Streamed", "streamed")
    assert pair.paris.services.idp is not None
    token = pair.paris.services.idp.access_token_for("marie")
    async with (
        httpx2.AsyncClient(
            base_url=f"https://127.0.0.1:{pair.paris.port}",
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
            verify=ssl.create_default_context(cafile=pair.certs.ca_file),
            timeout=httpx2.Timeout(10, read=None),
        ) as client,
        client.stream("GET", "/api/v1/events") as response,
    ):
        assert response.status_code == 200
        stream = EventReader(response)
        granted = (await share(pair.zurich, pair, drive, "/a/rel/streamed")).json()["value"][0]
        waiting = await waiting_for_marie(pair, "streamed")
        share_space = (await state_at_zurich(pair, "streamed", "pending"))["remoteItem"]["driveId"]
        async with pair.paris.client(pair.certs, "marie") as marie:
            accepted = await marie.post(
                f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
                json={"remoteItem": {"id": waiting["id"]}},
            )
        mountpoint_id = accepted.json()["remoteItem"]["driveId"]
        created = (await stream.until("created", seconds=15))[-1]
        assert created.data["driveId"] == mountpoint_id

        async with pair.zurich.client(pair.certs, "einstein") as einstein:
            removed = await einstein.delete(
                f"/graph/v1beta1/drives/{share_space}/root/permissions/{granted['id']}"
            )
        assert removed.status_code == 204
        deleted = (await stream.until("deleted", seconds=15))[-1]
        assert deleted.data["driveId"] == mountpoint_id
