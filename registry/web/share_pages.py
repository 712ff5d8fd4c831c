"""The Shares page: shares waiting for the user, those accepted, and those the user sent, with
their state. Accepting, declining and removing go through the shares wing's `IncomingShares`,
as LibreGraph's Shares drive does; the page holds no rule of its own."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.core.routing import Resource
from registry.shares import store
from registry.shares.incoming import IncomingShares
from registry.shares.outgoing import OutgoingShares
from registry.shares.share_json import shown_state
from registry.web.auth import WebAuth
from registry.web.render import page, render, see_other


class SharePages:
    def __init__(self, auth: WebAuth, incoming: IncomingShares, outgoing: OutgoingShares) -> None:
        self._auth = auth
        self._incoming = incoming
        self._outgoing = outgoing

    async def shares_page(self, request: Request) -> Response:
        """The page; its script asks for it again now and then and swaps in the lists that
        changed, so that a share arriving shows without a reload."""
        session, principal = await self._auth.user(request)
        received = await self._incoming.shared_with(principal)
        sent = await self._outgoing.shared_by(principal)
        return render(
            request,
            "shares.html",
            user=principal,
            csrf=session.csrf_token,
            waiting=[share for share in received if share.state == store.PENDING],
            accepted=[share for share in received if share.state == store.ACCEPTED],
            sent=[(share, shown_state(share)) for share in sent],
        )

    async def accept(self, request: Request) -> Response:
        _session, principal, _form = await self._auth.form(request)
        await self._incoming.accept(principal, request.path_params["share_id"])
        return see_other("/shares")

    async def decline(self, request: Request) -> Response:
        """Declines a waiting share, or removes an accepted one (its mountpoint goes)."""
        _session, principal, _form = await self._auth.form(request)
        await self._incoming.decline(principal, request.path_params["share_id"])
        return see_other("/shares")

    def routes(self) -> list[Route]:
        return [
            Resource("/shares", {"GET": page(self.shares_page)}),
            Resource("/shares/{share_id}/accept", {"POST": page(self.accept)}),
            Resource("/shares/{share_id}/decline", {"POST": page(self.decline)}),
        ]
