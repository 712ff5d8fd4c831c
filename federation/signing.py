"""Signing our server-to-server requests: RFC 9421 HTTP Message Signatures, the OCM profile.

Covered components: `@method`, `@target-uri`, `content-digest` (RFC 9530, sha-256, also of an
empty body), `content-length` when the request has one (every request with a body), and
`date` and `idempotency-key` (the message id receivers drop repeats by) when present.
Parameters: `created`, `expires` (at most `MAX_VALIDITY_S` later), `keyid` (the `kid` of our
active key, as published in our JWKS), `alg="ed25519"`, `tag="ocm"` and a random
`nonce`, so that two identical requests within one second are two signatures (Ed25519 is
deterministic) and the receiver's replay check does not refuse the second. Label `ocm`.

`@target-uri` is the URL the request is sent to, so address a peer by its public base URL (from
its discovery documents); proxies and sub-paths on its side then do not matter. Use it as

    client.send(request, auth=OcmSignatureAuth(keys))     # or httpx2.AsyncClient(auth=...)
    SafeHttpClient.post(url, body, headers, what=..., auth=OcmSignatureAuth(keys))

Redirects are not signed again: do not follow them for signed requests (SafeHttpClient.post
does not).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Generator
from datetime import datetime
from typing import Any

import httpx2

from federation.clock import SYSTEM_WALL_CLOCK, WallClock
from federation.incoming import IncomingRequest
from federation.keys import SigningKeys
from federation.signature_base import Member, serialised, sha256_digest, signature_base

__all__ = [
    "CLOCK_SKEW_S",
    "MAX_VALIDITY_S",
    "SIGNATURE_LABEL",
    "SIGNATURE_TAG",
    "OcmSignatureAuth",
    "sign_request",
]

SIGNATURE_LABEL = "ocm"
SIGNATURE_TAG = "ocm"
# created and expires at most this far apart; a receiver refuses signatures older than this
MAX_VALIDITY_S = 300
# how far in the future a receiver accepts `created` (the peers' clocks differ a little)
CLOCK_SKEW_S = 30
NONCE_BYTES = 16
_COVERED_IF_PRESENT = ("content-length", "date", "idempotency-key")


def sign_request(
    request: httpx2.Request,
    keys: SigningKeys,
    *,
    now: datetime | None = None,
    validity_s: int = MAX_VALIDITY_S,
) -> str:
    """Sign a built request in place with our active key; returns the `keyid` used.
    The request's body must have been read (`request.read()`, or an Auth that requires it).

    The base is built by `signature_base.py` and signed with `cryptography` directly: the
    library's signer serialised and parsed its structures several times over, costing more
    than the signature (tests/federation/test_signature_base.py verifies what this signs with
    the library)."""
    if not 0 < validity_s <= MAX_VALIDITY_S:
        raise ValueError(f"validity_s must be in (0, {MAX_VALIDITY_S}]")
    created = int((now or SYSTEM_WALL_CLOCK.now()).timestamp())
    key = keys.active  # one key for this request, so a rotation meanwhile cannot mix kid and key
    request.headers["Content-Digest"] = sha256_digest(request.content)
    covered = ["@method", "@target-uri"]
    covered += [name for name in _COVERED_IF_PRESENT if name in request.headers]
    covered.append("content-digest")
    params: dict[str, Any] = {
        "created": created,
        "expires": created + validity_s,
        "keyid": key.kid,
        "alg": "ed25519",
        "nonce": secrets.token_urlsafe(NONCE_BYTES),
        "tag": SIGNATURE_TAG,
    }
    member: Member = ([(name, {}) for name in covered], params)
    request.headers["Signature-Input"] = f"{SIGNATURE_LABEL}={serialised(member)}"
    sent = IncomingRequest(
        request.method, str(request.url), tuple(request.headers.multi_items()), request.content
    )
    base = signature_base(sent, member)
    assert base is not None  # plain components only
    signature = base64.b64encode(key.private_key.sign(base.encode())).decode()
    request.headers["Signature"] = f"{SIGNATURE_LABEL}=:{signature}:"
    return key.kid


class OcmSignatureAuth(httpx2.Auth):
    """Signs every request it is given, when it is sent, with the key active at that time."""

    requires_request_body = True

    def __init__(
        self,
        keys: SigningKeys,
        clock: WallClock = SYSTEM_WALL_CLOCK,
        validity_s: int = MAX_VALIDITY_S,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._validity_s = validity_s

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        sign_request(request, self._keys, now=self._clock.now(), validity_s=self._validity_s)
        yield request
