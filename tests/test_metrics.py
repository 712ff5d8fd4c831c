"""`/metrics`: a real registry scraped after real traffic, and who may scrape it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from registry.core.models import OutboxEntry, Peer, table
from registry.runtime.db import create_engine
from tests.clock import FakeClock
from tests.conftest import Registry, running_registry
from tests.databases import database_url  # noqa: F401 (a fixture)
from tests.test_idp import log_in, pkce
from tests.waiting import eventually

SCRAPE_TOKEN = "scrape-7f3c9e1d-not-a-jwt"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scraped(
    tmp_path: Path,
    idp_key_dir: Path,
    clock: FakeClock,
    database_url: str,  # noqa: F811
) -> Iterator[Registry]:
    """A registry on SQLite and on PostgreSQL: the gauges' queries run on both."""
    with running_registry(
        tmp_path / "data",
        idp_key_dir,
        clock=clock,
        metrics_token=SCRAPE_TOKEN,
        database_url=database_url,
    ) as registry:
        yield registry


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found[(name, frozenset(labels.items()))]


async def scrape(registry: Registry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with registry.client() as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_latency_is_counted_per_route_template_not_per_path(scraped: Registry) -> None:
    async with scraped.client("einstein") as einstein:
        for _ in range(3):
            assert (await einstein.get("/graph/v1.0/me/drives")).status_code == 200
        missing = await einstein.get("/graph/v1.0/drives/no-such-drive-4711")
        assert missing.status_code == 404
        assert (await einstein.get("/no/route/here")).status_code == 404
    found = await scrape(scraped)
    drives = {"method": "GET", "route": "/graph/v1.0/me/drives", "status": "200"}
    assert value(found, "spacereg_http_request_duration_seconds_count", **drives) == 3
    assert value(found, "spacereg_http_request_duration_seconds_bucket", **drives, le="+Inf") == 3
    routes = {dict(labels).get("route") for _, labels in found}
    assert "unmatched" in routes
    assert any("{" in (route or "") and "drives" in (route or "") for route in routes)
    assert not any("4711" in (route or "") for route in routes)


async def test_gauges_tell_what_the_database_and_this_replica_hold(
    scraped: Registry, clock: FakeClock
) -> None:
    engine = create_engine(scraped.settings.database_url)  # this loop's, not the server's
    async with engine.begin() as conn:
        await conn.execute(
            insert(table(Peer)).values(
                id="peer-1",
                domain="paris.test",
                base_url="https://paris.test",
                status="suspended",
                info={},
                created_at=clock.now(),
            )
        )
        for event in ("e1", "e2"):
            await conn.execute(
                insert(table(OutboxEntry)).values(
                    kind="peer",
                    event_id=event,
                    destination="https://paris.test/ocm/shares",
                    origin="https://paris.test",
                    payload={},
                    state="pending",
                    attempts=0,
                    next_attempt_at=clock.now() + timedelta(days=1),  # not due: nobody sends it
                    created_at=clock.now(),
                )
            )
    await engine.dispose()
    clock.advance(timedelta(seconds=90))
    _, challenge = pkce()
    async with scraped.client() as anonymous:
        for _ in range(2):
            assert (await log_in(anonymous, challenge, password="wrong")).status_code == 401

    async def open_streams() -> float:
        return value(await scrape(scraped), "spacereg_sse_connections")

    einstein = scraped.client("einstein")
    async with einstein, einstein.stream("GET", "/api/v1/events") as stream:
        assert stream.status_code == 200
        assert await eventually(open_streams) == 1
        found = await scrape(scraped)
    outbox = {"kind": "peer", "destination": "https://paris.test"}
    assert value(found, "spacereg_outbox_depth", **outbox) == 2
    assert value(found, "spacereg_outbox_oldest_age_seconds", **outbox) == 90
    assert (
        value(
            found,
            "spacereg_peer_state",
            peer="paris.test",
            state="suspended",
            partner_state="active",
        )
        == 1
    )
    assert value(found, "spacereg_idp_login_failures", by="username") == 2
    assert value(found, "spacereg_idp_login_failures", by="address") == 2
    assert value(found, "spacereg_provider_up", provider="local") == 1

    async def caught_up() -> bool:
        return value(await scrape(scraped), "spacereg_change_log_lag") == 0

    assert await eventually(caught_up)


async def test_only_an_admin_or_the_scrape_token_reads_metrics(
    scraped: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with scraped.client() as anonymous:
        refused = await anonymous.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        wrong = await anonymous.get("/metrics", headers={"Authorization": "Bearer scrape-guess"})
        assert wrong.status_code == 401
    async with scraped.client("einstein") as einstein:
        forbidden = await einstein.get("/metrics")
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "accessDenied"
    async with scraped.client("admin") as admin:
        allowed = await admin.get("/metrics")
        assert allowed.status_code == 200
        assert "spacereg_http_request_duration_seconds" in allowed.text
    await scrape(scraped)
    assert SCRAPE_TOKEN not in caplog.text
