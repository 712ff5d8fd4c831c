"""Zurich down, seen from paris: Marie's mountpoint turns unavailable once the subscription's
lease ran out without a renewal getting through (one failed renewal is not enough: the outbox
retries it), and available again when a renewal gets through after zurich started again on
the same database and port; her listing and her SSE stream say both. Two real registries over
TLS and the test DNS server; zurich is really stopped (`Pair.stopped`), the lease is run out
by moving both registries' clock, and the renewals job is run by the test (no sleeping)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from registry.shares.subscriptions import LEASE
from tests.federation.peer_pair import Pair, clock, peered, two_registries
from tests.federation.signed_servers import ShiftedClock
from tests.federation.test_share_subscriptions import subscribed
from tests.federation.test_shares import (
    SHARES_DRIVE,
    eventually,
    marie_drives,
    project_with_folder,
    share,
    state_at_zurich,
    waiting_for_marie,
)
from tests.sse import Event, EventReader

__all__ = ["clock"]  # a fixture


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path) -> Iterator[Pair]:
    with two_registries(tmp_path_factory, idp_key_dir, relayed=True) as both:
        yield both


def marie_at_paris(pair: Pair) -> httpx2.AsyncClient:
    """Marie's client at paris, for a stream that stays open as long as the test."""
    assert pair.paris.services.idp is not None
    token = pair.paris.services.idp.access_token_for("marie")
    return httpx2.AsyncClient(
        base_url=pair.paris.base_url.replace("registry.paris.test", "127.0.0.1"),
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cafile=pair.certs.ca_file),
        timeout=httpx2.Timeout(10, read=None),
    )


async def availability_of(pair: Pair, mountpoint: str) -> str:
    return str((await marie_drives(pair))[mountpoint]["availability"])


async def availability_event(stream: EventReader, mountpoint: str) -> Event:
    """The next availability change of `mountpoint` on the stream."""
    while True:
        event = (await stream.until("availability", seconds=15))[-1]
        if event.data["driveId"] == mountpoint:
            return event


async def zurich_failures(pair: Pair) -> Any:
    async with pair.paris.client(pair.certs) as admin:
        peer = (await admin.get("/api/v1/peers/zurich.test")).json()
    return peer if peer["failures"] >= 1 and peer["queuedDeliveries"] >= 1 else None


async def test_zurich_stopped_past_the_lease_makes_the_mountpoint_unavailable_until_it_is_back(
    pair: Pair, clock: ShiftedClock
) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Zurich Stops", "stops")
    await share(pair.zurich, pair, drive, "/a/rel/stops")
    waiting = await waiting_for_marie(pair, "stops")
    renewals = pair.paris.services.shares.renewals
    async with marie_at_paris(pair) as client, client.stream("GET", "/api/v1/events") as response:
        assert response.status_code == 200
        stream = EventReader(response)
        accepted = await client.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
        mountpoint = accepted.json()["remoteItem"]["driveId"]
        space_id = (await state_at_zurich(pair, "stops", "accepted"))["remoteItem"]["driveId"]
        subscription = await subscribed(pair, space_id)
        assert await renewals.check() == 0  # takes in the subscription's delivery

        with pair.stopped(pair.zurich):
            clock.offset = LEASE / 2
            assert await renewals.check() == 1  # the renewal is due, and cannot get through
            await eventually(lambda: zurich_failures(pair))
            await renewals.check()
            assert await availability_of(pair, mountpoint) == "available"  # retried meanwhile

            clock.offset = LEASE + timedelta(minutes=1)  # the lease ran out, no renewal through
            await renewals.check()
            assert await availability_of(pair, mountpoint) == "unavailable"
            down = await availability_event(stream, mountpoint)
            assert down.data["data"]["availability"] == "unavailable"
            assert "zurich.test" in down.data["data"]["reason"]

        # zurich runs again, a new process on the same database and port; the outbox's
        # retry of the renewal is due an hour later at the latest
        clock.offset = 2 * LEASE + timedelta(minutes=1)

        async def back() -> bool | None:
            pair.paris.services.delivery.wake()
            await renewals.check()
            return True if await availability_of(pair, mountpoint) == "available" else None

        await eventually(back)
        up = await availability_event(stream, mountpoint)
        assert up.data["data"]["availability"] == "available"
    renewed = await subscribed(pair, space_id)
    assert renewed.id == subscription.id  # zurich kept it across its restart
    assert renewed.expires_at > subscription.expires_at + LEASE
