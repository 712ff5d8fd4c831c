"""Shares as LibreGraph drive items: outgoing (`sharedByMe`) and incoming (`sharedWithMe`,
the virtual Shares drive)."""

from __future__ import annotations

import hashlib
from typing import Any

from registry.access import roles
from registry.core.responses import timestamp
from registry.shares import store

# The virtual drive of shares received (oCIS's id, in our 32-hex form).
SHARES_DRIVE_ID = "a0ca6a90a3654782871ed44447bbc668"


def federated_user(address: str, name: str | None = None) -> dict[str, Any]:
    return {"id": address, "displayName": name or address, "@libre.graph.userType": "Federated"}


def shown_state(share: Any) -> str:
    """What the sharer sees: `delivering` until the recipient's registry has it, then
    `pending` until the recipient accepts or declines."""
    if share.state != store.DELIVERING:
        return str(share.state)
    return store.DELIVERING if share.delivery == "pending" else store.PENDING


def sent_item(share: Any) -> dict[str, Any]:
    name = share.path.rsplit("/", 1)[-1] or share.path
    return {
        "id": share.id,
        "name": name,
        "parentReference": {"driveId": share.source_space_id, "path": share.path},
        "remoteItem": {"id": share.space_id, "driveId": share.space_id},
        "permissions": [
            {
                "id": share.member_id,
                "roles": [roles.UNIFIED_ROLE_IDS[share.role]],
                "grantedToV2": {"user": federated_user(share.recipient)},
                "@spacereg.state": shown_state(share),
                "createdDateTime": timestamp(share.created_at),
            }
        ],
    }


def received_item(share: Any) -> dict[str, Any]:
    owner = federated_user(share.owner, share.owner_name)
    sender = federated_user(share.sender, share.sender_name)
    return {
        "id": share.id,
        "name": share.name,
        "createdDateTime": timestamp(share.created_at),
        "parentReference": {"driveId": SHARES_DRIVE_ID, "driveType": "virtual"},
        "@client.synchronize": share.state == store.ACCEPTED,
        "@UI.Hidden": share.state == store.DECLINED,
        "@spacereg.state": share.state,
        "remoteItem": {
            "id": share.id,
            "name": share.name,
            "webDavUrl": share.webdav_uri,
            "folder": {},
            "createdBy": {"user": owner},
            "shared": {"owner": {"user": owner}, "sharedBy": {"user": sender}},
            "permissions": [
                {
                    "roles": [roles.UNIFIED_ROLE_IDS[share.role]],
                    "invitation": {"invitedBy": {"user": sender}},
                }
            ],
            **({"driveId": share.mountpoint_id} if share.mountpoint_id else {}),
        },
    }


def shares_drive(shares: list[Any], base_url: str) -> dict[str, Any]:
    """The virtual drive that holds a user's received shares (oCIS's `virtual/shares`).

    Its root has no WebDAV URL: each accepted share is a mountpoint drive with a URL of its
    own, which clients sync; a listing of mountpoints here would be a second way to the same
    files (a client syncing both holds every file twice and meets its own edits as
    conflicts), and a URL that answers nothing is an error for a client that follows it.
    The drive is where shares are accepted and declined (Graph), not a folder."""
    newest = max(share.updated_at for share in shares)
    state = "".join(f"{share.id}:{share.state}:{share.updated_at.isoformat()}" for share in shares)
    etag = '"' + hashlib.sha256(state.encode()).hexdigest()[:32] + '"'
    return {
        "id": SHARES_DRIVE_ID,
        "name": "Shares",
        "driveType": "virtual",
        "driveAlias": "virtual/shares",
        "description": "",
        "createdDateTime": timestamp(min(share.created_at for share in shares)),
        "lastModifiedDateTime": timestamp(newest),
        "quota": {"used": 0, "state": "normal"},
        "root": {
            "id": f"{SHARES_DRIVE_ID}!{SHARES_DRIVE_ID}",
            "eTag": etag,
            "permissions": [],
        },
        "webUrl": f"{base_url}/shares",
    }
