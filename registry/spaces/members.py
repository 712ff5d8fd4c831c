"""Who holds a role in a space: invitations, role and expiry changes, removals, each logged in
its transaction. Only managers (and administrators) change members; a space keeps a manager."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access import roles
from registry.access.principal import USER, Principal, PrincipalKey
from registry.auth.user_store import user_id_named
from registry.changes import log as changes
from registry.core.clock import Clock
from registry.core.errors import BadRequest, Conflict, NotFound
from registry.spaces import store
from registry.spaces.service import SpaceService
from registry.spaces.views import MemberView, SpaceView


class Unchanged:
    """Marks a field a caller leaves as it is (where None is a meaningful new value)."""


UNCHANGED = Unchanged()


class MemberService:
    def __init__(self, spaces: SpaceService, *, clock: Clock) -> None:
        self._spaces = spaces
        self._clock = clock

    async def invite(
        self,
        principal: Principal,
        space_id: str,
        recipients: list[tuple[str, str]],
        role: str,
        expires_at: datetime | None,
    ) -> list[MemberView]:
        """Grant `role` to each (type, group name or user id or username); returns the new
        members. Only managers get as far as the lookup that tells whether a user exists."""
        async with self._spaces.transaction() as conn:
            view = await self._spaces.managed(conn, principal, space_id)
            held = {(m.principal_type, m.principal_id) for m in view.members}
            granted: set[str] = set()
            for principal_type, name in recipients:
                principal_id = name if principal_type != USER else await user_id_named(conn, name)
                if principal_id is None:
                    raise BadRequest(f"unknown user {name!r}")
                if (principal_type, principal_id) in held:
                    raise Conflict(f"{principal_type} {principal_id} is already a member")
                member_id = store.new_member_id()
                await store.add_member(
                    conn,
                    {
                        "id": member_id,
                        "space_id": space_id,
                        "principal_type": principal_type,
                        "principal_id": principal_id,
                        "role": role,
                        "expires_at": expires_at,
                    },
                    self._clock.now(),
                )
                await changes.append(
                    conn,
                    space_id,
                    "member_added",
                    {"principalType": principal_type, "principalId": principal_id, "role": role},
                    self._clock.now(),
                )
                held.add((principal_type, principal_id))
                granted.add(member_id)
            view = await self._spaces.visible(conn, principal, space_id)
            return [m for m in view.members if m.id in granted]

    async def update_member(
        self,
        principal: Principal,
        space_id: str,
        member_id: str,
        role: str | None,
        expires_at: datetime | Unchanged | None,
    ) -> MemberView:
        """Change a member's role or expiry; returns the member as it now is."""
        async with self._spaces.transaction() as conn:
            view, member = await self._managed_member(conn, principal, space_id, member_id)
            values: dict[str, Any] = {}
            if role is not None and role != member.role:
                _keep_a_manager(view, member, "demoted")
                values["role"] = role
            if not isinstance(expires_at, Unchanged):
                values["expires_at"] = expires_at
            if not values:
                return member
            await store.update_member(conn, member_id, values)
            await changes.append(
                conn,
                space_id,
                "member_changed",
                {
                    "principalType": member.principal_type,
                    "principalId": member.principal_id,
                    "role": values.get("role", member.role),
                },
                self._clock.now(),
            )
            changed = (await self._spaces.visible(conn, principal, space_id)).member(member_id)
            assert changed is not None  # updated above, in this transaction
            return changed

    async def remove_member(self, principal: Principal, space_id: str, member_id: str) -> None:
        async with self._spaces.transaction() as conn:
            view, member = await self._managed_member(conn, principal, space_id, member_id)
            _keep_a_manager(view, member, "removed")
            await store.delete_member(conn, member_id)
            await changes.append(
                conn,
                space_id,
                "member_removed",
                {"principalType": member.principal_type, "principalId": member.principal_id},
                self._clock.now(),
                lost=[PrincipalKey(member.principal_type, member.principal_id)],
            )

    async def _managed_member(
        self, conn: AsyncConnection, principal: Principal, space_id: str, member_id: str
    ) -> tuple[SpaceView, MemberView]:
        view = await self._spaces.managed(conn, principal, space_id)
        member = view.member(member_id)
        if member is None:
            raise NotFound(f"no permission {member_id} on this space")
        return view, member


def _keep_a_manager(view: SpaceView, member: MemberView, verb: str) -> None:
    if member.role == roles.MANAGER and sum(m.role == roles.MANAGER for m in view.members) < 2:
        raise Conflict(f"the last manager cannot be {verb}", code="conflict")
