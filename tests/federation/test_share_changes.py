"""Einstein's writes at zurich reach Marie's event stream at paris: zurich pushes each change
of the share space to paris (signed, through its outbox), paris applies it to her mountpoint
with its own change log. Two real registries over TLS and the test DNS server (the pair of
`test_peering`); Marie follows her stream with a plain HTTP client, Einstein writes over
WebDAV."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx2
from sqlalchemy import select

from registry.shares.share_changes import SHARE_CHANGES_PATH
from registry.shares.store import incoming, outbox, remote
from registry.shares.subscriptions import LEASE
from tests.federation import test_peering
from tests.federation.peer_pair import Pair, Site, clock, peered, signed_post
from tests.federation.signed_servers import ShiftedClock
from tests.federation.test_share_subscriptions import (
    accept,
    received,
    share_with,
    states_at_zurich,
    subscribed,
)
from tests.federation.test_shares import (
    eventually,
    marie_drives,
    project_with_folder,
    state_at_zurich,
)
from tests.sse import Event, EventReader

pair = test_peering.pair  # the module's own pair of registries
__all__ = ["clock", "pair"]  # fixtures


@asynccontextmanager
async def marie_s_stream(
    site: Site, pair: Pair, since: str | None = None
) -> AsyncIterator[EventReader]:
    """Marie's event stream at paris, as a sync client reads it (from `since` when given)."""
    assert site.services.idp is not None
    token = site.services.idp.access_token_for("marie")
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if since is not None:
        headers["Last-Event-ID"] = since
    async with (
        httpx2.AsyncClient(
            base_url=f"https://127.0.0.1:{site.port}",
            headers=headers,
            verify=ssl.create_default_context(cafile=pair.certs.ca_file),
            timeout=httpx2.Timeout(10, read=None),
        ) as client,
        client.stream("GET", "/api/v1/events") as response,
    ):
        assert response.status_code == 200
        yield EventReader(response)


async def mounted(pair: Pair, name: str) -> tuple[str, str, str]:
    """Einstein's project holding /a/rel/<name>, that folder shared with Marie and accepted:
    the project's id, the share space's at zurich and Marie's mountpoint's at paris, once
    paris subscribed to the share space's changes and its mountpoint holds the state."""
    drive = await project_with_folder(pair, name.title(), leaf=name)
    await share_with(pair, drive, f"a/rel/{name}", "marie@paris.test")
    waiting = await received(pair, "marie", name)
    await accept(pair, "marie", waiting["id"])
    share_space = (await state_at_zurich(pair, name, "accepted"))["remoteItem"]["driveId"]
    await subscribed(pair, share_space)
    async with pair.paris.services.engine.connect() as conn:
        found = select(incoming.c.mountpoint_id).where(incoming.c.id == waiting["id"])
        mountpoint = str((await conn.execute(found)).scalar_one())

    async def started() -> bool | None:  # the subscription's first message: the state
        return True if (await marie_drives(pair))[mountpoint]["root"]["eTag"] else None

    await eventually(started)
    return drive, share_space, mountpoint


async def einstein_puts(pair: Pair, drive: str, path: str, body: bytes = b"new") -> None:
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        put = await einstein.put(f"/dav/spaces/{drive}/{path}", content=body)
    assert put.status_code in (201, 204), put.text


async def content_at(stream: EventReader, mountpoint: str, path: str) -> Event:
    """The next content event of `mountpoint` naming `path`; fails on any other content
    event of it first."""
    while True:
        event = (await stream.until("content", seconds=15))[-1]
        if event.data["driveId"] == mountpoint:
            assert path in event.data["data"]["paths"], event
            return event


async def changes_of(site: Site, pair: Pair, mountpoint: str, since: str) -> list[dict[str, Any]]:
    """Marie's feed at `site` after `since`: the changes of `mountpoint`."""
    async with site.client(pair.certs, "marie") as marie:
        page = await marie.get("/api/v1/changes", params={"since": since, "limit": 500})
    assert page.status_code == 200
    return [c for c in page.json()["value"] if c["driveId"] == mountpoint]


async def test_einstein_s_write_reaches_marie_s_stream_with_the_path_at_her_mountpoint(
    pair: Pair,
) -> None:
    await peered(pair)
    drive, share_space, mountpoint = await mounted(pair, "pushed")
    before = (await marie_drives(pair))[mountpoint]["root"]["eTag"]
    assert before  # the state zurich sent first
    seq_before = (await subscribed(pair, share_space)).seq
    async with marie_s_stream(pair.paris, pair) as stream:
        await einstein_puts(pair, drive, "a/rel/outside.txt")  # above the shared folder
        await einstein_puts(pair, drive, "a/rel/pushed/new.txt")
        event = await content_at(stream, mountpoint, "/new.txt")
    assert event.data["data"]["paths"] == ["/new.txt"]  # nothing of the folders above
    assert (await subscribed(pair, share_space)).seq == seq_before + 1  # outside.txt: not sent
    after = (await marie_drives(pair))[mountpoint]["root"]["eTag"]
    assert after == event.data["data"]["etag"] != before


async def test_a_write_while_paris_is_down_reaches_marie_once_after_its_restart(
    pair: Pair,
) -> None:
    await peered(pair)
    drive, _share_space, mountpoint = await mounted(pair, "restarted")
    async with marie_s_stream(pair.paris, pair) as stream:
        await einstein_puts(pair, drive, "a/rel/restarted/first.txt")
        seen = await content_at(stream, mountpoint, "/first.txt")

    with pair.stopped(pair.paris):
        await einstein_puts(pair, drive, "a/rel/restarted/while-down.txt")

    async with marie_s_stream(pair.paris, pair, since=seen.id) as stream:
        await content_at(stream, mountpoint, "/while-down.txt")

    await eventually(lambda: all_sent(pair.zurich))
    after = await changes_of(pair.paris, pair, mountpoint, seen.id)
    named = [c for c in after if "/while-down.txt" in c["data"].get("paths", ())]
    assert len(named) == 1, after


async def all_sent(site: Site) -> bool | None:
    """Whether `site`'s outbox holds nothing left to send."""
    async with site.services.engine.connect() as conn:
        found = select(outbox.c.id).where(outbox.c.state == "pending").limit(1)
        return True if (await conn.execute(found)).first() is None else None


async def provider_id_of(pair: Pair, mountpoint: str) -> str:
    async with pair.paris.services.engine.connect() as conn:
        found = select(incoming.c.provider_id).where(incoming.c.mountpoint_id == mountpoint)
        return str((await conn.execute(found)).scalar_one())


async def test_a_change_message_is_taken_signed_well_formed_once_and_in_order(pair: Pair) -> None:
    await peered(pair)
    drive, share_space, mountpoint = await mounted(pair, "probed")
    async with marie_s_stream(pair.paris, pair) as stream:
        await einstein_puts(pair, drive, "a/rel/probed/first.txt")
        seen = await content_at(stream, mountpoint, "/first.txt")
    await eventually(lambda: all_sent(pair.zurich))
    subscription = await subscribed(pair, share_space)
    url = pair.paris.base_url + SHARE_CHANGES_PATH
    renamed = {
        "domain": "zurich.test",
        "subscriptionId": subscription.id,
        "seq": subscription.seq + 1,
        "shares": [await provider_id_of(pair, mountpoint)],
        "change": {"type": "renamed", "data": {"name": "Probed anew"}},
    }

    async with pair.paris.client(pair.certs) as unsigned:
        refused = await unsigned.post(
            SHARE_CHANGES_PATH, json=renamed, headers={"Idempotency-Key": "u-1"}
        )
    assert refused.status_code == 401, refused.text

    data: dict[str, Any] = {"etag": '"e"', "used": 1, "paths": ["/x"]}
    content: dict[str, Any] = {"type": "content", "data": data}
    malformed: list[dict[str, Any]] = [
        {**renamed, "seq": -1},
        {**renamed, "change": {"type": "state", "data": {"etag": "", "used": 1}}},
        {**renamed, "shares": []},
        {**renamed, "subscriptionId": "a b"},
        {**renamed, "change": {"type": "member_added", "data": {}}},
        {**renamed, "change": {"type": "renamed", "data": {"name": "\u202eevil"}}},
        {**renamed, "change": {**content, "data": {**data, "paths": ["x"]}}},
        {**renamed, "change": {**content, "data": {**data, "used": -1}}},
        {**renamed, "change": {"type": "availability", "data": {"availability": "maybe"}}},
    ]
    for number, body in enumerate(malformed):
        key = {"Idempotency-Key": f"bad-{number}"}
        status, answer, _ = await signed_post(pair.zurich, url, body, key)
        assert (status, answer["error"]["code"]) == (400, "invalid_share"), (body, answer)

    unknown = {**renamed, "shares": ["no-such-share"]}
    status, answer, _ = await signed_post(pair.zurich, url, unknown, {"Idempotency-Key": "u-2"})
    assert (status, answer) == (200, {"applied": 0, "resynced": 0, "repeated": 0})
    # a partner that is not zurich cannot speak for zurich's shares
    status, answer, _ = await signed_post(pair.paris, url, renamed, {"Idempotency-Key": "u-3"})
    assert status == 401, answer

    first = {"Idempotency-Key": f"{subscription.id}:rename"}
    status, answer, _ = await signed_post(pair.zurich, url, renamed, first)
    assert (status, answer) == (200, {"applied": 1, "resynced": 0, "repeated": 0})
    assert (await marie_drives(pair))[mountpoint]["name"] == "Probed anew"
    again = await signed_post(pair.zurich, url, renamed, first)  # a replay: the first answer
    assert again[:2] == (200, answer)
    status, answer, _ = await signed_post(pair.zurich, url, renamed, {"Idempotency-Key": "r-2"})
    assert (status, answer) == (200, {"applied": 0, "resynced": 0, "repeated": 1})
    renames = [c for c in await changes_of(pair.paris, pair, mountpoint, seen.id)]
    assert [c["type"] for c in renames] == ["renamed"]

    # a gap: paris re-reads the root at zurich, logs what it finds, and subscribes again
    gap = {**renamed, "seq": subscription.seq + 5, "change": content}
    status, answer, _ = await signed_post(pair.zurich, url, gap, {"Idempotency-Key": "g-1"})
    assert (status, answer) == (200, {"applied": 0, "resynced": 1, "repeated": 0})
    caught_up = (await changes_of(pair.paris, pair, mountpoint, seen.id))[-1]
    assert caught_up["type"] == "content" and caught_up["data"]["paths"] == ["/"]
    assert caught_up["data"]["etag"] != '"e"'  # what zurich holds, not what the message said

    async def renewed() -> Any:
        row = await subscribed(pair, share_space)
        return row if row.updated_at > subscription.updated_at else None

    await eventually(renewed)


async def test_after_a_lapsed_lease_paris_catches_up_from_zurich_s_state(
    pair: Pair, clock: ShiftedClock
) -> None:
    await peered(pair)
    drive, share_space, mountpoint = await mounted(pair, "lapsed")
    held = (await marie_drives(pair))[mountpoint]["root"]["eTag"]
    lapsed = await subscribed(pair, share_space)

    clock.offset = LEASE + timedelta(minutes=1)  # paris's renewal is late
    await einstein_puts(pair, drive, "a/rel/lapsed/missed.txt")
    assert (await subscribed(pair, share_space)).seq == lapsed.seq  # sent to no one
    assert await pair.paris.services.shares.renewals.check() >= 1

    async def renewed() -> Any:
        row = await subscribed(pair, share_space)
        return row if row.id != lapsed.id else None

    fresh = await eventually(renewed)
    assert fresh.seq == 0  # a new subscription, which starts with the state as it is

    async def caught_up() -> str | None:
        etag = str((await marie_drives(pair))[mountpoint]["root"]["eTag"])
        return etag if etag != held else None

    etag = await eventually(caught_up)  # (its message is queued on the moved clock)
    clock.offset = timedelta(0)
    last = (await changes_of(pair.paris, pair, mountpoint, "0"))[-1]
    assert (last["type"], last["data"]["paths"], last["data"]["etag"]) == ("content", ["/"], etag)


async def test_einstein_renaming_disabling_and_restoring_the_share_reaches_marie(
    pair: Pair, clock: ShiftedClock
) -> None:
    await peered(pair)
    _drive, share_space, mountpoint = await mounted(pair, "managed")
    url = f"/graph/v1.0/drives/{share_space}"
    async with (
        marie_s_stream(pair.paris, pair) as stream,
        pair.zurich.client(pair.certs, "einstein") as einstein,
    ):
        assert (await einstein.patch(url, json={"name": "Managed anew"})).status_code == 200
        renamed = (await stream.until("renamed", seconds=15))[-1]
        assert renamed.data["driveId"] == mountpoint
        assert renamed.data["data"] == {"name": "Managed anew"}

        assert (await einstein.delete(url)).status_code == 204
        off = (await stream.until("availability", seconds=15))[-1]
        assert (off.data["driveId"], off.data["data"]["availability"]) == (
            mountpoint,
            "unavailable",
        )
        listed = (await marie_drives(pair))[mountpoint]
        assert (listed["name"], listed["availability"]) == ("Managed anew", "unavailable")

        # paris's renewal gets through meanwhile: zurich answers, but the owner's disabling
        # stands (only a lapse's unavailability is undone by a renewal)
        clock.offset = LEASE / 2 + timedelta(minutes=1)
        try:
            await renewal_taken_in(pair)
            await eventually(lambda: all_sent(pair.zurich))  # its state message, on this clock
        finally:
            clock.offset = timedelta(0)
        assert (await marie_drives(pair))[mountpoint]["availability"] == "unavailable"

        assert (await einstein.patch(url, headers={"Restore": "T"})).status_code == 200
        on = (await stream.until("availability", seconds=15))[-1]
        assert on.data["data"]["availability"] == "available"


async def renewal_taken_in(pair: Pair) -> None:
    """Paris's renewals job queues the renewal that is due and, once it is delivered,
    takes that in."""
    renewals = pair.paris.services.shares.renewals
    assert await renewals.check() == 1

    async def confirmed() -> bool | None:
        pair.paris.services.delivery.wake()
        await renewals.check()
        async with pair.paris.services.engine.connect() as conn:
            waiting = await conn.execute(
                select(remote.c.id).where(remote.c.renewal_id.is_not(None))
            )
            return True if waiting.first() is None else None

    await eventually(confirmed)


async def test_one_message_reaches_the_mountpoint_of_every_recipient_at_paris(pair: Pair) -> None:
    await peered(pair)
    async with pair.paris.client(pair.certs, "richard") as richard:  # known once he came by
        assert (await richard.get("/graph/v1.0/me/drives")).status_code == 200
    # a whole space shared with two of paris's users: one space, one subscription
    drive = await project_with_folder(pair, "Both", leaf="both")
    await share_with(pair, drive, "/", "marie@paris.test", "richard@paris.test")
    mountpoints = {}
    for user in ("marie", "richard"):
        waiting = await received(pair, user, "Both")
        await accept(pair, user, waiting["id"])
        async with pair.paris.services.engine.connect() as conn:
            found = select(incoming.c.mountpoint_id).where(incoming.c.id == waiting["id"])
            mountpoints[user] = str((await conn.execute(found)).scalar_one())
    share_space = drive
    await states_at_zurich(pair, share_space, "accepted", "accepted")
    await subscribed(pair, share_space)
    await eventually(lambda: all_sent(pair.zurich))
    async with pair.paris.client(pair.certs, "marie") as marie:
        cursor = (await marie.get("/api/v1/changes", params={"since": "0"})).json()["cursor"]

    await einstein_puts(pair, drive, "a/rel/both/for-both.txt")

    for user, mountpoint in mountpoints.items():

        async def logged(user: str = user, mountpoint: str = mountpoint) -> list[Any] | None:
            async with pair.paris.client(pair.certs, user) as client:
                page = await client.get("/api/v1/changes", params={"since": cursor})
            found = [c for c in page.json()["value"] if c["driveId"] == mountpoint]
            return [c for c in found if c["type"] == "content"] or None

        content = await eventually(logged)
        # the message's path, or the whole mountpoint where it was first re-read
        assert content[-1]["data"]["paths"] in (["/a/rel/both/for-both.txt"], ["/"]), content
    assert (await subscribed(pair, share_space)).seq == 1  # one message for both
