"""Peering over HTTP: the admin API under `/api/v1/peers`, and the endpoints partners call,
signed, under `/api/v1/peering` (accept an invitation, a revocation notice, a ping)."""

from __future__ import annotations

import re
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access.principal import Authenticate
from registry.core.errors import BadRequest, Forbidden
from registry.core.http import has_body, json_body, read_body
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.peers.service import ACCEPT_PATH, NOTICE_PATH, PING_PATH, Peering

# `openapi.yaml` gives the same pattern: 1-90 days, 1-12 weeks, up to 999 hours or 9999 minutes.
_DURATION = re.compile(
    r"^(?:([1-9]|[1-8][0-9]|90)d|([1-9]|1[0-2])w|([1-9][0-9]{0,2})h|([1-9][0-9]{0,3})m)$"
)
_UNIT_SECONDS = (86400, 7 * 86400, 3600, 60)


def parse_duration(text: str) -> timedelta:
    """`7d`, `2w`, `12h` or `30m`: how long an invitation stays valid (at most 90 days)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise BadRequest(f"{text!r} is not a duration of 1-90d, 1-12w, 1-999h or 1-9999m")
    unit, amount = next((n, int(v)) for n, v in enumerate(match.groups()) if v is not None)
    return timedelta(seconds=amount * _UNIT_SECONDS[unit])


class PeerRoutes:
    def __init__(self, peering: Peering, authenticate: Authenticate) -> None:
        self._peering = peering
        self._authenticate = authenticate

    async def _admin(self, request: Request) -> str:
        principal = await self._authenticate(request)
        if not principal.is_admin:
            raise Forbidden("only an administrator manages peers", code="adminRequired")
        return principal.username

    async def invite(self, request: Request) -> Response:
        who = await self._admin(request)
        body = await json_body(request) if has_body(request) else {}
        expires = body.get("expires", "7d")
        if not isinstance(expires, str):
            raise BadRequest("'expires' is a duration string (like 7d)")
        issued = await self._peering.invite(who, parse_duration(expires))
        at = issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        answer = {"invitation": str(issued.invitation), "domain": self._peering.domain}
        return JSONResponse({**answer, "expiresAt": at}, status_code=201)

    async def accept(self, request: Request) -> Response:
        await self._admin(request)
        body = await json_body(request)
        invitation, domain = body.get("invitation"), body.get("domain")
        if not isinstance(invitation, str | None) or not isinstance(domain, str | None):
            raise BadRequest("'invitation' (or 'domain') is a string")
        if invitation is None and domain is None:
            raise BadRequest("'invitation' is required")
        peer = await self._peering.accept(invitation, domain)
        return JSONResponse(peer.to_json(), status_code=201)

    async def list_all(self, request: Request) -> Response:
        await self._admin(request)
        return JSONResponse({"value": [peer.to_json() for peer in await self._peering.list()]})

    async def get_one(self, request: Request) -> Response:
        await self._admin(request)
        return JSONResponse((await self._peering.get(request.path_params["domain"])).to_json())

    async def suspend(self, request: Request) -> Response:
        await self._admin(request)
        peer = await self._peering.suspend(request.path_params["domain"])
        return JSONResponse(peer.to_json())

    async def resume(self, request: Request) -> Response:
        await self._admin(request)
        peer = await self._peering.resume(request.path_params["domain"])
        return JSONResponse(peer.to_json())

    async def revoke(self, request: Request) -> Response:
        await self._admin(request)
        peer = await self._peering.revoke(request.path_params["domain"])
        return JSONResponse(peer.to_json())

    async def ping(self, request: Request) -> Response:
        await self._admin(request)
        return JSONResponse(await self._peering.ping(request.path_params["domain"]))

    async def receive_acceptance(self, request: Request) -> Response:
        body = await read_body(request)
        return JSONResponse(await self._peering.receive_acceptance(request, body))

    def routes(self) -> list[Route]:
        one = "/api/v1/peers/{domain}"
        inbox, peering = self._peering.inbox, self._peering
        return [
            Resource("/api/v1/peers", {"GET": self.list_all, "POST": self.accept}),
            Resource("/api/v1/peers/invitations", {"POST": self.invite}),
            Resource(one, {"GET": self.get_one}),
            Resource(one + "/suspend", {"POST": self.suspend}),
            Resource(one + "/resume", {"POST": self.resume}),
            Resource(one + "/revoke", {"POST": self.revoke}),
            Resource(one + "/ping", {"POST": self.ping}),
            Resource(ACCEPT_PATH, {"POST": self.receive_acceptance}),
            # notices come also while a side is suspended: they may be what lifts it
            Resource(
                NOTICE_PATH,
                {"POST": inbox.endpoint(peering.receive_notice, allow_suspended=True)},
            ),
            Resource(PING_PATH, {"POST": inbox.endpoint(peering.receive_ping)}),
        ]
