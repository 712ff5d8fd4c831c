"""Small pieces of ASGI the gateway's WebDAV handling needs: an answer kept to look at,
a body replayed, a header replaced."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def captured(app: ASGIApp, scope: Scope, receive: Receive) -> Response:
    """The back end's whole answer, to look at before the client gets it."""
    start: Message = {}
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    headers = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in start.get("headers", [])
        if k.lower() != b"content-length"
    }
    return Response(b"".join(chunks), start.get("status", 502), headers)


def replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def with_header(send: Send, name: bytes, value: bytes) -> Send:
    """`send` with the response's header `name` (lower case) replaced by `value`."""

    async def replacing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != name]
            message = {**message, "headers": [*headers, (name, value)]}
        await send(message)

    return replacing
