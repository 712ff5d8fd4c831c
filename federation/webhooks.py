"""Sending change notifications to a subscriber's callback, the WebSub way: the callback proves
it wants them (challenge echo, `common/challenge.py`) before the first delivery, and every
delivery is signed with the subscription's secret (HMAC-SHA256 of the exact body) and names its
event id."""

from __future__ import annotations

import hashlib
import hmac

from common import challenge
from federation.errors import DiscoveryError
from federation.safe_http import SafeHttpClient

SIGNATURE_HEADER = "X-Spacereg-Signature"
EVENT_ID_HEADER = "X-Spacereg-Event-Id"


class DeliveryFailed(Exception):
    """The callback could not be reached or did not accept the delivery; try again later."""


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(signature(secret, body), header)


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

    async def deliver(self, callback: str, body: bytes, secret: str, event_id: str) -> None:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret, body),
            EVENT_ID_HEADER: event_id,
            "Idempotency-Key": event_id,
        }
        try:
            status = await self._http.post(callback, body, headers, what="delivery")
        except DiscoveryError as exc:
            raise DeliveryFailed(str(exc)) from exc
        if not 200 <= status < 300:
            raise DeliveryFailed(f"{callback} answered HTTP {status}")
