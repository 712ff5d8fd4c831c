"""The ownCloud properties and upload semantics of the local driver's WebDAV, as sync clients
see them over a real server: ids that survive renames, moves and overwrites, recursive folder
ETags and sizes, checksums, modification times and the headers answering writes."""

from __future__ import annotations

import asyncio
import hashlib
import os
from xml.etree import ElementTree

import httpx2
import pytest
from starlette.applications import Starlette

from storage.dav_paths import dav_mount
from storage.local import LocalProvider
from storage.oc_props import PERMISSIONS_HEADER, QUOTA_HEADER
from tests.servers import free_port, serve
from tests.waiting import eventually

PREFIX = "/dav/spaces"
DAV, OC = "{DAV:}", "{http://owncloud.org/ns}"
PROPS = (
    "getetag", "oc:id", "oc:fileid", "oc:permissions", "oc:size", "oc:checksums",
    "oc:share-types", "oc:data-fingerprint", "quota-used-bytes", "quota-available-bytes",
)  # fmt: skip


@pytest.fixture
async def provider(tmp_path):
    provider = LocalProvider("local", tmp_path / "spaces")
    await provider.create_space("s1")
    return provider


@pytest.fixture
def spaces(tmp_path):
    return tmp_path / "spaces" / "s1"


@pytest.fixture
async def dav(provider):
    headers = {PERMISSIONS_HEADER: "RDNVWCK", QUOTA_HEADER: "1000"}
    app = Starlette(routes=[dav_mount(PREFIX, provider.dav_app())])
    with serve(app, free_port()) as url:
        async with httpx2.AsyncClient(base_url=url + PREFIX, timeout=10, headers=headers) as c:
            yield c


async def props(dav: httpx2.AsyncClient, path: str, depth: str = "0") -> dict[str, dict]:
    """href -> {property: text, or for oc:checksums the checksum's text} of found properties."""
    names = "".join(f"<{n}/>" if n.startswith("oc:") else f"<d:{n}/>" for n in PROPS)
    body = (
        '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        f"<d:prop>{names}</d:prop></d:propfind>"
    )
    answer = await dav.request("PROPFIND", path, content=body, headers={"Depth": depth})
    assert answer.status_code == 207, answer.text
    found: dict[str, dict] = {}
    for response in ElementTree.fromstring(answer.content).iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href")
        values = {}
        for propstat in response.iter(f"{DAV}propstat"):
            if "200" not in (propstat.findtext(f"{DAV}status") or ""):
                continue
            for prop in propstat.find(f"{DAV}prop"):
                name = prop.tag.replace(DAV, "").replace(OC, "oc:")
                checksum = prop.findtext(f"{OC}checksum")
                values[name] = checksum if name == "oc:checksums" else prop.text
        found[href] = values
    return found


async def one(dav: httpx2.AsyncClient, path: str) -> dict:
    return next(iter((await props(dav, path)).values()))


async def test_ids_survive_renames_moves_and_overwrites_and_copies_get_their_own(dav):
    put = await dav.put("/s1/a.txt", content=b"one")
    assert put.status_code == 201
    first = await one(dav, "/s1/a.txt")
    assert first["oc:id"] == put.headers["oc-fileid"] == f"s1!{first['oc:fileid']}"
    assert first["oc:fileid"].isdigit()
    assert put.headers["oc-etag"] == first["getetag"]
    assert (await dav.put("/s1/a.txt", content=b"two")).headers["oc-fileid"] == first["oc:id"]
    assert (await dav.request("MKCOL", "/s1/d")).status_code == 201
    move = await dav.request("MOVE", "/s1/a.txt", headers={"Destination": f"{PREFIX}/s1/d/b.txt"})
    assert move.status_code == 201 and move.headers["oc-fileid"] == first["oc:id"]
    assert (await one(dav, "/s1/d/b.txt"))["oc:id"] == first["oc:id"]
    copy = await dav.request("COPY", "/s1/d", headers={"Destination": f"{PREFIX}/s1/e"})
    assert copy.status_code == 201
    copied = await one(dav, "/s1/e/b.txt")
    folders = await one(dav, "/s1/d"), await one(dav, "/s1/e")
    assert copied["oc:id"] != first["oc:id"] and folders[0]["oc:id"] != folders[1]["oc:id"]
    assert copy.headers["oc-fileid"] == folders[1]["oc:id"]
    assert (await one(dav, "/s1/"))["oc:id"] == "s1!s1"  # the drive's root item id


async def test_a_change_deep_down_changes_every_folder_etag_above_it(dav, spaces, provider):
    for folder in ("/s1/a", "/s1/a/b", "/s1/a/b/c", "/s1/x"):
        mkcol = await dav.request("MKCOL", folder)
        assert mkcol.status_code == 201 and mkcol.headers["oc-etag"].startswith('"')
    await dav.put("/s1/a/b/c/f.txt", content=b"12345")
    before = await props(dav, "/s1/", "1")
    a_before = await one(dav, "/s1/a/b")
    assert (await dav.put("/s1/a/b/c/f.txt", content=b"1234567")).status_code == 204
    after = await props(dav, "/s1/", "1")
    for href in (f"{PREFIX}/s1/", f"{PREFIX}/s1/a/"):
        assert after[href]["getetag"] != before[href]["getetag"]
    assert after[f"{PREFIX}/s1/x/"]["getetag"] == before[f"{PREFIX}/s1/x/"]["getetag"]
    assert (await one(dav, "/s1/a/b"))["getetag"] != a_before["getetag"]
    assert after[f"{PREFIX}/s1/a/"]["oc:size"] == "7" and after[f"{PREFIX}/s1/"]["oc:size"] == "7"
    assert after[f"{PREFIX}/s1/"]["quota-used-bytes"] == "7"
    assert after[f"{PREFIX}/s1/a/"]["quota-available-bytes"] == "993"
    # An edit on disk, noticed by the watcher: the folders above get new ETags too.
    watcher = asyncio.create_task(provider.workers()["watch"]())
    try:

        async def a_changed() -> bool:  # written again until the watcher, starting, reports it
            (spaces / "a" / "b" / "c" / "f.txt").write_bytes(b"edited on disk")
            return (await one(dav, "/s1/a"))["getetag"] != after[f"{PREFIX}/s1/a/"]["getetag"]

        assert await eventually(a_changed)
        assert (await one(dav, "/s1/a"))["oc:size"] == str(len(b"edited on disk"))
    finally:
        watcher.cancel()


async def test_permissions_follow_what_the_host_grants(dav):
    await dav.put("/s1/f.txt", content=b"x")
    await dav.request("MKCOL", "/s1/d")
    assert (await one(dav, "/s1/f.txt"))["oc:permissions"] == "RDNVW"
    assert (await one(dav, "/s1/d"))["oc:permissions"] == "RDNVCK"
    assert (await one(dav, "/s1/"))["oc:permissions"] == "RCK"
    viewer = await dav.request(
        "PROPFIND", "/s1/f.txt", headers={"Depth": "0", PERMISSIONS_HEADER: ""},
        content=b'<propfind xmlns="DAV:"><prop><permissions xmlns="http://owncloud.org/ns"/>'
        b"</prop></propfind>",
    )  # fmt: skip
    propstat = ElementTree.fromstring(viewer.content).find(f".//{DAV}propstat")
    assert propstat is not None and "200" in (propstat.findtext(f"{DAV}status") or "")
    assert propstat.findtext(f"{DAV}prop/{OC}permissions") == ""  # a viewer's: none of them


async def test_checksums_are_kept_verified_and_a_mismatch_refused(dav, spaces):
    body = b"checked content"
    sha1 = hashlib.sha1(body).hexdigest()
    ok = await dav.put("/s1/c.txt", content=body, headers={"OC-Checksum": f"SHA1:{sha1}"})
    assert ok.status_code == 201
    md5 = hashlib.md5(body).hexdigest()
    listed = (await one(dav, "/s1/c.txt"))["oc:checksums"].split()
    assert listed[:2] == [f"SHA1:{sha1}", f"MD5:{md5}"] and listed[2].startswith("ADLER32:")
    assert (
        await dav.put("/s1/m.txt", content=body, headers={"OC-Checksum": f"MD5:{md5}"})
    ).status_code == 201
    bad = await dav.put("/s1/c.txt", content=b"other", headers={"OC-Checksum": f"SHA1:{sha1}"})
    assert bad.status_code == 400
    assert (spaces / "c.txt").read_bytes() == body
    assert not os.listdir(spaces.parent / ".uploads")
    new = await dav.put("/s1/n.txt", content=b"x", headers={"OC-Checksum": "SHA1:00"})
    assert new.status_code == 400 and not (spaces / "n.txt").exists()
    malformed = await dav.put("/s1/n.txt", content=b"x", headers={"OC-Checksum": "nonsense"})
    assert malformed.status_code == 400
    (spaces / "disk.txt").write_bytes(b"made on disk")
    on_disk = hashlib.sha1(b"made on disk").hexdigest()
    assert (await one(dav, "/s1/disk.txt"))["oc:checksums"].startswith(f"SHA1:{on_disk} MD5:")


async def test_x_oc_mtime_sets_the_modification_time(dav, spaces):
    put = await dav.put("/s1/t.txt", content=b"t", headers={"X-OC-Mtime": "1234567890"})
    assert put.status_code == 201 and put.headers["x-oc-mtime"] == "accepted"
    assert os.stat(spaces / "t.txt").st_mtime == 1234567890
    assert put.headers["etag"] == put.headers["oc-etag"] == (await one(dav, "/s1/t.txt"))["getetag"]
    plain = await dav.put("/s1/u.txt", content=b"u")
    assert "x-oc-mtime" not in plain.headers
    bad = await dav.put("/s1/v.txt", content=b"v", headers={"X-OC-Mtime": "yesterday"})
    assert bad.status_code == 400 and not (spaces / "v.txt").exists()


async def test_the_other_ownCloud_properties_have_values(dav):
    await dav.put("/s1/f.txt", content=b"abc")
    root = await one(dav, "/s1/")
    assert root["oc:data-fingerprint"] is None and "oc:data-fingerprint" in root
    assert "oc:share-types" in root and root["quota-available-bytes"] == "997"
    unlimited = await dav.request(
        "PROPFIND", "/s1/", headers={"Depth": "0", QUOTA_HEADER: "0"},
        content=b'<propfind xmlns="DAV:"><prop><quota-available-bytes/></prop></propfind>',
    )  # fmt: skip
    assert ">-3<" in unlimited.text


async def test_reading_ids_and_checksums_of_files_made_on_disk_tells_no_change(
    dav, spaces, provider
):
    heard = []

    async def hear(event) -> None:
        heard.append(event)

    provider.subscribe(hear)
    watcher = asyncio.create_task(provider.workers()["watch"]())
    try:
        (spaces / "d").mkdir()

        def reported() -> bool:  # written again until the watcher, starting, reports it
            (spaces / "d" / "made-on-disk.txt").write_text("by an editor")
            return any("/d/made-on-disk.txt" in e.paths for e in heard)

        assert await eventually(reported, interval=0.1)
        await asyncio.sleep(1)  # the watcher's own batches (the ids it gave) are over
        told = len(heard)
        listed = await props(dav, "/s1/d", "1")
        assert all(p.get("oc:id") and p.get("oc:checksums", "x") for p in listed.values())
        await asyncio.sleep(1)  # a watcher batch would have come by now
        assert len(heard) == told, heard[told:]
    finally:
        watcher.cancel()
