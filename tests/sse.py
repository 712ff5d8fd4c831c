"""Reading Server-Sent Events the way a sync client does, with a plain HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import orjson

from tests.schema import assert_sse_event


@dataclass
class Event:
    id: str
    type: str
    data: dict[str, Any]


class EventReader:
    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self.comments: list[str] = []
        self._lines = response.aiter_lines()

    async def next(self, seconds: float = 5.0) -> Event:
        """The next event (comments are collected on the way)."""
        return await asyncio.wait_for(self._next(), seconds)

    async def next_comment(self, seconds: float = 5.0) -> str:
        async def comment() -> str:
            seen = len(self.comments)
            while len(self.comments) == seen:
                await self._block()
            return self.comments[-1]

        return await asyncio.wait_for(comment(), seconds)

    async def until(self, wanted: str, seconds: float = 5.0) -> list[Event]:
        """Events up to and including the first of type `wanted`."""

        async def collect() -> list[Event]:
            found = []
            while True:
                event = await self._next()
                found.append(event)
                if event.type == wanted:
                    return found

        return await asyncio.wait_for(collect(), seconds)

    async def _next(self) -> Event:
        while True:
            block = await self._block()
            if "data" in block:
                fields = {
                    "id": block.get("id", ""),
                    "event": block.get("event", "message"),
                    "data": orjson.loads(block["data"]),
                }
                assert_sse_event(fields)
                return Event(fields["id"], fields["event"], fields["data"])

    async def _block(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                return fields
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                return fields
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")


@asynccontextmanager
async def events(
    url: str, token: str, last_event_id: str | None = None
) -> AsyncIterator[EventReader]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=None)) as client,
        client.stream("GET", f"{url}/api/v1/events", headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)
