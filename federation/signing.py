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

import secrets
from collections.abc import Generator
from datetime import datetime, timedelta

import httpx2
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from http_message_signatures.httpx2 import adapt_message

from federation.clock import SYSTEM_WALL_CLOCK, WallClock
from federation.keys import SigningKey, SigningKeys

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


class _ActiveKey(HTTPSignatureKeyResolver):
    """The one key chosen for this request, so a rotation meanwhile cannot mix kid and key."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def resolve_private_key(self, key_id: str) -> object:
        if key_id != self._key.kid:
            raise KeyError(key_id)
        return self._key.private_key

    def resolve_public_key(self, key_id: str) -> object:
        return None


def sign_request(
    request: httpx2.Request,
    keys: SigningKeys,
    *,
    now: datetime | None = None,
    validity_s: int = MAX_VALIDITY_S,
) -> str:
    """Sign a built request in place with our active key; returns the `keyid` used.
    The request's body must have been read (`request.read()`, or an Auth that requires it)."""
    if not 0 < validity_s <= MAX_VALIDITY_S:
        raise ValueError(f"validity_s must be in (0, {MAX_VALIDITY_S}]")
    created = now or SYSTEM_WALL_CLOCK.now()
    key = keys.active
    covered = ["@method", "@target-uri"]
    covered += [name for name in _COVERED_IF_PRESENT if name in request.headers]
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_ActiveKey(key))
    signer.sign(
        adapt_message(request),
        key_id=key.kid,
        created=created,
        expires=created + timedelta(seconds=validity_s),
        nonce=secrets.token_urlsafe(NONCE_BYTES),
        label=SIGNATURE_LABEL,
        tag=SIGNATURE_TAG,
        include_alg=True,
        covered_component_ids=covered,
        body=request.content,  # adds Content-Digest and covers it
        use_existing_digest=True,  # a retried request keeps its (re-checked) digest
    )
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
