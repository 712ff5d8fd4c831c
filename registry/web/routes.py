"""The web UI's routes: login, the pages, share links, and the static files they use."""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.core.errors import NotFound
from registry.core.routing import Resource
from registry.web.auth import WebAuth
from registry.web.files import clean_path
from registry.web.partner_login import PartnerLogin
from registry.web.peer_pages import PeerPages
from registry.web.render import page, render, see_other
from registry.web.share_pages import SharePages
from registry.web.space_pages import SpacePages, space_url

_STATIC = files("registry.web") / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


async def static(request: Request) -> Response:
    """The pages' own CSS and JavaScript (no other file is served)."""
    name = request.path_params["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    resource = _STATIC / name
    if "/" in name or suffix not in STATIC_TYPES or not resource.is_file():
        raise NotFound(f"no static file {name}")
    return Response(
        resource.read_bytes(),
        media_type=STATIC_TYPES[suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


async def logged_out(request: Request) -> Response:
    return render(request, "logged_out.html", user=None)


class WebUi:
    def __init__(
        self,
        auth: WebAuth,
        spaces: SpacePages,
        shares: SharePages,
        peers: PeerPages,
        partners: PartnerLogin,
    ) -> None:
        self._auth = auth
        self._spaces = spaces
        self._shares = shares
        self._peers = peers
        self._partners = partners

    async def share_link(self, request: Request) -> Response:
        """`/s/<space-id>/<path>` (a drive's `webUrl`): that folder, once logged in; without
        a session, the choice of our login or one's own organisation's."""
        folder = clean_path(request.path_params.get("path", ""))
        session = await self._auth.session(request)
        if session is None or session.principal is None:
            return await self._partners.offer(request, request.url.path)
        return see_other(space_url(request.path_params["space_id"], folder))

    def routes(self) -> list[Route]:
        return [
            *self._auth.routes(),
            *self._partners.routes(),
            *self._spaces.routes(),
            *self._shares.routes(),
            *self._peers.routes(),
            Resource("/s/{space_id}/{path:path}", {"GET": page(self.share_link)}),
            Resource("/logged-out", {"GET": page(logged_out)}),
            Resource("/static/{name}", {"GET": page(static)}),
        ]
