"""What a path in a WebDAV request may be, checked once on the bytes the client sent (the
request's path and a MOVE or COPY Destination) before any file system sees it: text (UTF-8
after percent-decoding) without control characters, each name and the whole path short
enough for the file systems spaces are kept on. The registry's gateway and a provider's own
WebDAV app both apply it."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes, urlsplit

from starlette.routing import Mount
from starlette.types import ASGIApp, Scope

from storage.provider import StorageError

NAME_MAX_BYTES = 255  # one name, UTF-8 encoded: NAME_MAX of ext4, XFS, btrfs, ZFS
# A whole path, UTF-8 encoded, with its mount prefix: what PATH_MAX (4096 bytes on Linux)
# leaves once a provider's root folder (at most ROOT_MAX_BYTES) is put in front of it.
PATH_MAX_BYTES = 3072
ROOT_MAX_BYTES = 1000
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class BadPath(StorageError):
    """The request names a path no space can hold (400)."""


class PathTooLong(BadPath):
    """The request's own path is too long (414)."""


def dav_mount(path: str, app: ASGIApp) -> Mount:
    """`app` mounted at `path` for every path below it, so that it can refuse the bad ones:
    Starlette's pattern stops at a newline, and would answer 404 itself."""
    mount = Mount(path, app=app)
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


def check_request(scope: Scope) -> None:
    """BadPath (PathTooLong for the request's path) unless the request's path and any
    Destination are valid paths."""
    raw = scope.get("raw_path")
    if raw is None:  # a server that keeps no raw path: only the decoded one to go by
        decoded = scope["path"].encode("utf-8", "surrogateescape")
    else:
        decoded = unquote_to_bytes(raw.partition(b"?")[0])
    _check(decoded, "the path", PathTooLong)
    for key, value in scope["headers"]:
        if key == b"destination":
            _check(unquote_to_bytes(urlsplit(value).path), "the Destination", BadPath)


def _check(path: bytes, what: str, too_long: type[BadPath]) -> None:
    if len(path) > PATH_MAX_BYTES:
        raise too_long(f"{what} is {len(path)} bytes long; at most {PATH_MAX_BYTES} are allowed")
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPath(f"{what} is not UTF-8 text once percent-decoded") from exc
    if _CONTROL.search(text):
        raise BadPath(f"{what} has a control character (U+0000 to U+001F, U+007F) in a name")
    for name in path.split(b"/"):
        if len(name) > NAME_MAX_BYTES:
            raise BadPath(
                f"{what} has a name of {len(name)} bytes; at most {NAME_MAX_BYTES} are allowed"
            )
