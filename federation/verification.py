"""Verifying signed server-to-server requests: RFC 9421 (the OCM profile of `signing.py`), and
draft-cavage for peers that only know the older scheme (`cavage.py`).

    verifier = RequestVerifier(replay_cache, clock)
    request = IncomingRequest.from_scope(scope, settings.base_url, body)
    signed = await verifier.verify(request, keyring.jwks(peer_jwks_url, peer=peer_id))

Checks, in order, each refusal its own `SignatureError`: one signature tagged `ocm` (or, as
before the tag, the only signature, labelled `ocm`), else `SignatureMissing`; `keyid`,
`created` and coverage of `@method`, `@target-uri`, `content-digest` and, with a body,
`content-length` (`SignatureMalformed`); the time window by the injected clock (created at
most `CLOCK_SKEW_S` ahead and at most `MAX_VALIDITY_S` old, expires at most `MAX_VALIDITY_S`
after created: `SignatureOutsideWindow`; expires passed: `SignatureExpired`); the key
(`SignatureUnknownKey`, `SignatureKeysUnavailable`); the signature (`SignatureInvalid`); the
body against the signed digest (`DigestMismatch`); and last, so that forgeries cannot fill it,
the replay cache (`SignatureReplayed`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import http_sf
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    SECP384R1,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureAlgorithm,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

from federation import cavage
from federation.clock import SYSTEM_WALL_CLOCK, WallClock
from federation.errors import (
    DigestMismatch,
    SignatureExpired,
    SignatureInvalid,
    SignatureMalformed,
    SignatureMissing,
    SignatureOutsideWindow,
    SignatureReplayed,
    SignatureUnknownKey,
)
from federation.incoming import IncomingRequest, VerifiedSignature
from federation.peer_keys import KeyResolver, PublicKey
from federation.replay import ReplayCache
from federation.signature_base import sha256_digest, signature_base
from federation.signing import CLOCK_SKEW_S, MAX_VALIDITY_S, SIGNATURE_LABEL, SIGNATURE_TAG

__all__ = ["RequestVerifier", "algorithm_for"]

REQUIRED = ("@method", "@target-uri", "content-digest")
REQUIRED_WITH_BODY = (*REQUIRED, "content-length")


class RequestVerifier:
    def __init__(self, replay: ReplayCache, clock: WallClock = SYSTEM_WALL_CLOCK) -> None:
        self._replay = replay
        self._clock = clock

    async def verify(
        self,
        request: IncomingRequest,
        keys: KeyResolver,
        *,
        legacy_keys: KeyResolver | None = None,
    ) -> VerifiedSignature:
        """The signer of `request`, or the `SignatureError` saying why it is refused.

        `keys` are the sending peer's keys. Pass `legacy_keys` (its OCM discovery `publicKey`)
        only for a peer that announces no `http-sig`: a draft-cavage `Signature` is then
        accepted in place of an RFC 9421 one; otherwise it counts as no signature.
        """
        now = self._clock.now()
        if request.header("signature-input") is not None:
            signed, signed_bytes, until = await _verify_rfc9421(request, keys, now)
        elif legacy_keys is not None and cavage.is_cavage(request.header("signature")):
            signed, signed_bytes, until = await cavage.verify(request, legacy_keys, now)
        else:
            raise SignatureMissing("the request is not signed (RFC 9421 HTTP Message Signatures)")
        if not await self._replay.first_use(hashlib.sha256(signed_bytes).hexdigest(), until):
            raise SignatureReplayed("this signature was already used")
        return signed


@dataclass(frozen=True)
class _Chosen:
    label: str
    tag: str | None
    components: tuple[str, ...]
    params: dict[str, Any]
    member: tuple[list[Any], dict[str, Any]]  # as parsed: the components with their params


async def _verify_rfc9421(
    request: IncomingRequest, keys: KeyResolver, now: datetime
) -> tuple[VerifiedSignature, bytes, datetime]:
    if request.header("signature") is None:
        raise SignatureMalformed("Signature-Input without Signature")
    chosen = _choose(request.header("signature-input") or "")
    keyid, alg = chosen.params.get("keyid"), chosen.params.get("alg")
    if not isinstance(keyid, str) or not keyid:
        raise SignatureMalformed("the signature has no keyid")
    if alg is not None and not isinstance(alg, str):
        raise SignatureMalformed("alg is not a string")
    created, expires = _window(chosen.params, now)
    required = REQUIRED_WITH_BODY if request.body else REQUIRED
    missing = [name for name in required if name not in chosen.components]
    if missing:
        raise SignatureMalformed(f"the signature does not cover {', '.join(missing)}")
    key = await keys.find(keyid)
    if key is None:
        raise SignatureUnknownKey(f"the signer publishes no key {keyid!r}")
    algorithm = algorithm_for(key.public_key, alg)
    signed = VerifiedSignature(
        "rfc9421", keyid, key.source, key.peer, algorithm.algorithm_id, created, expires
    )
    until = min(
        created + timedelta(seconds=MAX_VALIDITY_S), expires or datetime.max.replace(tzinfo=UTC)
    )
    public = key.public_key
    base = signature_base(request, chosen.member) if isinstance(public, Ed25519PublicKey) else None
    if base is None or not isinstance(public, Ed25519PublicKey):
        return signed, _verified_by_library(request, chosen, public, algorithm), until
    _verify_ed25519(public, _signature_of(request, chosen.label), base)
    digest = request.header("content-digest")
    if "content-digest" not in chosen.components or digest is None:
        raise SignatureMalformed("the signature does not cover content-digest")
    if digest != sha256_digest(request.body):  # else the library reads what it holds
        _check_digest(lambda: ContentDigest.verify(digest, request.body))
    # The replay check keys on what was signed, as `_verified_by_library` does.
    return signed, base.encode(), until


def _verify_ed25519(key: Ed25519PublicKey, signature: bytes, base: str) -> None:
    try:
        key.verify(signature, base.encode())
    except CryptoInvalidSignature as exc:
        raise SignatureInvalid("the signature does not match the request") from exc


# One member holding a byte sequence without parameters, as every signer sends it: read without
# the Structured Fields parser (the same bytes it would give); anything else goes through it.
_ONE_SIGNATURE = re.compile(r"([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):")


def _signature_of(request: IncomingRequest, label: str) -> bytes:
    """The bytes of the `label` member of the Signature header (the library's checks)."""
    header = request.header("signature") or ""
    one = _ONE_SIGNATURE.fullmatch(header)
    if one is not None and one.group(1) == label:
        try:
            return base64.b64decode(one.group(2), validate=True)
        except binascii.Error:
            pass  # the parser says what is wrong
    try:
        members = _dictionary(header, "Signature")
    except SignatureMalformed as exc:
        raise SignatureInvalid(f"the Signature header is malformed: {exc}") from exc
    found = members.get(label)
    if found is None or not isinstance(found[0], bytes):
        raise SignatureInvalid(f"the Signature header has no byte sequence labelled {label}")
    return bytes(found[0])


def _check_digest(check: Callable[[], object]) -> None:
    try:
        check()
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise DigestMismatch(f"the body does not match its signed Content-Digest: {exc}") from exc


def _verified_by_library(
    request: IncomingRequest,
    chosen: _Chosen,
    public_key: PublicKey,
    algorithm: type[HTTPSignatureAlgorithm],
) -> bytes:
    """Verify with `http_message_signatures` (components the fast base does not resolve, or
    keys other than Ed25519); returns what was signed, for the replay check."""
    keyid = chosen.params["keyid"]
    verifier = _Verifier(
        signature_algorithm=algorithm,
        key_resolver=MappingKeyResolver(public_keys={keyid: public_key}, private_keys={}),
    )
    message = _Message(request.method, request.url, _Lines(request.headers))
    try:
        (result,) = verifier.verify(message, max_age=None, expect_tag=chosen.tag)
    except (InvalidSignature, HTTPMessageSignaturesException, ValueError) as exc:
        raise SignatureInvalid(f"the signature does not match the request: {exc}") from exc
    covered = result.covered_components
    if '"content-digest"' in covered:
        _check_digest(lambda: ContentDigest.verify(covered['"content-digest"'], request.body))
    else:  # covered as a member or with parameters: the library reads which
        _check_digest(lambda: ContentDigest.verify_components(covered, request.body))
    # The replay check keys on what was signed, not on the signature's bytes: an ECDSA
    # signature can be altered into another valid one of the same message without the key.
    # (Two identical requests signed in one second without a nonce are thus one; ours have
    # a nonce.)
    return "\n".join(f"{name}: {value}" for name, value in covered.items()).encode()


def _choose(signature_input: str) -> _Chosen:
    """The one signature tagged `ocm`; or, as before the tag, the only one, labelled `ocm`."""
    members = _dictionary(signature_input, "Signature-Input")
    tagged = [
        label for label, (_v, params) in members.items() if params.get("tag") == SIGNATURE_TAG
    ]
    if len(tagged) > 1:
        raise SignatureMalformed("more than one signature is tagged ocm")
    if tagged:
        label, tag = tagged[0], SIGNATURE_TAG
    elif list(members) == [SIGNATURE_LABEL]:
        label, tag = SIGNATURE_LABEL, None
    else:
        raise SignatureMissing("no signature is tagged ocm")
    components, params = members[label]
    if not isinstance(components, list):
        raise SignatureMalformed(f"Signature-Input {label} is not an inner list")
    names = tuple(str(name) for name, _p in components)
    return _Chosen(label, tag, names, dict(params), (components, params))


def _window(params: dict[str, Any], now: datetime) -> tuple[datetime, datetime | None]:
    created_s, expires_s = params.get("created"), params.get("expires")
    if type(created_s) is not int:
        raise SignatureMalformed("the signature has no integer created")
    if expires_s is not None and type(expires_s) is not int:
        raise SignatureMalformed("expires is not an integer")
    created = _time(created_s)
    expires = None if expires_s is None else _time(expires_s)
    if created > now + timedelta(seconds=CLOCK_SKEW_S):
        raise SignatureOutsideWindow("the signature was created in the future")
    if expires is not None and not created <= expires <= created + timedelta(
        seconds=MAX_VALIDITY_S
    ):
        raise SignatureOutsideWindow(f"created and expires are more than {MAX_VALIDITY_S} s apart")
    if now > created + timedelta(seconds=MAX_VALIDITY_S):
        raise SignatureOutsideWindow(f"the signature is older than {MAX_VALIDITY_S} s")
    if expires is not None and now > expires:
        raise SignatureExpired("the signature has expired")
    return created, expires


def _time(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise SignatureOutsideWindow(f"{seconds} is not a usable time") from exc


def algorithm_for(key: PublicKey, alg: str | None) -> type[HTTPSignatureAlgorithm]:
    """The RFC 9421 algorithm for a peer's public key and the signature's `alg`, if any.
    Only asymmetric algorithms: a published key is never used as an HMAC secret."""
    candidates: dict[str, type[HTTPSignatureAlgorithm]]
    if isinstance(key, Ed25519PublicKey):
        candidates = {"ed25519": algorithms.ED25519}
    elif isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP256R1):
        candidates = {"ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256}
    elif isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP384R1):
        candidates = {"ecdsa-p384-sha384": algorithms.ECDSA_P384_SHA384}
    elif isinstance(key, EllipticCurvePublicKey):
        raise SignatureInvalid(f"keys on curve {key.curve.name} are not supported")
    else:
        candidates = {
            "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
            "rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256,
        }
    if alg is None:
        if len(candidates) > 1:
            raise SignatureMalformed("an RSA signature must name its alg")
        return next(iter(candidates.values()))
    if alg not in candidates:
        raise SignatureInvalid(f"the signer's key cannot make {alg} signatures")
    return candidates[alg]


def _dictionary(value: str, field: str) -> dict[str, Any]:
    def duplicate(key: str, context: str) -> None:
        if context == "dictionary":
            raise SignatureMalformed(f"{field} names {key} twice")

    try:
        parsed = http_sf.parse(value.encode(), tltype="dictionary", on_duplicate_key=duplicate)
    except (ValueError, UnicodeError) as exc:
        raise SignatureMalformed(f"{field} is not a structured dictionary: {exc}") from exc
    if not isinstance(parsed, dict):
        raise SignatureMalformed(f"{field} is not a structured dictionary")
    return parsed


class _Verifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        """Done already, by `_window`, on the injected clock (the library reads the system's)."""


@dataclass(frozen=True)
class _Lines:
    lines: tuple[tuple[str, str], ...]

    def items(self) -> tuple[tuple[str, str], ...]:
        return self.lines


@dataclass(frozen=True)
class _Message:
    """What the library reads of a request: method, absolute URL and header field lines."""

    method: str
    url: str
    headers: _Lines
