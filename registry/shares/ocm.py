"""The Open Cloud Mesh share document: the one we send (`multi`, and the legacy `options`
for peers that speak OCM 1.0/1.1), and the three shapes we accept (legacy `options`, a single
`webdav` protocol, `multi`). Roles map to OCM permissions and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.addresses import Address, parse_address
from federation.errors import InvalidAddress
from registry.access import roles
from registry.shares.errors import InvalidShare, ShareNotSupported

PERMISSIONS = {
    roles.VIEWER: ["read"],
    roles.EDITOR: ["read", "write"],
    roles.MANAGER: ["read", "write", "share"],
}
# Nextcloud's legacy bitmask: 1 read, 2 update, 4 create, 8 delete, 16 share.
_LEGACY_WRITE_BITS = 2 | 4 | 8
_LEGACY_BITS = {roles.VIEWER: 1, roles.EDITOR: 15, roles.MANAGER: 31}
REQUIREMENTS_UNDERSTOOD = frozenset({"must-exchange-token"})
RESOURCE_TYPES = frozenset({"file", "folder"})
MAX_TEXT = 255


@dataclass(frozen=True)
class Offer:
    """A share as a peer offers it to one of our users."""

    share_with: Address
    name: str
    provider_id: str
    owner: Address
    sender: Address
    owner_name: str
    sender_name: str
    resource_type: str
    role: str
    webdav_uri: str
    secret: str


def share_document(
    *,
    share_with: str,
    name: str,
    provider_id: str,
    owner: str,
    owner_name: str,
    webdav_uri: str,
    secret: str,
    role: str,
    legacy: bool,
) -> dict[str, Any]:
    """What `POST /ocm/shares` carries to the recipient's registry."""
    webdav = {
        "uri": webdav_uri,
        "sharedSecret": secret,
        "permissions": PERMISSIONS[role],
        "requirements": ["must-exchange-token"],
    }
    protocol: dict[str, Any] = {"name": "multi", "webdav": webdav}
    if legacy:
        protocol["options"] = {"sharedSecret": secret, "permissions": str(_LEGACY_BITS[role])}
    return {
        "shareWith": share_with,
        "name": name,
        "providerId": provider_id,
        "owner": owner,
        "sender": owner,
        "ownerDisplayName": owner_name,
        "senderDisplayName": owner_name,
        "shareType": "user",
        "resourceType": "folder",
        "protocol": protocol,
    }


def role_of_permissions(permissions: Any) -> str | None:
    """A role from OCM permissions (a list) or Nextcloud's bitmask (a number or its digits)."""
    if isinstance(permissions, list) and all(isinstance(p, str) for p in permissions):
        if "read" not in permissions:
            return None
        if "write" not in permissions:
            return roles.VIEWER
        return roles.MANAGER if "share" in permissions else roles.EDITOR
    if isinstance(permissions, str) and permissions.isascii() and permissions.isdigit():
        permissions = int(permissions[:4])
    if isinstance(permissions, int) and not isinstance(permissions, bool) and permissions & 1:
        return roles.EDITOR if permissions & _LEGACY_WRITE_BITS else roles.VIEWER
    return None


def parse_offer(doc: dict[str, Any]) -> Offer:
    """Every problem at once as `InvalidShare` (400); a kind of share we do not take is
    `ShareNotSupported` (501)."""
    errors: list[tuple[str, str]] = []

    def text(name: str, value: Any, required: bool = True) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            errors.append((name, f"a string of 1 to {MAX_TEXT} characters is required"))
            return ""
        return value.strip()

    def address(name: str) -> Address:
        raw = text(name, doc.get(name))
        try:
            return parse_address(raw) if raw else Address("-", "invalid")
        except InvalidAddress as exc:
            errors.append((name, str(exc)))
            return Address("-", "invalid")

    share_with, owner, sender = address("shareWith"), address("owner"), address("sender")
    name = text("name", doc.get("name"))
    provider_id = text("providerId", doc.get("providerId"))
    share_type = text("shareType", doc.get("shareType"))
    resource_type = text("resourceType", doc.get("resourceType"))
    owner_name = text("ownerDisplayName", doc.get("ownerDisplayName"), required=False)
    sender_name = text("senderDisplayName", doc.get("senderDisplayName"), required=False)
    role, uri, secret = _protocol(doc.get("protocol"), errors)
    if errors:
        raise InvalidShare(errors)
    if share_type != "user":
        raise ShareNotSupported(f"shareType {share_type!r} is not supported; only 'user' is")
    if resource_type not in RESOURCE_TYPES:
        raise ShareNotSupported(f"resourceType {resource_type!r} is not supported")
    return Offer(
        share_with,
        name,
        provider_id,
        owner,
        sender,
        owner_name or str(owner),
        sender_name or str(sender),
        resource_type,
        role,
        uri,
        secret,
    )


def _protocol(value: Any, errors: list[tuple[str, str]]) -> tuple[str, str, str]:
    """(role, WebDAV URI or "", shared secret) from any of the three shapes."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        errors.append(("protocol", "an object with a 'name' is required"))
        return roles.VIEWER, "", ""
    webdav = value.get("webdav")
    options = value.get("options")
    if isinstance(webdav, dict):
        where, source = "protocol.webdav", webdav
        requirements = webdav.get("requirements", [])
        if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
            errors.append((f"{where}.requirements", "a list of strings"))
        else:
            unknown = sorted(set(requirements) - REQUIREMENTS_UNDERSTOOD)
            if unknown:
                errors.append((f"{where}.requirements", f"not understood: {', '.join(unknown)}"))
    elif isinstance(options, dict) and options:
        where, source = "protocol.options", options
    else:
        errors.append(("protocol", "a 'webdav' object (or legacy 'options') is required"))
        return roles.VIEWER, "", ""
    secret = source.get("sharedSecret")
    if not isinstance(secret, str) or not secret or len(secret) > MAX_TEXT:
        errors.append((f"{where}.sharedSecret", "a string of 1 to 255 characters is required"))
        secret = ""
    permissions = source.get("permissions")
    if where == "protocol.options" and isinstance(permissions, str) and permissions.startswith("{"):
        permissions = ["read"]  # Nextcloud names the property here, not the permissions
    role = role_of_permissions(permissions)
    if role is None:
        errors.append((f"{where}.permissions", "must grant at least 'read'"))
        role = roles.VIEWER
    uri = source.get("uri", "")
    if not isinstance(uri, str) or len(uri) > 1024:
        errors.append((f"{where}.uri", "a URL or a path"))
        uri = ""
    return role, uri, secret
