"""File ids that stay with a file or folder through renames, moves and overwrites: kept in an
extended attribute of the file itself, so a rename (which keeps the inode) keeps it, an upload
that replaces a file takes the old file's over (`carry`), and a copy gets a new one (`forget`).

An id is `<space-id>!<number>`, the number being `oc:fileid` (clients parse it as a number);
a space's root is `<space-id>!<space-id>`, the drive's root item id. Driven by the local
driver; the provider service runs that driver, so a `remote` provider's files keep theirs the
same way.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator

ID_ATTR = "user.spacereg.id"
ID_BOUND = 2**63  # a number that fits a signed 64-bit integer, as clients store it


def item_id(space_id: str, number: str) -> str:
    return f"{space_id}!{number}"


def root_number(space_id: str) -> str:
    """The number of a space's root folder, which keeps no attribute of its own."""
    return str(int(hashlib.sha256(space_id.encode()).hexdigest()[:15], 16))


def number_of(path: str) -> str:
    """The id number of the file or folder at `path`, given one now if it has none (by an
    exclusive create, so that two requests at once agree on it)."""
    try:
        return os.getxattr(path, ID_ATTR, follow_symlinks=False).decode()
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
    number = str(secrets.randbelow(ID_BOUND - 1) + 1).encode()
    try:
        os.setxattr(path, ID_ATTR, number, os.XATTR_CREATE, follow_symlinks=False)
    except FileExistsError:
        return os.getxattr(path, ID_ATTR, follow_symlinks=False).decode()
    return number.decode()


def give_missing(paths: Iterable[str]) -> None:
    """Give an id to each of `paths` that exists and has none (made on disk, just seen by the
    watcher), and to everything below a folder that had none (the watcher may report a new
    folder, not what was made in it at once). Such an attribute write is an event for the
    watcher too, but of a path it reported at the same state of the space, so no change is
    told that nobody made; giving ids when they are first read would tell one."""
    for path in paths:
        try:
            os.getxattr(path, ID_ATTR, follow_symlinks=False)
            continue
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                continue  # gone again, or a link (never followed)
        _give(path)
        if os.path.isdir(path) and not os.path.islink(path):
            give_below(path)


def give_below(folder: str) -> None:
    """Give an id to everything below `folder` that has none."""
    for path in _below(folder):
        _give(path)


def _give(path: str) -> None:
    with contextlib.suppress(OSError):  # gone again, or a link (never followed)
        number_of(path)


def carry(old: str, new: str) -> None:
    """`new` is about to replace `old`: give it `old`'s id (if it had one)."""
    try:
        number = os.getxattr(old, ID_ATTR, follow_symlinks=False)
    except OSError:
        return
    os.setxattr(new, ID_ATTR, number, follow_symlinks=False)


def forget(path: str) -> None:
    """`path` is a copy: drop the id the copy took over, so it gets its own."""
    try:
        os.removexattr(path, ID_ATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise


def find(space_dir: str, number: str) -> str | None:
    """The path (`/a/b`, below the space's root) of the item numbered `number`, or None. Walks
    the space: ids are looked up rarely (a share names a folder once), listed on every PROPFIND."""
    for path in _below(space_dir):
        try:
            if os.getxattr(path, ID_ATTR, follow_symlinks=False).decode() == number:
                return "/" + os.path.relpath(path, space_dir)
        except OSError:
            continue
    return None


def _below(top: str) -> Iterator[str]:
    for folder, folders, files in os.walk(top):
        for name in folders + files:
            yield os.path.join(folder, name)
