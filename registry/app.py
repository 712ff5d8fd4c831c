"""The registry's ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from federation.wellknown import well_known_routes
from registry.api import changes, drives, permissions, subscriptions
from registry.api.dav import DavGateway
from registry.config import Settings
from registry.errors import EXCEPTION_HANDLERS
from registry.middleware import RequestContext
from registry.responses import JSONResponse
from registry.services import Services, build, running


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def provider_callbacks(services: Services) -> list[BaseRoute]:
    """Where drivers that are told of changes over HTTP receive them (see `_provider`)."""
    mounted: list[BaseRoute] = []
    for name, provider in services.providers.items():
        app = provider.callback_app()
        if app is not None:
            # A Route, not a Mount: the callback URL has no trailing slash to redirect to.
            mounted.append(Route(f"/callbacks/providers/{name}", app, methods=["GET", "POST"]))
    return mounted


def create_app(settings: Settings) -> Starlette:
    services = build(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(services):
            yield

    routes: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        *drives.routes(),
        *permissions.routes(),
        *changes.routes(),
        *subscriptions.routes(),
        Mount("/dav/spaces", DavGateway(services)),
        *provider_callbacks(services),
        *(services.idp.routes() if services.idp is not None else []),
        *well_known_routes(services.instance, services.users, services.signing_keys),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestContext)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.services = services
    return app
