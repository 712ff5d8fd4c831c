"""A storage provider as its own service: the wrapped driver's spaces over a signed HTTP API
under `/provider/v1`, its WebDAV app at `/dav/spaces`, and its changes pushed to subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from common.server_errors import ServerErrors
from common.supervisor import Supervisor
from storage.dav_paths import dav_mount
from storage.drivers import load_provider
from storage.provider import ChangeSource, DavBackend, StorageProvider
from storage.service_api import ERROR_HANDLERS, ServiceAPI, internal_error
from storage.service_config import ServiceConfig
from storage.signatures import RequireSignature
from storage.subscribers import SubscriberStore, Subscriptions
from storage.wire import API, DAV_MOUNT, JSON


def create_service_app(config: ServiceConfig, provider: StorageProvider | None = None) -> Starlette:
    """The provider service; `provider` defaults to the configured driver."""
    wrapped = provider or load_provider(config.name, config.driver, config.options)
    http = httpx2.AsyncClient(timeout=10, follow_redirects=False)
    store = SubscriberStore(config.data_dir / "subscriptions.json")
    subscriptions = Subscriptions(
        config.name, store, http, (config.min_lease_seconds, config.max_lease_seconds)
    )
    dav = wrapped.dav_app() if isinstance(wrapped, DavBackend) else None
    changes = wrapped if isinstance(wrapped, ChangeSource) else None
    service = ServiceAPI(config, wrapped, subscriptions, dav is not None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(store.load)
        unsubscribe = changes.subscribe(service.on_event) if changes else None
        supervisor = Supervisor()
        for name, worker in (changes.workers() if changes else {}).items():
            supervisor.start(f"worker {name}", worker)
        try:
            yield
        finally:
            await supervisor.stop()
            if unsubscribe is not None:
                unsubscribe()
            await subscriptions.close()
            await http.aclose()
            await wrapped.close()

    routes: list[BaseRoute] = [
        Route("/healthz", _healthz),
        Mount(API, routes=service.routes()),
    ]
    if dav is not None:
        routes.append(dav_mount(DAV_MOUNT, dav))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(ServerErrors, handler=internal_error),
            Middleware(RequireSignature, secret=config.secret, open_paths=frozenset({"/healthz"})),
        ],
        exception_handlers=ERROR_HANDLERS,
    )
    app.state.subscriptions = subscriptions
    return app


async def _healthz(request: Request) -> Response:
    return JSON({"status": "ok"})
