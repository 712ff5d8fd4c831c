"""The registry metadata document (`/.well-known/space-registry`): ours, and reading theirs.

Versioned by `metadata_version` ("MAJOR.MINOR"): readers accept any 1.x and ignore fields they do
not know; a new major version means an incompatible change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from federation.errors import MalformedDocument, RegistryMismatch
from federation.instance import SOFTWARE_NAME, LocalInstance

__all__ = [
    "ENDPOINT_NAMES",
    "METADATA_VERSION",
    "RegistryMetadata",
    "metadata_document",
    "parse_metadata",
]

METADATA_VERSION = "1.0"
ENDPOINT_NAMES = ("drives", "changes", "events", "federation_inbox", "ocm")
JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class RegistryMetadata:
    metadata_version: str
    domain: str
    base_url: str
    endpoints: dict[str, str]
    issuers: tuple[str, ...]
    jwks_uri: str
    capabilities: tuple[str, ...]
    software: dict[str, str]


def metadata_document(instance: LocalInstance) -> dict[str, Any]:
    paths = instance.endpoints
    return {
        "metadata_version": METADATA_VERSION,
        "domain": instance.domain,
        "base_url": instance.base_url,
        "endpoints": {
            name: instance.url(path)
            for name in ENDPOINT_NAMES
            if (path := getattr(paths, name)) is not None
        },
        "issuers": list(instance.issuers),
        "jwks_uri": instance.url(JWKS_PATH),
        "capabilities": list(instance.capabilities),
        "software": {"name": SOFTWARE_NAME, "version": instance.software_version},
    }


def parse_metadata(doc: dict[str, Any], url: str, expected_domain: str) -> RegistryMetadata:
    """Validate a peer's document; `expected_domain` is the domain of the address we resolve."""

    def fail(message: str) -> MalformedDocument:
        return MalformedDocument(f"registry metadata at {url}: {message}")

    version = doc.get("metadata_version")
    if not isinstance(version, str) or version.split(".")[0] != "1":
        raise fail(f"metadata_version {version!r} is not a supported 1.x version")
    domain = _string(doc, "domain", fail).lower()
    if domain != expected_domain.lower():
        raise RegistryMismatch(f"registry at {url} serves {domain!r}, not {expected_domain!r}")
    endpoints = doc.get("endpoints")
    if not isinstance(endpoints, dict):
        raise fail("'endpoints' is not an object")
    issuers = doc.get("issuers")
    if not isinstance(issuers, list) or not issuers:
        raise fail("'issuers' must be a non-empty array of URLs")
    software = doc.get("software", {})
    capabilities = doc.get("capabilities", [])
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise fail("'capabilities' must be an array of strings")
    if not isinstance(software, dict):
        raise fail("'software' must be an object")
    return RegistryMetadata(
        metadata_version=version,
        domain=domain,
        base_url=_url(_string(doc, "base_url", fail), "base_url", fail),
        endpoints={
            str(name): _url(value, f"endpoints.{name}", fail) for name, value in endpoints.items()
        },
        issuers=tuple(_url(value, "issuers[]", fail) for value in issuers),
        jwks_uri=_url(_string(doc, "jwks_uri", fail), "jwks_uri", fail),
        capabilities=tuple(capabilities),
        software={str(k): str(v) for k, v in software.items()},
    )


def _string(doc: dict[str, Any], name: str, fail: Any) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise fail(f"'{name}' missing or not a string")
    return value


def _url(value: Any, name: str, fail: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"'{name}' is not a string")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise fail(f"'{name}' is not an absolute http(s) URL: {value!r}")
    return value
