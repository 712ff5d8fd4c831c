"""Open Cloud Mesh discovery (`/.well-known/ocm`, legacy `/ocm-provider`): ours, and theirs.

Ours announces only what exists: `http-sig` (we sign with RFC 9421 and publish `jwksUri`) and
the criterion `must-use-http-sig`; `notifications` and `invites` when the registry says it
serves them. Theirs is read from any `1.x`, with its capabilities, criteria, JWKS URI and the
legacy `publicKey` of peers that sign the draft-cavage way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from federation.errors import MalformedDocument
from federation.instance import SOFTWARE_NAME, LocalInstance
from federation.metadata import JWKS_PATH
from federation.responses import error_response

__all__ = [
    "OCM_API_VERSION",
    "OcmProvider",
    "OcmPublicKey",
    "ocm_discovery_document",
    "ocm_not_implemented",
    "parse_ocm_discovery",
]

OCM_API_VERSION = "1.2.0"


@dataclass(frozen=True)
class OcmPublicKey:
    """The deprecated `publicKey` of peers that sign draft-cavage (Nextcloud up to 32)."""

    key_id: str
    public_key_pem: str


@dataclass(frozen=True)
class OcmProvider:
    enabled: bool
    api_version: str
    end_point: str
    resource_types: tuple[dict[str, Any], ...]
    capabilities: tuple[str, ...]
    criteria: tuple[str, ...] = ()
    jwks_uri: str | None = None
    public_key: OcmPublicKey | None = None
    token_end_point: str | None = None

    @property
    def signs_http_sig(self) -> bool:
        """The peer signs RFC 9421 and publishes its keys as a JWKS."""
        return "http-sig" in self.capabilities


def ocm_discovery_document(
    instance: LocalInstance,
    *,
    notifications: bool = False,
    invites: bool = False,
    token_endpoint: str | None = None,
) -> dict[str, Any]:
    """`notifications` and `invites`: whether the registry serves those OCM endpoints;
    `token_endpoint`: the path where it exchanges share secrets for tokens (`exchange-token`)."""
    paths = instance.endpoints
    capabilities = ["http-sig"]
    capabilities += ["notifications"] if notifications else []
    capabilities += ["invites"] if invites else []
    capabilities += ["exchange-token"] if token_endpoint else []
    extra = {"tokenEndPoint": instance.url(token_endpoint)} if token_endpoint else {}
    return {
        **extra,
        "enabled": instance.ocm_api_available,
        "apiVersion": OCM_API_VERSION,
        "endPoint": instance.url(paths.ocm),
        "provider": SOFTWARE_NAME,
        "resourceTypes": [
            {
                "name": "file",
                "shareTypes": ["user"],
                "protocols": {"webdav": paths.ocm_webdav},
            }
        ],
        "capabilities": capabilities,
        "criteria": ["must-use-http-sig"],
        "jwksUri": instance.url(JWKS_PATH),
    }


async def ocm_not_implemented(request: Request) -> Response:
    """What the OCM API answers until the sharing issue lands."""
    return error_response(
        501,
        "not_implemented",
        "this registry does not accept OCM shares, notifications or invitations yet",
    )


def parse_ocm_discovery(doc: dict[str, Any], url: str) -> OcmProvider:
    """Accept any 1.x apiVersion; callers gate features on `capabilities`, not on the version."""

    def fail(message: str) -> MalformedDocument:
        return MalformedDocument(f"OCM discovery at {url}: {message}")

    enabled, version, end_point = doc.get("enabled"), doc.get("apiVersion"), doc.get("endPoint")
    if not isinstance(enabled, bool):
        raise fail("'enabled' is not a boolean")
    if not isinstance(version, str) or version.lstrip("v").split(".")[0] != "1":
        raise fail(f"apiVersion {version!r} is not 1.x")
    if not isinstance(end_point, str) or not end_point.startswith(("https://", "http://")):
        raise fail("'endPoint' is not an absolute URL")
    resource_types = doc.get("resourceTypes", [])
    if not isinstance(resource_types, list) or not all(isinstance(r, dict) for r in resource_types):
        raise fail("'resourceTypes' is not an array of objects")
    capabilities, criteria = doc.get("capabilities", []), doc.get("criteria", [])
    if not isinstance(capabilities, list):
        raise fail("'capabilities' is not an array")
    if not isinstance(criteria, list):
        raise fail("'criteria' is not an array")
    jwks_uri, token_end_point = doc.get("jwksUri"), doc.get("tokenEndPoint")
    for name, value in (("jwksUri", jwks_uri), ("tokenEndPoint", token_end_point)):
        if value is not None and (
            not isinstance(value, str) or not value.startswith(("https://", "http://"))
        ):
            raise fail(f"'{name}' is not an absolute URL")
    return OcmProvider(
        enabled=enabled,
        api_version=version,
        end_point=end_point.rstrip("/"),
        resource_types=tuple(resource_types),
        capabilities=tuple(str(c).lstrip("/") for c in capabilities),
        criteria=tuple(str(c) for c in criteria),
        jwks_uri=jwks_uri,
        public_key=_public_key(doc.get("publicKey"), fail),
        token_end_point=token_end_point,
    )


def _public_key(value: Any, fail: Callable[[str], MalformedDocument]) -> OcmPublicKey | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail("'publicKey' is not an object")
    key_id, pem = value.get("keyId"), value.get("publicKeyPem")
    if not isinstance(key_id, str) or not isinstance(pem, str) or not key_id or not pem:
        raise fail("'publicKey' needs the strings 'keyId' and 'publicKeyPem'")
    return OcmPublicKey(key_id, pem)
