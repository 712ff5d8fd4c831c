"""Ed25519 signing keys: persisted, published as JWKS, rotated with an overlap."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc.jwk import OKPKey

from federation.errors import MalformedDocument
from federation.keys import SigningKeys, parse_jwks


class WallClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_keys_persist_across_restarts_with_private_files(tmp_path: Path) -> None:
    keys = SigningKeys.load_or_create(tmp_path)
    again = SigningKeys.load_or_create(tmp_path)
    assert again.active.kid == keys.active.kid
    assert stat.S_IMODE((tmp_path / f"{keys.active.kid}.pem").stat().st_mode) == 0o600


def test_signature_verifies_with_the_published_key(tmp_path: Path) -> None:
    keys = SigningKeys.load_or_create(tmp_path)
    kid, signature = keys.sign(b"hello")
    (jwk,) = keys.jwks()["keys"]
    assert jwk["kid"] == kid
    public = OKPKey.import_key(jwk).public_key
    assert isinstance(public, Ed25519PublicKey)
    public.verify(signature, b"hello")


def test_rotation_keeps_the_old_key_published_during_the_overlap(tmp_path: Path) -> None:
    clock = WallClock()
    keys = SigningKeys.load_or_create(tmp_path, now=clock)
    old = keys.active.kid
    new = keys.rotate(overlap_s=3600).kid
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new, old]
    assert keys.sign(b"x")[0] == new
    reloaded = SigningKeys.load_or_create(tmp_path, now=clock)
    assert [k["kid"] for k in reloaded.jwks()["keys"]] == [new, old]
    clock.now += 3601
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new]
    keys.rotate(overlap_s=10)
    assert not (tmp_path / f"{old}.pem").exists()


def test_peer_jwks_with_private_or_broken_keys_is_refused() -> None:
    with pytest.raises(MalformedDocument, match=r"private key material"):
        parse_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "BB"}]}, "u")
    with pytest.raises(MalformedDocument, match=r"invalid key"):
        parse_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519"}]}, "u")
    with pytest.raises(MalformedDocument, match=r"'keys'"):
        parse_jwks({"keys": {}}, "u")


def test_a_key_rotated_in_ahead_is_published_before_it_signs(tmp_path: Path) -> None:
    clock = WallClock()
    keys = SigningKeys.load_or_create(tmp_path, now=clock)
    old = keys.active.kid

    new = keys.rotate(overlap_s=3600, lead_s=600).kid

    assert keys.sign(b"x")[0] == old  # the old key still signs...
    assert [k["kid"] for k in keys.jwks()["keys"]] == [old, new]  # ...the new one is published
    with pytest.raises(ValueError, match="does not sign yet"):
        keys.rotate(lead_s=600)
    assert [k["kid"] for k in SigningKeys.load_or_create(tmp_path, now=clock).jwks()["keys"]] == [
        old,
        new,
    ]
    clock.now += 600
    assert keys.sign(b"x")[0] == new
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new, old]  # kept for the overlap
    clock.now += 3601
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new]
