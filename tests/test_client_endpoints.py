"""What the desktop clients ask besides WebDAV (`status.php`, the OCS capabilities and user),
and the classic WebDAV roots on the caller's personal space, against a real registry."""

from __future__ import annotations

from xml.etree import ElementTree

import httpx2
import pytest

from tests.conftest import Registry

DAV, OC = "{DAV:}", "{http://owncloud.org/ns}"
PROPS = (
    b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/>'
    b"<oc:id/><oc:permissions/><d:quota-available-bytes/></d:prop></d:propfind>"
)


async def app_password(registry: Registry, username: str) -> str:
    async with registry.client(username) as client:
        made = await client.post("/api/v1/me/app-passwords", json={"label": "test"})
    return str(made.json()["password"])


def listing(body: bytes) -> dict[str, dict[str, str | None]]:
    found = {}
    for response in ElementTree.fromstring(body).iter(f"{DAV}response"):
        props = {}
        for propstat in response.iter(f"{DAV}propstat"):
            if "200" in (propstat.findtext(f"{DAV}status") or ""):
                for prop in propstat.find(f"{DAV}prop") or []:
                    props[prop.tag.replace(DAV, "").replace(OC, "oc:")] = prop.text
        found[response.findtext(f"{DAV}href") or ""] = props
    return found


async def test_status_php_says_installed_and_which_protocol(registry):
    async with registry.client() as client:
        status = (await client.get("/status.php")).json()
    assert status["installed"] is True and status["maintenance"] is False
    assert status["needsDbUpgrade"] is False and status["productname"] == "spacereg"
    assert status["versionstring"].startswith("10.")


@pytest.mark.parametrize(("version", "code"), [("v1", 100), ("v2", 200)])
async def test_capabilities_announce_only_what_works(registry, version, code):
    async with registry.client() as client:
        answer = await client.get(f"/ocs/{version}.php/cloud/capabilities?format=json")
        xml = await client.get(f"/ocs/{version}.php/cloud/capabilities")
        bad = await client.get(f"/ocs/{version}.php/cloud/capabilities?format=yaml")
    ocs = answer.json()["ocs"]
    assert ocs["meta"]["statuscode"] == code
    capabilities = ocs["data"]["capabilities"]
    assert capabilities["checksums"]["supportedTypes"] == ["SHA1"]
    assert capabilities["core"]["webdav-root"] == "remote.php/webdav"
    assert capabilities["files"]["bigfilechunking"] is True  # OC-Chunked v1, at the gateway
    assert capabilities["dav"]["chunking"] == "1.0"  # chunking NG, at /remote.php/dav/uploads
    assert capabilities["spaces"]["enabled"] is True
    root = ElementTree.fromstring(xml.content)
    assert root.findtext("meta/statuscode") == str(code)
    assert root.findtext("data/capabilities/checksums/supportedTypes/element") == "SHA1"
    assert root.findtext("data/capabilities/files/bigfilechunking") == "1"
    assert bad.status_code == 400


async def test_the_user_endpoint_names_the_caller(registry):
    password = await app_password(registry, "einstein")
    async with httpx2.AsyncClient(base_url=registry.url, auth=("einstein", password)) as client:
        v1 = await client.get("/ocs/v1.php/cloud/user?format=json")
        v2 = await client.get("/ocs/v2.php/cloud/user", params={"format": "json"})
    assert v1.json()["ocs"]["data"] == {
        "id": "einstein",
        "display-name": "Albert Einstein",
        "displayname": "Albert Einstein",
        "email": "einstein@example.org",
    }
    assert v2.json()["ocs"]["meta"]["statuscode"] == 200
    async with registry.client() as anonymous:
        refused = await anonymous.get("/ocs/v1.php/cloud/user")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("root", ["/remote.php/webdav", "/remote.php/dav/files/einstein"])
async def test_the_classic_roots_are_the_personal_space_in_the_prefix_asked(registry, root):
    password = await app_password(registry, "einstein")
    async with registry.client("einstein") as einstein:
        drive = (await einstein.get("/graph/v1.0/me/drive")).json()["id"]
    async with httpx2.AsyncClient(base_url=registry.url, auth=("einstein", password)) as client:
        assert (await client.request("MKCOL", f"{root}/docs")).status_code == 201
        put = await client.put(f"{root}/docs/a b.txt", content=b"relative")
        assert put.status_code == 201 and put.headers["oc-fileid"].startswith(f"{drive}!")
        native = await client.get(f"/dav/spaces/{drive}/docs/a b.txt")
        assert native.content == b"relative"
        found = await client.request("PROPFIND", f"{root}/", headers={"Depth": "1"}, content=PROPS)
        assert found.status_code == 207
        hrefs = listing(found.content)
        assert set(hrefs) == {f"{root}/", f"{root}/docs/"}
        assert hrefs[f"{root}/"]["oc:id"] == f"{drive}!{drive}"
        assert int(hrefs[f"{root}/"]["quota-available-bytes"] or 0) > 0
        moved = await client.request(
            "MOVE", f"{root}/docs/a b.txt", headers={"Destination": f"{registry.url}{root}/b.txt"}
        )
        assert moved.status_code == 201 and moved.headers["oc-fileid"] == put.headers["oc-fileid"]
        assert (await client.get(f"{root}/b.txt")).content == b"relative"
        deep = await client.request("PROPFIND", f"{root}/docs", headers={"Depth": "0"})
        assert list(listing(deep.content)) == [f"{root}/docs/"]


async def test_nobody_reaches_another_users_files(registry):
    password = await app_password(registry, "marie")
    async with httpx2.AsyncClient(base_url=registry.url, auth=("marie", password)) as client:
        other = await client.request("PROPFIND", "/remote.php/dav/files/einstein/")
        assert other.status_code == 404
        assert (await client.request("PROPFIND", "/remote.php/dav/files/")).status_code == 404
        escape = await client.request(
            "MOVE", "/remote.php/webdav/x", headers={"Destination": "/dav/spaces/elsewhere/x"}
        )
        assert escape.status_code == 403


async def test_permissions_come_from_the_role_and_cannot_be_claimed(registry):
    async with registry.client("admin") as admin:
        drive = (await admin.post("/graph/v1beta1/drives", json={"name": "Optics"})).json()["id"]
        invite = {"recipients": [{"objectId": "einstein"}], "roles": ["viewer"]}
        assert (
            await admin.post(f"/graph/v1beta1/drives/{drive}/root/invite", json=invite)
        ).is_success
        await admin.put(f"/dav/spaces/{drive}/lens.txt", content=b"f")
        managed = await admin.request(
            "PROPFIND", f"/dav/spaces/{drive}/", headers={"Depth": "0"}, content=PROPS
        )
    assert listing(managed.content)[f"/dav/spaces/{drive}/"]["oc:permissions"] == "CK"
    async with registry.client("einstein") as einstein:
        claimed = {"X-Spacereg-Permissions": "DNVWCK", "Depth": "1"}
        viewed = await einstein.request(
            "PROPFIND", f"/dav/spaces/{drive}/", headers=claimed, content=PROPS
        )
    assert listing(viewed.content)[f"/dav/spaces/{drive}/lens.txt"]["oc:permissions"] is None


async def test_a_chunk_of_the_old_chunked_upload_in_a_classic_root_is_kept_not_stored(registry):
    password = await app_password(registry, "einstein")
    async with httpx2.AsyncClient(base_url=registry.url, auth=("einstein", password)) as client:
        chunk = await client.put(
            "/remote.php/webdav/big.bin-chunking-42-3-0", content=b"x", headers={"OC-Chunked": "1"}
        )
        assert chunk.status_code == 201, chunk.text
        listed = await client.request("PROPFIND", "/remote.php/webdav/", headers={"Depth": "1"})
    assert list(listing(listed.content)) == ["/remote.php/webdav/"]  # no chunk, no file yet


@pytest.mark.parametrize(
    "path",
    [
        "/remote.php/webdav/a%FFb",
        "/remote.php/dav/files/einstein/a%01b",
        "/remote.php/webdav/x/a%C3",
    ],
)
async def test_a_name_no_space_can_hold_is_refused_in_the_classic_roots_too(registry, path):
    password = await app_password(registry, "einstein")
    async with httpx2.AsyncClient(base_url=registry.url, auth=("einstein", password)) as client:
        refused = await client.put(httpx2.URL(registry.url + path), content=b"x")
        listed = await client.request("PROPFIND", "/remote.php/webdav/", headers={"Depth": "1"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalidRequest"
    assert list(listing(listed.content)) == ["/remote.php/webdav/"]


async def test_a_destination_no_space_can_hold_is_refused_in_the_classic_roots(registry):
    password = await app_password(registry, "einstein")
    async with httpx2.AsyncClient(base_url=registry.url, auth=("einstein", password)) as client:
        await client.put("/remote.php/webdav/a.txt", content=b"a")
        refused = await client.request(
            "MOVE", "/remote.php/webdav/a.txt", headers={"Destination": "/remote.php/webdav/b%FF"}
        )
        listed = await client.request("PROPFIND", "/remote.php/webdav/", headers={"Depth": "1"})
    assert refused.status_code == 400
    assert list(listing(listed.content)) == ["/remote.php/webdav/", "/remote.php/webdav/a.txt"]
