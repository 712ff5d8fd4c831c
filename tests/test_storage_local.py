"""The local storage driver on a real directory tree, and driver discovery by entry point."""

from __future__ import annotations

import os

import pytest

from storage import (
    DriverNotFound,
    PathNotFound,
    SpaceNotFound,
    StorageError,
    StorageProvider,
    load_provider,
)
from storage.local import LocalProvider


@pytest.fixture
def provider(tmp_path):
    return LocalProvider("local", tmp_path / "spaces")


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


def test_drivers_are_found_by_entry_point(tmp_path):
    provider = load_provider("main", "local", {"root": str(tmp_path)})
    assert isinstance(provider, StorageProvider)
    assert provider.name == "main"
    with pytest.raises(DriverNotFound, match=r"installed: .*local"):
        load_provider("x", "no-such-driver", {})
    with pytest.raises(StorageError, match="root"):
        load_provider("x", "local", {})
    with pytest.raises(StorageError, match="dav_threads"):
        load_provider("x", "local", {"root": str(tmp_path), "dav_threads": 0})
