"""Folders' recursive ETags and sizes, which sync clients compare to decide whether to descend.

A folder's ETag is a digest of its members (a file's inode, size and mtime, a subfolder's own
recursive ETag), so anything that changes below a folder changes it; its size is everything
below it. Both are cached per folder, keyed by inode and mtime, which change when a member is
added, removed or renamed. A change that leaves the mtime of the folders above it alone (a
file's content, anything deeper) is told with `changed`, which drops the entries of the
folders above it: one stat per level. The next listing recomputes only those folders, from
their members, so a write costs the depth of the tree, not its size.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

CACHED_FOLDERS = 200_000
_Key = tuple[int, int, int]


@dataclass(frozen=True)
class Summary:
    etag: str  # unquoted
    size: int  # bytes of every file below


class FolderTree:
    def __init__(self, limit: int = CACHED_FOLDERS) -> None:
        self._known: OrderedDict[_Key, Summary] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self._limit = limit

    def summary(self, folder: str) -> Summary:
        """The recursive ETag and size of `folder` (an absolute path), from the cache where it
        can. Folders are visited depth first without recursion, so no depth is too deep."""
        with self._lock:
            generation = self._generation
        done: dict[str, Summary] = {}
        members: dict[str, list[tuple[str, os.stat_result]]] = {}
        stack = [folder]
        while stack:
            path = stack[-1]
            key = _key(path)
            cached = None if key is None else self._cached(key)
            if key is None or cached is not None:
                done[path] = cached or Summary("", 0)
                stack.pop()
            elif path not in members:
                members[path] = _members(path)
                stack.extend(
                    os.path.join(path, name)
                    for name, st in members[path]
                    if stat.S_ISDIR(st.st_mode) and os.path.join(path, name) not in done
                )
            else:
                stack.pop()
                done[path] = _digest(path, members.pop(path), done)
                self._store(key, done[path], generation)
        return done[folder]

    def changed(self, paths: Iterable[str], top: str) -> None:
        """Something at each of `paths` (absolute, below the folder `top`) changed: forget the
        summaries of the folders from it up to `top`."""
        with self._lock:
            self._generation += 1
            for path in paths:
                folder = os.path.normpath(path)  # a folder itself, else its parent first
                while folder.startswith(top):
                    key = _key(folder)
                    if key is not None:
                        self._known.pop(key, None)
                    if folder == top:
                        break
                    folder = os.path.dirname(folder)

    def _cached(self, key: _Key) -> Summary | None:
        with self._lock:
            found = self._known.get(key)
            if found is not None:
                self._known.move_to_end(key)
            return found

    def _store(self, key: _Key, summary: Summary, generation: int) -> None:
        """Keep `summary` unless a change came in while it was computed (it may predate it)."""
        with self._lock:
            if generation != self._generation:
                return
            self._known[key] = summary
            if len(self._known) > self._limit:
                self._known.popitem(last=False)


def stat_etag(st: os.stat_result) -> str:
    """A file's unquoted strong ETag, from inode, size and mtime in nanoseconds (WsgiDAV's own
    uses whole seconds, so two same-size writes within a second would share one)."""
    return hashlib.sha256(f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:32]


def _key(path: str) -> _Key | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def _members(path: str) -> list[tuple[str, os.stat_result]]:
    """A folder's files and folders by name; links are never followed, so left out."""
    found = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                    found.append((entry.name, st))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    return sorted(found, key=lambda member: member[0])


def _digest(
    path: str, members: list[tuple[str, os.stat_result]], done: dict[str, Summary]
) -> Summary:
    digest = hashlib.sha256()
    size = 0
    for name, st in members:
        if stat.S_ISDIR(st.st_mode):
            below = done.get(os.path.join(path, name), Summary("", 0))
            line = f"{name}\0d\0{below.etag}\n"
            size += below.size
        else:
            line = f"{name}\0f\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n"
            size += st.st_size
        digest.update(line.encode(errors="surrogateescape"))
    return Summary(digest.hexdigest()[:32], size)
