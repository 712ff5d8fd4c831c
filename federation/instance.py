"""What this registry says about itself in discovery documents (built once by the registry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from federation.addresses import format_host, parse_host

__all__ = ["Endpoints", "LocalInstance"]

SOFTWARE_NAME = "spacereg"


@dataclass(frozen=True)
class Endpoints:
    """Paths (relative to `base_url`) of the APIs the metadata document announces; None: this
    registry does not offer that API (yet), and the document leaves it out."""

    drives: str = "/graph/v1.0/me/drives"
    changes: str | None = None
    events: str | None = None
    federation_inbox: str | None = None
    ocm: str = "/ocm"
    ocm_webdav: str = "/dav/ocm/"


@dataclass(frozen=True)
class LocalInstance:
    # the domain our users are addressed at (`marie@paris.test`), without scheme
    domain: str
    # where this registry is served, e.g. "https://registry.paris.test" (no trailing slash)
    base_url: str
    # issuer URLs trusted for our users; the first is the one WebFinger names for them
    issuers: tuple[str, ...]
    software_version: str
    endpoints: Endpoints = field(default_factory=Endpoints)
    capabilities: tuple[str, ...] = ()
    # base_url may be plain http only in development
    allow_http: bool = False
    # False (default): WebFinger answers alike for every user at our domain (no enumeration)
    reveal_unknown_users: bool = False
    # until the sharing API exists, OCM endpoints answer 501 and discovery says enabled=false
    ocm_api_available: bool = False
    title: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        allowed = {"https", "http"} if self.allow_http else {"https"}
        if parts.scheme not in allowed or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"base_url {self.base_url!r} must be an https URL without query")
        if not self.issuers:
            raise ValueError("at least one trusted issuer is needed")
        object.__setattr__(self, "domain", format_host(*parse_host(self.domain)))
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not self.title:
            object.__setattr__(self, "title", f"spacereg at {self.domain}")

    def url(self, path: str) -> str:
        return self.base_url + path
