"""The embedded IdP's signing key: RSA (RS256 is what every OIDC client accepts), kept in the
data directory so tokens stay valid across restarts; tokens are dated by the clock given."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import orjson
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from registry.core.clock import SYSTEM_CLOCK, Clock

ALGORITHM = "RS256"
ACCESS_TOKEN_TTL_S = 3600


class IdpKeys:
    def __init__(self, key: RSAKey, clock: Clock = SYSTEM_CLOCK) -> None:
        self._key = key
        self._clock = clock
        self.kid = key.kid or key.thumbprint()
        self.public = KeySet([RSAKey.import_key(key.as_dict(private=False, kid=self.kid))])

    @classmethod
    def load_or_create(cls, directory: Path, clock: Clock = SYSTEM_CLOCK) -> IdpKeys:
        path = directory / "signing-key.json"
        if path.exists():
            return cls(RSAKey.import_key(orjson.loads(path.read_bytes())), clock)
        key = RSAKey.generate_key(2048, private=True)
        key_dict = key.as_dict(private=True, kid=key.thumbprint())
        write_secret(path, key_dict)
        return cls(RSAKey.import_key(key_dict), clock)

    def jwks(self) -> dict[str, Any]:
        return self.public.as_dict()  # type: ignore[return-value]

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self._key, algorithms=[ALGORITHM])

    def access_token(
        self,
        issuer: str,
        audience: str,
        subject: str,
        profile: dict[str, Any],
        client_id: str,
        scope: str = "openid profile email",
        ttl_s: int = ACCESS_TOKEN_TTL_S,
    ) -> str:
        now = int(self._clock.now().timestamp())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "scope": scope,
            **profile,
        }
        return self.sign(claims)


def write_secret(path: Path, value: Any) -> None:
    """`value` as JSON in a new file only we may read; an existing file is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(value))
