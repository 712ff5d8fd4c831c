"""A webhook receiver as a subscriber would run one: it confirms subscriptions by echoing the
challenge, checks every delivery's signature (Standard Webhooks), and drops repeated event ids."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from common.webhook_signature import BadSignature, verify
from registry.core.clock import SYSTEM_CLOCK, Clock
from tests.servers import free_port, serve

SECRET = "a-webhook-secret-of-some-length"


@dataclass
class Receiver:
    secret: str
    url: str = ""
    confirm: bool = True  # echo the challenge
    failing: bool = False  # answer 503 to deliveries
    delay: float = 0.0  # seconds to take over each delivery
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    duplicates: int = 0
    bad_signatures: int = 0
    signed: list[tuple[dict[str, str], bytes]] = field(default_factory=list)  # as received
    challenges: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Clock = SYSTEM_CLOCK  # the receiver's clock, against which timestamps are checked

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            if request.method == "GET":
                self.challenges.append(dict(request.query_params))
                if not self.confirm:
                    return PlainTextResponse("no thanks", status_code=404)
                return PlainTextResponse(request.query_params.get("challenge", ""))
            if self.failing:
                return PlainTextResponse("down for maintenance", status_code=503)
            if self.delay:
                await asyncio.sleep(self.delay)
            body = await request.body()
            try:
                event_id = verify([self.secret], body, request.headers, self.clock.now())
            except BadSignature as exc:
                self.bad_signatures += 1
                return PlainTextResponse(f"bad signature: {exc}", status_code=401)
            with self.lock:
                self.signed.append((dict(request.headers), body))
                if event_id in self.events:
                    self.duplicates += 1
                else:
                    self.events[event_id] = orjson.loads(body)
                    self.order.append(event_id)
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["GET", "POST"])])


@contextmanager
def running_receiver(secret: str = SECRET) -> Iterator[Receiver]:
    receiver = Receiver(secret)
    with serve(receiver.app(), free_port()) as url:
        receiver.url = f"{url}/hook"
        yield receiver
