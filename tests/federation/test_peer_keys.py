"""A peer's keys from its JWKS over real HTTPS: cached, refetched at most once per 30 s on an
unknown keyid, stale keys kept while the peer is down; what a JWKS may not contain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.clock import ManualClock
from federation.config import DiscoveryConfig
from federation.errors import MalformedDocument, SignatureKeysUnavailable
from federation.metadata import JWKS_PATH
from federation.peer_keys import JwksKeys, PeerKeyring, StaticKeys, public_keys_from_jwks
from federation.safe_http import SafeHttpClient
from tests.federation.conftest import Site
from tests.federation.signed_servers import Sender


@pytest.fixture
async def http(config: DiscoveryConfig) -> AsyncIterator[SafeHttpClient]:
    client = SafeHttpClient(config)
    yield client
    await client.aclose()


@pytest.fixture
def sender_jwks(sender: tuple[Sender, str]) -> Any:
    yield sender[0], sender[1] + JWKS_PATH
    sender[0].down = False


async def test_unknown_keyid_refetches_at_most_once_per_30_s(
    http: SafeHttpClient, sender_jwks: tuple[Sender, str]
) -> None:
    sender, url = sender_jwks
    clock = ManualClock()
    keys = JwksKeys(url, http, peer="zurich", clock=clock)
    found = await keys.find(sender.keys.active.kid)
    assert found is not None and found.peer == "zurich" and found.source == url
    assert isinstance(found.public_key, Ed25519PublicKey)
    assert await keys.find("nope") is None
    assert keys.fetches == 2
    clock.advance(29)
    assert await keys.find("nope") is None and await keys.find("other") is None
    assert keys.fetches == 2
    clock.advance(2)
    assert await keys.find("nope") is None
    assert keys.fetches == 3


async def test_rotated_in_key_is_found_by_one_refetch_and_the_old_one_stays(
    http: SafeHttpClient, sender_jwks: tuple[Sender, str]
) -> None:
    sender, url = sender_jwks
    keys = JwksKeys(url, http, clock=ManualClock())
    old = sender.keys.active.kid
    assert await keys.find(old) is not None
    new = sender.keys.rotate(overlap_s=3600).kid
    assert await keys.find(new) is not None
    assert await keys.find(old) is not None
    assert keys.fetches == 2


async def test_stale_keys_serve_while_the_jwks_is_down_but_unknown_ones_are_unavailable(
    http: SafeHttpClient, sender_jwks: tuple[Sender, str]
) -> None:
    sender, url = sender_jwks
    clock = ManualClock()
    keys = JwksKeys(url, http, clock=clock)
    kid = sender.keys.active.kid
    assert await keys.find(kid) is not None
    sender.down = True
    clock.advance(301)  # past the JWKS's max-age=300
    assert await keys.find(kid) is not None
    assert keys.fetches == 2
    assert await keys.find(kid) is not None
    assert keys.fetches == 2  # the failure is not retried at once
    with pytest.raises(SignatureKeysUnavailable, match=r"HTTP 503"):
        await keys.find("rotated-in-while-down")


async def test_failed_fetch_is_not_repeated_within_30_s(
    http: SafeHttpClient, sender_jwks: tuple[Sender, str]
) -> None:
    sender, url = sender_jwks
    clock = ManualClock()
    keys = JwksKeys(url, http, clock=clock)
    sender.down = True
    for _ in range(3):
        with pytest.raises(SignatureKeysUnavailable, match=r"HTTP 503"):
            await keys.find(sender.keys.active.kid)
    assert keys.fetches == 1
    sender.down = False
    clock.advance(31)
    assert await keys.find(sender.keys.active.kid) is not None
    assert keys.fetches == 2


async def test_keys_from_a_private_address_are_unavailable(
    http: SafeHttpClient, sites: dict[str, Site]
) -> None:
    url = f"https://internal.test:{sites['internal'].port}{JWKS_PATH}"
    with pytest.raises(SignatureKeysUnavailable, match=r"resolves to 127.0.0.2"):
        await JwksKeys(url, http).find("any")


def test_keyring_keeps_one_cache_per_jwks_and_peer(http: SafeHttpClient) -> None:
    keyring = PeerKeyring(http)
    first = keyring.jwks("https://a.test/jwks", peer="a")
    assert keyring.jwks("https://a.test/jwks", peer="a") is first
    assert keyring.jwks("https://b.test/jwks", peer="b") is not first


def test_only_asymmetric_signing_keys_with_a_kid_are_taken(sites: dict[str, Site]) -> None:
    ours = sites["paris"].keys.jwks()["keys"][0]
    doc = {
        "keys": [
            ours,
            {**ours, "kid": "for-encryption", "use": "enc"},
            {key: value for key, value in ours.items() if key != "kid"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "shared-secret"},
        ]
    }
    assert list(public_keys_from_jwks(doc, "u")) == [ours["kid"]]
    with pytest.raises(MalformedDocument, match=r"private key material"):
        public_keys_from_jwks({"keys": [{**ours, "d": "AA"}]}, "u")


def test_legacy_key_that_is_not_a_public_key_is_unavailable() -> None:
    with pytest.raises(SignatureKeysUnavailable, match=r"not valid PEM"):
        StaticKeys.from_pem("k", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "u")
