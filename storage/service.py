"""A storage provider as its own service: the wrapped driver's spaces over a signed HTTP API
under `/provider/v1`, its WebDAV app at `/dav/spaces`, and its changes pushed to subscribers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx2
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.drivers import load_provider
from storage.provider import (
    Change,
    PathNotFound,
    ProviderEvent,
    ProviderUnavailable,
    SpaceInfo,
    SpaceNotFound,
    StorageError,
    StorageProvider,
    Worker,
)
from storage.service_config import ServiceConfig
from storage.signatures import RequireSignature
from storage.subscribers import SubscriberStore, SubscriptionRefused, Subscriptions
from storage.wire import API, DAV_MOUNT, JSON, entry_json, error_response, space_json

logger = logging.getLogger("spacereg.provider")

WRITE_METHODS = frozenset({"PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH"})
WORKER_RETRY_SECONDS = (1.0, 60.0)
DETAIL_CONCURRENCY = 8


class BadInput(Exception):
    pass


def create_service_app(config: ServiceConfig, provider: StorageProvider | None = None) -> Starlette:
    """The provider service; `provider` defaults to the configured driver."""
    wrapped = provider or load_provider(config.name, config.driver, config.options)
    http = httpx2.AsyncClient(timeout=10, follow_redirects=False)
    store = SubscriberStore(config.data_dir / "subscriptions.json")
    subscriptions = Subscriptions(
        config.name, store, http, (config.min_lease_seconds, config.max_lease_seconds)
    )
    dav = wrapped.dav_app()
    service = _Service(config, wrapped, subscriptions, dav is not None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(store.load)
        unsubscribe = wrapped.subscribe(service.on_event)
        tasks = [
            asyncio.create_task(supervise(name, worker), name=f"worker {name}")
            for name, worker in wrapped.workers().items()
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            unsubscribe()
            await subscriptions.close()
            await http.aclose()
            await wrapped.close()

    routes: list[BaseRoute] = [
        Route("/healthz", _healthz),
        Mount(API, routes=service.routes()),
    ]
    if dav is not None:
        routes.append(Mount(DAV_MOUNT, app=NotifyWrites(dav, wrapped)))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(RequireSignature, secret=config.secret, open_paths=frozenset({"/healthz"}))
        ],
        exception_handlers={
            HTTPException: _http_error,
            StorageError: _storage_error,
            BadInput: _bad_input,
            OSError: _os_error,
            Exception: _internal_error,
        },
    )
    app.state.subscriptions = subscriptions
    return app


class _Service:
    def __init__(
        self,
        config: ServiceConfig,
        provider: StorageProvider,
        subscriptions: Subscriptions,
        has_dav: bool,
    ) -> None:
        self.config = config
        self.provider = provider
        self.subscriptions = subscriptions
        self.has_dav = has_dav
        self.available = True
        self.reason = ""

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/metadata", self.metadata),
            Route("/spaces", self.list_spaces),
            Route("/spaces", self.create_space, methods=["POST"]),
            Route("/spaces/{space_id}", self.get_space),
            Route("/spaces/{space_id}", self.delete_space, methods=["DELETE"]),
            Route("/spaces/{space_id}/quota", self.set_quota, methods=["PUT"]),
            Route("/spaces/{space_id}/stat", self.stat),
            Route("/subscriptions", self.subscribe, methods=["POST"]),
            Route("/subscriptions", self.unsubscribe, methods=["DELETE"]),
        ]

    async def on_event(self, event: ProviderEvent) -> None:
        if isinstance(event, Change):
            await self.subscriptions.publish(event)
        else:
            self.available, self.reason = event.available, event.reason
            logger.info("backend available=%s %s", event.available, event.reason)

    async def metadata(self, request: Request) -> Response:
        dav = self.has_dav
        capabilities = ["spaces", "quota", "stat", "subscriptions", *(["webdav"] if dav else [])]
        return JSON(
            {
                "name": self.config.name,
                "driver": self.config.driver,
                "version": _version(),
                "url": self.config.public_url,
                "webdavUrl": self.config.public_url + DAV_MOUNT if dav else None,
                "capabilities": capabilities,
                "available": self.available,
                "reason": self.reason,
            }
        )

    async def list_spaces(self, request: Request) -> Response:
        ids = await self.provider.list_spaces()
        if request.query_params.get("details") not in {"1", "true"}:
            return JSON({"spaces": ids})
        limit = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def details(space_id: str) -> SpaceInfo | None:
            async with limit:
                try:
                    return await self.provider.get_space(space_id)
                except SpaceNotFound:  # deleted since it was listed
                    return None

        infos = await asyncio.gather(*(details(i) for i in ids))
        return JSON({"spaces": [space_json(info) for info in infos if info is not None]})

    async def create_space(self, request: Request) -> Response:
        body = await _json_object(request)
        space_id = body.get("id")
        if not isinstance(space_id, str) or not space_id:
            raise BadInput("'id' must be a non-empty string")
        return JSON(space_json(await self.provider.create_space(space_id)), status_code=201)

    async def get_space(self, request: Request) -> Response:
        return JSON(space_json(await self.provider.get_space(request.path_params["space_id"])))

    async def delete_space(self, request: Request) -> Response:
        await self.provider.delete_space(request.path_params["space_id"])
        return Response(status_code=204)

    async def set_quota(self, request: Request) -> Response:
        body = await _json_object(request)
        if "total" not in body:
            raise BadInput("'total' is required (bytes, or null for no quota)")
        total = body["total"]
        if total is not None and (type(total) is not int or total < 0):
            raise BadInput("'total' must be a number of bytes >= 0, or null for no quota")
        await self.provider.set_quota(request.path_params["space_id"], total)
        return Response(status_code=204)

    async def stat(self, request: Request) -> Response:
        path = request.query_params.get("path", "/")
        entry = await self.provider.stat(request.path_params["space_id"], path)
        return JSON(entry_json(entry))

    async def subscribe(self, request: Request) -> Response:
        body = await _json_object(request)
        callback, secret = body.get("callback"), body.get("secret")
        lease = body.get("lease_seconds", 3600)
        if not isinstance(callback, str) or not isinstance(secret, str):
            raise BadInput("'callback' and 'secret' must be strings")
        if type(lease) is not int or lease <= 0:
            raise BadInput("'lease_seconds' must be a positive integer")
        try:
            subscriber = await self.subscriptions.subscribe(callback, secret, lease)
        except SubscriptionRefused as exc:
            raise BadInput(f"subscription refused: {exc}") from exc
        return JSON(
            {
                "callback": subscriber.callback,
                "topic": self.config.name,
                "lease_seconds": round(subscriber.expires - self.subscriptions.store.clock()),
                "expires": _iso(subscriber.expires),
            },
            status_code=201,
        )

    async def unsubscribe(self, request: Request) -> Response:
        callback = (await _json_object(request)).get("callback")
        if not isinstance(callback, str):
            raise BadInput("'callback' must be a string")
        await self.subscriptions.unsubscribe(callback)
        return Response(status_code=204)


class NotifyWrites:
    """Wraps the driver's WebDAV app: after a write succeeds, tell the driver which paths changed
    (at once, rather than when its watcher notices)."""

    def __init__(self, app: ASGIApp, provider: StorageProvider) -> None:
        self.app = app
        self.provider = provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if 200 <= status < 300:
            for space_id, paths in _touched(scope).items():
                try:
                    await self.provider.written(space_id, paths)
                except StorageError as exc:
                    logger.warning("written(%s) failed: %r", space_id, exc)


def _touched(scope: Scope) -> dict[str, list[str]]:
    """The spaces and paths a WebDAV write named: its own path and any Destination."""
    prefix: str = scope.get("root_path", "")
    paths = [scope["path"].removeprefix(prefix)]
    for key, value in scope["headers"]:
        if key == b"destination":
            dest = unquote(urlsplit(value.decode("latin-1")).path)
            if dest.startswith(prefix + "/"):
                paths.append(dest[len(prefix) :])
    touched: dict[str, list[str]] = {}
    for path in paths:
        space_id, _, rest = path.lstrip("/").partition("/")
        if space_id:
            touched.setdefault(space_id, []).append("/" + rest)
    return touched


async def supervise(name: str, worker: Worker) -> None:
    """Run `worker` until cancelled, restarting it with backoff when it raises or returns.
    (The registry has its own Supervisor, which storage may not import.)"""
    least, most = WORKER_RETRY_SECONDS
    delay = least
    while True:
        started = time.monotonic()
        try:
            await worker()
            ended = "returned"
        except Exception:
            logger.exception("worker %s failed", name)
            ended = "failed"
        if time.monotonic() - started > most:  # it ran a good while: start the backoff afresh
            delay = least
        logger.warning("worker %s %s; restarting in %.1f s", name, ended, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, most)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    return body


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "notFound", 405: "methodNotAllowed"}
    return error_response(exc.status_code, codes.get(exc.status_code, "invalidRequest"), exc.detail)


async def _storage_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SpaceNotFound):
        return error_response(404, "spaceNotFound", f"no space {exc}")
    if isinstance(exc, PathNotFound):
        return error_response(404, "pathNotFound", f"no path {exc}")
    if isinstance(exc, ProviderUnavailable):
        return error_response(
            503, "backendUnavailable", str(exc) or "the storage backend is unavailable"
        )
    return error_response(400, "storageError", str(exc))


async def _bad_input(request: Request, exc: Exception) -> Response:
    return error_response(400, "invalidRequest", str(exc))


async def _os_error(request: Request, exc: Exception) -> Response:
    logger.warning("%s %s: %r", request.method, request.url.path, exc)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return error_response(503, "backendUnavailable", f"storage backend error: {reason}")


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette logs the exception and re-raises it after this answer.
    return error_response(500, "internalError", "internal error")


async def _healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


def _iso(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def _version() -> str:
    try:
        return version("spacereg")
    except PackageNotFoundError:
        return "0"
