"""The registry's ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from common.server_errors import ServerErrors
from federation.wellknown import well_known_routes
from registry.auth.app_password_routes import AppPasswordRoutes
from registry.auth.idp.throttle import LoginThrottle
from registry.changes.routes import ChangeRoutes
from registry.clients.routes import ClientRoutes
from registry.core.clock import SYSTEM_CLOCK, Clock
from registry.core.errors import exception_handlers, internal_error
from registry.outbox.routes import SubscriptionRoutes
from registry.peers.routes import PeerRoutes
from registry.runtime.metrics import Metrics
from registry.runtime.middleware import RequestContext
from registry.runtime.ops_routes import OpsRoutes
from registry.runtime.settings import Settings
from registry.runtime.wiring import Services, build, running
from registry.shares.routes import ShareRoutes
from registry.shares.tokens import TOKEN_PATH
from registry.spaces.dav_backends import DAV_MOUNT
from registry.spaces.dav_gateway import DavGateway
from registry.spaces.drive_routes import DriveRoutes
from registry.spaces.permission_routes import PermissionRoutes
from registry.spaces.webdav.uploads_app import UPLOADS_MOUNT, UploadsCollection
from registry.web.auth import CALLBACK_PATH, WebAuth
from registry.web.files import Files
from registry.web.oidc_client import OidcClient
from registry.web.partner_login import PARTNER_CALLBACK_PATH, PartnerLogin
from registry.web.partner_oidc import PartnerOidc
from registry.web.peer_pages import PeerPages
from registry.web.render import pages_for_browsers
from registry.web.routes import WebUi
from registry.web.sessions import SessionStore
from registry.web.share_pages import SharePages
from registry.web.space_pages import SpacePages
from storage import HttpChangeSource
from storage.dav_paths import dav_mount


def provider_callbacks(services: Services) -> list[BaseRoute]:
    """Where drivers that are told of changes over HTTP receive them (see `_provider`)."""
    mounted: list[BaseRoute] = []
    for name, provider in services.providers.items():
        if isinstance(provider, HttpChangeSource):
            app = provider.callback_app()
            # A Route, not a Mount: the callback URL has no trailing slash to redirect to.
            mounted.append(Route(f"/callbacks/providers/{name}", app, methods=["GET", "POST"]))
    return mounted


def web_ui(settings: Settings, services: Services) -> WebUi:
    """The pages, logging in at the first trusted issuer, over the API's own services."""
    oidc = OidcClient(
        services.issuer_http,
        settings.trusted_issuers()[0].url,
        settings.web_client_id,
        settings.base_url + CALLBACK_PATH,
        settings.web_client_secret,
    )
    sessions = SessionStore(services.engine, services.clock)
    auth = WebAuth(sessions, oidc, services.authenticator.principal, settings.base_url)
    files = Files(services.spaces, services.dav_backends, services.dav)
    partner_oidc = PartnerOidc(
        services.peering,
        services.discovery,
        services.outbound,
        settings.domain,
        settings.base_url + PARTNER_CALLBACK_PATH,
    )
    throttle = LoginThrottle(services.engine, services.clock)  # the sign-ins' counts
    partners = PartnerLogin(auth, sessions, partner_oidc, throttle, services.authenticator.partner)
    return WebUi(
        auth,
        SpacePages(auth, services.spaces, services.members, files, services.shares.outgoing),
        SharePages(auth, services.shares.incoming, services.shares.outgoing),
        PeerPages(auth, services.peering, services.discovery),
        partners,
    )


def create_app(
    settings: Settings, services: Services | None = None, clock: Clock = SYSTEM_CLOCK
) -> Starlette:
    """The app over `services`, by default those `build` makes from `settings` and `clock`."""
    if services is None:
        services = build(settings, clock)

    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(services):
            if metrics.shared:  # for the scrapes the node's other workers answer
                services.supervisor.start("metrics", partial(metrics.publish, services.hub))
            yield

    authenticate = services.authenticator.authenticate
    shares = services.shares
    # WebDAV and the client endpoints also take app passwords (HTTP Basic).
    clients = services.client_authenticator
    dav_authenticate = shares.tokens.for_dav(clients.authenticate)
    gateway = DavGateway(services.spaces, services.dav_backends, dav_authenticate, services.dav)
    routes: list[BaseRoute] = [
        *OpsRoutes(services, authenticate, metrics, settings.metrics_token).routes(),
        # A partner's user (a token of the partner's issuer) sees what was shared with them.
        *DriveRoutes(
            services.spaces,
            services.authenticator.anyone,
            settings.base_url,
            services.clock,
            shares.incoming.shares_drive,
        ).routes(),
        *PermissionRoutes(
            services.spaces,
            services.members,
            services.authenticator.anyone,
            services.clock,
            services.items,
            shares.outgoing,
        ).routes(),
        *ChangeRoutes(services.feed, authenticate).routes(),
        *SubscriptionRoutes(services.subscriptions, authenticate).routes(),
        *PeerRoutes(services.peering, authenticate).routes(),
        *ShareRoutes(shares, services.peering.inbox, authenticate).routes(),
        *AppPasswordRoutes(services.app_passwords, authenticate).routes(),
        dav_mount(DAV_MOUNT, gateway),
        dav_mount(
            UPLOADS_MOUNT,
            UploadsCollection(clients.authenticate, services.dav.uploads, [(DAV_MOUNT, gateway)]),
        ),
        *ClientRoutes(
            services.spaces, gateway, clients.authenticate, clients.email, services.dav.uploads
        ).routes(),
        *provider_callbacks(services),
        *(services.idp.routes() if services.idp is not None else []),
        *well_known_routes(
            services.instance,
            services.users,
            services.signing_keys,
            ocm_notifications=True,
            ocm_invites=True,
            ocm_token_endpoint=TOKEN_PATH,
        ),
        *web_ui(settings, services).routes(),
    ]
    handlers = exception_handlers(services.clock)
    handlers[HTTPException] = pages_for_browsers(handlers[HTTPException])
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestContext, observe=metrics.observe),
            Middleware(ServerErrors, handler=internal_error(services.clock)),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.services = services
    return app
