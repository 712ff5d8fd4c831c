"""The RFC 9421 signature base of a received request, for the common case, without the library.

Peers (ours, and the OCM profile) cover plain components only: `@method`, `@target-uri` and
header fields named without parameters. For those the base is a few lines built from the
Signature-Input the verifier has parsed already, and an Ed25519 signature over it is checked
with `cryptography` directly: the library would parse both headers again, build its resolver
and its structures per request, which cost more than the Ed25519 verification itself (see
`bench/signatures.py`). Anything else (a derived component with parameters, `@query-param`,
another key type) returns None, and `verification.py` hands the request to the library.

The checks are the library's (RFC 9421 section 2): component names lower case and given once,
values without CR or LF, field values printable but for HTAB, derived values printable without
surrounding spaces, the whole base ASCII. `tests/federation/test_signature_base.py` holds this
base to the library's on the requests the tests sign.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from http_sf.innerlist import ser_innerlist

from federation.errors import SignatureInvalid
from federation.incoming import IncomingRequest

__all__ = ["Member", "serialised", "sha256_digest", "signature_base"]

_DERIVED = {"@method", "@target-uri"}


Member = tuple[list[Any], dict[str, Any]]


def signature_base(request: IncomingRequest, member: Member) -> str | None:
    """The signature base of `request` for one parsed Signature-Input member (its inner list
    of components with their parameters, and its own parameters), or None when a component
    is one the library must resolve. Raises SignatureInvalid when the library would refuse."""
    components, _params = member
    lines = []
    seen = set()
    for name, component_params in components:
        if component_params or not isinstance(name, str):
            return None
        if name in seen or name != name.lower():
            raise SignatureInvalid(f'the component "{name}" is given twice or not in lower case')
        seen.add(name)
        if name.startswith("@"):
            if name not in _DERIVED:
                return None
            value = request.method if name == "@method" else request.url
            if not value.isprintable() or value != value.strip(" "):
                raise SignatureInvalid(f'"{name}" is not printable without surrounding spaces')
        else:
            found = request.header(name)
            if found is None:
                raise SignatureInvalid(f'the signed field "{name}" is not in the request')
            value = found
            if value and not value.replace("\t", " ").isprintable():
                raise SignatureInvalid(f'the signed field "{name}" has control characters')
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {serialised(member)}')
    base = "\n".join(lines)
    if not base.isascii():
        raise SignatureInvalid("the signature base is not ASCII")
    return base


def serialised(member: Member) -> str:
    """The member as Structured Fields serialise it. Its parts came out of the parser, so they
    are valid already: strings need only their escapes, integers nothing; anything rarer goes
    through `http_sf` (which checks every character again, at a cost)."""
    components, params = member
    names = " ".join(f'"{_escaped(name)}"' for name, _params in components)
    parts = [f"({names})"]
    for key, value in params.items():
        if type(value) is int:
            parts.append(f";{key}={value}")
        elif type(value) is str:
            parts.append(f';{key}="{_escaped(value)}"')
        else:
            return str(ser_innerlist(member))
    return "".join(parts)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def sha256_digest(body: bytes) -> str:
    """The Content-Digest (RFC 9530) of `body` as we, and most peers, send it: SHA-256 alone."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"
