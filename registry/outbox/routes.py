"""Webhook subscriptions: `/api/v1/subscriptions` and `/api/v1/subscriptions/{id}`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access.principal import Authenticate
from registry.core.http import json_body
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.outbox.subscriptions import Subscriptions


class SubscriptionRoutes:
    """Webhook subscriptions, bound to their service and the caller's authentication."""

    def __init__(self, subscriptions: Subscriptions, authenticate: Authenticate) -> None:
        self._subscriptions = subscriptions
        self._authenticate = authenticate

    async def create(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        body = await json_body(request)
        made = await self._subscriptions.create(principal, body)
        return JSONResponse(made, status_code=201)

    async def list_own(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        return JSONResponse({"value": await self._subscriptions.list(principal)})

    async def get_one(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        found = await self._subscriptions.get(principal, request.path_params["id"])
        return JSONResponse(found)

    async def renew(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        body = await json_body(request)
        renewed = await self._subscriptions.renew(principal, request.path_params["id"], body)
        return JSONResponse(renewed)

    async def delete(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        await self._subscriptions.delete(principal, request.path_params["id"])
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [
            Resource("/api/v1/subscriptions", {"GET": self.list_own, "POST": self.create}),
            Resource(
                "/api/v1/subscriptions/{id}",
                {"GET": self.get_one, "PATCH": self.renew, "DELETE": self.delete},
            ),
        ]
