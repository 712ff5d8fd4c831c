"""A change to a space as clients see it: in the feed, over SSE and in webhook deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import orjson

from registry.access.principal import USER, PrincipalKey
from registry.core.responses import timestamp


@dataclass(frozen=True)
class ChangeEvent:
    """One row of the change log; `lost` names who lost access with this change.

    `kind` and its `data`: created (driveType, name, etag, createdBy), renamed (name),
    described (description), quota (quota_total), content (etag, used, paths), availability
    (availability, reason), disabled, restored, deleted, member_added / member_changed
    (principalType, principalId, role), member_removed (principalType, principalId).
    """

    seq: int
    space_id: str
    kind: str
    data: dict[str, Any]
    time: datetime
    lost: tuple[PrincipalKey, ...] = ()

    def grantee(self) -> PrincipalKey | None:
        """Who gains access to the space with this change, if anyone."""
        if self.kind == "created" and "createdBy" in self.data:
            return PrincipalKey(USER, str(self.data["createdBy"]))
        if self.kind == "member_added":
            return PrincipalKey(str(self.data["principalType"]), str(self.data["principalId"]))
        return None

    def changed_member(self) -> PrincipalKey | None:
        """Whose role (or its expiry) this change alters, if anyone's."""
        if self.kind == "member_changed":
            return PrincipalKey(str(self.data["principalType"]), str(self.data["principalId"]))
        return None

    @cached_property
    def sse_frame(self) -> bytes:
        """The event as Server-Sent Events send it: encoded once, however many listen."""
        data = orjson.dumps(self.json())
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (self.seq, self.kind.encode(), data)

    def json(self) -> dict[str, Any]:
        return {
            "id": str(self.seq),
            "type": self.kind,
            "driveId": self.space_id,
            "time": timestamp(self.time),
            "data": self.data,
        }
