"""Webhook subscriptions: `/api/v1/subscriptions` and `/api/v1/subscriptions/{id}`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.core.http import caller, json_body, services
from registry.core.responses import JSONResponse


async def create(request: Request) -> Response:
    principal = await caller(request)
    body = await json_body(request)
    made = await services(request).subscriptions.create(principal, body)
    return JSONResponse(made, status_code=201)


async def list_own(request: Request) -> Response:
    principal = await caller(request)
    return JSONResponse({"value": await services(request).subscriptions.list(principal)})


async def get_one(request: Request) -> Response:
    principal = await caller(request)
    found = await services(request).subscriptions.get(principal, request.path_params["id"])
    return JSONResponse(found)


async def renew(request: Request) -> Response:
    principal = await caller(request)
    body = await json_body(request)
    renewed = await services(request).subscriptions.renew(
        principal, request.path_params["id"], body
    )
    return JSONResponse(renewed)


async def delete(request: Request) -> Response:
    principal = await caller(request)
    await services(request).subscriptions.delete(principal, request.path_params["id"])
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/api/v1/subscriptions", create, methods=["POST"]),
        Route("/api/v1/subscriptions", list_own, methods=["GET"]),
        Route("/api/v1/subscriptions/{id}", get_one, methods=["GET"]),
        Route("/api/v1/subscriptions/{id}", renew, methods=["PATCH"]),
        Route("/api/v1/subscriptions/{id}", delete, methods=["DELETE"]),
    ]
