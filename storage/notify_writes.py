"""After a successful write through a driver's WebDAV app, tell the driver which paths changed
(at once, rather than when its watcher or poller notices). Drivers wrap their own app in it,
so every host of that app gets it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import unquote, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.provider import StorageError

logger = logging.getLogger("spacereg.provider")

WRITE_METHODS = frozenset({"PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH"})


class WriteObserver(Protocol):
    async def written(self, space_id: str, paths: Sequence[str]) -> None:
        """A write through the driver's WebDAV app finished: emit the change now rather than
        on the next scan."""
        ...


class NotifyWrites:
    """Wraps the driver's WebDAV app: after a write succeeds, tell the driver which paths changed
    (at once, rather than when its watcher notices)."""

    def __init__(self, app: ASGIApp, provider: WriteObserver) -> None:
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
