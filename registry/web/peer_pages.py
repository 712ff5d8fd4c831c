"""Peers (administrators only): partner registries and their state, invitations to create and
to accept, suspend and revoke; and the live feedback of the "Share with" field, which asks
discovery where an address is served. Peering's rules stay in `Peering`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from federation.discovery import Discovery
from federation.errors import DiscoveryError
from registry.access.principal import Principal
from registry.core.errors import Forbidden
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.peers.service import Peering
from registry.web.auth import WebAuth
from registry.web.render import page, render, see_other


def _admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("only an administrator manages peers")


class PeerPages:
    def __init__(self, auth: WebAuth, peering: Peering, discovery: Discovery) -> None:
        self._auth = auth
        self._peering = peering
        self._discovery = discovery

    async def peers_page(self, request: Request) -> Response:
        session, principal = await self._auth.user(request)
        _admin(principal)
        return await self._show(request, session.csrf_token, principal)

    async def invite(self, request: Request) -> Response:
        session, principal, _form = await self._auth.form(request)
        _admin(principal)
        issued = await self._peering.invite(principal.username)
        return await self._show(request, session.csrf_token, principal, invitation=issued)

    async def accept(self, request: Request) -> Response:
        session, principal, form = await self._auth.form(request)
        _admin(principal)
        peer = await self._peering.accept(str(form.get("invitation", "")).strip())
        notice = f"Peered with {peer.domain}: its state is {peer.state}."
        return await self._show(request, session.csrf_token, principal, notice=notice)

    async def suspend(self, request: Request) -> Response:
        _session, principal, _form = await self._auth.form(request)
        _admin(principal)
        await self._peering.suspend(request.path_params["domain"])
        return see_other("/peers")

    async def resume(self, request: Request) -> Response:
        _session, principal, _form = await self._auth.form(request)
        _admin(principal)
        await self._peering.resume(request.path_params["domain"])
        return see_other("/peers")

    async def revoke(self, request: Request) -> Response:
        _session, principal, _form = await self._auth.form(request)
        _admin(principal)
        await self._peering.revoke(request.path_params["domain"])
        return see_other("/peers")

    async def lookup(self, request: Request) -> Response:
        """Where an address is served, for the "Share with" field (JSON for its script)."""
        await self._auth.user(request)
        address = request.query_params.get("address", "").strip()
        answer: dict[str, Any] = {"address": address, "found": False}
        try:
            found = await self._discovery.discover(address)
        except (DiscoveryError, ValueError) as exc:
            return JSONResponse({**answer, "problem": str(exc)[:300]})
        domain = found.metadata.domain
        return JSONResponse(
            {
                **answer,
                "found": True,
                "registry": found.location.origin,
                "domain": domain,
                "partner": await self._peering.client_origin(domain) is not None,
            }
        )

    async def _show(
        self, request: Request, csrf: str, principal: Principal, **extra: Any
    ) -> Response:
        peers = await self._peering.list()
        return render(request, "peers.html", user=principal, csrf=csrf, peers=peers, **extra)

    def routes(self) -> list[Route]:
        return [
            Resource("/peers", {"GET": page(self.peers_page)}),
            Resource("/peers/invitations", {"POST": page(self.invite)}),
            Resource("/peers/accepted", {"POST": page(self.accept)}),
            Resource("/peers/{domain}/suspend", {"POST": page(self.suspend)}),
            Resource("/peers/{domain}/resume", {"POST": page(self.resume)}),
            Resource("/peers/{domain}/revoke", {"POST": page(self.revoke)}),
            Resource("/lookup", {"GET": page(self.lookup)}),
        ]
