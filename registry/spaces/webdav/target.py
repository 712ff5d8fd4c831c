"""The resource a WebDAV request is about, once the gateway has authorised it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote

from starlette.requests import Request

from registry.access.principal import Principal
from registry.core.errors import Unavailable
from registry.spaces.dav_backends import SpaceFiles
from registry.spaces.webdav.paths import from_url, normal
from storage import PathNotFound, StorageError

HREF_SAFE = "/!*'(),$|:@"


@dataclass(frozen=True)
class DavTarget:
    request: Request
    principal: Principal
    space_id: str
    path: str  # as `paths.normal` writes it
    prefix: str  # the URL path of the space's root: the mount point and the space's id
    files: SpaceFiles
    quota: int | None  # the space's total, None without one

    @classmethod
    def of(
        cls,
        request: Request,
        principal: Principal,
        space_id: str,
        path: str,
        files: SpaceFiles,
        quota: int | None,
    ) -> DavTarget:
        prefix = f"{request.scope.get('root_path', '')}/{space_id}"
        return cls(request, principal, space_id, normal(path), prefix, files, quota)

    def at(self, path: str) -> DavTarget:
        """The same request's view of another path in the space."""
        return replace(self, path=path)

    def href(self, path: str) -> str:
        return quote(self.prefix + (path if path != "/" else "/"), safe=HREF_SAFE)

    def path_of(self, url: str) -> str | None:
        """The path in this space that a URL (a Destination, an If tag, an href) names."""
        return from_url(url, self.prefix)

    def destination(self) -> str | None:
        header = self.request.headers.get("destination")
        return None if header is None else self.path_of(header)

    async def etag(self, path: str) -> str | None:
        """The current entity tag of `path`, None where nothing is."""
        try:
            return (await self.files.sizes.stat(self.space_id, path)).etag
        except PathNotFound:
            return None
        except StorageError as exc:
            raise Unavailable(f"the storage could not tell the state of {path}: {exc}") from exc
