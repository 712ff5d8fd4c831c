"""Space roles and the LibreGraph unified role definitions ownCloud clients know."""

from __future__ import annotations

from typing import Any

MANAGER, EDITOR, VIEWER = "manager", "editor", "viewer"
RANK = {VIEWER: 1, EDITOR: 2, MANAGER: 3}

UNIFIED_ROLE_IDS = {
    MANAGER: "312c0871-5ef7-4b3a-85b6-0e4074c64049",
    EDITOR: "58c63c02-1d89-4572-916a-870abc5a1b7d",
    VIEWER: "a8d5fe5e-96e3-418d-825b-534dbdf22b99",
}
ROLE_BY_UNIFIED_ID = {v: k for k, v in UNIFIED_ROLE_IDS.items()}

_ACTIONS = {
    VIEWER: [
        "libre.graph/driveItem/path/read",
        "libre.graph/driveItem/quota/read",
        "libre.graph/driveItem/content/read",
        "libre.graph/driveItem/children/read",
        "libre.graph/driveItem/deleted/read",
        "libre.graph/driveItem/basic/read",
        # Every member sees who else is a member (as oCIS's space viewer does, and as sync
        # clients show "shared with" to everyone); only managers change the members.
        "libre.graph/driveItem/permissions/read",
    ],
    EDITOR: [
        "libre.graph/driveItem/children/create",
        "libre.graph/driveItem/standard/delete",
        "libre.graph/driveItem/upload/create",
        "libre.graph/driveItem/path/update",
        "libre.graph/driveItem/deleted/update",
    ],
    MANAGER: [
        "libre.graph/driveItem/permissions/create",
        "libre.graph/driveItem/permissions/update",
        "libre.graph/driveItem/permissions/delete",
        "libre.graph/driveItem/deleted/delete",
    ],
}
_TEXT = {
    MANAGER: ("Can manage", "View, download, upload, edit, add, delete and manage members."),
    EDITOR: ("Can edit", "View, download, upload, edit, add and delete."),
    VIEWER: ("Can view", "View and download."),
}


def at_least(role: str | None, wanted: str) -> bool:
    return role is not None and RANK[role] >= RANK[wanted]


def best(roles: list[str]) -> str | None:
    return max(roles, key=RANK.__getitem__, default=None)


def actions(role: str) -> list[str]:
    return [a for r in (VIEWER, EDITOR, MANAGER) if RANK[r] <= RANK[role] for a in _ACTIONS[r]]


def definition(role: str) -> dict[str, Any]:
    name, description = _TEXT[role]
    return {
        "id": UNIFIED_ROLE_IDS[role],
        "displayName": name,
        "description": description,
        "rolePermissions": [
            {"allowedResourceActions": actions(role), "condition": "exists @Resource.Root"}
        ],
        "@libre.graph.weight": 4 - RANK[role],
    }


DEFINITIONS = [definition(role) for role in (VIEWER, EDITOR, MANAGER)]
