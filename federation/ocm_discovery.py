"""Open Cloud Mesh discovery (`/.well-known/ocm`, legacy `/ocm-provider`): ours, and theirs."""

from __future__ import annotations

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
    "ocm_discovery_document",
    "ocm_not_implemented",
    "parse_ocm_discovery",
]

OCM_API_VERSION = "1.2.0"


@dataclass(frozen=True)
class OcmProvider:
    enabled: bool
    api_version: str
    end_point: str
    resource_types: tuple[dict[str, Any], ...]
    capabilities: tuple[str, ...]


def ocm_discovery_document(instance: LocalInstance) -> dict[str, Any]:
    paths = instance.endpoints
    return {
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
        "capabilities": list(instance.ocm_capabilities),
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
    capabilities = doc.get("capabilities", [])
    if not isinstance(capabilities, list):
        raise fail("'capabilities' is not an array")
    return OcmProvider(
        enabled=enabled,
        api_version=version,
        end_point=end_point.rstrip("/"),
        resource_types=tuple(resource_types),
        capabilities=tuple(str(c).lstrip("/") for c in capabilities),
    )
