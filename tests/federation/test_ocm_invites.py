"""OCM user invitations between two peered registries: Einstein at zurich makes one, Marie
at paris accepts it (paris tells zurich, signed, and learns who invited her); a second use,
an unknown or expired token, an unknown provider and a malformed message are refused."""

from __future__ import annotations

import base64
from datetime import timedelta

from federation.invitations import parse_invitation
from registry.shares.invites import INVITATION_TTL, INVITE_ACCEPTED_PATH
from tests.federation import test_peering
from tests.federation.peer_pair import Pair, peered, signed_post

pair = test_peering.pair  # the module's own pair of registries


async def invitation_from_einstein(pair: Pair) -> str:
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        made = await einstein.post("/api/v1/ocm/invitations")
    assert made.status_code == 201, made.text
    assert made.json()["providerDomain"] == "zurich.test"
    return str(made.json()["invitation"])


async def test_marie_accepts_einstein_s_invitation_once(pair: Pair) -> None:
    await peered(pair)
    invitation = await invitation_from_einstein(pair)
    assert parse_invitation(invitation).fqdn == "zurich.test"

    async with pair.paris.client(pair.certs, "marie") as marie:
        accepted = await marie.post(
            "/api/v1/ocm/invitations/accept", json={"invitation": invitation}
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["userID"] == "einstein"
        assert accepted.json()["address"] == "einstein@zurich.test"
        assert accepted.json()["name"] == "Albert Einstein"
        again = await marie.post("/api/v1/ocm/invitations/accept", json={"invitation": invitation})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "invitation_used"  # zurich's own code


async def test_invite_accepted_refuses_unknown_expired_and_malformed(pair: Pair) -> None:
    await peered(pair)
    url = pair.zurich.base_url + INVITE_ACCEPTED_PATH
    body = {
        "recipientProvider": "paris.test",
        "token": "no-such-token",
        "userID": "marie",
        "email": "marie@example.org",
        "name": "Marie Curie",
    }
    status, answer, _headers = await signed_post(pair.paris, url, body)
    assert (status, answer["error"]["code"]) == (400, "invitation_refused")

    token = parse_invitation(await invitation_from_einstein(pair)).token
    pair.clock.offset = INVITATION_TTL + timedelta(seconds=1)
    try:
        status, answer, _headers = await signed_post(pair.paris, url, {**body, "token": token})
    finally:
        pair.clock.offset = timedelta(0)
    assert (status, answer["error"]["code"]) == (400, "invitation_refused")

    status, answer, _headers = await signed_post(pair.paris, url, {"token": token, "userID": 7})
    assert status == 400
    names = {e["name"] for e in answer["validationErrors"]}
    assert names == {"recipientProvider", "userID", "email", "name"}

    stranger = {**body, "token": token, "recipientProvider": "lyon.test"}
    status, answer, _headers = await signed_post(pair.paris, url, stranger)
    assert (status, answer["error"]["code"]) == (403, "peer_unknown")
    status, answer, _headers = await signed_post(pair.paris, url, {**body, "token": token})
    assert status == 200  # still unused after the refusals
    assert answer == {
        "userID": "einstein",
        "email": "einstein@example.org",
        "name": "Albert Einstein",
    }


async def test_a_malformed_invitation_is_refused_before_any_request(pair: Pair) -> None:
    async with pair.paris.client(pair.certs, "marie") as marie:
        for text in ("not base64 !", base64.urlsafe_b64encode(b"no-at-sign").decode()):
            refused = await marie.post("/api/v1/ocm/invitations/accept", json={"invitation": text})
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["code"] == "invitation_refused"
        empty = await marie.post("/api/v1/ocm/invitations/accept", json={})
    assert empty.status_code == 400


async def test_ocm_discovery_announces_invites_and_the_token_endpoint(pair: Pair) -> None:
    async with pair.zurich.client(pair.certs) as anyone:
        document = (await anyone.get("/.well-known/ocm")).json()
    assert document["enabled"] is True
    assert {"notifications", "invites", "exchange-token"} <= set(document["capabilities"])
    assert document["tokenEndPoint"] == pair.zurich.base_url + "/ocm/token"
