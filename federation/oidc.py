"""Validate access tokens from several trusted OpenID Connect issuers.

The issuer is matched exactly against the trusted list before anything is fetched, so a token
cannot make us contact a host of its choosing. Keys come from the issuer's discovery document and
JWKS, cached; an unknown `kid` refreshes the JWKS at most once per `refresh_interval`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import orjson
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from federation.errors import DiscoveryError
from federation.oidc_discovery import openid_configuration_url, parse_openid_configuration
from federation.safe_http import SafeHttpClient

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "Claims",
    "IssuerUnavailable",
    "TokenError",
    "TokenValidator",
    "TrustedIssuer",
    "UntrustedIssuer",
    "fetched_safely",
]

# Never "none" and never HMAC: a public key must not be usable as a shared secret.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_S = 30
JWKS_MAX_AGE_S = 3600
JWKS_REFRESH_INTERVAL_S = 30
VERIFIED_CACHE_SIZE = 10_000
MAX_TOKEN_BYTES = 16 * 1024
# JWS compact serialization: three base64url parts (RFC 7515 section 7.1), a signature optional.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class TokenError(Exception):
    """The token is not acceptable; the message says why (safe to show the caller)."""


class IssuerUnavailable(TokenError):
    """A trusted issuer's discovery document or keys could not be fetched."""


class UntrustedIssuer(TokenError):
    """The token names an issuer that is not among those trusted (another list may have it)."""


# GET a URL, its JSON object (raising IssuerUnavailable): how keys are fetched when the
# issuers are not our own (`federation.safe_http.SafeHttpClient` behind it).
FetchJson = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class TrustedIssuer:
    url: str
    audience: str
    groups_claim: str | None = "groups"
    # Keys known in-process (the embedded IdP); when set, nothing is fetched.
    static_keys: KeySet | None = None


@dataclass(frozen=True)
class Claims:
    issuer: TrustedIssuer
    subject: str
    expires_at: int
    values: dict[str, Any]

    def groups(self) -> tuple[str, ...]:
        claim = self.issuer.groups_claim
        value = self.values.get(claim) if claim else None
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        return ()


@dataclass
class _IssuerKeys:
    keys: KeySet | None = None
    fetched_at: float = float("-inf")
    forced_at: float = float("-inf")  # last refresh caused by an unknown kid
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class TokenValidator:
    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        http: httpx2.AsyncClient,
        clock: Callable[[], float] = time.time,
        refresh_interval: float = JWKS_REFRESH_INTERVAL_S,
        fetch_json: FetchJson | None = None,
    ) -> None:
        self._issuers = {issuer.url: issuer for issuer in issuers}
        self._http = http
        self._fetch_json = fetch_json or self._get_json
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._keys: dict[str, _IssuerKeys] = {}
        self._verified: OrderedDict[str, Claims] = OrderedDict()

    async def validate(
        self, token: str, issuers: Mapping[str, TrustedIssuer] | None = None
    ) -> Claims:
        """The token's claims, if an issuer of `issuers` (by URL; by default those given at
        construction) signed it for its audience. A caller whose list changes (the issuers of
        active partners) passes it each time: a remembered token counts only while its
        issuer is still in the list."""
        trusted = self._issuers if issuers is None else issuers
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError("token too large")
        if not _COMPACT_JWS.fullmatch(token):
            raise TokenError("malformed token")
        cache_key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._verified.get(cache_key)
        if (
            cached is not None
            and cached.expires_at + LEEWAY_S > self._clock()
            and trusted.get(cached.issuer.url) == cached.issuer
        ):
            self._verified.move_to_end(cache_key)
            return cached
        unverified = _peek(token)
        if unverified.algorithm not in ASYMMETRIC_ALGORITHMS:
            raise TokenError(f"algorithm {_shown(unverified.algorithm)} is not accepted")
        issuer = trusted.get(unverified.issuer)
        if issuer is None:
            raise UntrustedIssuer("issuer is not trusted")
        keys = await self._keys_for(issuer, unverified.kid)
        claims = self._verify(token, issuer, keys, unverified.algorithm)
        self._remember(cache_key, claims)
        return claims

    def _verify(self, token: str, issuer: TrustedIssuer, keys: KeySet, alg: str) -> Claims:
        try:
            decoded = jwt.decode(token, keys, algorithms=[alg])
        except BadSignatureError as exc:
            raise TokenError("bad signature") from exc
        except JoseError as exc:
            raise TokenError(f"token rejected: {exc.error}") from exc
        registry = JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=LEEWAY_S,
            iss={"essential": True, "value": issuer.url},
            aud={"essential": True, "value": issuer.audience},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError as exc:
            raise TokenError("token expired") from exc
        except MissingClaimError as exc:
            raise TokenError(f"token lacks claim {exc.description}") from exc
        except InvalidClaimError as exc:
            raise TokenError(f"invalid claim: {exc.description}") from exc
        except JoseError as exc:
            raise TokenError(f"token rejected: {exc.error}") from exc
        return Claims(
            issuer, str(decoded.claims["sub"]), int(decoded.claims["exp"]), decoded.claims
        )

    async def _keys_for(self, issuer: TrustedIssuer, kid: str | None) -> KeySet:
        if issuer.static_keys is not None:
            return issuer.static_keys
        state = self._keys.setdefault(issuer.url, _IssuerKeys())
        async with state.lock:
            now = self._clock()
            stale = now - state.fetched_at > JWKS_MAX_AGE_S
            unknown = state.keys is not None and kid is not None and not _has_kid(state.keys, kid)
            forced = unknown and now - state.forced_at >= self._refresh_interval
            if forced:
                state.forced_at = now
            if state.keys is None or stale or forced:
                try:
                    state.keys = await self._fetch_keys(issuer)
                    state.fetched_at = now
                except IssuerUnavailable:
                    if state.keys is None:
                        raise
                    state.fetched_at = now - JWKS_MAX_AGE_S + self._refresh_interval
        assert state.keys is not None
        if kid is not None and not _has_kid(state.keys, kid):
            raise TokenError("signing key is unknown to the issuer")
        return state.keys

    async def _fetch_keys(self, issuer: TrustedIssuer) -> KeySet:
        document = await self._fetch_json(openid_configuration_url(issuer.url))
        try:
            configuration = parse_openid_configuration(document, issuer.url)
        except DiscoveryError as exc:
            raise IssuerUnavailable(str(exc)) from exc
        try:
            return KeySet.import_key_set(await self._fetch_json(configuration.jwks_uri))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise IssuerUnavailable(f"JWKS of {issuer.url} is malformed") from exc

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, timeout=10)
            response.raise_for_status()
            value = orjson.loads(response.content)
        except (httpx2.HTTPError, orjson.JSONDecodeError) as exc:
            raise IssuerUnavailable(f"cannot fetch {url}: {exc}") from exc
        if not isinstance(value, dict):
            raise IssuerUnavailable(f"{url} did not return a JSON object")
        return value

    def _remember(self, cache_key: str, claims: Claims) -> None:
        self._verified[cache_key] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)


def fetched_safely(client: SafeHttpClient) -> FetchJson:
    """Keys of issuers that others name (a partner's), fetched as discovery fetches: no
    private address unless allowed, capped bodies, bounded time."""

    async def fetch(url: str) -> dict[str, Any]:
        try:
            return (await client.get(url, what="issuer document")).json_object("issuer document")
        except DiscoveryError as exc:
            raise IssuerUnavailable(str(exc)) from exc

    return fetch


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


@dataclass(frozen=True)
class _Unverified:
    """What a token says of itself before its signature is checked."""

    algorithm: str
    issuer: str
    kid: str | None


def _peek(token: str) -> _Unverified:
    """Read header and payload without trusting them, to choose issuer and key. Total: a token
    in compact form gives each field with its type, or raises `TokenError`, whatever its parts
    decode to (any JSON value in any field, bytes that are not UTF-8, parts that are not JSON)."""
    header_part, payload_part, _ = token.split(".")
    header, payload = _json_object(header_part), _json_object(payload_part)
    algorithm, issuer, kid = header.get("alg"), payload.get("iss"), header.get("kid")
    if not isinstance(algorithm, str) or not isinstance(kid, str | None):
        raise TokenError("malformed token header")
    if not isinstance(issuer, str):
        raise UntrustedIssuer("issuer is not trusted")
    if "crit" in header or header.get("b64", True) is not True:
        # We understand no header extension (RFC 7515 section 4.1.11; RFC 7797's b64 is one).
        raise TokenError("token uses a header extension that is not supported")
    return _Unverified(algorithm, issuer, kid)


def _json_object(part: str) -> dict[str, Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except ValueError as exc:  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        raise TokenError("malformed token") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed token")
    return value


def _shown(value: str) -> str:
    """A value from an untrusted token, fit to quote in a message: ASCII, and short."""
    shown = ascii(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
