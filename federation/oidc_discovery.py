"""Reading an issuer's OpenID Connect configuration (OpenID Connect Discovery 1.0, section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from federation.errors import IssuerMismatch, MalformedDocument

__all__ = ["OpenIDConfiguration", "openid_configuration_url", "parse_openid_configuration"]


@dataclass(frozen=True)
class OpenIDConfiguration:
    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None
    token_endpoint: str | None


def openid_configuration_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_openid_configuration(doc: dict[str, Any], issuer: str) -> OpenIDConfiguration:
    """The `issuer` inside must equal, exactly, the issuer URL the document was fetched for."""
    url = openid_configuration_url(issuer)
    if doc.get("issuer") != issuer:
        raise IssuerMismatch(
            f"OpenID configuration at {url} names issuer {doc.get('issuer')!r}, not {issuer!r}"
        )
    jwks_uri = doc.get("jwks_uri")
    if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("https", "http"):
        raise MalformedDocument(f"OpenID configuration at {url}: 'jwks_uri' is not a URL")
    optional = {}
    for name in ("authorization_endpoint", "token_endpoint"):
        value = doc.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedDocument(f"OpenID configuration at {url}: '{name}' is not a string")
        optional[name] = value
    return OpenIDConfiguration(issuer=issuer, jwks_uri=jwks_uri, **optional)
