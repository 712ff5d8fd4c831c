"""Open federation for incoming shares: with `[federation] open_shares`, paris takes a share
from zurich, a registry it found by discovery but never peered with, once its signature
verifies against the keys zurich publishes; off (the default), such a share is refused as
any stranger's. A module of its own: its pair of registries must not be peered."""

from __future__ import annotations

import uuid
from pathlib import Path

from federation.keys import SigningKeys
from registry.shares.store import remote, remote_where
from tests.federation import test_ocm_receive, test_peering
from tests.federation.peer_pair import Pair, signed_post
from tests.federation.test_ocm_receive import SINGLE_WEBDAV, offer, shared_with
from tests.federation.test_shares import SHARES_DRIVE

pair = test_peering.pair  # the module's own pair of registries, never peered here


async def test_a_stranger_s_share_is_taken_only_with_open_federation(
    pair: Pair, tmp_path: Path
) -> None:
    incoming = pair.paris.services.shares.incoming
    url = pair.paris.base_url + "/ocm/shares"
    refused = offer(SINGLE_WEBDAV, name=f"Refused {uuid.uuid4().hex[:8]}")
    status, answer, _headers = await signed_post(pair.zurich, url, refused)
    assert (status, answer["error"]["code"]) == (403, "peer_unknown")

    incoming.open_federation = True
    try:
        forged = offer(SINGLE_WEBDAV, name=f"Forged {uuid.uuid4().hex[:8]}")
        other_keys = SigningKeys.load_or_create(tmp_path / "keys")
        status, answer, _headers = await signed_post(pair.zurich, url, forged, keys=other_keys)
        assert status == 401, answer
        taken = offer(SINGLE_WEBDAV, name=f"Open {uuid.uuid4().hex[:8]}")
        status, answer, _headers = await signed_post(pair.zurich, url, taken)
        assert (status, answer) == (201, {"recipientDisplayName": "Marie Curie"})
        listed = await shared_with(pair)
        assert listed[taken["name"]]["@spacereg.state"] == "pending"
        assert forged["name"] not in listed and refused["name"] not in listed

        async with pair.paris.client(pair.certs, "marie") as marie:
            accepted = await marie.post(
                f"/graph/v1beta1/drives/{SHARES_DRIVE}/root/children",
                json={"remoteItem": {"id": listed[taken["name"]]["id"]}},
            )
            assert accepted.status_code == 201, accepted.text
            mountpoint = accepted.json()["remoteItem"]["driveId"]
            drives = (await marie.get("/graph/v1beta1/me/drives")).json()["value"]
        assert mountpoint in {d["id"] for d in drives}
        async with pair.paris.services.engine.connect() as conn:  # a stranger pushes nothing
            assert await remote_where(conn, remote.c.peer_domain == "zurich.test") == []

        # the stranger ends its share: verified against its keys in the same way
        unshared = {
            "notificationType": "SHARE_UNSHARED",
            "resourceType": "folder",
            "providerId": taken["providerId"],
        }
        assert (await test_ocm_receive.send(pair, "/ocm/notifications", unshared))[0] == 201
        assert taken["name"] not in await shared_with(pair)
        async with pair.paris.client(pair.certs, "marie") as marie:
            drives = (await marie.get("/graph/v1beta1/me/drives")).json()["value"]
        assert mountpoint not in {d["id"] for d in drives}
    finally:
        incoming.open_federation = False
    status, answer, _headers = await signed_post(pair.zurich, url, offer(SINGLE_WEBDAV))
    assert (status, answer["error"]["code"]) == (403, "peer_unknown")
