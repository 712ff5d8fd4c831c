"""Shares when a registry is down (its port refuses connections, through `TcpRelay`): paris
down while Einstein shares (the share waits, "delivering", and arrives once, when paris is
back); zurich down while Marie lists and reads (her listing works and says the mountpoint is
unavailable, reads get 503, and both recover when zurich does)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from registry.outbox.delivery import BACKOFF_MAX_S
from tests.federation.peer_pair import Pair, peered, two_registries
from tests.federation.test_shares import (
    SHARES_DRIVE,
    eventually,
    marie_drives,
    project_with_folder,
    share,
    state_at_zurich,
    waiting_for_marie,
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path) -> Iterator[Pair]:
    with two_registries(tmp_path_factory, idp_key_dir, relayed=True) as both:
        yield both


async def test_a_share_made_while_paris_is_down_arrives_once_when_it_is_back(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Down Paris", "late")
    pair.relays["paris.test"].down()
    try:
        assert (await share(pair.zurich, pair, drive, "/a/rel/late")).status_code == 200

        async def failed_once() -> bool | None:
            async with pair.zurich.client(pair.certs) as admin:
                peer = (await admin.get("/api/v1/peers/paris.test")).json()
            return True if peer["failures"] >= 1 and peer["queuedDeliveries"] >= 1 else None

        await eventually(failed_once)
        await state_at_zurich(pair, "late", "delivering")
    finally:
        pair.relays["paris.test"].up()
    pair.clock.offset = timedelta(seconds=BACKOFF_MAX_S + 1)  # its retry is due
    try:
        await waiting_for_marie(pair, "late")
        await state_at_zurich(pair, "late", "pending")
        await asyncio.sleep(1)  # time for a repeat, if there were one
        async with pair.paris.client(pair.certs, "marie") as marie:
            items = (await marie.get("/graph/v1beta1/me/drive/sharedWithMe")).json()["value"]
        assert [i["name"] for i in items].count("late") == 1
    finally:
        pair.clock.offset = timedelta(0)


async def test_zurich_down_keeps_the_listing_and_answers_reads_with_503(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Down Zurich", "away")
    await share(pair.zurich, pair, drive, "/a/rel/away")
    waiting = await waiting_for_marie(pair, "away")
    async with pair.paris.client(pair.certs, "marie") as marie:
        accepted = await marie.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": waiting["id"]}},
        )
        mountpoint = accepted.json()["remoteItem"]["driveId"]
        file = f"/dav/spaces/{mountpoint}/hello.txt"
        assert (await marie.get(file)).status_code == 200

        pair.relays["zurich.test"].down()
        try:
            refused = await marie.get(file)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "serviceNotAvailable"
            assert refused.headers["retry-after"] == "30"
            listed = await marie_drives(pair)
            assert listed[mountpoint]["availability"] == "unavailable"
        finally:
            pair.relays["zurich.test"].up()

        async def back() -> bool | None:
            return True if (await marie.get(file)).status_code == 200 else None

        await eventually(back)
    assert (await marie_drives(pair))[mountpoint]["availability"] == "available"
