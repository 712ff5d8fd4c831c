"""The keys a peer signs with, found by `keyid`.

`JwksKeys` reads one peer's JWKS (the URL comes from the registry: the peer's metadata or OCM
discovery) through the SSRF-safe client, keeps it for its `Cache-Control` lifetime (clamped to
[60 s, 1 h]) and, on a `keyid` it does not know, fetches it again at most once per 30 s, so a
key the peer has just rotated in is found while nobody can make us fetch in a loop.
A failed fetch is not repeated for 30 s either (keys still cached are served meanwhile).
`StaticKeys` holds keys known otherwise (a legacy OCM `publicKey`, keys in-process).
`PeerKeyring` keeps one `JwksKeys` per JWKS URL so caches outlive a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from federation.clock import Clock, MonotonicClock
from federation.errors import DiscoveryError, SignatureKeysUnavailable
from federation.keys import parse_jwks
from federation.ocm_discovery import OcmProvider
from federation.safe_http import SafeHttpClient

__all__ = [
    "JWKS_REFRESH_INTERVAL_S",
    "JwksKeys",
    "KeyResolver",
    "PeerKey",
    "PeerKeyring",
    "PublicKey",
    "StaticKeys",
    "legacy_keys",
    "public_keys_from_jwks",
]

PublicKey = Ed25519PublicKey | EllipticCurvePublicKey | RSAPublicKey
JWKS_REFRESH_INTERVAL_S = 30.0  # at most one fetch per peer per this, caused by unknown keyids
JWKS_MIN_TTL_S = 60.0
JWKS_MAX_TTL_S = 3600.0
JWKS_DEFAULT_TTL_S = 300.0


@dataclass(frozen=True)
class PeerKey:
    keyid: str
    public_key: PublicKey
    # where the key is published: the JWKS URL, or the OCM discovery URL of a legacy key
    source: str
    # the registry's name for the peer, handed back with a verified signature
    peer: str | None = None


class KeyResolver(Protocol):
    async def find(self, keyid: str) -> PeerKey | None:
        """The peer's key named `keyid`, or None when the peer does not publish it.
        Raises SignatureKeysUnavailable when the keys cannot be fetched."""
        ...


class StaticKeys:
    def __init__(self, keys: Iterable[PeerKey]) -> None:
        self._keys = {key.keyid: key for key in keys}

    @classmethod
    def from_pem(cls, keyid: str, pem: str, source: str, peer: str | None = None) -> StaticKeys:
        """One key from a PEM `SubjectPublicKeyInfo` (an OCM discovery's `publicKeyPem`)."""
        try:
            key = load_pem_public_key(pem.encode())
        except ValueError as exc:
            raise SignatureKeysUnavailable(f"public key of {source} is not valid PEM") from exc
        if not isinstance(key, Ed25519PublicKey | EllipticCurvePublicKey | RSAPublicKey):
            raise SignatureKeysUnavailable(f"public key of {source} cannot verify signatures")
        return cls([PeerKey(keyid, key, source, peer)])

    async def find(self, keyid: str) -> PeerKey | None:
        return self._keys.get(keyid)


def legacy_keys(
    provider: OcmProvider, discovery_url: str, peer: str | None = None
) -> StaticKeys | None:
    """The draft-cavage key a peer announces in its OCM discovery (`publicKey`), if any: for
    `RequestVerifier.verify(..., legacy_keys=...)` when the peer announces no `http-sig`."""
    if provider.public_key is None:
        return None
    key = provider.public_key
    return StaticKeys.from_pem(key.key_id, key.public_key_pem, discovery_url, peer)


def public_keys_from_jwks(
    doc: dict[str, Any], url: str, peer: str | None = None
) -> dict[str, PeerKey]:
    """The signing keys of a JWKS by `kid`; keys without a `kid`, keys for encryption and
    symmetric keys (a public document is no place for a shared secret) are left out."""
    keys = doc.get("keys")
    if isinstance(keys, list):  # else parse_jwks says what is wrong
        doc = {"keys": [k for k in keys if not (isinstance(k, dict) and k.get("kty") == "oct")]}
    found: dict[str, PeerKey] = {}
    for jwk in parse_jwks(doc, url):
        if not isinstance(jwk.get("kid"), str) or jwk.get("use", "sig") != "sig":
            continue
        try:
            key = KeySet.import_key_set({"keys": [jwk]}).keys[0]
        except (JoseError, ValueError, TypeError, KeyError):
            continue  # parse_jwks checked the set; this one key is of a kind we cannot use
        if isinstance(key, OKPKey | ECKey | RSAKey):
            public = key.public_key
            if isinstance(public, Ed25519PublicKey | EllipticCurvePublicKey | RSAPublicKey):
                found[jwk["kid"]] = PeerKey(jwk["kid"], public, url, peer)
    return found


class JwksKeys:
    def __init__(
        self,
        jwks_url: str,
        http: SafeHttpClient,
        *,
        peer: str | None = None,
        clock: Clock | None = None,
        refresh_interval_s: float = JWKS_REFRESH_INTERVAL_S,
    ) -> None:
        self.jwks_url = jwks_url
        self._http = http
        self._peer = peer
        self._clock = clock or MonotonicClock()
        self._refresh_interval_s = refresh_interval_s
        self._keys: dict[str, PeerKey] | None = None
        self._fresh_until = float("-inf")
        self._looked_at = float("-inf")  # when a fetch last failed to find a keyid
        self._failure: str | None = None  # why the last fetch failed, and when
        self._failed_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def find(self, keyid: str) -> PeerKey | None:
        keys = self._keys
        if keys is not None and keyid in keys and self._clock.now() < self._fresh_until:
            return keys[keyid]
        async with self._lock:
            return await self._find_locked(keyid)

    async def _find_locked(self, keyid: str) -> PeerKey | None:
        now = self._clock.now()
        keys = self._keys
        fresh = now < self._fresh_until
        if keys is not None and fresh and keyid in keys:
            return keys[keyid]  # fetched by whoever held the lock before us
        unknown = keys is not None and keyid not in keys
        if unknown and fresh and now < self._looked_at + self._refresh_interval_s:
            return None  # unknown, and we looked very recently
        if self._failure is not None and now < self._failed_at + self._refresh_interval_s:
            raise SignatureKeysUnavailable(self._failure)  # do not hammer a peer that is down
        try:
            keys = await self._fetch()
        except SignatureKeysUnavailable as exc:
            self._failure, self._failed_at = str(exc), now
            if self._keys is None or unknown:
                raise
            # stale keys are better than none; try again after the refresh interval
            self._fresh_until = now + self._refresh_interval_s
            keys = self._keys
        found = keys.get(keyid)
        if found is None:
            self._looked_at = now
        return found

    async def _fetch(self) -> dict[str, PeerKey]:
        self.fetches += 1
        try:
            fetched = await self._http.get(self.jwks_url, what="JWKS")
            keys = public_keys_from_jwks(fetched.json_object("JWKS"), self.jwks_url, self._peer)
        except DiscoveryError as exc:
            raise SignatureKeysUnavailable(f"keys of the signer: {exc}") from exc
        ttl = JWKS_DEFAULT_TTL_S if fetched.ttl_s is None else fetched.ttl_s
        self._keys, self._failure = keys, None
        self._fresh_until = self._clock.now() + min(JWKS_MAX_TTL_S, max(JWKS_MIN_TTL_S, ttl))
        return keys


class PeerKeyring:
    """One `JwksKeys` per JWKS URL, so that each peer's keys are fetched once and shared."""

    def __init__(self, http: SafeHttpClient, clock: Clock | None = None) -> None:
        self._http = http
        self._clock = clock
        self._by_url: dict[tuple[str, str | None], JwksKeys] = {}

    def jwks(self, jwks_url: str, peer: str | None = None) -> JwksKeys:
        keys = self._by_url.get((jwks_url, peer))
        if keys is None:
            keys = JwksKeys(jwks_url, self._http, peer=peer, clock=self._clock)
            self._by_url[(jwks_url, peer)] = keys
        return keys
