"""Who sends each kind of delivery, each signing its own way. The delivery worker hands a
claimed row to the sender of its kind, and claims only kinds that have one.

- `webhook`: a POST to a subscription's callback, signed the Standard Webhooks way with the
  subscription's secret (`WebhookSender`).
- `peer`: a POST to another registry, signed with RFC 9421 HTTP message signatures with our
  keys (`PeerSender`; `federation/signing.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.errors import DiscoveryError
from federation.keys import SigningKeys
from federation.retry_after import retry_after_s
from federation.safe_http import SafeHttpClient
from federation.signing import OcmSignatureAuth
from federation.webhooks import DeliveryFailed, WebhookClient
from registry.outbox import subscription_store
from registry.outbox.store import Delivery

__all__ = ["PeerSender", "Send", "Sender", "WebhookSender"]

# Answers that say "not now" and may say until when (Retry-After).
BUSY = (429, 503)
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


class _At:
    """The moment the delivery worker sends at, as the signer's clock."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


class PeerSender:
    """POSTs a delivery's payload as JSON to another registry, signed with our keys. A 2xx
    answer delivers it; so does 403 `peer_revoked` (the partner ended it already: nothing more
    to tell); anything else is retried with backoff, and not before the `Retry-After` of a 429
    or 503."""

    def __init__(self, http: SafeHttpClient, keys: SigningKeys) -> None:
        self._http = http
        self._keys = keys

    async def prepare(self, conn: AsyncConnection, batch: Sequence[Delivery]) -> Send:
        async def send(delivery: Delivery, now: datetime) -> None:
            headers = {"Content-Type": "application/json", "Idempotency-Key": delivery.event_id}
            auth = OcmSignatureAuth(self._keys, _At(now))
            body = orjson.dumps(delivery.payload)
            try:
                answer = await self._http.exchange(
                    delivery.destination, body, headers, what="peer delivery", auth=auth
                )
            except DiscoveryError as exc:
                raise DeliveryFailed(str(exc)) from exc
            code = answer.error().get("code")
            if 200 <= answer.status < 300 or (answer.status == 403 and code == "peer_revoked"):
                return
            wait = retry_after_s(answer.headers, now) if answer.status in BUSY else None
            raise DeliveryFailed(
                f"{delivery.destination}: HTTP {answer.status} {code or ''}", retry_after_s=wait
            )

        return send
