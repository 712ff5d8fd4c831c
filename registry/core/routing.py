"""One route per path, whatever methods it answers: a method it does not answer gets 405 with an
`Allow` that names all of them, and OPTIONS answers 204 with the same `Allow`.

Starlette would route each method separately and name only one route's methods in `Allow`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
# The order `Allow` names methods in (WebDAV's after HTTP's).
METHOD_ORDER = (
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
    "PROPFIND", "PROPPATCH", "MKCOL", "MOVE", "COPY", "LOCK", "UNLOCK",
)  # fmt: skip


class Resource(Route):
    """`path` answered by `handlers` (method name to endpoint); HEAD is answered as GET."""

    def __init__(self, path: str, handlers: Mapping[str, Endpoint]) -> None:
        self.handlers = {method.upper(): handler for method, handler in handlers.items()}
        if "GET" in self.handlers:
            self.handlers["HEAD"] = self.handlers["GET"]
        allowed = {*self.handlers, "OPTIONS"}
        self.allow = allow_header(allowed)
        super().__init__(path, self._dispatch, methods=allowed)

    async def _dispatch(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": self.allow})
        return await self.handlers[request.method](request)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            raise HTTPException(
                status_code=405,
                detail=f"{scope['method']} is not allowed here; use one of {self.allow}",
                headers={"Allow": self.allow},
            )
        await self.app(scope, receive, send)


def allow_header(methods: Iterable[str]) -> str:
    """The value of an `Allow` header naming `methods`, in one order everywhere."""
    return ", ".join(sorted(methods, key=_rank))


def _rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)
