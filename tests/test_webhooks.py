"""Webhook subscriptions: confirmed callbacks, signed deliveries (Standard Webhooks) that a
receiver refuses when replayed later, backoff and giving up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from common.webhook_signature import BadSignature, signed_headers, standard_secret, verify
from registry.core.models import Destination, OutboxEntry, table
from registry.runtime.db import create_engine
from tests.clock import FakeClock
from tests.conftest import Registry, running_registry
from tests.receivers import SECRET, Receiver, running_receiver
from tests.test_changes_api import rename
from tests.test_drives_api import assert_error, create_project
from tests.test_permissions_api import VIEWER, invite
from tests.waiting import eventually

LOOPBACK_ALLOWED = {"allow_private_networks": ["127.0.0.0/8"], "allow_http": True}


def open_registry_on(
    tmp_path: Path, idp_key_dir: Path, **raw: Any
) -> AbstractContextManager[Registry]:
    """A registry that may call back to loopback over plain http (the receivers here)."""
    return running_registry(tmp_path / "data", idp_key_dir, federation=LOOPBACK_ALLOWED, **raw)


@pytest.fixture
def open_registry(tmp_path: Path, idp_key_dir: Path) -> Iterator[Registry]:
    with open_registry_on(tmp_path, idp_key_dir) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as found:
        yield found


async def subscribe(client, receiver: Receiver, **extra: Any):
    body = {"callbackUrl": receiver.url, "secret": SECRET, **extra}
    return await client.post("/api/v1/subscriptions", json=body)


async def outbox_rows(settings) -> list[Any]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(table(OutboxEntry)))).all())
    finally:
        await engine.dispose()


async def test_confirmed_subscription_gets_signed_deliveries_in_order(open_registry, receiver):
    async with open_registry.client("admin") as admin:
        project = await create_project(admin, "Hooked")
        made = await subscribe(admin, receiver, drives=[project["id"]], leaseSeconds=600)
        assert made.status_code == 201, made.text
        subscription = made.json()
        assert "secret" not in subscription
        assert subscription["drives"] == [project["id"]]
        [challenge] = receiver.challenges
        assert challenge["mode"] == "subscribe" and challenge["lease_seconds"] == "600"

        await rename(admin, project["id"], "Hooked once")
        await rename(admin, project["id"], "Hooked twice")
        other = await create_project(admin, "Not hooked")
        await rename(admin, other["id"], "Still not hooked")

    assert await eventually(lambda: len(receiver.events) >= 2)
    await asyncio.sleep(0.3)
    delivered = [receiver.events[i] for i in receiver.order]
    assert [e["data"]["name"] for e in delivered] == ["Hooked once", "Hooked twice"]
    assert {e["subscriptionId"] for e in delivered} == {subscription["id"]}
    assert [e["id"] for e in delivered] == receiver.order
    assert receiver.bad_signatures == 0 and receiver.duplicates == 0


async def test_a_delivery_replayed_later_is_refused_by_the_receiver(open_registry, receiver):
    async with open_registry.client("admin") as admin:
        project = await create_project(admin, "Recorded")
        await subscribe(admin, receiver, drives=[project["id"]])
        await rename(admin, project["id"], "Recorded once")
    assert await eventually(lambda: receiver.signed)
    [(headers, body)] = receiver.signed
    event_id = headers["webhook-id"]
    assert event_id == headers["idempotency-key"] == orjson.loads(body)["id"]
    assert verify([SECRET], body, headers) == event_id
    Webhook(standard_secret(SECRET)).verify(body, headers)  # any Standard Webhooks library
    with pytest.raises(BadSignature):
        verify(["another-secret-of-some-length"], body, headers)

    # The same delivery as recorded six minutes ago, sent again now: too old.
    recorded = signed_headers(SECRET, event_id, body, datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(BadSignature, match="too old"):
        verify([SECRET], body, recorded)
    # Its timestamp cannot be freshened: the signature covers it.
    freshened = {**recorded, "webhook-timestamp": headers["webhook-timestamp"]}
    with pytest.raises(BadSignature, match="no matching signature"):
        verify([SECRET], body, freshened)
    async with httpx2.AsyncClient() as replayer:
        for replayed in (recorded, freshened):
            answer = await replayer.post(receiver.url, content=body, headers=replayed)
            assert answer.status_code == 401
    assert receiver.bad_signatures == 2 and len(receiver.events) == 1


async def test_subscription_to_all_drives_follows_what_the_owner_may_see(open_registry, receiver):
    async with open_registry.client("einstein") as einstein:
        assert (await subscribe(einstein, receiver)).json()["drives"] is None
    async with open_registry.client("admin") as admin:
        project = await create_project(admin, "Einstein joins later")
        await rename(admin, project["id"], "Before Einstein")
        await invite(admin, project["id"], "einstein", VIEWER)
        await rename(admin, project["id"], "With Einstein")

    assert await eventually(lambda: len(receiver.events) >= 2)
    await asyncio.sleep(0.3)
    assert [receiver.events[i]["type"] for i in receiver.order] == ["member_added", "renamed"]


async def test_callback_that_does_not_echo_the_challenge_is_refused(open_registry, receiver):
    receiver.confirm = False
    async with open_registry.client("admin") as admin:
        response = await subscribe(admin, receiver)
        assert_error(response, 400, "callbackNotConfirmed")
        assert (await admin.get("/api/v1/subscriptions")).json()["value"] == []


async def test_private_callbacks_are_refused_unless_configured(einstein, receiver):
    # The default registry may not call loopback or plain http.
    assert_error(await subscribe(einstein, receiver), 400, "callbackNotConfirmed")
    assert receiver.challenges == []


async def test_bad_subscription_requests_are_refused(open_registry, receiver):
    async with open_registry.client("einstein") as einstein:
        cases = [
            {"secret": SECRET},
            {"callbackUrl": "ftp://example.test/hook", "secret": SECRET},
            {"callbackUrl": receiver.url},
            {"callbackUrl": receiver.url, "secret": "short"},
            {"callbackUrl": receiver.url, "secret": SECRET, "leaseSeconds": 5},
            {"callbackUrl": receiver.url, "secret": SECRET, "leaseSeconds": "60"},
            {"callbackUrl": receiver.url, "secret": SECRET, "drives": "all"},
            {"callbackUrl": receiver.url, "secret": SECRET, "drives": []},
        ]
        for body in cases:
            response = await einstein.post("/api/v1/subscriptions", json=body)
            assert_error(response, 400, "invalidRequest")
        not_json = await einstein.post("/api/v1/subscriptions", content=b"{nope")
        assert_error(not_json, 400, "invalidRequest")
        hidden = await subscribe(einstein, receiver, drives=["no-such-drive"])
        assert_error(hidden, 404, "itemNotFound")
    assert receiver.challenges == []


async def test_list_get_renew_and_delete_own_subscriptions_only(open_registry, receiver):
    async with (
        open_registry.client("einstein") as einstein,
        open_registry.client("marie") as marie,
    ):
        made = (await subscribe(einstein, receiver, leaseSeconds=60)).json()
        path = f"/api/v1/subscriptions/{made['id']}"
        assert [s["id"] for s in (await einstein.get("/api/v1/subscriptions")).json()["value"]] == [
            made["id"]
        ]
        assert (await einstein.get(path)).json() == made
        assert_error(await marie.get(path), 404, "itemNotFound")
        assert_error(await marie.delete(path), 404, "itemNotFound")

        renewed = await einstein.patch(path, json={"leaseSeconds": 3600})
        assert renewed.status_code == 200
        assert renewed.json()["expirationDateTime"] > made["expirationDateTime"]
        assert len(receiver.challenges) == 2  # the callback confirms the renewal too
        assert_error(await einstein.patch(path, json={"callbackUrl": "x"}), 400, "invalidRequest")

        assert (await einstein.delete(path)).status_code == 204
        assert_error(await einstein.get(path), 404, "itemNotFound")


async def destination(settings) -> Any:
    """The one destination's backoff row, once a delivery to it has failed."""
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(table(Destination)))).first()
    finally:
        await engine.dispose()


async def test_failing_receiver_is_retried_with_backoff_and_gets_everything(
    tmp_path, idp_key_dir, receiver
):
    receiver.failing = True
    clock = receiver.clock = FakeClock()  # the receiver's clock is the registry's
    with open_registry_on(tmp_path, idp_key_dir, clock=clock) as registry:
        async with registry.client("admin") as admin:
            project = await create_project(admin, "Patience")
            await subscribe(admin, receiver, drives=[project["id"]])
            for n in range(3):
                await rename(admin, project["id"], f"Patience {n}")

        found = await eventually(lambda: destination(registry.settings))
        assert found is not None and found.failures >= 1
        assert "503" in found.last_error and found.retry_at > clock.now()

        receiver.failing = False
        clock.advance(timedelta(hours=2))  # past the backoff
        registry.app.state.services.delivery.wake()
        assert await eventually(lambda: len(receiver.events) == 3)

        async def all_delivered() -> list[Any]:
            # The sender marks them delivered after the receiver's answers, not before.
            rows = await outbox_rows(registry.settings)
            return rows if {r.state for r in rows} == {"delivered"} else []

        rows = await eventually(all_delivered)
    assert [receiver.events[i]["data"]["name"] for i in receiver.order] == [
        "Patience 0",
        "Patience 1",
        "Patience 2",
    ]
    assert rows and max(r.attempts for r in rows) >= 1


async def test_delivery_is_given_up_after_the_configured_age(tmp_path, idp_key_dir, receiver):
    receiver.failing = True
    clock = receiver.clock = FakeClock()  # the receiver's clock is the registry's
    with open_registry_on(
        tmp_path, idp_key_dir, clock=clock, delivery_max_age_seconds=60
    ) as registry:
        async with registry.client("admin") as admin:
            project = await create_project(admin, "Hopeless")
            await subscribe(admin, receiver, drives=[project["id"]])
            await rename(admin, project["id"], "Hopeless indeed")

        assert await eventually(lambda: destination(registry.settings))
        assert {r.state for r in await outbox_rows(registry.settings)} == {"pending"}
        clock.advance(timedelta(seconds=61))
        registry.app.state.services.delivery.wake()

        async def given_up() -> list[Any]:
            return [r for r in await outbox_rows(registry.settings) if r.state == "failed"]

        found = await eventually(given_up)
    [entry] = found
    assert entry.last_error.startswith("gave up after") and "503" in entry.last_error
    assert receiver.events == {}
