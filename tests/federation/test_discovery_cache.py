"""Caching of discovery: hits, TTLs from DNS and HTTP, negative cache, stale on error, one flight.

The clock is a ManualClock (injected), so TTLs are exact; the network is real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from federation.cache import DiscoveryCache
from federation.clock import ManualClock
from federation.config import DiscoveryConfig
from federation.discovery import Discovery
from federation.errors import BadStatus, FetchFailed
from tests.federation.conftest import Site
from tests.federation.dnsserver import DnsServer

WEBFINGER = "/.well-known/webfinger"
METADATA = "/.well-known/space-registry"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def timed(config: DiscoveryConfig, clock: ManualClock) -> AsyncIterator[Discovery]:
    async with Discovery(config, clock=clock) as client:
        yield client


def sources(found: object) -> dict[str, str]:
    return {step.name: step.source for step in found.steps}  # type: ignore[attr-defined]


async def test_second_discovery_is_served_from_cache_without_network(
    timed: Discovery, paris: Site, dns_server: DnsServer
) -> None:
    await timed.discover("marie@paris.test")
    hits, queries = sum(paris.knobs.hits.values()), sum(dns_server.queries.values())
    found = await timed.discover("marie@paris.test")
    assert set(sources(found).values()) == {"cached"}
    assert sum(paris.knobs.hits.values()) == hits  # no request, hence no wait: bench/discovery.py
    assert sum(dns_server.queries.values()) == queries


async def test_concurrent_callers_share_one_lookup(
    timed: Discovery, paris: Site, dns_server: DnsServer
) -> None:
    webfinger, metadata = paris.knobs.hits[WEBFINGER], paris.knobs.hits[METADATA]
    srv = dns_server.queries[("_spacereg._tcp.paris.test", "SRV")]
    results = await asyncio.gather(*(timed.discover("marie@paris.test") for _ in range(20)))
    assert {r.metadata.base_url for r in results} == {paris.origin}
    assert paris.knobs.hits[WEBFINGER] == webfinger + 1
    assert paris.knobs.hits[METADATA] == metadata + 1
    assert dns_server.queries[("_spacereg._tcp.paris.test", "SRV")] == srv + 1


async def test_failures_are_cached_for_the_negative_ttl(
    timed: Discovery, paris: Site, clock: ManualClock, config: DiscoveryConfig
) -> None:
    paris.knobs.fail_paths.add(WEBFINGER)
    try:
        with pytest.raises(BadStatus, match=r"HTTP 503"):
            await timed.discover("marie@paris.test")
        hits = paris.knobs.hits[WEBFINGER]
        with pytest.raises(BadStatus, match=r"HTTP 503"):
            await timed.discover("marie@paris.test")
        assert paris.knobs.hits[WEBFINGER] == hits
        clock.advance(config.negative_ttl_s + 1)
        paris.knobs.fail_paths.clear()
        found = await timed.discover("marie@paris.test")
        assert sources(found)["webfinger"] == "fetched"
    finally:
        paris.knobs.fail_paths.clear()


async def test_stale_answers_are_served_while_the_remote_is_down(
    timed: Discovery, paris: Site, clock: ManualClock
) -> None:
    await timed.discover("marie@paris.test")
    clock.advance(2 * 24 * 3600)  # everything expired, still inside the stale window
    paris.knobs.fail_paths.update({WEBFINGER, METADATA})
    try:
        found = await timed.discover("marie@paris.test")
        assert found.stale and found.metadata.base_url == paris.origin
        await timed.cache.drain()  # background refreshes fail...
        hits = paris.knobs.hits[WEBFINGER]
        again = await timed.discover("marie@paris.test")
        assert again.stale  # ...the stale answer stays, and no retry before the back-off
        await timed.cache.drain()
        assert paris.knobs.hits[WEBFINGER] == hits
    finally:
        paris.knobs.fail_paths.clear()


async def test_stale_answer_is_returned_at_once_while_a_refresh_is_in_flight(
    timed: Discovery, paris: Site, clock: ManualClock
) -> None:
    await timed.discover("marie@paris.test")
    clock.advance(2 * 24 * 3600)
    paris.knobs.delay_s[WEBFINGER] = 1.0
    answered = paris.knobs.answered[WEBFINGER]
    try:
        found = await timed.discover("marie@paris.test")
        assert sources(found)["webfinger"] == "stale"
        assert paris.knobs.answered[WEBFINGER] == answered  # the refresh was still on its way
        await timed.cache.drain()
        refreshed = await timed.discover("marie@paris.test")
        assert sources(refreshed)["webfinger"] == "cached"
    finally:
        paris.knobs.delay_s.clear()


async def test_ttls_come_from_dns_and_http_headers(timed: Discovery, clock: ManualClock) -> None:
    await timed.discover("marie@paris.test")
    clock.advance(119)  # SRV ttl is 120 s, JWKS max-age 300 s, metadata max-age 3600 s
    assert sources(await timed.discover("marie@paris.test"))["dns"] == "cached"
    clock.advance(2)
    assert sources(await timed.discover("marie@paris.test"))["dns"] == "stale"
    await timed.cache.drain()
    clock.advance(200)
    found = sources(await timed.discover("marie@paris.test"))
    assert (found["jwks"], found["metadata"]) == ("stale", "cached")
    await timed.cache.drain()


async def test_a_domain_that_does_not_answer_is_remembered(
    timed: Discovery, dns_server: DnsServer
) -> None:
    with pytest.raises(FetchFailed, match=r"nowhere.test"):
        await timed.discover("marie@nowhere.test")
    queries = sum(dns_server.queries.values())
    with pytest.raises(FetchFailed, match=r"nowhere.test"):
        await timed.discover("marie@nowhere.test")
    assert sum(dns_server.queries.values()) == queries


def make_cache(clock: ManualClock) -> DiscoveryCache:
    return DiscoveryCache(
        clock,
        min_ttl_s=60,
        max_ttl_s=3600,
        default_ttl_s=600,
        negative_ttl_s=30,
        max_stale_s=1000,
    )


async def test_ttls_are_clamped_to_sane_bounds() -> None:
    cache = make_cache(ManualClock())
    assert cache.clamp_ttl(0) == 60
    assert cache.clamp_ttl(10**9) == 3600
    assert cache.clamp_ttl(None) == 600


async def test_stale_window_ends() -> None:
    clock = ManualClock()
    cache = make_cache(clock)
    calls = 0

    async def load() -> tuple[str, float | None]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise FetchFailed("down")
        return "value", 100.0

    assert await cache.get("k", load) == ("value", "fetched")
    clock.advance(100 + 999)
    assert await cache.get("k", load) == ("value", "stale")
    await cache.drain()
    clock.advance(2)
    with pytest.raises(FetchFailed):
        await cache.get("k", load)
