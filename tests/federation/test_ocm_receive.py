"""paris receiving OCM shares and notifications, signed by zurich, in the shapes other OCM
servers send (hand-written from the field lists of the OCM draft and what Nextcloud and Reva
put in them): the legacy `options` of Nextcloud, a single `webdav` protocol, Reva's `multi`
with empty `options`. Refusals: unknown and revoked peers, malformed shares, requirements we
do not understand, unknown notification types (501, no side effects), too many shares."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from registry.peers.rate import PeerRateLimits
from tests.federation import test_peering
from tests.federation.peer_pair import Pair, peered, signed_post

pair = test_peering.pair  # the module's own pair of registries

VIEWER = "a8d5fe5e-96e3-418d-825b-534dbdf22b99"
EDITOR = "58c63c02-1d89-4572-916a-870abc5a1b7d"


def offer(protocol: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "shareWith": "marie@paris.test",
        "name": "Relativity notes",
        "providerId": uuid.uuid4().hex,
        "owner": "einstein@zurich.test",
        "sender": "einstein@zurich.test",
        "ownerDisplayName": "Albert Einstein",
        "senderDisplayName": "Albert Einstein",
        "shareType": "user",
        "resourceType": "folder",
        "protocol": protocol,
        **fields,
    }


NEXTCLOUD_LEGACY = {
    "name": "webdav",
    "options": {
        "sharedSecret": "nextcloud-secret-0123456789",
        "permissions": "{http://open-cloud-mesh.org/ns}share-permissions",
    },
}
SINGLE_WEBDAV = {
    "name": "webdav",
    "webdav": {
        "sharedSecret": "single-secret-0123456789",
        "permissions": ["read", "write"],
        "uri": "https://registry.zurich.test/dav/spaces/abc",
    },
}
REVA_MULTI = {
    "name": "multi",
    "options": {},
    "webdav": {
        "sharedSecret": "reva-secret-0123456789",
        "permissions": ["read"],
        "uri": "https://registry.zurich.test/remote.php/dav/ocm/xyz",
        "requirements": ["must-exchange-token"],
    },
    "webapp": {"uriTemplate": "https://zurich.test/app/{relative-path}", "viewMode": "read"},
}


async def send(pair: Pair, path: str, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, answer, _headers = await signed_post(pair.zurich, pair.paris.base_url + path, doc)
    return status, answer


async def marie_items(pair: Pair) -> list[dict[str, Any]]:
    async with pair.paris.client(pair.certs, "marie") as client:
        response = await client.get("/graph/v1beta1/me/drive/sharedWithMe")
    return list(response.json()["value"])


async def shared_with(pair: Pair) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in await marie_items(pair)}


@pytest.mark.parametrize(
    ("protocol", "role", "uri"),
    [
        (NEXTCLOUD_LEGACY, VIEWER, ""),
        (SINGLE_WEBDAV, EDITOR, SINGLE_WEBDAV["webdav"]["uri"]),
        (REVA_MULTI, VIEWER, REVA_MULTI["webdav"]["uri"]),
    ],
    ids=["nextcloud-legacy-options", "single-webdav", "reva-multi"],
)
async def test_each_shape_other_servers_send_is_recorded_pending(
    pair: Pair, protocol: dict[str, Any], role: str, uri: str
) -> None:
    await peered(pair)
    name = f"Shape {uuid.uuid4().hex[:8]}"
    doc = offer(protocol, name=name, expiration=1999999999, unknownField={"x": 1})

    status, answer = await send(pair, "/ocm/shares", doc)

    assert (status, answer) == (201, {"recipientDisplayName": "Marie Curie"})
    item = (await shared_with(pair))[name]
    assert item["@spacereg.state"] == "pending"
    assert item["@client.synchronize"] is False
    assert item["remoteItem"]["permissions"][0]["roles"] == [role]
    assert item["remoteItem"]["webDavUrl"] == uri
    assert item["remoteItem"]["shared"]["sharedBy"]["user"]["id"] == "einstein@zurich.test"
    again = await send(pair, "/ocm/shares", doc)  # the same providerId and sender: one share
    assert again == (status, answer)
    assert sum(i["name"] == name for i in (await shared_with(pair)).values()) == 1


async def test_the_same_share_delivered_twice_at_once_is_recorded_once(pair: Pair) -> None:
    await peered(pair)
    name = f"Racing {uuid.uuid4().hex[:8]}"
    doc = offer(SINGLE_WEBDAV, name=name)

    answers = await asyncio.gather(*(send(pair, "/ocm/shares", doc) for _ in range(4)))

    assert {status for status, _answer in answers} == {201}
    listed = await marie_items(pair)
    assert [item["name"] for item in listed].count(name) == 1


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"shareWith": "nobody@paris.test"}, {"shareWith"}),
        ({"shareWith": "marie@elsewhere.test"}, {"shareWith"}),
        ({"providerId": None, "name": ""}, {"providerId", "name"}),
        ({"owner": "einstein@lyon.test"}, {"owner"}),
        ({"protocol": {"name": "webdav"}}, {"protocol"}),
        (
            {"protocol": {"name": "multi", "webdav": {"permissions": ["read"]}}},
            {"protocol.webdav.sharedSecret"},
        ),
        (
            {
                "protocol": {
                    **REVA_MULTI,
                    "webdav": {**REVA_MULTI["webdav"], "requirements": ["must-use-mfa"]},
                }
            },
            {"protocol.webdav.requirements"},
        ),
    ],
)
async def test_a_malformed_share_is_refused_with_validation_errors(
    pair: Pair, change: dict[str, Any], names: set[str]
) -> None:
    await peered(pair)
    doc = {**offer(SINGLE_WEBDAV), **change}
    status, answer = await send(pair, "/ocm/shares", doc)
    assert status == 400, answer
    assert {error["name"] for error in answer["validationErrors"]} == names
    assert answer["message"]


async def test_unsupported_share_and_resource_types_answer_501(pair: Pair) -> None:
    await peered(pair)
    for change in ({"shareType": "group"}, {"resourceType": "calendar"}):
        status, answer = await send(pair, "/ocm/shares", {**offer(SINGLE_WEBDAV), **change})
        assert status == 501, answer
        assert answer["error"]["code"] == "share_not_supported"


async def test_a_share_from_an_unknown_or_revoked_peer_is_refused(pair: Pair) -> None:
    await peered(pair)
    stranger = offer(SINGLE_WEBDAV, owner="einstein@lyon.test", sender="einstein@lyon.test")
    status, answer = await send(pair, "/ocm/shares", stranger)
    assert (status, answer["error"]["code"]) == (403, "peer_unknown")

    async with pair.paris.client(pair.certs) as admin:
        assert (await admin.post("/api/v1/peers/zurich.test/revoke")).status_code == 200
    name = f"Revoked {uuid.uuid4().hex[:8]}"
    status, answer = await send(pair, "/ocm/shares", offer(SINGLE_WEBDAV, name=name))
    assert (status, answer["error"]["code"]) == (403, "peer_revoked")
    assert name not in await shared_with(pair)


async def test_an_unknown_notification_type_answers_501_and_changes_nothing(pair: Pair) -> None:
    await peered(pair)
    doc = offer(SINGLE_WEBDAV, name=f"Kept {uuid.uuid4().hex[:8]}")
    assert (await send(pair, "/ocm/shares", doc))[0] == 201
    before = await shared_with(pair)

    for kind in ("SHARE_EXPLODED", "USER_REMOVED"):
        notification = {
            "notificationType": kind,
            "resourceType": "folder",
            "providerId": doc["providerId"],
            "notification": {},
        }
        status, answer = await send(pair, "/ocm/notifications", notification)
        assert (status, answer["error"]["code"]) == (501, "share_not_supported")
    assert await shared_with(pair) == before
    status, answer = await send(pair, "/ocm/notifications", {"providerId": 7})
    assert status == 400
    assert {e["name"] for e in answer["validationErrors"]} == {"notificationType", "providerId"}


async def test_shares_received_are_limited_per_recipient(pair: Pair) -> None:
    await peered(pair)
    incoming = pair.paris.services.shares.incoming
    for _number in range(incoming.limit):
        doc = offer(SINGLE_WEBDAV, shareWith="richard@paris.test")
        status, _answer = await send(pair, "/ocm/shares", doc)
        assert status == 201
    status, answer = await send(
        pair, "/ocm/shares", offer(SINGLE_WEBDAV, shareWith="richard@paris.test")
    )
    assert (status, answer["error"]["code"]) == (429, "too_many_shares")
    status, _answer = await send(pair, "/ocm/shares", offer(SINGLE_WEBDAV))  # another recipient
    assert status == 201


def permission_change(provider_id: str, permissions: list[str]) -> dict[str, Any]:
    return {
        "notificationType": "SHARE_CHANGE_PERMISSION",
        "resourceType": "folder",
        "providerId": provider_id,
        "notification": {"permissions": permissions},
    }


async def role_of(pair: Pair, name: str) -> str:
    return str((await shared_with(pair))[name]["remoteItem"]["permissions"][0]["roles"][0])


async def test_a_repeated_message_id_gets_the_first_answer_and_is_not_applied_again(
    pair: Pair,
) -> None:
    await peered(pair)
    name = f"Once {uuid.uuid4().hex[:8]}"
    doc = offer(SINGLE_WEBDAV, name=name)
    url = pair.paris.base_url + "/ocm/notifications"
    share_id, first, second = (uuid.uuid4().hex for _ in range(3))
    shares_url = pair.paris.base_url + "/ocm/shares"
    header = {"Idempotency-Key": share_id}
    assert (await signed_post(pair.zurich, shares_url, doc, header))[:2] == (
        201,
        {"recipientDisplayName": "Marie Curie"},
    )
    viewer = permission_change(doc["providerId"], ["read"])
    editor = permission_change(doc["providerId"], ["read", "write"])
    assert (await signed_post(pair.zurich, url, viewer, {"Idempotency-Key": first}))[0] == 201
    assert (await signed_post(pair.zurich, url, editor, {"Idempotency-Key": second}))[0] == 201

    # the outbox resends the first message (signed anew): answered, not applied again
    assert (await signed_post(pair.zurich, url, viewer, {"Idempotency-Key": first}))[0] == 201
    assert await role_of(pair, name) == EDITOR
    again = await signed_post(pair.zurich, shares_url, doc, header)
    assert again[:2] == (201, {"recipientDisplayName": "Marie Curie"})
    assert [item["name"] for item in await marie_items(pair)].count(name) == 1

    # an OCM server that sends no message id: each notification is applied as it comes
    assert (await send(pair, "/ocm/notifications", viewer))[0] == 201
    assert await role_of(pair, name) == VIEWER


async def test_a_peer_over_its_rate_limit_is_refused_at_the_share_endpoints(pair: Pair) -> None:
    await peered(pair)
    doc = offer(SINGLE_WEBDAV, name=f"Limited {uuid.uuid4().hex[:8]}")
    guard = pair.paris.services.peering.guard
    kept, guard.limits = guard.limits, PeerRateLimits(0.5, 2, pair.paris.services.clock)
    try:
        assert (await send(pair, "/ocm/shares", doc))[0] == 201
        assert (
            await send(pair, "/ocm/notifications", permission_change(doc["providerId"], ["read"]))
        )[0] == 201
        refused = [
            await signed_post(pair.zurich, pair.paris.base_url + path, body)
            for path, body in (
                ("/ocm/shares", offer(SINGLE_WEBDAV)),
                ("/ocm/notifications", permission_change(doc["providerId"], ["read"])),
            )
        ]
    finally:
        guard.limits = kept
    for status, answer, headers in refused:
        assert (status, answer["error"]["code"]) == (429, "peer_rate_limited")
        assert headers["retry-after"] == "2"
