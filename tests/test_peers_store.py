"""Peering's SQL on a real database: the replay cache shared by replicas, and invitations that
can be used once only, even by two acceptances at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.core.models import SignatureReplay, table
from registry.peers import store
from registry.peers.guard import DbReplayCache, hash_token
from tests.clock import FakeClock
from tests.databases import database_url, migrated_engine

__all__ = ["database_url"]  # a fixture


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url) as engine:
        yield engine


async def replays(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(select(func.count()).select_from(table(SignatureReplay)))
            ).scalar_one()
        )


async def test_a_signature_is_accepted_once_and_forgotten_after_it_expires(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock()
    cache, other_replica = DbReplayCache(engine.begin, clock), DbReplayCache(engine.begin, clock)
    until = clock.now() + timedelta(seconds=300)

    assert await cache.first_use("a" * 64, until) is True
    assert await other_replica.first_use("a" * 64, until) is False
    assert await cache.first_use("b" * 64, until) is True
    assert await replays(engine) == 2

    clock.advance(timedelta(seconds=301))
    assert await cache.first_use("c" * 64, clock.now() + timedelta(seconds=300)) is True
    assert await replays(engine) == 1  # a and b were pruned


async def test_of_two_racing_acceptances_of_one_invitation_one_wins(engine: AsyncEngine) -> None:
    clock = FakeClock()
    token_hash = hash_token("token")
    async with engine.begin() as conn:
        await store.add_invitation(
            conn, token_hash, "admin", clock.now(), clock.now() + timedelta(days=7)
        )

    async def use(domain: str) -> bool:
        async with engine.begin() as conn:
            return await store.use_invitation(conn, token_hash, domain, clock.now())

    results = await asyncio.gather(use("paris.test"), use("lyon.test"))

    assert sorted(results) == [False, True]
    async with engine.connect() as conn:
        found = await store.invitation(conn, token_hash)
    assert found is not None and found.used_by in ("paris.test", "lyon.test")


async def test_the_issuers_active_partners_vouch_for_are_listed_by_partner(
    engine: AsyncEngine,
) -> None:
    now = FakeClock().now()
    async with engine.begin() as conn:
        for domain, state, issuers in (
            ("paris.test", store.ACTIVE, ("https://idp.paris.test", "https://sso.paris.test")),
            ("lyon.test", store.SUSPENDED, ("https://idp.lyon.test",)),
            ("nice.test", store.REVOKED, ("https://idp.nice.test",)),
        ):
            record = store.PeerRecord(
                domain, f"https://{domain}", f"https://{domain}/jwks", issuers, (), state, now
            )
            await store.save_peer(conn, record, now)

        vouched = await store.vouched_issuers(conn)

    assert vouched == {
        "https://idp.paris.test": ("paris.test",),
        "https://sso.paris.test": ("paris.test",),
    }
