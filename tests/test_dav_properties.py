"""Dead properties through the registry's WebDAV: PROPPATCH stores them in the database,
PROPFIND returns them, they follow MOVE and COPY, go with DELETE, and a failed PROPPATCH
changes nothing."""

from __future__ import annotations

from urllib.parse import unquote
from xml.etree import ElementTree

from registry.runtime.db import create_engine
from registry.spaces.webdav import property_store
from registry.spaces.webdav.properties import MAX_PER_RESOURCE
from tests.conftest import Registry
from tests.test_dav_gateway import dav, personal_space
from tests.test_drives_api import assert_error

NS = "urn:example:spacereg"
DAV = "{DAV:}"


def proppatch_body(set_: dict[str, str] | None = None, remove: list[str] = ()) -> bytes:
    sets = "".join(f"<x:{name}>{value}</x:{name}>" for name, value in (set_ or {}).items())
    removes = "".join(f"<x:{name}/>" for name in remove)
    parts = []
    if sets:
        parts.append(f"<d:set><d:prop>{sets}</d:prop></d:set>")
    if removes:
        parts.append(f"<d:remove><d:prop>{removes}</d:prop></d:remove>")
    return (
        f'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="{NS}">'
        f"{''.join(parts)}</d:propertyupdate>"
    ).encode()


async def properties(client, url: str, *names: str, depth: str = "0") -> dict[str, dict]:
    """href -> {name: (status, text)} of the named properties in our namespace."""
    asked = "".join(f"<x:{name}/>" for name in names)
    body = f'<d:propfind xmlns:d="DAV:" xmlns:x="{NS}"><d:prop>{asked}</d:prop></d:propfind>'
    response = await client.request("PROPFIND", url, content=body, headers={"Depth": depth})
    assert response.status_code == 207, response.text
    found: dict[str, dict] = {}
    for each in ElementTree.fromstring(response.content).iter(f"{DAV}response"):
        href = each.findtext(f"{DAV}href")
        for propstat in each.iter(f"{DAV}propstat"):
            status = int(propstat.findtext(f"{DAV}status").split()[1])
            for prop in propstat.find(f"{DAV}prop"):
                local = prop.tag.removeprefix(f"{{{NS}}}")
                found.setdefault(href, {})[local] = (status, prop.text)
    return found


async def test_properties_are_stored_returned_moved_copied_and_deleted(
    registry: Registry, einstein
):
    space = (await personal_space(einstein))["id"]
    assert (await einstein.put(dav(space, "a.txt"), content=b"a")).status_code == 201
    patched = await einstein.request(
        "PROPPATCH", dav(space, "a.txt"), content=proppatch_body({"colour": "blue"})
    )
    assert patched.status_code == 207, patched.text
    assert "200 OK" in patched.text

    found = await properties(einstein, dav(space, "a.txt"), "colour", "size")
    assert found == {dav(space, "a.txt"): {"colour": (200, "blue"), "size": (404, None)}}

    moved = await einstein.request(
        "MOVE", dav(space, "a.txt"), headers={"Destination": registry.url + dav(space, "b.txt")}
    )
    assert moved.status_code == 201, moved.text
    found = await properties(einstein, dav(space, "b.txt"), "colour")
    assert found[dav(space, "b.txt")]["colour"] == (200, "blue")

    copied = await einstein.request(
        "COPY", dav(space, "b.txt"), headers={"Destination": registry.url + dav(space, "c.txt")}
    )
    assert copied.status_code == 201, copied.text
    found = await properties(einstein, dav(space, ""), "colour", depth="1")
    assert found[dav(space, "b.txt")]["colour"] == (200, "blue")
    assert found[dav(space, "c.txt")]["colour"] == (200, "blue")

    assert (await einstein.delete(dav(space, "c.txt"))).status_code == 204
    assert (await einstein.put(dav(space, "c.txt"), content=b"new")).status_code == 201
    found = await properties(einstein, dav(space, "c.txt"), "colour")
    assert found[dav(space, "c.txt")]["colour"] == (404, None)


async def test_a_proppatch_touching_a_live_property_changes_nothing(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    await einstein.put(dav(space, "a.txt"), content=b"a")
    body = (
        f'<d:propertyupdate xmlns:d="DAV:" xmlns:x="{NS}"><d:set><d:prop>'
        "<x:colour>red</x:colour><d:getetag>forged</d:getetag>"
        "</d:prop></d:set></d:propertyupdate>"
    )
    patched = await einstein.request("PROPPATCH", dav(space, "a.txt"), content=body)
    assert patched.status_code == 207
    assert "403 Forbidden" in patched.text and "424 Failed Dependency" in patched.text
    found = await properties(einstein, dav(space, "a.txt"), "colour")
    assert found[dav(space, "a.txt")]["colour"] == (404, None)


async def test_proppatch_failures_are_json_errors(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    await einstein.put(dav(space, "a.txt"), content=b"a")
    missing = await einstein.request(
        "PROPPATCH", dav(space, "nothing.txt"), content=proppatch_body({"colour": "blue"})
    )
    assert_error(missing, 404, "itemNotFound")
    broken = await einstein.request("PROPPATCH", dav(space, "a.txt"), content=b"<not xml")
    assert_error(broken, 400, "invalidRequest")
    entity = (
        b'<!DOCTYPE d [<!ENTITY e "x">]><d:propertyupdate xmlns:d="DAV:">&e;</d:propertyupdate>'
    )
    assert_error(
        await einstein.request("PROPPATCH", dav(space, "a.txt"), content=entity),
        400,
        "invalidRequest",
    )
    wrong = await einstein.request("PROPPATCH", dav(space, "a.txt"), content=b"<a/>")
    assert_error(wrong, 400, "invalidRequest")


async def test_a_listing_reads_the_properties_of_what_it_lists_only(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    stored = ["/a_%", "/a_%/b", "/a_%/b/c", "/aX%/b", "/a_%x"]
    engine = create_engine(registry.settings.database_url)
    try:
        async with engine.begin() as conn:
            for path in stored:
                await property_store.put(conn, space, path, "{urn:x}p", "<p xmlns='urn:x'/>")
        async with engine.connect() as conn:
            listed = {
                depth: set(await property_store.listed(conn, space, "/a_%", depth))
                for depth in ("0", "1", "infinity")
            }
            top = set(await property_store.listed(conn, space, "/", "1"))
    finally:
        await engine.dispose()
    assert listed == {
        "0": {"/a_%"},
        "1": {"/a_%", "/a_%/b"},
        "infinity": {"/a_%", "/a_%/b", "/a_%/b/c"},
    }
    assert top == {"/a_%", "/a_%x"}


async def test_a_listing_names_the_properties_of_each_member_by_its_own_href(
    registry: Registry, einstein
):
    space = (await personal_space(einstein))["id"]
    names = ["a&b c.txt", "ü <x>.txt", "plain.txt"]
    for n, name in enumerate(names):
        assert (await einstein.put(dav(space, name), content=b"x")).status_code == 201
        patched = await einstein.request(
            "PROPPATCH", dav(space, name), content=proppatch_body({"n": str(n)})
        )
        assert patched.status_code == 207
    found = await properties(einstein, dav(space, ""), "n", depth="1")
    by_name = {unquote(href.rsplit("/", 1)[1]): props["n"] for href, props in found.items()}
    assert by_name == {"": (404, None), **{name: (200, str(n)) for n, name in enumerate(names)}}


async def test_a_resource_holds_a_bounded_number_of_properties(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    await einstein.put(dav(space, "a.txt"), content=b"a")
    many = {f"p{n}": "v" for n in range(MAX_PER_RESOURCE)}
    filled = await einstein.request("PROPPATCH", dav(space, "a.txt"), content=proppatch_body(many))
    assert filled.status_code == 207 and "424" not in filled.text
    one_more = proppatch_body({"colour": "blue"})
    refused = await einstein.request("PROPPATCH", dav(space, "a.txt"), content=one_more)
    assert_error(refused, 507, "quotaLimitReached")
    assert (await properties(einstein, dav(space, "a.txt"), "colour"))[dav(space, "a.txt")] == {
        "colour": (404, None)
    }
