"""Paris subscribes at zurich to a share's changes when its user accepts, and cancels when
the last of its users leaves: two real registries over TLS and the test DNS server (the pair
of `test_peering`); the subscribe and cancel travel through paris's outbox, signed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from registry.shares.store import incoming_by_id, outbox, outgoing_in
from registry.shares.subscriptions import LEASE, SUBSCRIPTIONS_PATH, subscriptions
from tests.federation import test_peering
from tests.federation.peer_pair import Pair, clock, peered, signed_post
from tests.federation.signed_servers import ShiftedClock
from tests.federation.test_shares import (
    SHARES_DRIVE,
    eventually,
    project_with_folder,
    state_at_zurich,
)

pair = test_peering.pair  # the module's own pair of registries
__all__ = ["clock", "pair"]  # fixtures


async def share_with(pair: Pair, drive: str, path: str, *recipients: str) -> list[Any]:
    """Einstein shares `path` of `drive`; the permissions granted."""
    body = {
        "recipients": [
            {"objectId": who, "@libre.graph.recipient.type": "user"} for who in recipients
        ],
        "roles": ["58c63c02-1d89-4572-916a-870abc5a1b7d"],  # editor
    }
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        where = "root/invite" if path == "/" else f"root:/{path}:/invite"
        sent = await einstein.post(f"/graph/v1beta1/drives/{drive}/{where}", json=body)
    assert sent.status_code == 200, sent.text
    return list(sent.json()["value"])


async def received(pair: Pair, user: str, name: str) -> dict[str, Any]:
    """`user`'s pending share called `name` at paris, once it arrived."""

    async def probe() -> dict[str, Any] | None:
        async with pair.paris.client(pair.certs, user) as client:
            items = (await client.get("/graph/v1beta1/me/drive/sharedWithMe")).json()["value"]
        return next(
            (i for i in items if i["name"] == name and i["@spacereg.state"] == "pending"), None
        )

    return await eventually(probe)


async def accept(pair: Pair, user: str, share_id: str) -> None:
    async with pair.paris.client(pair.certs, user) as client:
        accepted = await client.post(
            f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
            json={"remoteItem": {"id": share_id}},
        )
    assert accepted.status_code == 201, accepted.text


async def decline(pair: Pair, user: str, share_id: str) -> None:
    async with pair.paris.client(pair.certs, user) as client:
        gone = await client.delete(f"/graph/v1beta1/drives/{SHARES_DRIVE}/items/{share_id}")
    assert gone.status_code == 204, gone.text


async def subscriptions_at_zurich(pair: Pair, space_id: str) -> list[Any]:
    async with pair.zurich.services.engine.connect() as conn:
        found = select(subscriptions).where(subscriptions.c.space_id == space_id)
        return list((await conn.execute(found)).all())


async def subscribed(pair: Pair, space_id: str) -> Any:
    async def probe() -> Any:
        rows = await subscriptions_at_zurich(pair, space_id)
        return rows or None

    rows = await eventually(probe)
    assert len(rows) == 1
    return rows[0]


async def states_at_zurich(pair: Pair, space_id: str, *states: str) -> None:
    """Wait until zurich's shares of the space are in `states`, one per recipient in order."""

    async def probe() -> bool | None:
        async with pair.zurich.services.engine.connect() as conn:
            found = await outgoing_in(conn, space_id)
        by_recipient = sorted((share.recipient, share.state) for share in found)
        return True if tuple(state for _, state in by_recipient) == states else None

    await eventually(probe)


async def secret_at_paris(pair: Pair, share_id: str) -> str:
    async with pair.paris.services.engine.connect() as conn:
        share = await incoming_by_id(conn, share_id)
    assert share is not None
    return str(share.secret)


async def sent_by_paris(pair: Pair, *share_ids: str) -> list[str]:
    """The subscription messages paris queued for these shares (its ids), oldest first."""
    async with pair.paris.services.engine.connect() as conn:
        providers = {(await incoming_by_id(conn, share_id)).provider_id for share_id in share_ids}
        rows = await conn.execute(
            select(outbox.c.payload)
            .where(outbox.c.destination.endswith(SUBSCRIPTIONS_PATH))
            .order_by(outbox.c.id)
        )
    return [row.payload["action"] for row in rows if row.payload["providerId"] in providers]


async def test_one_subscription_per_space_and_partner_renewed_until_the_last_recipient_leaves(
    pair: Pair, clock: ShiftedClock
) -> None:
    await peered(pair)
    async with pair.paris.client(pair.certs, "richard") as richard:  # known once he came by
        assert (await richard.get("/graph/v1.0/me/drives")).status_code == 200
    # a whole space shared with two of paris's users: one space, one partner
    space_id = await project_with_folder(pair, "Subscribed", leaf="subscribed")
    await share_with(pair, space_id, "/", "marie@paris.test", "richard@paris.test")
    for_marie = await received(pair, "marie", "Subscribed")
    for_richard = await received(pair, "richard", "Subscribed")
    assert await subscriptions_at_zurich(pair, space_id) == []  # nothing before an acceptance

    await accept(pair, "marie", for_marie["id"])
    first = await subscribed(pair, space_id)
    assert first.peer_domain == "paris.test"
    assert first.seq == 0
    lease = first.expires_at - first.updated_at
    assert lease == LEASE
    await accept(pair, "richard", for_richard["id"])
    await states_at_zurich(pair, space_id, "accepted", "accepted")  # marie, richard

    assert (await subscribed(pair, space_id)).id == first.id  # one for both
    both = (for_marie["id"], for_richard["id"])
    assert await sent_by_paris(pair, *both) == ["subscribe"]  # not one per recipient

    renewals = pair.paris.services.shares.renewals
    assert await renewals.check() == 0  # not yet: halfway through the lease
    clock.offset = LEASE / 2
    assert await renewals.check() == 1  # one renewal for both recipients' shares

    async def renewed() -> Any:
        row = await subscribed(pair, space_id)
        return row if row.updated_at > first.updated_at + LEASE / 2 else None

    second = await eventually(renewed)
    assert second.id == first.id
    assert second.expires_at == second.updated_at + LEASE
    assert await renewals.check() == 0  # the next is due half a lease later
    assert await sent_by_paris(pair, *both) == ["subscribe", "subscribe"]

    await decline(pair, "marie", for_marie["id"])
    await states_at_zurich(pair, space_id, "declined", "accepted")
    assert (await subscribed(pair, space_id)).id == first.id  # richard still holds it
    assert await sent_by_paris(pair, *both) == ["subscribe", "subscribe"]  # no cancel yet

    await decline(pair, "richard", for_richard["id"])

    async def cancelled() -> bool | None:
        return True if await subscriptions_at_zurich(pair, space_id) == [] else None

    await eventually(cancelled)
    assert await sent_by_paris(pair, *both) == ["subscribe", "subscribe", "cancel"]


async def test_a_subscription_names_a_share_of_the_signer_with_its_secret(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Refused", leaf="refused")
    await share_with(pair, drive, "a/rel/refused", "marie@paris.test")
    waiting = await received(pair, "marie", "refused")
    secret = await secret_at_paris(pair, waiting["id"])
    async with pair.paris.services.engine.connect() as conn:
        share = await incoming_by_id(conn, waiting["id"])
    assert share is not None
    url = pair.zurich.base_url + SUBSCRIPTIONS_PATH
    doc = {"domain": "paris.test", "action": "subscribe", "providerId": share.provider_id}

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**doc, "sharedSecret": "not-the-secret"}, 404, "share_unknown"),
        ({**doc, "providerId": "no-such-share", "sharedSecret": secret}, 404, "share_unknown"),
        ({**doc, "sharedSecret": secret, "action": "unsubscribe"}, 400, "invalid_share"),
        ({"domain": "paris.test", "action": "subscribe"}, 400, "invalid_share"),
    ]
    for body, status, code in cases:
        answer_status, answer, _ = await signed_post(pair.paris, url, body)
        assert (answer_status, answer["error"]["code"]) == (status, code), answer
    space_id = (await state_at_zurich(pair, "refused", "pending"))["remoteItem"]["driveId"]
    assert await subscriptions_at_zurich(pair, space_id) == []

    status, answer, _ = await signed_post(pair.paris, url, {**doc, "sharedSecret": secret})
    assert status == 200, answer
    assert answer["subscribed"] is True and answer["seq"] == 0
    again, repeat, _ = await signed_post(pair.paris, url, {**doc, "sharedSecret": secret})
    assert (again, repeat["subscriptionId"]) == (200, answer["subscriptionId"])

    await decline(pair, "marie", waiting["id"])
    await state_at_zurich(pair, "refused", "declined")
    status, answer, _ = await signed_post(pair.paris, url, {**doc, "sharedSecret": secret})
    assert (status, answer["error"]["code"]) == (409, "share_state_conflict")


async def test_einstein_ending_the_share_ends_paris_s_subscription(pair: Pair) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Ended", leaf="ended")
    granted = await share_with(pair, drive, "a/rel/ended", "marie@paris.test")
    waiting = await received(pair, "marie", "ended")
    await accept(pair, "marie", waiting["id"])
    space_id = (await state_at_zurich(pair, "ended", "accepted"))["remoteItem"]["driveId"]
    await subscribed(pair, space_id)

    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        removed = await einstein.delete(
            f"/graph/v1beta1/drives/{space_id}/root/permissions/{granted[0]['id']}"
        )
    assert removed.status_code == 204
    assert await subscriptions_at_zurich(pair, space_id) == []  # in the removal's transaction
