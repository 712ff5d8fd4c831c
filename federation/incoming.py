"""A received request as signature verification sees it, and what a verified signature says.

The URL a signature covers is the one the sender addressed: our configured public base URL plus
the path and query below it. It is never built from the socket or the `Host` header, so a
signature survives TLS-terminating proxies, rewritten hosts and sub-paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Literal
from urllib.parse import quote, urlsplit

from starlette.types import Scope

__all__ = ["IncomingRequest", "VerifiedSignature", "public_url"]


def public_url(base_url: str, scope: Scope) -> str:
    """`base_url` + the request's path below the application root + its query, as sent.

    The application root is the `root_path` the server gives the application (uvicorn
    `--root-path`, set when a proxy strips a prefix that `base_url` carries), kept by
    Starlette as `app_root_path` inside mounts; a `Mount` within the application is part of
    the path. The path is the raw, still percent-encoded one the sender signed.
    """
    root = str(scope.get("app_root_path", scope.get("root_path", "")))
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(str(scope["path"]), safe="/:@!$&'()*+,;=~")
    if root and path.startswith(root):
        path = path[len(root) :]
    query = scope.get("query_string", b"")
    return _base(base_url) + path + ("?" + query.decode("latin-1") if query else "")


def _base(base_url: str) -> str:
    """The base URL spelled as httpx2 sends it: scheme and host lower case, no default port,
    no trailing slash."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"https": 443, "http": 80}.get(scheme)
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    return f"{scheme}://{host}{port}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    # our public base URL + the path and query the request arrived at (see `public_url`)
    url: str
    # every header field line in order, names in any case, values as received (latin-1)
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @classmethod
    def from_scope(cls, scope: Scope, base_url: str, body: bytes) -> IncomingRequest:
        """From an ASGI scope (Starlette: `request.scope`) and the body the caller read
        (capped: `common.bounded.read_body`)."""
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
        )
        return cls(str(scope["method"]), public_url(base_url, scope), headers, body)

    def header(self, name: str) -> str | None:
        """All field lines of `name` joined with ", ", or None when absent."""
        return self._fields.get(name.lower())

    @cached_property
    def _fields(self) -> dict[str, str]:
        """Each field's lines joined, by lower-case name: built once, as verification asks for
        several fields."""
        lines: dict[str, list[str]] = {}
        for key, value in self.headers:
            lines.setdefault(key.lower(), []).append(value.strip(" \t"))
        return {key: ", ".join(values) for key, values in lines.items()}


@dataclass(frozen=True)
class VerifiedSignature:
    """Who signed: the key (`keyid`), where it is published (`source`: the JWKS URL, or the
    OCM discovery URL of a legacy key) and the registry's name for that peer."""

    scheme: Literal["rfc9421", "draft-cavage"]
    keyid: str
    source: str
    peer: str | None
    algorithm: str
    created: datetime
    expires: datetime | None
