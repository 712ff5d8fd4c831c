"""The roles a storage driver plays (space store, WebDAV back end, change source), the values
they return, and what drivers share: the syntax of space ids, paths below a space's root, and
calling subscribers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Protocol, runtime_checkable

from starlette.types import ASGIApp


class StorageError(Exception):
    """A provider could not do what was asked."""


class SpaceNotFound(StorageError):
    pass


class PathNotFound(StorageError):
    pass


class ProviderUnavailable(StorageError):
    """The provider (a remote service or server) could not be reached; try again later."""


@dataclass(frozen=True)
class SpaceInfo:
    """What a provider knows of one space: the registry copies this into its own records."""

    space_id: str
    root_id: str
    etag: str
    used: int
    modified: datetime


@dataclass(frozen=True)
class Entry:
    path: str
    is_dir: bool
    size: int
    etag: str
    modified: datetime


@dataclass(frozen=True)
class Change:
    """Something below a space's root changed: its new root ETag, usage and the paths touched
    (as `change_path` writes them; `/` for anything in the space). `event_id` is set when the
    change came from another process, so receivers drop repeats."""

    space_id: str
    etag: str
    used: int
    paths: tuple[str, ...]
    event_id: str | None = None


@dataclass(frozen=True)
class Availability:
    """The provider became reachable or unreachable; all of its spaces are affected."""

    provider: str
    available: bool
    reason: str = ""


ProviderEvent = Change | Availability
ChangeCallback = Callable[[ProviderEvent], Awaitable[None]]
# A named long-running job (a watcher, a poller, a lease renewal) that the host supervises:
# it is restarted with backoff when it raises, and cancelled at shutdown.
Worker = Callable[[], Awaitable[None]]


@runtime_checkable
class SpaceStore(Protocol):
    """Space management: create, inspect, size and remove the spaces a provider holds."""

    name: str

    async def create_space(self, space_id: str) -> SpaceInfo: ...

    async def get_space(self, space_id: str) -> SpaceInfo: ...

    async def list_spaces(self) -> list[str]: ...

    async def set_quota(self, space_id: str, total: int | None) -> None: ...

    async def delete_space(self, space_id: str) -> None: ...

    async def stat(self, space_id: str, path: str) -> Entry: ...


@runtime_checkable
class StorageProvider(SpaceStore, Protocol):
    """What a driver's factory builds: a store of spaces that its host closes at shutdown.
    Factories are found by the entry point group `spacereg.storage` and called as
    `(name, options) -> StorageProvider`. A driver plays the other roles (`DavBackend`,
    `ChangeSource`, `HttpChangeSource`) by implementing them too; hosts check with isinstance."""

    async def close(self) -> None: ...


@runtime_checkable
class DavBackend(Protocol):
    """A WebDAV back end: serves the files of its spaces."""

    def dav_app(self) -> ASGIApp:
        """An ASGI app serving each space over WebDAV at `/<space-id>/<path>` (the caller
        mounts it, sets `root_path`, and does authentication). A driver that notices writes
        only by scanning wraps it in `storage.notify_writes.NotifyWrites`."""
        ...


@runtime_checkable
class ItemLocator(Protocol):
    """Finds a file or folder of a space by its id (`oc:id`, `<space-id>!<number>`)."""

    async def item_path(self, space_id: str, item_id: str) -> str:
        """The item's path below the space's root (`/a/b`; `/` for the root); PathNotFound
        if no item of the space has that id."""
        ...


@runtime_checkable
class ChangeSource(Protocol):
    """Tells its subscribers when a space's content changes or the provider comes and goes."""

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call `callback` for every change and availability event; returns an unsubscribe."""
        ...

    def workers(self) -> Mapping[str, Worker]:
        """Background jobs the host must run for the provider to notice changes."""
        ...


@runtime_checkable
class HttpChangeSource(ChangeSource, Protocol):
    """A change source that is told of changes over HTTP. After each subscription (the first
    included) it reports every space's state itself, so the host need not ask after each."""

    def callback_app(self) -> ASGIApp:
        """An ASGI app the host must expose at the URL given as option `callback_url`."""
        ...


_SPACE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_space_id(name: str) -> bool:
    """Whether `name` can name a space kept as a folder or collection (the local and webdav
    drivers): a safe file name and URL segment."""
    return _SPACE_ID.fullmatch(name) is not None


def space_path(path: str) -> PurePosixPath:
    """`path` below a space's root, as `/a/b`; PathNotFound if it would climb out of the space."""
    relative = PurePosixPath("/" + path.lstrip("/"))
    if ".." in relative.parts:
        raise PathNotFound(path)
    return relative


def change_path(path: str) -> str:
    """`path` below a space's root as changes name it: a leading slash, no trailing one (a
    folder is `/docs/2025`, never `/docs/2025/`), and `/` for the root itself."""
    return "/" + path.strip("/")


class Emitter:
    """A driver's subscribers: `subscribe` as `ChangeSource` has it, and `_emit` to call each of
    them, in turn, with an event."""

    def __init__(self) -> None:
        self._callbacks: list[ChangeCallback] = []

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    async def _emit(self, event: ProviderEvent) -> None:
        for callback in list(self._callbacks):
            await callback(event)
