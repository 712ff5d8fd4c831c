"""WebDAV of a share space: a folder of another space served as a space of its own.

Requests for `/<share-id>/<path>` go to the holding space's back end as
`/<parent-id>/<folder>/<path>`; the hrefs of its PROPFIND answers are turned back, so a
client never sees a name above the shared folder. The shared folder itself is the share
space's root: like any space's root it cannot be deleted, moved or replaced through WebDAV.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage import Entry, SpaceInfo, SpaceStore

_READS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND"})
_HREF_SAFE = "/!*'(),$|"  # what the provider's WebDAV leaves unquoted in hrefs


class FolderAsSpace:
    def __init__(self, app: ASGIApp, share_id: str, parent_id: str, folder: str) -> None:
        self._app = app
        self._share_id = share_id
        self._inner = f"/{parent_id}/{folder.strip('/')}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "")
        outer = f"{root}/{self._share_id}"
        rest = scope["path"][len(outer) :]
        if not rest.strip("/") and scope["method"] not in _READS:
            await PlainTextResponse("a share's root folder cannot be changed", 403)(
                scope, receive, send
            )
            return
        path = f"{root}{self._inner}{rest}"
        headers = [
            (key, self._destination(value, outer, root) if key == b"destination" else value)
            for key, value in scope["headers"]
        ]
        inner_scope = {
            **scope,
            "path": path,
            "raw_path": quote(path).encode(),
            "headers": headers,
        }
        if scope["method"] == "PROPFIND":
            send = hrefs_renamed(send, quote(root + self._inner, _HREF_SAFE), quote(outer))
        await self._app(inner_scope, receive, send)

    def _destination(self, value: bytes, outer: str, root: str) -> bytes:
        """A Destination inside the share, named as the holding space's back end knows it."""
        url = urlsplit(value.decode("latin-1"))
        path = unquote(url.path)
        if not path.startswith(outer + "/"):
            return value
        moved = f"{root}{self._inner}/{path[len(outer) + 1 :]}"
        return url._replace(path=quote(moved)).geturl().encode("latin-1")


class FolderSizes:
    """The usage a share space's writes count against: the holding space's (its quota is the
    one that applies), a path in the share being one in its folder there."""

    def __init__(self, provider: SpaceStore, parent_id: str, folder: str) -> None:
        self._provider = provider
        self._parent_id = parent_id
        self._folder = "/" + folder.strip("/")

    async def get_space(self, space_id: str) -> SpaceInfo:
        return await self._provider.get_space(self._parent_id)

    async def stat(self, space_id: str, path: str) -> Entry:
        return await self._provider.stat(self._parent_id, self._folder + path)


def hrefs_renamed(send: Send, inner: str, outer: str) -> Send:
    """`send` with the holding space's prefix in a multistatus body replaced by the share's."""
    start: Message | None = None
    body: list[bytes] = []

    async def renaming(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        renamed = b"".join(body).replace(f">{inner}".encode(), f">{outer}".encode())
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(renamed)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": renamed})

    return renaming
