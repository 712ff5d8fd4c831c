"""What peers send each other once peered, between two real registries over TLS
(`peer_pair.py`): notices of suspension and its lifting reach the partner, a repeated message
is answered as the first without being handled again, a partner over its rate limit gets 429,
a peer whose keys cannot be fetched gets 503, and a key rotation loses no request."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from federation.keys import SigningKeys
from registry.outbox import store as outbox
from registry.peers import store
from registry.peers.rate import PeerRateLimits
from registry.peers.service import NOTICE_PATH, PING_PATH
from registry.runtime.db import create_engine
from tests.federation.peer_pair import (
    Pair,
    Site,
    clock,
    pair,
    peered,
    peers_of,
    ping,
    refused,
    signed_post,
)
from tests.servers import free_port

__all__ = ["clock", "pair"]  # fixtures


async def partner_state_becomes(site: Site, pair: Pair, domain: str, state: str) -> bool:
    """Whether `site` records within 10 s that `domain` holds it `state` (a notice arrives)."""
    for _attempt in range(100):
        if (await peers_of(site, pair.certs))[domain]["partnerState"] == state:
            return True
        await asyncio.sleep(0.1)
    return False


async def notice(pair: Pair, state: str, message_id: str) -> tuple[int, dict[str, object]]:
    """paris tells zurich, signed, that it holds zurich `state`, as message `message_id`."""
    url = pair.zurich.base_url + NOTICE_PATH
    doc = {"domain": "paris.test", "state": state}
    status, body, _headers = await signed_post(
        pair.paris, url, doc, headers={"Idempotency-Key": message_id}
    )
    return status, body


async def test_suspension_and_its_lifting_reach_the_partner(pair: Pair) -> None:
    await peered(pair)
    async with pair.zurich.client(pair.certs) as admin:
        assert (await admin.post("/api/v1/peers/paris.test/suspend")).status_code == 200
        assert await partner_state_becomes(pair.paris, pair, "zurich.test", "suspended")
        seen = (await peers_of(pair.paris, pair.certs))["zurich.test"]
        assert seen["state"] == "active"  # paris did not suspend zurich: zurich did it

        assert (await admin.post("/api/v1/peers/paris.test/resume")).status_code == 200
        assert await partner_state_becomes(pair.paris, pair, "zurich.test", "active")
    assert (await ping(pair.paris, pair.certs, "zurich.test")).status_code == 200


async def queued_for(site: Site, pair: Pair, domain: str, count: int) -> bool:
    """Whether `site` holds `count` deliveries queued for `domain` within 10 s."""
    for _attempt in range(100):
        if (await peers_of(site, pair.certs))[domain]["queuedDeliveries"] == count:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_partner_that_suspended_us_is_sent_nothing_until_it_resumes(pair: Pair) -> None:
    await peered(pair)
    async with pair.zurich.client(pair.certs) as admin:
        assert (await admin.post("/api/v1/peers/paris.test/suspend")).status_code == 200
        assert await partner_state_becomes(pair.paris, pair, "zurich.test", "suspended")

        # paris queues a message for zurich (as a share would): it waits, unsent
        engine = create_engine(pair.paris.settings.database_url)
        try:
            async with engine.begin() as conn:
                hello = {"domain": "paris.test"}
                url = pair.zurich.base_url + PING_PATH
                await outbox.queue_peer(conn, uuid.uuid4().hex, url, hello, pair.clock.now())
        finally:
            await engine.dispose()
        await asyncio.sleep(2.5)  # more than the delivery worker's poll
        seen = (await peers_of(pair.paris, pair.certs))["zurich.test"]
        assert (seen["queuedDeliveries"], seen["failures"]) == (1, 0)

        assert (await admin.post("/api/v1/peers/paris.test/resume")).status_code == 200
    assert await queued_for(pair.paris, pair, "zurich.test", 0)  # sent once resumed
    assert (await peers_of(pair.paris, pair.certs))["zurich.test"]["failures"] == 0


async def test_a_repeated_message_gets_the_first_answer_and_is_not_handled_again(
    pair: Pair,
) -> None:
    await peered(pair)
    first = uuid.uuid4().hex
    assert await notice(pair, "suspended", first) == (
        200,
        {"domain": "zurich.test", "state": "active"},
    )
    assert (await peers_of(pair.zurich, pair.certs))["paris.test"]["partnerState"] == "suspended"
    assert (await notice(pair, "active", uuid.uuid4().hex))[0] == 200

    # the first message again, signed anew (as the outbox resends it): the first answer,
    # and zurich still holds paris's latest word, not the repeated one
    assert await notice(pair, "suspended", first) == (
        200,
        {"domain": "zurich.test", "state": "active"},
    )
    assert (await peers_of(pair.zurich, pair.certs))["paris.test"]["partnerState"] == "active"

    status, body = await notice(pair, "active", "not an id")  # a space is not visible ASCII
    assert (status, body["error"]["code"]) == (400, "message_id_invalid")  # type: ignore[index]


async def test_a_partner_over_its_rate_limit_gets_429_with_retry_after(pair: Pair) -> None:
    await peered(pair)
    guard = pair.zurich.services.peering.guard
    kept, guard.limits = guard.limits, PeerRateLimits(0.5, 2, pair.zurich.services.clock)
    try:
        url, hello = pair.zurich.base_url + PING_PATH, {"domain": "paris.test"}
        for _allowed in range(2):
            assert (await signed_post(pair.paris, url, hello))[0] == 200
        status, body, headers = await signed_post(pair.paris, url, hello)
        # an admin's ping through paris's API is refused alike (the partner's code kept)
        refused(await ping(pair.paris, pair.certs, "zurich.test"), 429, "peer_rate_limited")
    finally:
        guard.limits = kept
    assert (status, body["error"]["code"]) == (429, "peer_rate_limited")
    assert headers["retry-after"] == "2"


async def test_a_peer_whose_keys_cannot_be_fetched_gets_503_with_retry_after(
    pair: Pair,
) -> None:
    """lyon.test is a peer of zurich's whose JWKS URL answers nothing (nothing listens)."""
    closed = f"https://127.0.0.1:{free_port()}/.well-known/jwks.json"
    engine: AsyncEngine = create_engine(pair.zurich.settings.database_url)
    try:
        async with engine.begin() as conn:
            now = pair.clock.now()
            lyon = store.PeerRecord("lyon.test", "https://lyon.test", closed, (), (), "active", now)
            await store.save_peer(conn, lyon, now)
    finally:
        await engine.dispose()

    url, hello = pair.zurich.base_url + PING_PATH, {"domain": "lyon.test"}
    status, body, headers = await signed_post(pair.paris, url, hello)

    assert (status, body["error"]["code"]) == (503, "signature_keys_unavailable")
    assert headers["retry-after"] == "30"


async def test_a_key_rotation_with_requests_flowing_fails_none(pair: Pair) -> None:
    """paris publishes its next key ahead (zurich holds paris's JWKS from the peering), then
    signs with it; requests flow all along, signed with the key active at each moment."""
    await peered(pair)
    keys: SigningKeys = pair.paris.services.signing_keys
    url, hello = pair.zurich.base_url + PING_PATH, {"domain": "paris.test"}
    old = keys.active.kid
    used: list[str] = []

    async def flowing(count: int) -> list[int]:
        statuses = []
        for _n in range(count):
            used.append(keys.active.kid)
            statuses.append((await signed_post(pair.paris, url, hello))[0])
        return statuses

    during = asyncio.create_task(flowing(30))
    await asyncio.sleep(0.05)
    new = keys.rotate(overlap_s=3600, lead_s=0.5).kid  # published now, signs in 0.5 s
    assert [key["kid"] for key in keys.jwks()["keys"]] == [old, new]
    statuses = await during
    await asyncio.sleep(max(0.0, 0.6 - 0.05))
    statuses += await flowing(5)

    assert statuses == [200] * 35
    assert used[0] == old and used[-1] == new
    assert [key["kid"] for key in keys.jwks()["keys"]] == [new, old]  # the old one kept
