"""RequestVerifier on requests built in process: the edges of the time window, which signature
is the OCM one, what it must cover, other algorithms; the replay cache; the URL it checks."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from http_message_signatures.httpx2 import adapt_message

from federation.errors import (
    SignatureError,
    SignatureInvalid,
    SignatureMalformed,
    SignatureMissing,
    SignatureOutsideWindow,
    SignatureReplayed,
)
from federation.incoming import IncomingRequest, VerifiedSignature, public_url
from federation.keys import SigningKeys
from federation.peer_keys import PeerKey, StaticKeys, public_keys_from_jwks
from federation.replay import MemoryReplayCache
from federation.signing import sign_request
from federation.verification import RequestVerifier
from tests.clock import FakeClock

URL = "https://receiver.test/ocm/shares"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
BODY = b'{"shareWith": "marie@paris.test"}'


@pytest.fixture
def keys(tmp_path: Path) -> SigningKeys:
    return SigningKeys.load_or_create(tmp_path)


def published(keys: SigningKeys) -> StaticKeys:
    return StaticKeys(public_keys_from_jwks(keys.jwks(), "https://sender.test/jwks").values())


def request(method: str = "POST", body: bytes = BODY) -> httpx2.Request:
    return httpx2.Request(method, URL, content=body)


async def verify(
    sent: httpx2.Request, keys: StaticKeys, clock: FakeClock | None = None
) -> VerifiedSignature:
    incoming = IncomingRequest(
        sent.method, str(sent.url), tuple(sent.headers.multi_items()), sent.content
    )
    return await RequestVerifier(MemoryReplayCache(), clock or FakeClock()).verify(incoming, keys)


def library_signed(
    private_key: Any,
    kid: str,
    algorithm: Any = algorithms.ED25519,
    sent: httpx2.Request | None = None,
    **options: Any,
) -> httpx2.Request:
    """Signed by the library directly, to make signatures our signer never makes."""
    sent = sent or request()
    signer = HTTPMessageSigner(
        signature_algorithm=algorithm,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={kid: private_key}),
    )
    settings: dict[str, Any] = {
        "created": FakeClock().now(),
        "label": "ocm",
        "tag": "ocm",
        "covered_component_ids": ("@method", "@target-uri", "content-length"),
        "body": sent.content,
        "use_existing_digest": True,
        **options,
    }
    signer.sign(adapt_message(sent), key_id=kid, **settings)
    return sent


@pytest.mark.parametrize(
    ("signed_at", "verified_at", "error"),
    [
        (timedelta(0), timedelta(seconds=300), None),
        (timedelta(0), timedelta(seconds=301), SignatureOutsideWindow),
        (timedelta(seconds=30), timedelta(0), None),
        (timedelta(seconds=31), timedelta(0), SignatureOutsideWindow),
    ],
)
async def test_time_window_edges(
    keys: SigningKeys,
    signed_at: timedelta,
    verified_at: timedelta,
    error: type[SignatureError] | None,
) -> None:
    sent, clock = request(), FakeClock()
    sign_request(sent, keys, now=clock.now() + signed_at)
    clock.advance(verified_at)
    if error is None:
        assert (await verify(sent, published(keys), clock)).keyid == keys.active.kid
    else:
        with pytest.raises(error):
            await verify(sent, published(keys), clock)


async def test_created_and_expires_more_than_five_minutes_apart_is_outside_window(
    keys: SigningKeys,
) -> None:
    expires = FakeClock().now() + timedelta(seconds=301)
    sent = library_signed(keys.active.private_key, keys.active.kid, expires=expires)
    with pytest.raises(SignatureOutsideWindow, match=r"apart"):
        await verify(sent, published(keys))


async def test_signature_without_created_is_malformed(keys: SigningKeys) -> None:
    sent = request()
    sign_request(sent, keys, now=FakeClock().now())
    headers = httpx2.Headers(sent.headers)
    before, _created, after = headers["signature-input"].partition(";created=")
    headers["signature-input"] = before + ";" + after.partition(";")[2]
    with pytest.raises(SignatureMalformed, match=r"created"):
        await verify(httpx2.Request("POST", URL, headers=headers, content=BODY), published(keys))


async def test_signature_must_cover_the_digest(keys: SigningKeys) -> None:
    covered = ("@method", "@target-uri")
    get = request("GET", b"")
    options = {"body": None, "use_existing_digest": False, "covered_component_ids": covered}
    sent = library_signed(keys.active.private_key, keys.active.kid, sent=get, **options)
    with pytest.raises(SignatureMalformed, match=r"does not cover content-digest"):
        await verify(sent, published(keys))


async def test_only_the_signature_tagged_ocm_counts(keys: SigningKeys, tmp_path: Path) -> None:
    proxy = SigningKeys.load_or_create(tmp_path / "proxy")
    sent = library_signed(keys.active.private_key, keys.active.kid, label="sig1")
    append: dict[str, Any] = {"sent": sent, "append_if_signature_exists": True}
    library_signed(proxy.active.private_key, proxy.active.kid, label="proxy", tag=None, **append)
    assert (await verify(sent, published(keys))).keyid == keys.active.kid
    library_signed(keys.active.private_key, keys.active.kid, label="twice", **append)
    with pytest.raises(SignatureMalformed, match=r"more than one"):
        await verify(sent, published(keys))


async def test_untagged_signature_counts_only_alone_and_labelled_ocm(keys: SigningKeys) -> None:
    older = library_signed(keys.active.private_key, keys.active.kid, tag=None)
    assert (await verify(older, published(keys))).keyid == keys.active.kid
    other = library_signed(keys.active.private_key, keys.active.kid, tag=None, label="sig1")
    with pytest.raises(SignatureMissing, match=r"tagged ocm"):
        await verify(other, published(keys))


async def test_es256_signature_of_a_nextcloud_33_peer_verifies() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    sent = library_signed(private, "nc-es256", algorithms.ECDSA_P256_SHA256)
    peer = StaticKeys([PeerKey("nc-es256", private.public_key(), "https://nc.test/jwks")])
    assert (await verify(sent, peer)).algorithm == "ecdsa-p256-sha256"


async def test_ecdsa_signature_altered_into_another_valid_one_is_still_a_replay() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    sent = library_signed(private, "nc-es256", algorithms.ECDSA_P256_SHA256)
    peer = StaticKeys([PeerKey("nc-es256", private.public_key(), "https://nc.test/jwks")])
    verifier = RequestVerifier(MemoryReplayCache(), FakeClock())
    lines = tuple(sent.headers.multi_items())
    await verifier.verify(IncomingRequest("POST", URL, lines, BODY), peer)
    label, _, value = sent.headers["signature"].partition("=")
    raw = base64.b64decode(value.strip(":"))
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    twin = r + (P256_ORDER - s).to_bytes(32, "big")  # (r, n - s) verifies as well
    forged = [(k, v) for k, v in lines if k != "signature"]
    forged.append(("signature", f"{label}=:{base64.b64encode(twin).decode()}:"))
    with pytest.raises(SignatureReplayed):
        await verifier.verify(IncomingRequest("POST", URL, tuple(forged), BODY), peer)


async def test_published_key_is_never_taken_for_an_hmac_secret(keys: SigningKeys) -> None:
    sent = library_signed(b"public knowledge", keys.active.kid, algorithms.HMAC_SHA256)
    with pytest.raises(SignatureInvalid, match=r"cannot make hmac-sha256"):
        await verify(sent, published(keys))


async def test_replay_cache_forgets_a_signature_once_the_window_has_passed() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(clock)
    until = clock.now() + timedelta(seconds=10)
    assert await cache.first_use("a", until)
    assert not await cache.first_use("a", until)
    clock.advance(timedelta(seconds=11))
    assert await cache.first_use("b", clock.now() + timedelta(seconds=10))
    assert len(cache) == 1


@pytest.mark.parametrize(
    ("base_url", "scope", "expected"),
    [
        (
            "https://Reg.Test:443/",
            {"path": "/ocm/shares", "raw_path": b"/ocm/shares", "query_string": b"x=%7E1"},
            "https://reg.test/ocm/shares?x=%7E1",
        ),
        (
            "https://proxy.test:8443/sub",
            {"root_path": "/sub", "path": "/sub/ocm/a b", "raw_path": b"/sub/ocm/a%20b"},
            "https://proxy.test:8443/sub/ocm/a%20b",
        ),
        (
            "https://reg.test",
            {"app_root_path": "", "root_path": "/ocm", "path": "/ocm/x", "raw_path": b"/ocm/x"},
            "https://reg.test/ocm/x",
        ),
        ("https://reg.test", {"path": "/a b"}, "https://reg.test/a%20b"),
    ],
)
def test_url_is_our_base_url_and_the_path_below_the_application_root(
    base_url: str, scope: dict[str, Any], expected: str
) -> None:
    assert public_url(base_url, scope) == expected
