"""The provider service's HTTP API under `/provider/v1`: metadata, spaces, quota, stat and
subscriptions, answered by the wrapped driver and the subscriber list; and its error answers."""

from __future__ import annotations

import asyncio
import logging
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from storage.provider import (
    Change,
    PathNotFound,
    ProviderEvent,
    ProviderUnavailable,
    SpaceInfo,
    SpaceNotFound,
    SpaceStore,
    StorageError,
)
from storage.service_config import ServiceConfig
from storage.subscribers import SubscriptionRefused, Subscriptions
from storage.wire import DAV_MOUNT, JSON, entry_json, error_response, space_json

logger = logging.getLogger("spacereg.provider")

DETAIL_CONCURRENCY = 8


class BadInput(Exception):
    pass


class ServiceAPI:
    """The routes under `/provider/v1`, and the backend's availability they report."""

    def __init__(
        self,
        config: ServiceConfig,
        provider: SpaceStore,
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


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    return body


def _iso(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def _version() -> str:
    try:
        return version("spacereg")
    except PackageNotFoundError:
        return "0"


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


async def internal_error(request: Request, exc: Exception) -> Response:
    """Any other exception's answer (`common.server_errors` logs it)."""
    return error_response(500, "internalError", "internal error")


ERROR_HANDLERS = {
    HTTPException: _http_error,
    StorageError: _storage_error,
    BadInput: _bad_input,
    OSError: _os_error,
}
