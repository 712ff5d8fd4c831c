"""Spaces as LibreGraph `drive` objects (see shared/specs/libregraph-v1.0.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from registry import roles
from registry.views import MemberView, SpaceView


def timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def quota(total: int | None, used: int) -> dict[str, Any]:
    if not total:
        return {"used": used, "state": "normal"}
    ratio = used / total
    if ratio <= 0.75:
        state = "normal"
    elif ratio <= 0.90:
        state = "nearing"
    elif ratio <= 0.99:
        state = "critical"
    else:
        state = "exceeded"
    return {"total": total, "used": used, "remaining": max(total - used, 0), "state": state}


def permission(member: MemberView, unified_roles: bool) -> dict[str, Any]:
    identity = {"id": member.principal_id, "displayName": member.display_name}
    result: dict[str, Any] = {
        "id": member.id,
        "roles": [roles.UNIFIED_ROLE_IDS[member.role] if unified_roles else member.role],
        "grantedToV2": {member.principal_type: identity},
        "createdDateTime": timestamp(member.created_at),
    }
    if member.expires_at is not None:
        result["expirationDateTime"] = timestamp(member.expires_at)
    return result


def drive(view: SpaceView, base_url: str, unified_roles: bool = True) -> dict[str, Any]:
    space = view.space
    webdav = f"{base_url}/dav/spaces/{space.id}"
    root: dict[str, Any] = {
        "id": space.root_id,
        "eTag": space.etag,
        "webDavUrl": webdav,
        "permissions": [permission(m, unified_roles) for m in view.members],
    }
    if space.status == "disabled":
        root["deleted"] = {"state": "trashed"}
    result: dict[str, Any] = {
        "id": space.id,
        "name": space.name,
        "driveType": space.drive_type,
        "driveAlias": space.alias,
        "description": space.description,
        "createdDateTime": timestamp(space.created_at),
        "lastModifiedDateTime": timestamp(space.updated_at),
        "quota": quota(space.quota_total, space.quota_used),
        "root": root,
        "webUrl": f"{base_url}/#/spaces/{space.id}",
    }
    special = [
        {
            "id": f"{space.root_id}:{name}",
            "name": name,
            "specialFolder": {"name": name},
            "webDavUrl": f"{webdav}/{path}",
        }
        for name, path in (("image", space.image), ("readme", space.readme))
        if path
    ]
    if special:
        result["special"] = special
    return result
