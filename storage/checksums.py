"""Content checksums as ownCloud clients exchange them (`OC-Checksum: SHA1:<hex>` on upload,
`oc:checksums` in PROPFIND). An upload's are computed while it is written and checked against
the client's; the SHA-1 is kept in an extended attribute together with the size and mtime it
belongs to, so an edit on disk makes it stale rather than wrong (it is then computed again)."""

from __future__ import annotations

import hashlib
import os
import zlib
from typing import Any, BinaryIO

SHA1_ATTR = "user.spacereg.sha1"
CHUNK_BYTES = 1024 * 1024
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


def store_sha1(path: str, hex_digest: str) -> None:
    st = os.stat(path)
    value = f"{st.st_size}:{st.st_mtime_ns}:{hex_digest}".encode()
    os.setxattr(path, SHA1_ATTR, value, follow_symlinks=False)


def sha1(path: str) -> str:
    """The file's SHA-1: the one kept with it while its size and mtime are the same, else read
    from its content (and kept)."""
    st = os.stat(path)
    try:
        size, mtime, digest = os.getxattr(path, SHA1_ATTR).decode().split(":")
        if (int(size), int(mtime)) == (st.st_size, st.st_mtime_ns):
            return digest
    except (OSError, ValueError):
        pass
    digests = Digests()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digests.update(chunk)
    store_sha1(path, digests.hex("SHA1"))
    return digests.hex("SHA1")
