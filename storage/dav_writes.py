"""What the local driver's WebDAV does once a write succeeded, before it is answered: the
folders above what the write touched get new ETags (`folder_tree`), and the answer names the
id and ETag of what it made (`OC-FileId`, `OC-ETag`) and whether it took the client's
`X-OC-Mtime`, as ownCloud's clients expect."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from wsgidav.dav_error import HTTP_BAD_REQUEST, DAVError

from storage import file_ids, oc_props
from storage.folder_tree import FolderTree, stat_etag

WRITES = frozenset({"PUT", "DELETE", "MKCOL", "COPY", "MOVE"})
MTIME_ACCEPTED = "spacereg.mtime_accepted"  # set in the environ by an upload that took it
_MTIME = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")  # X-OC-Mtime: seconds since 1970

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def mtime_ns(header: str | None) -> int | None:
    """The modification time a client's `X-OC-Mtime` asks for, in nanoseconds."""
    if header is None:
        return None
    if not _MTIME.fullmatch(header.strip()):
        raise DAVError(HTTP_BAD_REQUEST, "X-OC-Mtime must be seconds since 1970")
    seconds, _, fraction = header.strip().partition(".")
    return int(seconds) * 10**9 + int(fraction.ljust(9, "0") or 0)


def answering(
    environ: Environ, start_response: StartResponse, root: str, tree: FolderTree, path: str
) -> StartResponse:
    """`start_response` for a write to `path` (`/<space-id>/...`, as the client named it)."""
    method = environ["REQUEST_METHOD"]
    paths = [path]
    if method in {"COPY", "MOVE"} and "HTTP_DESTINATION" in environ:
        paths.append(unquote(environ["HTTP_DESTINATION"]))  # made relative by the guard
    targets = [os.path.join(root, p.lstrip("/")) for p in paths]
    space_dir = os.path.join(root, path.lstrip("/").partition("/")[0])

    def answer(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        if status.startswith("2"):
            tree.changed(targets, space_dir)
            if method != "DELETE":
                headers = [*headers, *_made(environ, space_dir, targets[-1], tree)]
        return start_response(status, headers, *exc_info)

    return answer


def _made(environ: Environ, space_dir: str, target: str, tree: FolderTree) -> list[tuple[str, str]]:
    try:
        is_dir = os.path.isdir(target)
        item = oc_props.Item(os.path.basename(space_dir), space_dir, target, is_dir, environ)
        number = oc_props.item_number(item)
        etag = tree.summary(target).etag if is_dir else stat_etag(os.stat(target))
    except OSError:
        return []  # gone again already
    headers = [("OC-FileId", file_ids.item_id(item.space_id, number)), ("OC-ETag", f'"{etag}"')]
    if environ.get(MTIME_ACCEPTED):
        headers.append(("X-OC-Mtime", "accepted"))
    return headers
