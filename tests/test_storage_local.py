"""The local storage driver on a real directory tree, and driver discovery by entry point."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from storage import (
    Change,
    ChangeSource,
    DavBackend,
    DriverNotFound,
    HttpChangeSource,
    PathNotFound,
    SpaceNotFound,
    StorageError,
    StorageProvider,
    load_provider,
    uploads,
)
from storage.local import LocalProvider


@pytest.fixture
def provider(tmp_path):
    return LocalProvider("local", tmp_path / "spaces")


@pytest.fixture
def heard(provider):
    changes: list[Change] = []

    async def listen(change):
        changes.append(change)

    provider.subscribe(listen)
    return changes


@pytest.fixture
async def watching(provider, heard, tmp_path):
    """Run the provider's watcher on spaces probe and s1; return once it reports changes,
    with `heard` emptied. (A folder created after the watcher may miss the first changes
    inside it: those are still scanned, but reported as changes of the folder.)"""
    for space_id in ("probe", "s1"):
        await provider.create_space(space_id)
    task = asyncio.create_task(provider.workers()["watch"]())
    for n in range(200):
        (tmp_path / "spaces" / "probe" / f"p{n}").write_text("")
        await asyncio.sleep(0.05)
        if any(c.space_id == "probe" and c.paths != ("/",) for c in heard):
            break
    else:
        raise AssertionError("the watcher reported nothing")
    await asyncio.sleep(0.4)  # let the probe's last batch go by
    heard.clear()
    yield task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_created_space_is_an_empty_directory(provider, tmp_path):
    info = await provider.create_space("s1")
    assert (tmp_path / "spaces" / "s1").is_dir()
    assert info.used == 0
    assert info.root_id == "s1!s1"
    (tmp_path / "spaces" / ".uploads").mkdir()
    assert await provider.list_spaces() == ["s1"]


async def test_root_etag_changes_when_anything_below_changes(provider, tmp_path):
    await provider.create_space("s1")
    root = tmp_path / "spaces" / "s1"
    etags = [(await provider.get_space("s1")).etag]

    (root / "a" / "b").mkdir(parents=True)
    etags.append((await provider.get_space("s1")).etag)
    (root / "a" / "b" / "deep.txt").write_text("hello")
    etags.append((await provider.get_space("s1")).etag)
    stat = os.stat(root / "a" / "b" / "deep.txt")
    (root / "a" / "b" / "deep.txt").write_text("HELLO")  # same size
    os.utime(root / "a" / "b" / "deep.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    etags.append((await provider.get_space("s1")).etag)
    (root / "a" / "b" / "deep.txt").rename(root / "a" / "moved.txt")
    etags.append((await provider.get_space("s1")).etag)
    assert len(set(etags)) == len(etags)
    assert (await provider.get_space("s1")).etag == etags[-1]


async def test_used_counts_file_bytes(provider, tmp_path):
    await provider.create_space("s1")
    root = tmp_path / "spaces" / "s1"
    (root / "x").mkdir()
    (root / "x" / "one").write_bytes(b"1" * 1000)
    (root / "two").write_bytes(b"2" * 24)
    assert (await provider.get_space("s1")).used == 1024


async def test_names_that_are_not_utf8_are_scanned(provider, tmp_path):
    await provider.create_space("s1")
    (tmp_path / "spaces" / "s1" / os.fsdecode(b"bad\xff")).write_bytes(b"abc")
    assert (await provider.get_space("s1")).used == 3


async def test_stat_of_file_and_root(provider, tmp_path):
    await provider.create_space("s1")
    (tmp_path / "spaces" / "s1" / "f.txt").write_text("abc")
    entry = await provider.stat("s1", "/f.txt")
    assert (entry.is_dir, entry.size) == (False, 3)
    root = await provider.stat("s1", "/")
    assert root.is_dir and root.etag == (await provider.get_space("s1")).etag
    with pytest.raises(PathNotFound):
        await provider.stat("s1", "/missing")
    with pytest.raises(PathNotFound):
        await provider.stat("s1", "/../../etc/passwd")


async def test_unknown_and_invalid_spaces(provider):
    with pytest.raises(SpaceNotFound):
        await provider.get_space("nope")
    with pytest.raises(SpaceNotFound):
        await provider.delete_space("nope")
    for bad in ("../x", "a/b", "", "x" * 65, ".uploads", "s1\n"):
        with pytest.raises(StorageError):
            await provider.create_space(bad)


async def test_delete_removes_the_tree(provider, tmp_path):
    await provider.create_space("s1")
    (tmp_path / "spaces" / "s1" / "f").write_text("x")
    await provider.delete_space("s1")
    assert not (tmp_path / "spaces" / "s1").exists()


async def test_subscribers_hear_of_created_spaces(provider):
    heard = []

    async def listen(change):
        heard.append(change)

    unsubscribe = provider.subscribe(listen)
    await provider.create_space("s1")
    unsubscribe()
    await provider.create_space("s2")
    assert [c.space_id for c in heard] == ["s1"]


async def test_written_emits_the_change_at_once(provider, heard, tmp_path):
    await provider.create_space("s1")
    (tmp_path / "spaces" / "s1" / "f.txt").write_text("hello")
    heard.clear()
    await provider.written("s1", ["/f.txt"])
    info = await provider.get_space("s1")
    assert heard == [Change("s1", info.etag, 5, ("/f.txt",))]


async def test_written_without_a_change_emits_nothing(provider, heard, tmp_path):
    await provider.create_space("s1")
    await provider.written("s1", ["/"])
    (tmp_path / "spaces" / "s1" / "f.txt").write_text("hello")
    await provider.written("s1", ["f.txt"])
    await provider.written("s1", ["/f.txt"])
    assert [c.paths for c in heard] == [("/",), ("/f.txt",)]
    with pytest.raises(SpaceNotFound):
        await provider.written("gone", ["/x"])


async def test_concurrent_writes_share_scans_and_end_on_the_last_state(provider, heard, tmp_path):
    await provider.create_space("s1")
    heard.clear()
    root = tmp_path / "spaces" / "s1"

    async def write(n):
        await asyncio.to_thread((root / f"f{n}").write_text, "x" * n)
        await provider.written("s1", [f"/f{n}"])

    await asyncio.gather(*(write(n) for n in range(20)))
    assert 1 <= len(heard) < 20
    named = [(c.etag, p) for c in heard for p in c.paths]
    assert len(set(named)) == len(named)  # no path named twice at one ETag
    assert {p for _, p in named} == {f"/f{n}" for n in range(20)}  # and none left out
    assert (heard[-1].etag, heard[-1].used) == ((await provider.get_space("s1")).etag, 190)


async def test_a_write_an_earlier_scan_saw_is_still_named(provider, heard, tmp_path):
    await provider.create_space("s1")
    root = tmp_path / "spaces" / "s1"
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")  # done before the scan for a.txt; its report comes after
    heard.clear()
    await provider.written("s1", ["/a.txt"])
    await provider.written("s1", ["/b.txt"])
    await provider.written("s1", ["/b.txt", "/a.txt"])  # a watcher repeating both
    etag = (await provider.get_space("s1")).etag
    assert [(c.etag, c.paths) for c in heard] == [(etag, ("/a.txt",)), (etag, ("/b.txt",))]


async def test_a_write_reported_after_the_watcher_named_the_root_is_still_named(
    provider, heard, tmp_path
):
    """The watcher reports a new space's folder as `/` (writes inside it before its watch
    are otherwise unseen); a PUT whose own report comes after that scan, at the same ETag,
    still names its path: once lost to "anything", the feed never named it."""
    await provider.create_space("s1")
    (tmp_path / "spaces" / "s1" / "a.txt").write_text("a")
    heard.clear()
    await provider.written("s1", ["/"])  # as the watcher reports the space's folder
    await provider.written("s1", ["/a.txt"])  # the PUT's own report, later
    await provider.written("s1", ["/", "/a.txt"])  # a watcher repeating both: nothing
    etag = (await provider.get_space("s1")).etag
    assert [(c.etag, c.paths) for c in heard] == [(etag, ("/",)), (etag, ("/a.txt",))]


async def test_a_folder_is_named_without_a_trailing_slash_once(provider, heard, tmp_path):
    await provider.create_space("s1")
    (tmp_path / "spaces" / "s1" / "dir").mkdir()
    heard.clear()
    await provider.written("s1", ["/dir/"])  # as MKCOL names it
    await provider.written("s1", ["dir"])  # as the watcher does
    assert [c.paths for c in heard] == [("/dir",)]


async def test_a_file_written_on_disk_is_noticed_within_a_second(
    provider, heard, watching, tmp_path
):
    (tmp_path / "spaces" / "s1" / "dir").mkdir()
    assert await wait_for(lambda: any("/dir" in c.paths for c in heard), 1.0)
    await asyncio.sleep(0.1)
    started = time.monotonic()
    (tmp_path / "spaces" / "s1" / "dir" / "x.txt").write_text("on disk")
    assert await wait_for(lambda: any("/dir/x.txt" in c.paths for c in heard), 1.0)
    assert time.monotonic() - started < 1.0
    await asyncio.sleep(0.4)
    info = await provider.get_space("s1")
    assert heard[-1].space_id == "s1"
    assert (heard[-1].etag, heard[-1].used) == (info.etag, 7)


async def test_the_watcher_does_not_repeat_a_written_change(provider, heard, watching, tmp_path):
    (tmp_path / "spaces" / "s1" / "f.txt").write_text("through WebDAV, say")
    await provider.written("s1", ["/f.txt"])
    assert len(heard) == 1
    await asyncio.sleep(0.8)
    info = await provider.get_space("s1")
    assert [(c.etag, c.paths) for c in heard] == [(info.etag, ("/f.txt",))]


async def test_the_watcher_skips_other_folders_and_outlives_deleted_spaces(
    provider, heard, watching, tmp_path
):
    await provider.create_space("s2")
    (tmp_path / "spaces" / "s2" / "many").mkdir()
    for n in range(50):
        (tmp_path / "spaces" / "s2" / "many" / str(n)).write_text("x")
    await asyncio.sleep(0.1)
    await provider.delete_space("s2")
    for folder in (".uploads", "not a space"):
        (tmp_path / "spaces" / folder).mkdir()
        (tmp_path / "spaces" / folder / "f").write_text("x")
    await asyncio.sleep(0.6)
    heard.clear()
    (tmp_path / "spaces" / "s1" / "after.txt").write_text("still watching")
    assert await wait_for(lambda: heard, 1.0)
    assert not watching.done()
    assert {c.space_id for c in heard} == {"s1"}
    assert await provider.list_spaces() == ["probe", "s1"]


async def test_uploads_left_by_a_killed_process_are_removed_at_start(provider, tmp_path):
    uploading = tmp_path / "spaces" / uploads.UPLOADS
    uploading.mkdir(parents=True)
    (uploading / "empty").write_bytes(b"")
    (uploading / "partial").write_bytes(b"x" * 1000)
    live = uploads.begin(str(tmp_path / "spaces"), None)  # another process's, still writing
    for path in uploading.iterdir():
        os.utime(path, (time.time() - 60, time.time() - 60))
    await provider.workers()["uploads"]()
    assert os.listdir(uploading) == [os.path.basename(live.path)]
    live.finish(str(tmp_path / "spaces" / "done"))
    assert os.listdir(uploading) == []


async def test_written_on_a_thousand_files_is_quick(provider, heard, tmp_path):
    await provider.create_space("s1")
    for d in range(20):
        (tmp_path / "spaces" / "s1" / f"d{d}").mkdir()
        for f in range(50):
            (tmp_path / "spaces" / "s1" / f"d{d}" / f"f{f}").write_bytes(b"x" * f)
    started = time.perf_counter()
    await provider.written("s1", ["/d0/f0"])
    assert time.perf_counter() - started < 0.5
    assert heard[-1].used == 20 * sum(range(50))


def test_drivers_are_found_by_entry_point(tmp_path):
    provider = load_provider("main", "local", {"root": str(tmp_path)})
    assert isinstance(provider, StorageProvider)
    assert isinstance(provider, DavBackend) and isinstance(provider, ChangeSource)
    assert not isinstance(provider, HttpChangeSource)  # it watches the disk itself
    assert provider.name == "main"
    with pytest.raises(DriverNotFound, match=r"installed: .*local"):
        load_provider("x", "no-such-driver", {})
    with pytest.raises(StorageError, match="root"):
        load_provider("x", "local", {})
    with pytest.raises(StorageError, match="dav_threads"):
        load_provider("x", "local", {"root": str(tmp_path), "dav_threads": 0})
