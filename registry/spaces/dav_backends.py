"""Where a space's files are: which WebDAV back end serves them behind the gateway, and the URL
clients find them at.

Today both follow from the provider holding the space (for a share space: holding the space
its folder is in). A space held by a peer will be served by a back end proxying to the peer,
chosen here; the gateway does not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import ASGIApp

from registry.spaces.share_dav import FolderAsSpace, FolderSizes
from storage import DavBackend, Entry, SpaceInfo, SpaceStore

# Where the gateway is mounted: a space's files are at `<base_url>/dav/spaces/<space-id>/<path>`.
DAV_MOUNT = "/dav/spaces"


class SpaceSizes(Protocol):
    """What the gateway reads to keep a PUT within the space's quota."""

    async def get_space(self, space_id: str) -> SpaceInfo: ...

    async def stat(self, space_id: str, path: str) -> Entry: ...


@dataclass(frozen=True)
class SpaceFiles:
    """One space's WebDAV back end: `app` serves `/<space-id>/<path>` below the request's
    `root_path` (already authorised), `sizes` tells the space's usage."""

    app: ASGIApp
    sizes: SpaceSizes


class DavBackends(Protocol):
    def for_space(self, space: Any) -> SpaceFiles | None:
        """The back end serving this space (a row of `SpaceView.space`), or None if none does."""
        ...


class ProviderBackends:
    """Each space is served by the WebDAV of the provider holding it, if that provider has one."""

    def __init__(self, providers: Mapping[str, SpaceStore]) -> None:
        self._providers = providers

    def for_space(self, space: Any) -> SpaceFiles | None:
        provider = self._providers.get(space.provider)
        if not isinstance(provider, DavBackend):
            return None
        if space.parent_id is not None:  # a share space: a folder of the space holding it
            app = FolderAsSpace(provider.dav_app(), space.id, space.parent_id, space.parent_path)
            return SpaceFiles(app, FolderSizes(provider, space.parent_id, space.parent_path))
        return SpaceFiles(provider.dav_app(), provider)


def webdav_url(space: Any, base_url: str) -> str:
    """The URL of a space's root folder in WebDAV: today always through this registry."""
    return f"{base_url}{DAV_MOUNT}/{space.id}"
