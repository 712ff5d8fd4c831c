"""Atomic uploads: a body is written to a file of its own in `.uploads` under the provider root,
then renamed over its target once complete. Its writer holds an exclusive lock on it until
then, which the kernel lets go when the writer dies, so the uploads nobody holds are those a
killed process left behind: a provider removes them when it starts."""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Not a valid space id, so never served.
UPLOADS = ".uploads"


@dataclass
class Upload:
    path: str
    file: BinaryIO  # for the body
    lock: int  # a duplicate descriptor: the lock outlives `file` being closed

    def finish(self, target: str | None) -> None:
        """Rename the upload over `target`, or remove it when None (it failed)."""
        self.file.close()
        try:
            if target is None:
                os.unlink(self.path)
            else:
                os.replace(self.path, target)
        finally:
            os.close(self.lock)


def begin(root: str, mode: int | None) -> Upload:
    """A new, locked upload file below `root`, with the permissions `mode` (those of the file
    it replaces), or None for a new file's (by the umask)."""
    uploads = os.path.join(root, UPLOADS)
    os.makedirs(uploads, exist_ok=True)
    path = os.path.join(uploads, secrets.token_hex(16))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
    upload = Upload(path, os.fdopen(fd, "wb"), os.dup(fd))
    try:
        fcntl.flock(upload.lock, fcntl.LOCK_EX)
        if mode is not None:
            os.fchmod(fd, mode)
    except BaseException:
        upload.finish(None)
        raise
    return upload


def remove_abandoned(root: Path) -> list[str]:
    """Remove the uploads below `root` that nobody writes (their writer was killed); returns
    their names. One modified from now on is left alone: its writer may not hold it yet."""
    started_ns = time.time_ns()
    uploads = root / UPLOADS
    try:
        names = sorted(os.listdir(uploads))
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        try:
            fd = os.open(uploads / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # gone meanwhile, or not a file of ours
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime_ns >= started_ns:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being written
            os.unlink(uploads / name)
            removed.append(name)
        finally:
            os.close(fd)
    return removed
