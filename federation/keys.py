"""Our Ed25519 server-to-server signing keys, persisted in a directory, rotated with overlap.

The directory holds one PKCS#8 PEM file per key (`<kid>.pem`, mode 0600) and `keys.json`, the
list of keys with their state. `rotate(lead_s=...)` publishes a new key at once and makes it
sign only `lead_s` later (`activates_at`), so that partners holding our JWKS in their cache
(`wellknown.JWKS_MAX_AGE_S`) have it before they first see it; the old key signs until then
and stays published `overlap_s` longer (`retires_at`), so what it signed still verifies.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey

from federation.errors import MalformedDocument

__all__ = ["DEFAULT_OVERLAP_S", "SigningKey", "SigningKeys", "parse_jwks"]

DEFAULT_OVERLAP_S = 7 * 24 * 3600.0
_STATE_FILE = "keys.json"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: float
    retires_at: float | None = None
    activates_at: float | None = None  # published before it signs; None: signs once created

    def signs_by(self, now: float) -> bool:
        return self.activates_at is None or self.activates_at <= now

    def public_jwk(self) -> dict[str, Any]:
        public_pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        jwk = OKPKey.import_key(public_pem).as_dict(private=False)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "EdDSA"}


class SigningKeys:
    """Load with `SigningKeys.load_or_create(directory)`; the wall clock is injectable."""

    def __init__(
        self, directory: Path, keys: list[SigningKey], now: Callable[[], float] = time.time
    ) -> None:
        self._directory = directory
        self._keys = keys
        self._now = now

    @classmethod
    def load_or_create(cls, directory: Path, now: Callable[[], float] = time.time) -> SigningKeys:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        state_path = directory / _STATE_FILE
        keys: list[SigningKey] = []
        if state_path.exists():
            for row in json.loads(state_path.read_text())["keys"]:
                pem = (directory / f"{row['kid']}.pem").read_bytes()
                private = serialization.load_pem_private_key(pem, password=None)
                if not isinstance(private, Ed25519PrivateKey):
                    raise ValueError(f"{row['kid']}.pem is not an Ed25519 key")
                keys.append(
                    SigningKey(
                        row["kid"],
                        private,
                        row["created_at"],
                        row["retires_at"],
                        row.get("activates_at"),
                    )
                )
        signing_keys = cls(directory, keys, now)
        if not signing_keys._keys:
            signing_keys.rotate(overlap_s=0)
        return signing_keys

    @property
    def active(self) -> SigningKey:
        """The newest key that signs by now."""
        now = self._now()
        return next(key for key in reversed(self._keys) if key.signs_by(now))

    def published(self) -> list[SigningKey]:
        """The active key first, then the next one (published ahead), then retiring keys still
        inside their overlap."""
        now = self._now()
        active = self.active
        upcoming = [k for k in self._keys if not k.signs_by(now)]
        retiring = [
            k
            for k in reversed(self._keys)
            if k is not active and k.signs_by(now) and k.retires_at and k.retires_at > now
        ]
        return [active, *upcoming, *retiring]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.published()]}

    def sign(self, data: bytes) -> tuple[str, bytes]:
        key = self.active
        return key.kid, key.private_key.sign(data)

    def rotate(self, overlap_s: float = DEFAULT_OVERLAP_S, lead_s: float = 0.0) -> SigningKey:
        """Publish a new key that signs from `lead_s` on; the previous one signs until then
        and retires `overlap_s` after; prune retired ones."""
        now = self._now()
        if self._keys and not self._keys[-1].signs_by(now):
            raise ValueError("the next key is published already and does not sign yet")
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        kid = OKPKey.import_key(pem).thumbprint()
        _write_private(self._directory / f"{kid}.pem", pem)
        if self._keys:
            previous = self._keys[-1]
            self._keys[-1] = SigningKey(
                previous.kid, previous.private_key, previous.created_at, now + lead_s + overlap_s
            )
        self._keys.append(SigningKey(kid, private, now, None, now + lead_s if lead_s else None))
        self._prune(now)
        self._save()
        return self._keys[-1]

    def _prune(self, now: float) -> None:
        keep = [k for k in self._keys if k.retires_at is None or k.retires_at > now]
        for key in self._keys:
            if key not in keep:
                (self._directory / f"{key.kid}.pem").unlink(missing_ok=True)
        self._keys = keep

    def _save(self) -> None:
        rows = [
            {
                "kid": k.kid,
                "created_at": k.created_at,
                "retires_at": k.retires_at,
                "activates_at": k.activates_at,
            }
            for k in self._keys
        ]
        tmp = self._directory / f".{_STATE_FILE}.tmp"
        tmp.write_text(json.dumps({"keys": rows}, indent=2))
        os.replace(tmp, self._directory / _STATE_FILE)


def _write_private(path: Path, pem: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def parse_jwks(doc: dict[str, Any], url: str) -> tuple[dict[str, Any], ...]:
    """Public keys of a peer's JWKS; private key material or broken keys are refused."""
    keys = doc.get("keys")
    if not isinstance(keys, list):
        raise MalformedDocument(f"JWKS at {url}: 'keys' is not an array")
    if any(isinstance(k, dict) and "d" in k for k in keys):
        raise MalformedDocument(f"JWKS at {url}: contains private key material")
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise MalformedDocument(f"JWKS at {url}: invalid key: {exc}") from exc
    return tuple(keys)
