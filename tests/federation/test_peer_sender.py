"""`PeerSender` (the outbox's `peer` kind) signs what it sends so that a receiver verifying
RFC 9421 with the sender's published keys accepts it; a refusal is a failed delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from federation.config import DiscoveryConfig
from federation.keys import SigningKeys
from federation.safe_http import SafeHttpClient
from federation.webhooks import DeliveryFailed
from registry.outbox.senders import PeerSender
from registry.outbox.store import PEER, Delivery
from tests.federation.signed_servers import Receiver


@pytest.fixture
async def client(config: DiscoveryConfig) -> AsyncIterator[SafeHttpClient]:
    http = SafeHttpClient(config)
    try:
        yield http
    finally:
        await http.aclose()


def delivery(destination: str) -> Delivery:
    now = datetime.now(UTC)
    payload = {"domain": "paris.test", "state": "revoked"}
    return Delivery(1, PEER, "e1", None, destination, destination, payload, 0, now)


async def test_a_peer_delivery_is_signed_with_our_published_keys(
    client: SafeHttpClient, receiver: Receiver, keys: SigningKeys
) -> None:
    send = await PeerSender(client, keys).prepare(None, [])  # type: ignore[arg-type]

    await send(delivery(receiver.base_url + "/ocm/notifications"), datetime.now(UTC))


async def test_a_refused_peer_delivery_fails_to_be_retried(
    client: SafeHttpClient, receiver: Receiver, tmp_path: Path
) -> None:
    strangers = SigningKeys.load_or_create(tmp_path)  # keys the sender does not publish
    send = await PeerSender(client, strangers).prepare(None, [])  # type: ignore[arg-type]

    with pytest.raises(DeliveryFailed, match="HTTP 401 signature_unknown_key"):
        await send(delivery(receiver.base_url + "/ocm/notifications"), datetime.now(UTC))
