"""The client endpoints: `status.php`, OCS capabilities and user (v1 and v2), and the classic
WebDAV roots. Authenticated with an app password or a bearer token (`ClientAuthenticator`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from registry.access.principal import Authenticate
from registry.clients import capabilities, ocs
from registry.clients.classic_dav import FILES_ROOT, UPLOADS_ROOT, WEBDAV_ROOT, ClassicRoot
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.spaces.dav_backends import DAV_MOUNT
from registry.spaces.service import SpaceService
from registry.spaces.webdav.uploads import ChunkedUploads
from registry.spaces.webdav.uploads_app import UploadsCollection
from storage.dav_paths import dav_mount

Email = Callable[[str], Awaitable[str | None]]


class ClientRoutes:
    def __init__(
        self,
        spaces: SpaceService,
        gateway: ASGIApp,
        authenticate: Authenticate,
        email: Email,
        uploads: ChunkedUploads,
    ) -> None:
        self._spaces = spaces
        self._gateway = gateway
        self._authenticate = authenticate
        self._email = email
        self._uploads = uploads

    async def status(self, request: Request) -> Response:
        return JSONResponse(capabilities.status())

    async def capabilities(self, request: Request) -> Response:
        return ocs.answer(request, capabilities.capabilities())

    async def user(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        email = await self._email(principal.user_id)
        data = {
            "id": principal.username,
            "display-name": principal.display_name,
            "displayname": principal.display_name,
            "email": email,
        }
        return ocs.answer(request, data)

    def routes(self) -> list[BaseRoute]:
        ocs_routes = [
            Resource(f"/ocs/{v}.php/cloud/{name}", {"GET": handler})
            for v in ("v1", "v2")
            for name, handler in (("capabilities", self.capabilities), ("user", self.user))
        ]
        roots = [
            (path, ClassicRoot(self._spaces, self._gateway, self._authenticate, per_user))
            for path, per_user in ((WEBDAV_ROOT, False), (FILES_ROOT, True))
        ]
        # Chunking NG where the clients look for it; the file goes to any root they name.
        uploads = UploadsCollection(
            self._authenticate, self._uploads, [(DAV_MOUNT, self._gateway), *roots]
        )
        return [
            Resource("/status.php", {"GET": self.status}),
            *ocs_routes,
            *(dav_mount(path, root) for path, root in roots),
            dav_mount(UPLOADS_ROOT, uploads),
        ]
