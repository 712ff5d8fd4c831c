"""The registry's ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from common.server_errors import ServerErrors
from federation.wellknown import well_known_routes
from registry.auth.app_password_routes import AppPasswordRoutes
from registry.changes.routes import ChangeRoutes
from registry.clients.routes import ClientRoutes
from registry.core.clock import SYSTEM_CLOCK, Clock
from registry.core.errors import exception_handlers, internal_error
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.outbox.routes import SubscriptionRoutes
from registry.peers.routes import PeerRoutes
from registry.runtime.middleware import RequestContext
from registry.runtime.settings import Settings
from registry.runtime.wiring import Services, build, running
from registry.spaces.dav_backends import DAV_MOUNT
from registry.spaces.dav_gateway import DavGateway
from registry.spaces.drive_routes import DriveRoutes
from registry.spaces.permission_routes import PermissionRoutes
from storage import HttpChangeSource
from storage.dav_paths import dav_mount


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def provider_callbacks(services: Services) -> list[BaseRoute]:
    """Where drivers that are told of changes over HTTP receive them (see `_provider`)."""
    mounted: list[BaseRoute] = []
    for name, provider in services.providers.items():
        if isinstance(provider, HttpChangeSource):
            app = provider.callback_app()
            # A Route, not a Mount: the callback URL has no trailing slash to redirect to.
            mounted.append(Route(f"/callbacks/providers/{name}", app, methods=["GET", "POST"]))
    return mounted


def create_app(
    settings: Settings, services: Services | None = None, clock: Clock = SYSTEM_CLOCK
) -> Starlette:
    """The app over `services`, by default those `build` makes from `settings` and `clock`."""
    if services is None:
        services = build(settings, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(services):
            yield

    authenticate = services.authenticator.authenticate
    # WebDAV and the client endpoints also take app passwords (HTTP Basic).
    clients = services.client_authenticator
    gateway = DavGateway(services.spaces, services.dav_backends, clients.authenticate)
    routes: list[BaseRoute] = [
        Resource("/healthz", {"GET": health}),
        *DriveRoutes(services.spaces, authenticate, settings.base_url).routes(),
        *PermissionRoutes(services.spaces, services.members, authenticate, services.clock).routes(),
        *ChangeRoutes(services.feed, authenticate).routes(),
        *SubscriptionRoutes(services.subscriptions, authenticate).routes(),
        *PeerRoutes(services.peering, authenticate).routes(),
        *AppPasswordRoutes(services.app_passwords, authenticate).routes(),
        dav_mount(DAV_MOUNT, gateway),
        *ClientRoutes(services.spaces, gateway, clients.authenticate, clients.email).routes(),
        *provider_callbacks(services),
        *(services.idp.routes() if services.idp is not None else []),
        *well_known_routes(services.instance, services.users, services.signing_keys),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestContext),
            Middleware(ServerErrors, handler=internal_error(services.clock)),
        ],
        exception_handlers=exception_handlers(services.clock),
        lifespan=lifespan,
    )
    app.state.services = services
    return app
