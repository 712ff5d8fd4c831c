"""Items by id: the `oc:id` a WebDAV client reads (the Graph item id) leads back to the item's
path, wherever renames and moves took it, for callers who may see its space."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from registry.access.principal import Principal
from registry.core.errors import NotFound
from storage import PathNotFound, file_ids
from storage.local import LocalProvider

ID_PROP = (
    b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:id/></d:prop>'
    b"</d:propfind>"
)
ADMIN = Principal("admin-id", "admin", "Administrator", (), True)
STRANGER = Principal("stranger-id", "stranger", "Stranger", (), False)


async def test_the_local_driver_finds_an_item_by_id(tmp_path):
    provider = LocalProvider("local", tmp_path)
    await provider.create_space("s1")
    (tmp_path / "s1" / "d").mkdir()
    (tmp_path / "s1" / "d" / "f.txt").write_text("f")
    number = file_ids.number_of(str(tmp_path / "s1" / "d" / "f.txt"))
    assert await provider.item_path("s1", f"s1!{number}") == "/d/f.txt"
    (tmp_path / "s1" / "d").rename(tmp_path / "s1" / "e")
    assert await provider.item_path("s1", f"s1!{number}") == "/e/f.txt"
    assert await provider.item_path("s1", "s1!s1") == "/"
    for unknown in ("s1!1", "s2!1", "s1!", "s1"):
        with pytest.raises(PathNotFound):
            await provider.item_path("s1", unknown)


async def test_the_registry_locates_an_item_its_caller_may_see(registry):
    async with registry.client("einstein") as einstein:
        drive = (await einstein.get("/graph/v1.0/me/drive")).json()
        root = f"/dav/spaces/{drive['id']}"
        await einstein.request("MKCOL", f"{root}/docs")
        made = await einstein.put(f"{root}/docs/notes.txt", content=b"E = mc^2")
        await einstein.request(
            "MOVE", f"{root}/docs", headers={"Destination": f"{registry.url}{root}/papers"}
        )
        listed = await einstein.request(
            "PROPFIND", f"{root}/papers/notes.txt", headers={"Depth": "0"}, content=ID_PROP
        )
    item_id = ElementTree.fromstring(listed.content).findtext(".//{http://owncloud.org/ns}id")
    assert item_id == made.headers["oc-fileid"]
    items = registry.app.state.services.items
    view, path = await items.locate(ADMIN, item_id)
    assert (view.space.id, path) == (drive["id"], "/papers/notes.txt")
    assert (await items.locate(ADMIN, drive["root"]["id"]))[1] == "/"
    for caller, unknown in ((STRANGER, item_id), (ADMIN, "nothing"), (ADMIN, "a!\x00")):
        with pytest.raises(NotFound):
            await items.locate(caller, unknown)
