"""The `webdav` driver: spaces are collections `<url>/<space-id>/` on an existing WebDAV server.

Most servers (rclone included) do not change a collection's ETag when something below it changes,
so a space's ETag is a digest of its whole tree, read with one PROPFIND depth 1 per collection.
A scan therefore costs one request per folder of the space; the poller scans every known space
once per interval, backing off while nothing changes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
from starlette.types import ASGIApp

from common.waiting import set_within
from storage.davclient import EPOCH, DavClient, Resource, Snapshot, digest, path_of
from storage.davproxy import DavProxy
from storage.notify_writes import NotifyWrites
from storage.provider import (
    Availability,
    Change,
    Emitter,
    Entry,
    PathNotFound,
    ProviderUnavailable,
    SpaceInfo,
    SpaceNotFound,
    StorageError,
    Worker,
    is_space_id,
    space_path,
)

POLL_MIN_SECONDS = 1.0
POLL_MAX_SECONDS = 30.0
TIMEOUT_SECONDS = 10.0
POLL_BACKOFF_FACTOR = 2.0


def next_interval(current: float, changed: bool, poll_min: float, poll_max: float) -> float:
    """Poll again soon after a change (changes come in bursts), less often while all is still."""
    if changed:
        return poll_min
    return min(max(current, poll_min) * POLL_BACKOFF_FACTOR, poll_max)


@dataclass
class _Watch:
    """What the poller knows of one space."""

    interval: float
    due: float = 0.0
    last: Snapshot | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WebDavProvider(Emitter):
    def __init__(
        self, name: str, url: str, http: httpx2.AsyncClient, poll_min: float, poll_max: float
    ) -> None:
        super().__init__()
        self.name = name
        self.url = url if url.endswith("/") else url + "/"
        self._http = http
        self._dav = DavClient(http)
        self._proxy = DavProxy(http, self.url)
        self._poll_min = poll_min
        self._poll_max = poll_max
        self._watches: dict[str, _Watch] = {}
        self._wake = asyncio.Event()
        self._available = True

    async def create_space(self, space_id: str) -> SpaceInfo:
        await self._dav.mkcol(self._space_url(space_id))
        return await self._observe(space_id, ("/",))

    async def get_space(self, space_id: str) -> SpaceInfo:
        return _info(space_id, await self._scan(space_id, "/"))

    async def list_spaces(self) -> list[str]:
        top = path_of(self.url)
        members = await self._dav.propfind(self.url, "1")
        folders = (PurePosixPath(r.path).name for r in members if r.is_dir and r.path != top)
        names = sorted(filter(is_space_id, folders))
        for name in names:
            self._watch(name)
        return names

    async def set_quota(self, space_id: str, total: int | None) -> None:
        # The host enforces quotas; a WebDAV server has no standard way to be told one.
        await self._resource(space_id, "/")

    async def delete_space(self, space_id: str) -> None:
        try:
            await self._dav.delete(self._space_url(space_id))
        except PathNotFound as exc:
            raise SpaceNotFound(space_id) from exc
        self._watches.pop(space_id, None)

    async def stat(self, space_id: str, path: str) -> Entry:
        relative = str(space_path(path))
        if relative != "/":  # a space's root is a collection: the walk alone tells
            top = await self._resource(space_id, relative)
            if not top.is_dir:
                etag = top.etag or digest((top.size, str(top.modified)))
                return Entry(relative, False, top.size, etag, top.modified or EPOCH)
        snapshot = await self._scan(space_id, relative)
        return Entry(relative, True, snapshot.used, snapshot.etag, snapshot.modified)

    def dav_app(self) -> ASGIApp:
        return self._dav_app

    @cached_property
    def _dav_app(self) -> ASGIApp:
        return NotifyWrites(self._proxy, self)

    async def written(self, space_id: str, paths: Sequence[str]) -> None:
        await self._observe(space_id, paths)

    def workers(self) -> Mapping[str, Worker]:
        return {"poll": self._poll}

    async def close(self) -> None:
        self._callbacks.clear()
        await self._http.aclose()

    async def _poll(self) -> None:
        """Scan each known space when it is due; runs until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            for space_id, watch in list(self._watches.items()):
                if watch.due <= loop.time():
                    await self._observe_quietly(space_id)
            self._wake.clear()
            next_due = min((w.due for w in self._watches.values()), default=math.inf)
            delay = None if next_due == math.inf else max(0.0, next_due - loop.time())
            await set_within(self._wake, delay)

    async def _observe_quietly(self, space_id: str) -> None:
        try:
            await self._observe(space_id, ())
        except SpaceNotFound:
            self._watches.pop(space_id, None)  # removed on the server: nothing left to watch
        except ProviderUnavailable:
            self._reschedule(space_id, changed=False)

    async def _observe(self, space_id: str, paths: Sequence[str]) -> SpaceInfo:
        """Scan a space and emit a Change if its ETag moved since the last scan (by the poller
        or by `written`). The first scan of a space emits too, naming only `paths` (none when
        polled): the host compares it with the ETag it stored, so changes made while it was
        down are not lost."""
        watch = self._watch(space_id)
        async with watch.lock:
            try:
                snapshot = await self._scan(space_id, "/")
            except ProviderUnavailable as exc:
                await self._set_available(False, str(exc))
                raise
            await self._set_available(True)
            last, watch.last = watch.last, snapshot
            changed = last is None or last.etag != snapshot.etag
            if changed:
                touched = snapshot.changed_since(last) if last else tuple(paths)
                await self._emit(Change(space_id, snapshot.etag, snapshot.used, touched))
            self._reschedule(space_id, changed)
        return _info(space_id, snapshot)

    def _reschedule(self, space_id: str, changed: bool) -> None:
        watch = self._watches.get(space_id)
        if watch is not None:
            watch.interval = next_interval(watch.interval, changed, self._poll_min, self._poll_max)
            watch.due = asyncio.get_running_loop().time() + watch.interval

    def _watch(self, space_id: str) -> _Watch:
        if space_id not in self._watches:
            self._watches[space_id] = _Watch(self._poll_min)
            self._wake.set()
        return self._watches[space_id]

    async def _set_available(self, available: bool, reason: str = "") -> None:
        if available != self._available:
            self._available = available
            await self._emit(Availability(self.name, available, reason))

    async def _resource(self, space_id: str, relative: str) -> Resource:
        """The resource at `relative` in a space: SpaceNotFound or PathNotFound if missing."""
        try:
            found = await self._dav.propfind(self._path_url(space_id, relative), "0")
        except PathNotFound as exc:
            if relative != "/":
                await self._resource(space_id, "/")
                raise PathNotFound(relative) from exc
            raise SpaceNotFound(space_id) from exc
        if not found or (relative == "/" and not found[0].is_dir):
            raise SpaceNotFound(space_id) if relative == "/" else PathNotFound(relative)
        return found[0]

    async def _scan(self, space_id: str, relative: str) -> Snapshot:
        url = self._path_url(space_id, relative)
        try:
            resources = await self._dav.walk(url)
        except PathNotFound as exc:
            raise SpaceNotFound(space_id) if relative == "/" else PathNotFound(relative) from exc
        return Snapshot.of(resources, path_of(url))

    def _space_url(self, space_id: str) -> str:
        if not is_space_id(space_id):
            raise StorageError(f"invalid space id {space_id!r}")
        return f"{self.url}{space_id}/"

    def _path_url(self, space_id: str, relative: str) -> str:
        return self._space_url(space_id) + quote(relative.lstrip("/"))


def _info(space_id: str, snapshot: Snapshot) -> SpaceInfo:
    return SpaceInfo(
        space_id=space_id,
        root_id=f"{space_id}!{space_id}",
        etag=snapshot.etag,
        used=snapshot.used,
        modified=snapshot.modified,
    )


def from_config(name: str, options: Mapping[str, Any]) -> WebDavProvider:
    """Options: `url`, `username` + `password` or `bearer_token`, `poll_min_seconds`,
    `poll_max_seconds`, `timeout_seconds`. `callback_url` is ignored: this driver polls."""
    url = options.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad_option(name, "url", "must be the http(s) URL of a WebDAV collection")
    username, password = options.get("username"), options.get("password")
    token = options.get("bearer_token")
    for option, value in (("username", username), ("password", password), ("bearer_token", token)):
        if value is not None and (not isinstance(value, str) or not value):
            raise _bad_option(name, option, "must be a non-empty string")
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise _bad_option(name, missing, "is needed: username and password go together")
    if token is not None and username is not None:
        raise _bad_option(name, "bearer_token", "cannot be combined with username and password")
    poll_min = _seconds(name, options, "poll_min_seconds", POLL_MIN_SECONDS)
    poll_max = _seconds(name, options, "poll_max_seconds", max(POLL_MAX_SECONDS, poll_min))
    if poll_max < poll_min:
        raise _bad_option(name, "poll_max_seconds", "must not be below poll_min_seconds")
    headers = {"Accept-Encoding": "identity"}  # the proxy forwards bodies as they come
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    http = httpx2.AsyncClient(
        auth=httpx2.BasicAuth(username, password) if username and password else None,
        headers=headers,
        timeout=_seconds(name, options, "timeout_seconds", TIMEOUT_SECONDS),
    )
    return WebDavProvider(name, str(url), http, poll_min, poll_max)


def _seconds(name: str, options: Mapping[str, Any], option: str, default: float) -> float:
    value = options.get(option, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not (0 < seconds < math.inf):
        raise _bad_option(name, option, f"must be a positive number of seconds, not {value!r}")
    return seconds


def _bad_option(name: str, option: str, why: str) -> StorageError:
    return StorageError(f"provider {name!r}: webdav option {option!r} {why}")
