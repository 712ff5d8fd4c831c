"""Sending change notifications to a subscriber's callback, the WebSub way: the callback proves
it wants them (challenge echo, `common/challenge.py`) before the first delivery, and every
delivery is signed the Standard Webhooks way with the subscription's secret
(`common/webhook_signature.py`), its event id the receiver's idempotency key."""

from __future__ import annotations

from datetime import datetime

from common import challenge, webhook_signature
from federation.errors import DiscoveryError
from federation.safe_http import SafeHttpClient


class DeliveryFailed(Exception):
    """The callback could not be reached or did not accept the delivery; try again later, not
    before `retry_after_s` when the receiver said how long to wait."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class WebhookClient:
    def __init__(self, http: SafeHttpClient) -> None:
        self._http = http

    async def confirm(self, callback: str, topic: str, lease_seconds: int) -> None:
        """The callback echoes a challenge, or challenge.CallbackRefused says why not."""
        await challenge.confirm(self._get, callback, topic, lease_seconds)

    async def _get(self, url: str) -> challenge.Answer:
        try:
            answer = await self._http.get(url, what="subscription callback", accept="text/plain")
        except DiscoveryError as exc:
            raise challenge.CallbackRefused(str(exc)) from exc
        return challenge.Answer(answer.status, answer.body)

    async def deliver(
        self, callback: str, body: bytes, secret: str, event_id: str, now: datetime
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": event_id,
            **webhook_signature.signed_headers(secret, event_id, body, now),
        }
        try:
            status = await self._http.post(callback, body, headers, what="delivery")
        except DiscoveryError as exc:
            raise DeliveryFailed(str(exc)) from exc
        if not 200 <= status < 300:
            raise DeliveryFailed(f"{callback} answered HTTP {status}")
