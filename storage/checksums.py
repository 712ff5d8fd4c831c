"""Content checksums as ownCloud clients exchange them (`OC-Checksum: SHA1:<hex>` on upload,
`oc:checksums` in PROPFIND). An upload's are computed while it is written and checked against
the client's; they are kept in an extended attribute together with the size and mtime they
belong to, so an edit on disk makes them stale rather than wrong (they are then read again
from the content). MD5 is listed beside SHA-1 because rclone checks with the first hash both
sides have."""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from collections import OrderedDict
from typing import Any, BinaryIO

DIGESTS_ATTR = "user.spacereg.checksums"
CHUNK_BYTES = 1024 * 1024
READ_CACHE_FILES = 100_000
# Digests read from files that had none kept (made on disk): by device, inode, size and mtime.
_read: OrderedDict[tuple[int, int, int, int], list[str]] = OrderedDict()
_read_lock = threading.Lock()
ALGORITHMS = ("SHA1", "MD5", "ADLER32")


class ChecksumError(ValueError):
    """An `OC-Checksum` header that is not `<algorithm>:<hex digest>`."""


def expected(header: str | None) -> tuple[str, str] | None:
    """The (algorithm, lowercase hex) a client's `OC-Checksum` names, None for none or for an
    algorithm we do not compute (then the upload is taken unchecked, as ownCloud does)."""
    if not header:
        return None
    algorithm, colon, value = header.strip().partition(":")
    if not colon or not value:
        raise ChecksumError(f"OC-Checksum must be <algorithm>:<digest>, not {header!r}")
    algorithm = algorithm.upper()
    if algorithm not in ALGORITHMS:
        return None
    return algorithm, value.strip().lower()


class Digests:
    """SHA-1, MD5 and Adler-32 of everything `update` was given."""

    def __init__(self) -> None:
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._adler = 1

    def update(self, data: bytes) -> None:
        self._sha1.update(data)
        self._md5.update(data)
        self._adler = zlib.adler32(data, self._adler)

    def hex(self, algorithm: str) -> str:
        if algorithm == "SHA1":
            return self._sha1.hexdigest()
        if algorithm == "MD5":
            return self._md5.hexdigest()
        return f"{self._adler:08x}"


class HashingWriter:
    """The upload's file, digesting what is written to it."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.digests = Digests()

    def write(self, data: bytes) -> int:
        self.digests.update(data)
        return self.file.write(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self.file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def store(path: str, digests: Digests) -> None:
    """Keep the file's digests with it, valid while its size and mtime stay what they are now."""
    st = os.stat(path)
    hexes = ":".join(digests.hex(algorithm) for algorithm in ALGORITHMS)
    value = f"{st.st_size}:{st.st_mtime_ns}:{hexes}".encode()
    os.setxattr(path, DIGESTS_ATTR, value, follow_symlinks=False)


def listed(path: str) -> str:
    """The file's checksums as `oc:checksum` lists them (`SHA1:<hex> MD5:<hex> ADLER32:<hex>`):
    those kept with it while its size and mtime are the same, else read from its content. What
    is read is remembered in memory, not written to the file: a write of an attribute would be
    an event for the watcher, and a change nobody made."""
    st = os.stat(path)
    try:
        size, mtime, *hexes = os.getxattr(path, DIGESTS_ATTR).decode().split(":")
        if (int(size), int(mtime)) == (st.st_size, st.st_mtime_ns) and len(hexes) == 3:
            return _listing(hexes)
    except (OSError, ValueError):
        pass
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _read_lock:
        known = _read.get(key)
    if known is None:
        digests = Digests()
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                digests.update(chunk)
        known = [digests.hex(algorithm) for algorithm in ALGORITHMS]
        with _read_lock:
            _read[key] = known
            if len(_read) > READ_CACHE_FILES:
                _read.popitem(last=False)
    return _listing(known)


def _listing(hexes: list[str]) -> str:
    return " ".join(
        f"{algorithm}:{hex_}" for algorithm, hex_ in zip(ALGORITHMS, hexes, strict=True)
    )
