"""Every space's files over WebDAV: WsgiDAV's filesystem provider on the provider root, run
in a2wsgi's thread pool. Around it, what a root shared by many spaces needs (a request stays
in one existing space, space roots are left alone) and what WsgiDAV leaves out (ETags on
folders, hrefs under the host's mount prefix, atomic uploads)."""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote, unquote, urlsplit

from a2wsgi import WSGIMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from wsgidav import util
from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_BAD_REQUEST,
    HTTP_FORBIDDEN,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    DAVError,
    PRECONDITION_CODE_PropfindFiniteDepth,
)
from wsgidav.dav_provider import DAVNonCollection, _DAVResource
from wsgidav.error_printer import ErrorPrinter
from wsgidav.fs_dav_provider import FileResource, FilesystemProvider, FolderResource
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from storage import checksums, dav_writes, file_ids, oc_props, uploads
from storage.dav_paths import BadPath, PathTooLong, check_request
from storage.folder_tree import FolderTree, stat_etag

# Each request holds a thread while its body is read or its response written; past this many,
# requests wait for a free thread instead of piling threads up.
DAV_THREADS = 32
# What WsgiDAV reads and writes at a time; its 8 KiB default made each block of a download
# a trip between a worker thread and the event loop (GET of 100 MB: 100 MB/s, see bench/webdav.py).
DAV_BLOCK_BYTES = 256 * 1024
_READS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND"})
_HREF_SAFE = "/!*'(),$|"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def dav_app(
    root: Path,
    is_space: Callable[[str], bool],
    threads: int = DAV_THREADS,
    tree: FolderTree | None = None,
) -> ASGIApp:
    """Serve `root/<space-id>/<path>` at `/<space-id>/<path>`, anonymously: the host that
    mounts it authenticates and authorises each request for the space it names. `tree` keeps
    the folders' recursive ETags and sizes (the driver tells it of changes made on disk)."""
    tree = tree or FolderTree()
    root.mkdir(parents=True, exist_ok=True)
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    for name in ("wsgidav.request_server", "wsgidav.error_printer"):
        logging.getLogger(name).addFilter(_not_a_hang_up)
    wsgidav = WsgiDAVApp(
        {
            "provider_mapping": {"/": _SpacesProvider(root, tree)},
            # No authenticator, no HTML directory browser, no CORS: the host does those.
            "middleware_stack": [ErrorPrinter, RequestResolver],
            "http_authenticator": {"accept_basic": False, "accept_digest": False},
            "lock_storage": False,  # the registry's gateway keeps the locks
            "block_size": DAV_BLOCK_BYTES,
            "verbose": 1,
            "logging": {"enable": False},
        }
    )
    guard = _SpaceGuard(wsgidav, root, is_space, tree)
    wsgi = WSGIMiddleware(cast(Any, guard), workers=threads)  # a2wsgi types environ narrowly
    return _ValidPaths(_AbortOnDisconnect(cast(ASGIApp, wsgi)))


def _not_a_hang_up(record: logging.LogRecord) -> bool:
    """A client hanging up mid-upload is no server error: drop WsgiDAV's tracebacks for it."""
    error = sys.exc_info()[1]
    return not isinstance(getattr(error, "src_exception", error), ConnectionAbortedError)


class _ValidPaths:
    """Refuse a path that no space can hold (`storage.dav_paths`) before WsgiDAV, which would
    store it mangled or fail with a 500, sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            check_request(scope)
        except BadPath as exc:
            status = 414 if isinstance(exc, PathTooLong) else 400
            await PlainTextResponse(str(exc), status)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _AbortOnDisconnect:
    """a2wsgi reads a client's disconnect as the end of the body, which would store a
    truncated upload; make it an error in the reading thread instead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_body() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionAbortedError("client went away before the body ended")
            return message

        await self.app(scope, receive_body, send)


class _SpaceGuard:
    """Checks made on the path as the host saw it, before WsgiDAV normalises it: the first
    segment names an existing space, no dot segments (so `/a/../b` cannot reach space b
    after the host authorised space a), space roots are read-only, and a Destination
    stays in the same space (it is rewritten relative to this app for WsgiDAV)."""

    def __init__(
        self, app: WSGIApp, root: Path, is_space: Callable[[str], bool], tree: FolderTree
    ) -> None:
        self.app = app
        self.root = root
        self.is_space = is_space
        self.tree = tree

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgidav.auth.user_name"] = ""  # authenticated by the host
        try:
            self._check(environ)
        except DAVError as exc:
            return cast(Iterable[bytes], util.send_status_response(environ, start_response, exc))
        if environ["REQUEST_METHOD"] in dav_writes.WRITES:
            path = _unicode(environ["PATH_INFO"])
            start_response = dav_writes.answering(
                environ, start_response, str(self.root), self.tree, path
            )
        return self.app(environ, start_response)

    def _check(self, environ: Environ) -> None:
        method = environ["REQUEST_METHOD"]
        space_id, at_root = self._space(environ["PATH_INFO"])
        if at_root and method not in _READS:
            raise DAVError(HTTP_FORBIDDEN, "a space's root is managed by the registry")
        if not (self.root / space_id).is_dir():
            raise DAVError(HTTP_NOT_FOUND)
        if method in {"COPY", "MOVE"} and "HTTP_DESTINATION" in environ:
            environ["HTTP_DESTINATION"] = self._destination(environ, space_id)

    def _space(self, path: str) -> tuple[str, bool]:
        """The space a path names, and whether the path is that space's root."""
        segments = path.split("/")
        if "\0" in path or "." in segments or ".." in segments:
            raise DAVError(HTTP_BAD_REQUEST, "dot segments are not allowed")
        space_id = segments[1] if len(segments) > 1 else ""
        if not self.is_space(space_id):
            raise DAVError(HTTP_NOT_FOUND)
        return space_id, not any(segments[2:])

    def _destination(self, environ: Environ, space_id: str) -> str:
        url = urlsplit(environ["HTTP_DESTINATION"])
        schemes = {environ["wsgi.url_scheme"], environ.get("HTTP_X_FORWARDED_PROTO", "")}
        hosts = {environ.get("HTTP_HOST", ""), environ.get("HTTP_X_FORWARDED_HOST", "")}
        if url.scheme and url.scheme.lower() not in schemes:
            raise DAVError(HTTP_BAD_GATEWAY, "Destination is on another server")
        if url.netloc and url.netloc.lower() not in {h.lower() for h in hosts}:
            raise DAVError(HTTP_BAD_GATEWAY, "Destination is on another server")
        prefix = _unicode(environ["SCRIPT_NAME"])
        path = unquote(_unicode(url.path))
        if not path.startswith(prefix + "/"):
            raise DAVError(HTTP_BAD_GATEWAY, "Destination is outside this WebDAV tree")
        relative = path[len(prefix) :]
        dest_space, at_root = self._space(relative)
        if dest_space != space_id or at_root:
            raise DAVError(HTTP_FORBIDDEN, "copy and move stay below one space's root")
        return quote(relative)


class _SpacesProvider(FilesystemProvider):
    """The provider root as one tree; symbolic links are never followed, so nothing outside
    the space a path names is reachable."""

    def __init__(self, root: Path, tree: FolderTree) -> None:
        super().__init__(str(root), readonly=False, fs_opts={"follow_symlinks": False})
        self.tree = tree

    def _loc_to_file_path(self, path: str, environ: Environ | None = None) -> str:
        # WsgiDAV only checks that the target resolves inside the root, which a link from one
        # space into another does; refuse a link anywhere on the path instead.
        file_path = cast(str, super()._loc_to_file_path(path, environ))
        relative = os.path.relpath(file_path, self.root_folder_path)
        unlinked = os.path.normpath(os.path.join(self.root_folder_path_real, relative))
        if os.path.realpath(file_path) != unlinked:
            raise DAVError(HTTP_FORBIDDEN, "symbolic links are not followed")
        return file_path

    def get_resource_inst(self, path: str, environ: Environ) -> _File | _Folder | None:
        file_path = self._loc_to_file_path(path, environ)
        if os.path.isdir(file_path):
            return _Folder(path, environ, file_path)
        if os.path.isfile(file_path):
            return _File(path, environ, file_path)
        return None

    def custom_request_handler(
        self, environ: Environ, start_response: StartResponse, default_handler: WSGIApp
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "PROPFIND" and environ.get("HTTP_DEPTH", "infinity") == "infinity":
            raise DAVError(HTTP_FORBIDDEN, err_condition=PRECONDITION_CODE_PropfindFiniteDepth)
        # WsgiDAV skips If-Match when nothing exists yet; HTTP says that fails the condition.
        if (
            method in {"PUT", "MKCOL"}
            and "HTTP_IF_MATCH" in environ
            and not self.exists(environ["PATH_INFO"], environ)
        ):
            raise DAVError(HTTP_PRECONDITION_FAILED, "If-Match: nothing to match")
        return default_handler(environ, start_response)


class _Stamped(_DAVResource):
    """What files and folders share here: ETags from `stat_etag`, quoted in PROPFIND answers,
    hrefs under the request's own mount prefix, the ownCloud properties (`oc_props`), and a
    copy's own id."""

    _file_path: str

    def get_etag(self) -> str:
        return stat_etag(self.file_stat)

    def get_href(self) -> str:
        return _href(self.environ, self.get_preferred_path())

    def get_property_value(self, name: str) -> Any:
        if name == "{DAV:}getetag":
            return f'"{self.get_etag()}"'  # RFC 4918 15.6: the entity tag, with its quotes
        if name.startswith(oc_props.OC):
            try:
                return oc_props.value(name, self._item(), self.provider.tree)
            except oc_props.UnknownProperty as exc:
                raise DAVError(HTTP_NOT_FOUND) from exc
        return super().get_property_value(name)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        super().copy_move_single(dest_path, is_move=is_move)
        if not is_move:  # the copy took the original's id over with its attributes
            file_ids.forget(self.provider._loc_to_file_path(dest_path, self.environ))

    def _item(self) -> oc_props.Item:
        """The resource as `oc_props` sees it, made once per resource and request."""
        item: oc_props.Item | None = getattr(self, "_oc_item", None)
        if item is None:
            space_id = self.path.lstrip("/").partition("/")[0]
            space_dir = os.path.join(self.provider.root_folder_path, space_id)
            item = oc_props.Item(
                space_id, space_dir, self._file_path, self.is_collection, self.environ
            )
            self._oc_item = item
        return item


class _File(_Stamped, FileResource):
    _upload: uploads.Upload | None = None
    _writer: checksums.HashingWriter | None = None
    _expected: tuple[str, str] | None = None
    _mtime_ns: int | None = None

    def begin_write(self, *, content_type: str | None = None) -> BinaryIO:
        """Write to a file of its own, renamed over this one in `end_write` when the whole
        body arrived: readers and the watcher never see half a file, and a failed upload
        leaves the old content."""
        if not os.access(self._file_path, os.W_OK):
            raise DAVError(HTTP_FORBIDDEN, "the file is read-only")  # renaming would not ask
        mode = stat.S_IMODE(self.file_stat.st_mode)
        return self._begin(mode)

    def _begin(self, mode: int | None) -> BinaryIO:
        """The upload, digested as it is written, once the client's `OC-Checksum` and
        `X-OC-Mtime` are found well-formed."""
        try:
            self._expected = checksums.expected(self.environ.get("HTTP_OC_CHECKSUM"))
        except checksums.ChecksumError as exc:
            raise DAVError(HTTP_BAD_REQUEST, str(exc)) from exc
        self._mtime_ns = dav_writes.mtime_ns(self.environ.get("HTTP_X_OC_MTIME"))
        self._upload = uploads.begin(self.provider.root_folder_path, mode)
        self._writer = checksums.HashingWriter(self._upload.file)
        return cast(BinaryIO, self._writer)

    def end_write(self, *, with_errors: bool) -> None:
        """Keep the upload (WsgiDAV closes the file only when the whole body arrived) if its
        checksum is the client's, with the id of the file it replaces, the client's mtime
        and its checksums, all set before it takes the file's place."""
        upload, writer = self._upload, self._writer
        self._upload = self._writer = None
        if upload is None or writer is None:
            return  # refused before it began
        if with_errors:
            upload.finish(None)
            return
        if self._expected is not None:
            algorithm, digest = self._expected
            if writer.digests.hex(algorithm) != digest:
                upload.finish(None)
                raise DAVError(HTTP_BAD_REQUEST, f"the content's {algorithm} is not {digest}")
        try:
            file_ids.carry(self._file_path, upload.path)
            if self._mtime_ns is not None:
                os.utime(upload.path, ns=(self._mtime_ns, self._mtime_ns))
                self.environ[dav_writes.MTIME_ACCEPTED] = True
            checksums.store(upload.path, writer.digests)
        except BaseException:
            upload.finish(None)
            raise
        upload.finish(self._file_path)
        self.file_stat = os.stat(self._file_path)


class _NewFile(_File):
    """A file a PUT creates: nothing of it is in the space until its upload ends, so an
    upload that fails, is cut short or dies with its process leaves no empty file behind."""

    def __init__(self, path: str, environ: Environ, file_path: str) -> None:
        DAVNonCollection.__init__(self, path, environ)  # FileResource's would stat the file
        self._file_path = file_path
        self.name = os.path.basename(file_path)

    def begin_write(self, *, content_type: str | None = None) -> BinaryIO:
        return self._begin(None)


class _Folder(_Stamped, FolderResource):
    """A folder's ETag and size are those of everything below it (`folder_tree`)."""

    def get_etag(self) -> str:
        tree: FolderTree = self.provider.tree
        return tree.summary(self._file_path).etag

    def create_empty_resource(self, name: str) -> _NewFile:
        path = util.join_uri(self.path, name)
        return _NewFile(path, self.environ, self.provider._loc_to_file_path(path, self.environ))

    def support_etag(self) -> bool:
        return True

    def get_member_names(self) -> list[str]:
        # A name that is not UTF-8 cannot go in a URL or XML: leave it out, not the listing.
        return [name for name in super().get_member_names() if _is_utf8(name)]

    def get_used_bytes(self) -> str:
        return str(self.provider.tree.summary(self._file_path).size)

    def get_available_bytes(self) -> str:
        return oc_props.available(self._item(), self.provider.tree)


def _href(environ: Environ, path: str) -> str:
    """WsgiDAV builds hrefs from a mount path fixed at start-up; use the request's prefix."""
    return quote(_unicode(environ["SCRIPT_NAME"]) + path, safe=_HREF_SAFE)


def _unicode(wsgi_str: str) -> str:
    """A WSGI string (UTF-8 bytes decoded as latin-1) as the text the client sent."""
    return cast(str, util.re_encode_wsgi(wsgi_str, fallback=True))


def _is_utf8(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True
