"""JSON Resource Descriptors (RFC 7033): the links we publish, and reading the ones we get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.errors import MalformedDocument

__all__ = [
    "JRD_MEDIA_TYPE",
    "OIDC_ISSUER_REL",
    "OWNCLOUD_INSTANCE_REL",
    "REGISTRY_REL",
    "Jrd",
    "parse_jrd",
]

JRD_MEDIA_TYPE = "application/jrd+json"
OIDC_ISSUER_REL = "http://openid.net/specs/connect/1.0/issuer"
OWNCLOUD_INSTANCE_REL = "http://webfinger.owncloud/rel/server-instance"
# our own relation: href is the registry's metadata document (/.well-known/space-registry)
REGISTRY_REL = "https://spacereg.org/rel/registry"


@dataclass(frozen=True)
class Jrd:
    subject: str
    links: tuple[dict[str, Any], ...]

    def href(self, rel: str) -> str | None:
        """The first link of relation `rel` that has an href."""
        for link in self.links:
            if link.get("rel") == rel and isinstance(link.get("href"), str):
                return str(link["href"])
        return None


def parse_jrd(doc: dict[str, Any], url: str) -> Jrd:
    """Check the shape RFC 7033 section 4.4 gives; ignore what we do not understand."""
    subject = doc.get("subject")
    if not isinstance(subject, str) or not subject:
        raise MalformedDocument(f"WebFinger answer at {url}: 'subject' missing or not a string")
    links = doc.get("links", [])
    if not isinstance(links, list):
        raise MalformedDocument(f"WebFinger answer at {url}: 'links' is not an array")
    for index, link in enumerate(links):
        if not isinstance(link, dict) or not isinstance(link.get("rel"), str):
            raise MalformedDocument(f"WebFinger answer at {url}: links[{index}] has no 'rel'")
        if "href" in link and not isinstance(link["href"], str):
            raise MalformedDocument(f"WebFinger answer at {url}: links[{index}].href not a string")
    return Jrd(subject=subject, links=tuple(links))
