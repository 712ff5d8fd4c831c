"""Verifying draft-cavage-http-signatures-12 requests, the way Nextcloud up to 32 signs OCM:

    Signature: keyId="https://cloud.example/ocm#signature",algorithm="rsa-sha256",
               headers="(request-target) content-length date digest host",signature="<base64>"

Verification only (we always sign with RFC 9421), and only for peers that announce no
`http-sig`. The key is the peer's OCM discovery `publicKey.publicKeyPem`
(`StaticKeys.from_pem`). `(request-target)` and `host` come from our public URL, what the
sender addressed; `Date` must be within `DATE_WINDOW_S` of our clock; `Digest` (SHA-256 or
SHA-512) must match the body. `RequestVerifier.verify` calls `verify` and checks replays.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from federation.errors import (
    DigestMismatch,
    SignatureInvalid,
    SignatureMalformed,
    SignatureOutsideWindow,
    SignatureUnknownKey,
)
from federation.incoming import IncomingRequest, VerifiedSignature
from federation.peer_keys import KeyResolver

__all__ = ["DATE_WINDOW_S", "is_cavage", "verify"]

DATE_WINDOW_S = 300
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA512]] = {
    "rsa-sha256": hashes.SHA256,
    "rsa-sha512": hashes.SHA512,
}
_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
_REQUIRED = ("(request-target)", "date", "host")
_REQUIRED_WITH_BODY = (*_REQUIRED, "content-length", "digest")
_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


def is_cavage(value: str | None) -> bool:
    """Whether a `Signature` header looks like draft-cavage rather than RFC 9421."""
    return value is not None and "keyId=" in value and "signature=" in value


async def verify(
    request: IncomingRequest, keys: KeyResolver, now: datetime
) -> tuple[VerifiedSignature, bytes, datetime]:
    """The signer, what identifies the signature for the replay check, and until when it
    could be replayed."""
    params = _parse(request.header("signature") or "")
    keyid, algorithm = params.get("keyId", ""), params.get("algorithm", "")
    if not keyid:
        raise SignatureMalformed("the signature has no keyId")
    if algorithm not in _HASHES:
        raise SignatureMalformed(f"algorithm {algorithm!r} is not rsa-sha256 or rsa-sha512")
    names = params.get("headers", "date").lower().split()
    required = _REQUIRED_WITH_BODY if request.body else _REQUIRED
    missing = [name for name in required if name not in names]
    if missing:
        raise SignatureMalformed(f"the signature does not cover {', '.join(missing)}")
    try:
        signature = base64.b64decode(params.get("signature", ""), validate=True)
    except binascii.Error as exc:
        raise SignatureMalformed("the signature is not base64") from exc
    date = _date(request.header("date"))
    if abs(now - date) > timedelta(seconds=DATE_WINDOW_S):
        raise SignatureOutsideWindow(f"Date is more than {DATE_WINDOW_S} s from our clock")
    key = await keys.find(keyid)
    if key is None:
        raise SignatureUnknownKey(f"the signer publishes no key {keyid!r}")
    if not isinstance(key.public_key, RSAPublicKey):
        raise SignatureInvalid("draft-cavage signatures need the signer's RSA key")
    signing_string = "\n".join(f"{name}: {_value(request, name)}" for name in names)
    try:
        key.public_key.verify(signature, signing_string.encode(), PKCS1v15(), _HASHES[algorithm]())
    except InvalidSignature as exc:
        raise SignatureInvalid("the signature does not match the request") from exc
    _check_body(request, names)
    signed = VerifiedSignature(
        "draft-cavage", keyid, key.source, key.peer, algorithm, created=date, expires=None
    )
    # RSA PKCS#1 v1.5 signatures are deterministic and cannot be altered into another valid
    # one, so the signature itself identifies it for the replay check
    return signed, signature, date + timedelta(seconds=DATE_WINDOW_S)


def _parse(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = _PARAM.match(value, position)
        if match is None or match.end() == position:
            raise SignatureMalformed("the Signature header is not draft-cavage parameters")
        params[match.group(1)] = match.group(2)
        position = match.end()
    return params


def _date(value: str | None) -> datetime:
    if value is None:
        raise SignatureMalformed("the signed request has no Date")
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise SignatureMalformed(f"Date {value!r} is not an HTTP date") from exc
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


def _value(request: IncomingRequest, name: str) -> str:
    url = urlsplit(request.url)
    if name == "(request-target)":
        target = url.path + (f"?{url.query}" if url.query else "")
        return f"{request.method.lower()} {target}"
    if name == "host":
        return url.netloc
    value = request.header(name)
    if value is None:
        raise SignatureMalformed(f"the signed header {name} is missing")
    return value


def _check_body(request: IncomingRequest, names: list[str]) -> None:
    """The signed Digest and Content-Length describe the body that arrived."""
    length = request.header("content-length")
    if "content-length" in names and length != str(len(request.body)):
        raise DigestMismatch("the body is not as long as its signed Content-Length")
    if "digest" not in names:
        return
    checked = 0
    for member in (request.header("digest") or "").split(","):
        name, _sep, value = member.strip().partition("=")
        digest = _DIGESTS.get(name.lower())
        if digest is None:
            continue
        checked += 1
        expected = base64.b64encode(digest(request.body).digest()).decode()
        if not hmac.compare_digest(value.strip(), expected):
            raise DigestMismatch("the body does not match its signed Digest")
    if not checked:
        raise SignatureMalformed("Digest has no SHA-256 or SHA-512 value")
