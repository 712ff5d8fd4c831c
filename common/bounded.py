"""Reading a body, request or response, up to a limit: past it the reader stops and says so
(None) instead of holding whatever a peer chose to send."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from starlette.types import Receive


async def read_capped(
    chunks: AsyncIterable[bytes], limit: int, declared: str | None = None
) -> bytes | None:
    """The whole body, or None as soon as it is larger than `limit` bytes, as declared
    (`Content-Length`) or as read; the rest is left unread."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """An ASGI request's body, or None past `limit` bytes (what came before a hang-up)."""
    return await read_capped(_chunks(receive), limit)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
