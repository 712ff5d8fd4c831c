"""Change push when a registry is down, and its housekeeping: two real registries over TLS and
the test DNS server, really stopped and started again (`Pair.stopped`); leases are run out by
moving both registries' clock, and the renewals job and the retention sweep are run by the test
(no sleeping).

- Zurich down: Marie's mountpoint at paris turns unavailable once the subscription's lease ran
  out without a renewal getting through (one failed renewal is not enough: the outbox retries
  it), and available again when a renewal gets through after zurich started again on the same
  database and port; her listing and her SSE stream say both.
- Paris down: zurich's outbox backs off for paris and delivers what it queued (a permission
  change) once paris is back, once, while its webhook deliveries go on meanwhile.
- Zurich prunes a subscription whose lease ran out; revoking the partnership ends the
  subscriptions both ways, and paris marks the mountpoints unavailable.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx2

from registry.outbox.delivery import BACKOFF_MAX_S
from registry.runtime.retention import LAPSED_SUBSCRIPTIONS_KEPT
from registry.shares.store import remote, remote_where
from registry.shares.subscriptions import LEASE
from tests.federation import test_share_faults
from tests.federation.peer_pair import Pair, Site, clock, peered
from tests.federation.signed_servers import ShiftedClock
from tests.federation.test_share_subscriptions import subscribed, subscriptions_at_zurich
from tests.federation.test_shares import (
    SHARES_DRIVE,
    VIEWER,
    eventually,
    marie_drives,
    project_with_folder,
    share,
    state_at_zurich,
    waiting_for_marie,
)
from tests.receivers import SECRET, Receiver
from tests.servers import free_port, serve
from tests.sse import Event, EventReader

__all__ = ["clock"]  # a fixture


pair = test_share_faults.pair  # two relayed registries, this module's own


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


async def failing(pair: Pair, site: Site, other: Site) -> Any:
    """`other` as `site` sees it, once a delivery to it failed and something waits for it."""
    async with site.client(pair.certs) as admin:
        peer = (await admin.get(f"/api/v1/peers/{other.domain}")).json()
    return peer if peer["failures"] >= 1 and peer["queuedDeliveries"] >= 1 else None


async def accepted_by_marie(pair: Pair, name: str) -> tuple[str, str]:
    """Marie accepts the share called `name`: her mountpoint, and the share space at zurich."""
    waiting = await waiting_for_marie(pair, name)
    async with pair.paris.client(pair.certs, "marie") as marie:
        accepted = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
    assert accepted.status_code == 201, accepted.text
    space_id = (await state_at_zurich(pair, name, "accepted"))["remoteItem"]["driveId"]
    return accepted.json()["remoteItem"]["driveId"], space_id


@contextmanager
def webhook_receiver(pair: Pair) -> Iterator[Receiver]:
    """A webhook receiver over TLS with the pair's certificate (zurich calls https only),
    checking signatures against the pair's clock."""
    receiver = Receiver(SECRET, clock=pair.clock)
    tls = {"ssl_certfile": pair.certs.cert_file, "ssl_keyfile": pair.certs.key_file}
    with serve(receiver.app(), free_port(), **tls) as url:
        receiver.url = f"{url}/hook"
        yield receiver


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
            await eventually(lambda: failing(pair, pair.paris, pair.zurich))
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
    # zurich kept it across its restart, but its lease ran out meanwhile: renewed as a new
    # subscription, so paris knows it may have missed changes
    assert renewed.id != subscription.id
    assert renewed.expires_at > subscription.expires_at + LEASE


async def test_paris_down_holds_its_messages_at_zurich_but_not_the_webhooks(
    pair: Pair, clock: ShiftedClock
) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Paris Stops", "held")
    granted = (await share(pair.zurich, pair, drive, "/a/rel/held")).json()["value"][0]
    mountpoint, share_space = await accepted_by_marie(pair, "held")
    permission = f"/graph/v1beta1/drives/{share_space}/root/permissions/{granted['id']}"
    async with pair.paris.client(pair.certs, "marie") as marie:
        cursor = (await marie.get("/api/v1/changes")).json()["cursor"]
    with webhook_receiver(pair) as receiver:
        async with pair.zurich.client(pair.certs, "einstein") as einstein:
            body = {"callbackUrl": receiver.url, "secret": SECRET, "drives": [drive]}
            assert (await einstein.post("/api/v1/subscriptions", json=body)).status_code == 201
            with pair.stopped(pair.paris):
                viewer = await einstein.patch(permission, json={"roles": [VIEWER]})
                assert viewer.status_code == 200, viewer.text
                await eventually(lambda: failing(pair, pair.zurich, pair.paris))
                wrote = await einstein.put(f"/dav/spaces/{drive}/a/rel/held/more.txt", content=b"+")
                assert wrote.status_code == 201, wrote.text

                async def hooked() -> bool | None:  # while paris's messages wait
                    seen = [(e["type"], e["driveId"]) for e in list(receiver.events.values())]
                    return True if ("content", drive) in seen else None

                await eventually(hooked)
                assert (await failing(pair, pair.zurich, pair.paris))["queuedDeliveries"] >= 1

        # paris runs again, a new process on the same database and port
        clock.offset = timedelta(seconds=BACKOFF_MAX_S + 1)  # the retry is due
        pair.zurich.services.delivery.wake()

        async def marie_is_viewer() -> bool | None:
            async with pair.paris.client(pair.certs, "marie") as marie:
                items = (await marie.get("/graph/v1beta1/me/drive/sharedWithMe")).json()["value"]
            held = next(i for i in items if i["remoteItem"].get("driveId") == mountpoint)
            return True if held["remoteItem"]["permissions"][0]["roles"] == [VIEWER] else None

        await eventually(marie_is_viewer)
    async with pair.zurich.client(pair.certs) as admin:
        peer = (await admin.get("/api/v1/peers/paris.test")).json()
    assert (peer["queuedDeliveries"], peer["failures"]) == (0, 0)
    async with pair.paris.client(pair.certs, "marie") as marie:
        feed = (await marie.get("/api/v1/changes", params={"since": cursor})).json()["value"]
    changed = [c for c in feed if c["driveId"] == mountpoint and c["type"] == "member_changed"]
    assert len(changed) == 1  # delivered once


async def test_zurich_prunes_a_subscription_whose_lease_ran_out(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Lapses", "lapses")
    await share(pair.zurich, pair, drive, "/a/rel/lapses")
    _mountpoint, space_id = await accepted_by_marie(pair, "lapses")
    row = await subscribed(pair, space_id)
    retention = pair.zurich.services.retention

    await retention.sweep(row.expires_at + timedelta(minutes=1))  # paris may still renew late
    assert [found.id for found in await subscriptions_at_zurich(pair, space_id)] == [row.id]
    await retention.sweep(row.expires_at + LAPSED_SUBSCRIPTIONS_KEPT + timedelta(minutes=1))
    assert await subscriptions_at_zurich(pair, space_id) == []


async def test_revoking_the_partnership_ends_subscriptions_both_ways_until_peered_again(
    pair: Pair,
) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Revoked", "revoked")
    await share(pair.zurich, pair, drive, "/a/rel/revoked")
    mountpoint, space_id = await accepted_by_marie(pair, "revoked")
    await subscribed(pair, space_id)
    assert await remote_subscriptions_at_paris(pair)

    async with pair.paris.client(pair.certs) as admin:
        revoked = await admin.post("/api/v1/peers/zurich.test/revoke")
    assert revoked.status_code == 200, revoked.text

    assert await remote_subscriptions_at_paris(pair) == []  # in the revoking transaction
    renewals = pair.paris.services.shares.renewals
    assert await renewals.check() == 0
    assert await availability_of(pair, mountpoint) == "unavailable"

    async def dropped() -> bool | None:  # once zurich got paris's notice
        return True if await subscriptions_at_zurich(pair, space_id) == [] else None

    await eventually(dropped)

    await peered(pair)  # again, with a new invitation: the accepted share subscribes anew
    await renewals.check()
    await subscribed(pair, space_id)

    async def available_again() -> bool | None:
        await renewals.check()  # takes in the subscription's delivery
        return True if await availability_of(pair, mountpoint) == "available" else None

    await eventually(available_again)


async def remote_subscriptions_at_paris(pair: Pair) -> list[Any]:
    async with pair.paris.services.engine.connect() as conn:
        return list(await remote_where(conn, remote.c.peer_domain == "zurich.test"))
