"""Spaces as LibreGraph `drive` objects (see shared/specs/libregraph-v1.0.yaml)."""

from __future__ import annotations

from typing import Any

from registry.access import roles
from registry.core.responses import timestamp
from registry.spaces.dav_backends import webdav_url
from registry.spaces.views import MemberView, SpaceView


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
    result: dict[str, Any] = {
        "id": member.id,
        "roles": [roles.UNIFIED_ROLE_IDS[member.role] if unified_roles else member.role],
        "grantedToV2": {
            member.principal_type: {"id": member.principal_id, "displayName": member.display_name}
        },
        "createdDateTime": timestamp(member.created_at),
    }
    if member.expires_at is not None:
        result["expirationDateTime"] = timestamp(member.expires_at)
    return result


def drive(view: SpaceView, base_url: str, unified_roles: bool = True) -> dict[str, Any]:
    space = view.space
    space_id = space.id
    webdav = webdav_url(space, base_url)
    root: dict[str, Any] = {
        "id": space.root_id,
        "eTag": space.etag,
        "webDavUrl": webdav,
        "permissions": [permission(m, unified_roles) for m in view.members],
    }
    if space.status == "disabled":
        root["deleted"] = {"state": "trashed"}
    if space.remote_url is not None:  # a mountpoint: the files are at a peer
        root["remoteItem"] = {"id": space.root_id, "webDavUrl": space.remote_url}
    result: dict[str, Any] = {
        "id": space_id,
        "name": space.name,
        "driveType": space.drive_type,
        "driveAlias": space.alias,
        "description": space.description,
        "createdDateTime": timestamp(space.created_at),
        "lastModifiedDateTime": timestamp(space.updated_at),
        "quota": quota(space.quota_total, space.quota_used),
        "root": root,
        "webUrl": f"{base_url}/s/{space_id}/",
        "availability": space.availability,
    }
    image, readme = space.image, space.readme
    if image or readme:
        result["special"] = [
            {
                "id": f"{space.root_id}:{name}",
                "name": name,
                "specialFolder": {"name": name},
                "webDavUrl": f"{webdav}/{path}",
            }
            for name, path in (("image", image), ("readme", readme))
            if path
        ]
    return result
