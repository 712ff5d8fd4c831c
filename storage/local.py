"""The `local` driver: each space is a directory under a root folder on this machine."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from storage import file_ids, uploads
from storage.dav import DAV_THREADS, dav_app
from storage.dav_paths import ROOT_MAX_BYTES
from storage.folder_tree import FolderTree, stat_etag
from storage.notify_writes import NotifyWrites
from storage.provider import (
    Change,
    Emitter,
    Entry,
    PathNotFound,
    SpaceInfo,
    SpaceNotFound,
    StorageError,
    Worker,
    change_path,
    is_space_id,
    space_path,
)
from storage.watch import watch_spaces

logger = logging.getLogger("spacereg.provider")


@dataclass
class _Emitted:
    """Per space: the root ETag last emitted, the paths named at it so far, and the paths
    waiting for the next rescan. The lock keeps one rescan at a time, so changes go out in
    order and callers that queue behind a running scan share the next one."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: set[str] = field(default_factory=set)
    etag: str | None = None
    named: set[str] = field(default_factory=set)

    def unnamed(self, etag: str, paths: Collection[str]) -> set[str]:
        """Of `paths`, found changed in the state `etag`, those no change emitted yet names;
        remembers them as named. A path is named at an ETag once. `/` is a name like the
        others: the watcher reports a new space's folder so (the writes inside it that came
        before its watch are otherwise unseen), and a write's own report that comes after
        at the same ETag still names its path, rather than leaving it to "anything"."""
        if etag != self.etag:
            self.etag, self.named = etag, set()
        new = set(paths) - self.named
        self.named |= new
        return new


class LocalProvider(Emitter):
    """Spaces as directories. The root ETag is a digest of every entry's path, inode, size
    and mtime below the root, so it changes whenever anything below it changes."""

    def __init__(self, name: str, root: Path, dav_threads: int = DAV_THREADS) -> None:
        super().__init__()
        self.name = name
        self.root = root
        self.dav_threads = dav_threads
        self._emitted: dict[str, _Emitted] = {}
        self._tree = FolderTree()

    async def create_space(self, space_id: str) -> SpaceInfo:
        path = self._space_dir(space_id)
        await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
        emitted = self._emitted.setdefault(space_id, _Emitted())
        async with emitted.lock:
            info = await self.get_space(space_id)
            emitted.unnamed(info.etag, ("/",))
            await self._emit(Change(space_id, info.etag, info.used, ("/",)))
        return info

    async def get_space(self, space_id: str) -> SpaceInfo:
        return await asyncio.to_thread(self._scan, space_id)

    async def list_spaces(self) -> list[str]:
        def names() -> list[str]:
            if not self.root.is_dir():
                return []
            return sorted(p.name for p in self.root.iterdir() if is_space_id(p.name) and p.is_dir())

        return await asyncio.to_thread(names)

    async def set_quota(self, space_id: str, total: int | None) -> None:
        # The local driver keeps no quota of its own: the registry enforces the total.
        self._existing_dir(space_id)

    async def delete_space(self, space_id: str) -> None:
        path = self._existing_dir(space_id)
        await asyncio.to_thread(shutil.rmtree, path)
        self._emitted.pop(space_id, None)

    async def stat(self, space_id: str, path: str) -> Entry:
        relative = space_path(path)
        if str(relative) == "/":  # the space's root: its size and ETag are the whole tree's
            info = await self.get_space(space_id)
            return Entry(path, True, info.used, info.etag, info.modified)
        target = self._existing_dir(space_id).joinpath(*relative.parts[1:])

        def entry() -> Entry:
            try:
                st = target.stat()
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise PathNotFound(path) from exc
            is_dir = stat.S_ISDIR(st.st_mode)
            modified = datetime.fromtimestamp(st.st_mtime, UTC)
            return Entry(path, is_dir, 0 if is_dir else st.st_size, f'"{stat_etag(st)}"', modified)

        return await asyncio.to_thread(entry)

    def dav_app(self) -> ASGIApp:
        return self._dav

    async def item_path(self, space_id: str, item_id: str) -> str:
        top = self._existing_dir(space_id)
        owner, _, number = item_id.partition("!")
        if owner != space_id or not number:
            raise PathNotFound(item_id)
        if number == space_id:
            return "/"
        found = await asyncio.to_thread(file_ids.find, str(top), number)
        if found is None:
            raise PathNotFound(item_id)
        return found

    @cached_property
    def _dav(self) -> ASGIApp:
        return NotifyWrites(dav_app(self.root, is_space_id, self.dav_threads, self._tree), self)

    async def written(self, space_id: str, paths: Sequence[str]) -> None:
        self._existing_dir(space_id)
        await self._rescan(space_id, paths)

    def workers(self) -> Mapping[str, Worker]:
        return {"watch": self._watch, "uploads": self._remove_abandoned_uploads}

    async def close(self) -> None:
        self._callbacks.clear()

    async def _remove_abandoned_uploads(self) -> None:
        """At start: remove what uploads cut short by a killed process left behind."""
        removed = await asyncio.to_thread(uploads.remove_abandoned, self.root)
        if removed:
            logger.warning("provider %s: removed %d abandoned uploads", self.name, len(removed))

    async def _watch(self) -> None:
        # Ids for what was made while nobody watched, before watching: given later, when first
        # read, each would be an event for the watcher (see `file_ids.give_missing`).
        for space_id in await self.list_spaces():
            await asyncio.to_thread(file_ids.give_below, str(self.root / space_id))
        await watch_spaces(self.root, is_space_id, self._changed_on_disk)

    async def _changed_on_disk(self, space_id: str, paths: Collection[str]) -> None:
        top = str(self._space_dir(space_id))
        absolute = [top + path for path in paths if path != "/"]
        self._tree.changed(absolute, top)
        await asyncio.to_thread(file_ids.give_missing, absolute)
        try:
            await self._rescan(space_id, paths)
        except SpaceNotFound:
            self._emitted.pop(space_id, None)

    async def _rescan(self, space_id: str, paths: Collection[str]) -> None:
        """Emit a Change naming those of `paths` that no change at the current root ETag named
        yet. A scan may already show a write whose own report comes later (a PUT's `written`
        after the watcher's batch, or two PUTs racing): that report still names its path,
        under the same ETag, while a watcher's repeat of a written path emits nothing."""
        emitted = self._emitted.setdefault(space_id, _Emitted())
        emitted.pending.update(change_path(p) for p in paths)
        async with emitted.lock:
            if not emitted.pending:
                return  # a scan that started after our paths came in has covered them
            touched = set(emitted.pending)
            emitted.pending.clear()
            info = await asyncio.to_thread(self._scan, space_id)
            new = emitted.unnamed(info.etag, touched)
            if new:
                await self._emit(Change(space_id, info.etag, info.used, tuple(sorted(new))))

    def _space_dir(self, space_id: str) -> Path:
        if not is_space_id(space_id):
            raise StorageError(f"invalid space id {space_id!r}")
        return self.root / space_id

    def _existing_dir(self, space_id: str) -> Path:
        path = self._space_dir(space_id)
        if not path.is_dir():
            raise SpaceNotFound(space_id)
        return path

    def _scan(self, space_id: str) -> SpaceInfo:
        top = self._existing_dir(space_id)
        try:
            top_st = top.stat()
        except FileNotFoundError as exc:
            raise SpaceNotFound(space_id) from exc
        digest = hashlib.sha256()
        used = 0
        newest = top_st.st_mtime_ns
        # Depth first, each folder's files then its folders by name: the order os.walk gave.
        stack = [(str(top), "")]
        while stack:
            directory, prefix = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: (e.is_dir(), e.name))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            below = []
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                rel = prefix + entry.name
                if not entry.is_dir():
                    used += st.st_size
                elif not stat.S_ISLNK(st.st_mode):
                    below.append((entry.path, rel + "/"))
                newest = max(newest, st.st_mtime_ns)
                line = f"{rel}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n"
                digest.update(line.encode(errors="surrogateescape"))  # names need not be UTF-8
            stack.extend(reversed(below))
        digest.update(f".\0{top_st.st_ino}\0{top_st.st_mtime_ns}".encode())
        return SpaceInfo(
            space_id=space_id,
            root_id=f"{space_id}!{space_id}",
            etag=f'"{digest.hexdigest()[:32]}"',
            used=used,
            modified=datetime.fromtimestamp(newest / 1e9, UTC),
        )


def from_config(name: str, options: Mapping[str, Any]) -> LocalProvider:
    root = options.get("root")
    if not root:
        raise StorageError(f"provider {name!r}: the local driver needs option 'root'")
    if len(os.fsencode(os.path.abspath(root))) > ROOT_MAX_BYTES:
        # Longer, and a path WebDAV accepts (dav_paths.PATH_MAX_BYTES) might not fit PATH_MAX.
        raise StorageError(f"provider {name!r}: 'root' must be at most {ROOT_MAX_BYTES} bytes")
    threads = options.get("dav_threads", DAV_THREADS)
    if type(threads) is not int or threads < 1:
        raise StorageError(f"provider {name!r}: 'dav_threads' must be a positive integer")
    return LocalProvider(name, Path(root), threads)
