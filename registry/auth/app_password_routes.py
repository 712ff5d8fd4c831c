"""`/api/v1/me/app-passwords`: the caller's app passwords. Managed with a bearer token only, so
that an app password cannot make or see others."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access.principal import Authenticate
from registry.auth.app_passwords import AppPasswords, Made
from registry.core.errors import BadRequest
from registry.core.http import has_body, json_body
from registry.core.responses import JSONResponse
from registry.core.routing import Resource

ALLOWED_FIELDS = frozenset({"label"})


class AppPasswordRoutes:
    def __init__(self, app_passwords: AppPasswords, authenticate: Authenticate) -> None:
        self._app_passwords = app_passwords
        self._authenticate = authenticate

    async def create(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        body = await json_body(request) if has_body(request) else {}
        unknown = set(body) - ALLOWED_FIELDS
        if unknown:
            raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
        made = await self._app_passwords.create(principal.user_id, body.get("label", ""))
        return JSONResponse(_json(made), status_code=201)

    async def list_own(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        made = await self._app_passwords.list(principal.user_id)
        return JSONResponse({"value": [_json(one) for one in made]})

    async def revoke(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        await self._app_passwords.revoke(principal.user_id, request.path_params["id"])
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [
            Resource("/api/v1/me/app-passwords", {"GET": self.list_own, "POST": self.create}),
            Resource("/api/v1/me/app-passwords/{id}", {"DELETE": self.revoke}),
        ]


def _json(made: Made) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": made.key,
        "label": made.label,
        "createdDateTime": made.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if made.password is not None:
        shown["password"] = made.password
    return shown
