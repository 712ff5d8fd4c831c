"""Who sends each kind of delivery, each signing its own way. The delivery worker hands a
claimed row to the sender of its kind, and claims only kinds that have one.

- `webhook`: a POST to a subscription's callback, signed the Standard Webhooks way with the
  subscription's secret (`WebhookSender`).
- `peer`: a POST to another registry, signed with HTTP message signatures (comes with peering).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.webhooks import DeliveryFailed, WebhookClient
from registry.outbox import subscription_store
from registry.outbox.store import Delivery

__all__ = ["Send", "Sender", "WebhookSender"]

# Sends one delivery at the given moment (signatures carry it); raises DeliveryFailed.
Send = Callable[[Delivery, datetime], Awaitable[None]]


class Sender(Protocol):
    async def prepare(self, conn: AsyncConnection, batch: Sequence[Delivery]) -> Send:
        """Read what `batch` needs (its keys) in the transaction that claimed it; returns
        how to send each of its deliveries."""
        ...


class WebhookSender:
    def __init__(self, client: WebhookClient) -> None:
        self._client = client

    async def prepare(self, conn: AsyncConnection, batch: Sequence[Delivery]) -> Send:
        wanted = {d.subscription_id for d in batch if d.subscription_id is not None}
        keys = await subscription_store.secrets(conn, wanted)

        async def send(delivery: Delivery, now: datetime) -> None:
            secret = keys.get(delivery.subscription_id or "")
            if secret is None:  # deleted since; its rows go with it (ON DELETE CASCADE)
                raise DeliveryFailed(f"subscription {delivery.subscription_id} is gone")
            body = orjson.dumps(delivery.payload)
            await self._client.deliver(delivery.destination, body, secret, delivery.event_id, now)

        return send
