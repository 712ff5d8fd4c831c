"""The interface every storage driver implements, and the values it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """A provider could not do what was asked."""


class SpaceNotFound(StorageError):
    pass


class PathNotFound(StorageError):
    pass


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
    """Something below a space's root changed: its new root ETag, usage and the paths touched."""

    space_id: str
    etag: str
    used: int
    paths: tuple[str, ...]


ChangeCallback = Callable[[Change], Awaitable[None]]


@runtime_checkable
class StorageProvider(Protocol):
    """An async store of spaces. Implementations are found by the entry point group
    `spacereg.storage`, whose targets are factories `(name, options) -> StorageProvider`."""

    name: str

    async def create_space(self, space_id: str) -> SpaceInfo: ...

    async def get_space(self, space_id: str) -> SpaceInfo: ...

    async def list_spaces(self) -> list[str]: ...

    async def set_quota(self, space_id: str, total: int | None) -> None: ...

    async def delete_space(self, space_id: str) -> None: ...

    async def stat(self, space_id: str, path: str) -> Entry: ...

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call `callback` for every change; returns a function that unsubscribes."""
        ...

    async def close(self) -> None: ...
