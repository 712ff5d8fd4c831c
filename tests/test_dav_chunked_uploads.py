"""Chunked uploads through the registry: ownCloud's `OC-Chunked` v1 and the chunking NG
uploads collection write the file at once or not at all, never show a chunk as a file, count
the total against the quota, report one change with the final path, and leave nothing behind
when abandoned (after a day, on the FakeClock)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from registry.core.models import DavUpload, DavUploadChunk
from tests.clock import FakeClock
from tests.conftest import Registry, running_registry
from tests.rows import rows_of
from tests.sse import events
from tests.test_dav_gateway import dav, personal_space
from tests.test_dav_locks import lock
from tests.test_drives_api import assert_error, create_project
from tests.test_permissions_api import VIEWER, invite

CHUNKS = [b"first part, ", b"second part, ", b"and the end"]
WHOLE = b"".join(CHUNKS)


def v1_chunk(space_id: str, name: str, index: int, count: int = 3, transfer: str = "4711") -> str:
    return dav(space_id, f"{name}-chunking-{transfer}-{count}-{index}")


def uploads(user: str, *rest: str) -> str:
    return "/".join(["/dav/uploads", user, *rest])


async def names_in(client, url: str) -> set[str]:
    listing = await client.request("PROPFIND", url, headers={"Depth": "1"})
    assert listing.status_code == 207, listing.text
    return {part.split("<")[0] for part in listing.text.split(url)[1:] if part.split("<")[0]}


async def changes_until(stream, path: str) -> None:
    """Read changes until one names `path`; none before it named a chunk (an earlier change,
    the MKCOL of a folder, may still be on its way)."""
    named: list[str] = []
    while path not in named:
        event = await stream.next(seconds=5)
        if event.type == "content":  # not the space's creation, also on its way
            named += event.data["data"]["paths"]
    assert not [p for p in named if "chunking" in p or p.rsplit("/", 1)[-1].isdigit()], named


async def test_oc_chunked_v1_writes_the_file_once_every_chunk_came(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    await einstein.request("MKCOL", dav(space, "papers"))
    headers = {"OC-Chunked": "1", "OC-Total-Length": str(len(WHOLE))}
    async with events(registry.url, registry.token("einstein")) as stream:
        for index in (2, 0):  # in any order
            put = await einstein.put(
                v1_chunk(space, "papers/big.bin", index), content=CHUNKS[index], headers=headers
            )
            assert put.status_code == 201, put.text
        assert await names_in(einstein, dav(space, "papers/")) == set()  # no chunk, no file
        assert (await einstein.get(dav(space, "papers/big.bin"))).status_code == 404
        last = await einstein.put(
            v1_chunk(space, "papers/big.bin", 1), content=CHUNKS[1], headers=headers
        )
        assert last.status_code == 201, last.text
        await changes_until(stream, "/papers/big.bin")
    assert (await einstein.get(dav(space, "papers/big.bin"))).content == WHOLE
    assert await names_in(einstein, dav(space, "papers/")) == {"big.bin"}
    assert await rows_of(registry, DavUpload) == 0


async def test_chunking_ng_writes_the_file_on_the_move_of_its_chunks(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    upload = uploads("einstein", "web-file-1")
    assert (await einstein.request("MKCOL", upload)).status_code == 201
    for index, chunk in enumerate(CHUNKS):
        name = f"{index * 10:05d}"  # 00000, 00010, 00020: put together in that order
        assert (await einstein.put(f"{upload}/{name}", content=chunk)).status_code == 201
    listing = await einstein.request("PROPFIND", upload, headers={"Depth": "1"})
    assert listing.status_code == 207 and "00020" in listing.text
    assert not await names_in(einstein, dav(space, "")) & {"notes.txt", "00000", "00010", "00020"}

    async with events(registry.url, registry.token("einstein")) as stream:
        moved = await einstein.request(
            "MOVE",
            f"{upload}/.file",
            headers={
                "Destination": registry.url + dav(space, "notes.txt"),
                "OC-Total-Length": str(len(WHOLE)),
            },
        )
        assert moved.status_code == 201, moved.text
        await changes_until(stream, "/notes.txt")
    assert (await einstein.get(dav(space, "notes.txt"))).content == WHOLE
    assert_error(await einstein.request("PROPFIND", upload), 404, "itemNotFound")


async def test_a_chunked_upload_over_the_quota_writes_nothing(registry: Registry, admin):
    project = (await create_project(admin, "Small", quota={"total": 20}))["id"]
    early = await admin.put(
        v1_chunk(project, "big.bin", 0),
        content=CHUNKS[0],
        headers={"OC-Chunked": "1", "OC-Total-Length": str(len(WHOLE))},
    )
    assert_error(early, 507, "quotaLimitReached")
    for index in range(3):  # a client that does not announce the total
        last = await admin.put(
            v1_chunk(project, "big.bin", index), content=CHUNKS[index], headers={"OC-Chunked": "1"}
        )
    assert_error(last, 507, "quotaLimitReached")
    upload = uploads("admin", "too-big")
    await admin.request("MKCOL", upload)
    for index, chunk in enumerate(CHUNKS):
        await admin.put(f"{upload}/{index}", content=chunk)
    moved = await admin.request(
        "MOVE", f"{upload}/.file", headers={"Destination": dav(project, "big.bin")}
    )
    assert_error(moved, 507, "quotaLimitReached")
    assert (await admin.get(dav(project, "big.bin"))).status_code == 404
    assert await names_in(admin, dav(project, "")) == set()
    assert_error(await admin.request("PROPFIND", upload), 404, "itemNotFound")  # spent


async def test_chunked_uploads_keep_roles_and_locks(registry: Registry, admin):
    project = (await create_project(admin, "Guarded"))["id"]
    await invite(admin, project, "einstein", VIEWER)
    async with registry.client("einstein") as einstein:
        chunk = await einstein.put(
            v1_chunk(project, "a.bin", 0), content=b"x", headers={"OC-Chunked": "1"}
        )
        assert_error(chunk, 403, "accessDenied")
        upload = uploads("einstein", "u1")
        await einstein.request("MKCOL", upload)
        await einstein.put(f"{upload}/1", content=b"x")
        moved = await einstein.request(
            "MOVE", f"{upload}/.file", headers={"Destination": dav(project, "a.bin")}
        )
        assert_error(moved, 403, "accessDenied")
    await admin.put(dav(project, "locked.bin"), content=b"old")
    token = await lock(admin, dav(project, "locked.bin"))
    refused = await admin.put(
        v1_chunk(project, "locked.bin", 0, count=1), content=b"new", headers={"OC-Chunked": "1"}
    )
    assert_error(refused, 423, "locked")
    allowed = await admin.put(
        v1_chunk(project, "locked.bin", 0, count=1),
        content=b"new",
        headers={"OC-Chunked": "1", "If": f"(<{token}>)"},
    )
    assert allowed.status_code == 204, allowed.text
    assert (await admin.get(dav(project, "locked.bin"))).content == b"new"


async def test_bad_chunked_requests_get_json_errors(registry: Registry, einstein):
    space = (await personal_space(einstein))["id"]
    chunked = {"OC-Chunked": "1"}
    bad_name = await einstein.put(dav(space, "plain.bin"), content=b"x", headers=chunked)
    assert_error(bad_name, 400, "invalidRequest")
    past_end = await einstein.put(v1_chunk(space, "a.bin", 3), content=b"x", headers=chunked)
    assert_error(past_end, 400, "invalidRequest")

    upload = uploads("einstein", "u2")
    assert_error(await einstein.put(f"{upload}/1", content=b"x"), 404, "itemNotFound")
    assert (await einstein.request("MKCOL", upload)).status_code == 201
    assert_error(await einstein.request("MKCOL", upload), 405, "methodNotAllowed")
    await einstein.put(f"{upload}/1", content=b"abc")
    wrong_total = await einstein.request(
        "MOVE",
        f"{upload}/.file",
        headers={"Destination": dav(space, "a.bin"), "OC-Total-Length": "4"},
    )
    assert_error(wrong_total, 400, "invalidRequest")
    elsewhere = await einstein.request(
        "MOVE", f"{upload}/.file", headers={"Destination": "https://elsewhere.test/x"}
    )
    assert_error(elsewhere, 400, "invalidRequest")
    assert_error(await einstein.get(f"{upload}/1"), 405, "methodNotAllowed")
    assert_error(await einstein.request("MKCOL", uploads("marie", "u3")), 404, "itemNotFound")
    assert_error(await einstein.request("MKCOL", uploads("einstein")), 403, "accessDenied")
    long_name = uploads("einstein", "x" * 300)
    assert_error(await einstein.request("MKCOL", long_name), 400, "invalidRequest")
    nul = await einstein.put(uploads("einstein", "u2", "a%00b"), content=b"x")
    assert_error(nul, 400, "invalidRequest")
    assert_error(
        await einstein.request("MKCOL", "/dav/uploads/einstein/a/b/c"), 404, "itemNotFound"
    )
    assert (await einstein.delete(upload)).status_code == 204
    assert_error(await einstein.delete(upload), 404, "itemNotFound")
    async with registry.client() as anonymous:
        refused = await anonymous.request("MKCOL", uploads("einstein", "u4"))
        assert_error(refused, 401, "unauthenticated")


async def test_abandoned_chunks_are_removed_after_a_day(tmp_path: Path, idp_key_dir: Path):
    clock = FakeClock()
    with running_registry(tmp_path / "data", idp_key_dir, clock) as registry:
        async with registry.client("einstein") as einstein:
            space = (await personal_space(einstein))["id"]
            await einstein.put(
                v1_chunk(space, "a.bin", 0), content=b"x", headers={"OC-Chunked": "1"}
            )
            await einstein.request("MKCOL", uploads("einstein", "later"))
        retention = registry.app.state.services.retention
        clock.advance(timedelta(hours=23))
        await retention.sweep(clock.now())
        assert await rows_of(registry, DavUploadChunk) == 1
        clock.advance(timedelta(hours=2))
        await retention.sweep(clock.now())
        assert await rows_of(registry, DavUploadChunk) == 0
        assert await rows_of(registry, DavUpload) == 0
