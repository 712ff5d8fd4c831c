"""What may be done to spaces, by whom; every change is logged in the same transaction."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access import roles, rule
from registry.access.principal import USER, Principal, PrincipalKey
from registry.changes import log as changes
from registry.changes.unit_of_work import UnitOfWork
from registry.core.clock import Clock
from registry.core.errors import BadRequest, Conflict, Forbidden, NotFound
from registry.core.text import is_identifier
from registry.spaces import store
from registry.spaces.odata import Filter, OrderBy, PageQuery
from registry.spaces.provider_store import share_spaces_of
from registry.spaces.validation import (
    description_of,
    quota_patch,
    slug,
    validate_name,
    validate_quota,
)
from registry.spaces.views import SpaceView, group_rows
from storage import SpaceStore

logger = logging.getLogger("spacereg.spaces")

PAGE_SIZE = 100
# SQLite runs every query in a thread of its own: many listings at once fight over the GIL and
# serve fewer requests per second, with a longer tail, than a few at a time. PostgreSQL's limit
# is its connection pool.
SQLITE_LISTINGS_AT_ONCE = 4
# Creators racing for one alias each take the next free one, past this many lost races 409.
ALIAS_ATTEMPTS = 20


class SpaceService:
    def __init__(
        self,
        unit_of_work: UnitOfWork,
        providers: Mapping[str, SpaceStore],
        default_project_quota: int,
        default_personal_quota: int,
        provider_for_type: Mapping[str, str] | None = None,
        *,
        clock: Clock,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._engine = engine = unit_of_work.engine
        self._providers = providers
        self._default_provider = next(iter(providers.values()))
        self._provider_for_type = provider_for_type or {}
        self._project_quota = default_project_quota
        self._personal_quota = default_personal_quota
        self._listing_slots: AbstractAsyncContextManager[Any] = (
            asyncio.Semaphore(SQLITE_LISTINGS_AT_ONCE)
            if engine.dialect.name == "sqlite"
            else nullcontext()
        )

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction; what it logs is fanned out and signalled (see `UnitOfWork`)."""
        return self._unit_of_work.begin()

    async def list_visible(
        self,
        principal: Principal,
        where: Filter | None,
        order: OrderBy | None,
        offset: int,
        *,
        held_only: bool = False,
    ) -> tuple[list[SpaceView], bool]:
        """A page of the spaces the caller may see (every space, for administrators), or of
        those they hold a role in (`held_only`); and whether more follow."""
        async with self.reading() as conn:
            page = (where, order, offset)
            rows = await self._page(conn, principal, page, held_only, with_members=True)
        views = group_rows(rows)
        return views[:PAGE_SIZE], len(views) > PAGE_SIZE

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one listing's reads (a few at a time on SQLite)."""
        async with self._listing_slots, self._engine.connect() as conn:
            yield conn

    async def list_versions(
        self, conn: AsyncConnection, principal: Principal, page: PageQuery, held_only: bool
    ) -> tuple[list[tuple[str, int]], bool]:
        """`list_visible`'s page as (space id, version), without members; and whether more
        follow."""
        rows = await self._page(conn, principal, page, held_only, with_members=False)
        return [(row.id, row.version) for row in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE

    async def _page(
        self,
        conn: AsyncConnection,
        principal: Principal,
        page: PageQuery,
        held_only: bool,
        *,
        with_members: bool,
    ) -> list[Any]:
        visible_to = principal.keys if held_only else rule.visible_to(principal)
        now = self._clock.now()
        return await store.list_page(
            conn, visible_to, now, *page, PAGE_SIZE + 1, with_members=with_members
        )

    async def views_of(self, conn: AsyncConnection, space_ids: list[str]) -> list[SpaceView]:
        """These spaces with their members, whoever asks: for a caller who was just shown
        them by `list_versions` (those gone since are missing)."""
        return group_rows(await store.with_members(conn, space_ids))

    async def get_visible(self, principal: Principal, space_id: str) -> SpaceView:
        async with self._engine.connect() as conn:
            return await self.visible(conn, principal, space_id)

    async def quota_of(self, space_id: str) -> int | None:
        """A space's quota, whoever asks (the gateway, for a share space's holding space)."""
        async with self._engine.connect() as conn:
            return await store.quota_total(conn, space_id)

    def role(self, principal: Principal, view: SpaceView) -> str | None:
        """The role the caller holds in the space now (None: none; an admin still sees it)."""
        return rule.role_held(principal.keys, view.members, self._clock.now())

    async def personal_space(self, principal: Principal) -> SpaceView:
        async with self._engine.connect() as conn:
            return await self.visible(conn, principal, await _personal_id(conn, principal))

    async def personal_space_id(self, principal: Principal) -> str:
        """Only the id: for a caller that hands the request on to a gateway which reads the
        space and checks the caller's role itself."""
        async with self._engine.connect() as conn:
            return await _personal_id(conn, principal)

    async def ensure_personal_space(
        self, conn: AsyncConnection, user_id: str, username: str, display_name: str
    ) -> None:
        """Create the user's personal space unless it exists (called on first sight)."""
        if await store.personal_space_id(conn, user_id) is not None:
            return
        alias = f"personal/{slug(username)}"
        await self._create(conn, "personal", alias, display_name, "", self._personal_quota, user_id)

    async def create_project(
        self, principal: Principal, name: Any, description: Any, quota_total: Any
    ) -> SpaceView:
        if not principal.is_admin:
            raise Forbidden("only administrators may create project spaces")
        name = validate_name(name)
        description = description_of(description)
        total = self._project_quota if quota_total is None else validate_quota(quota_total)
        async with self.transaction() as conn:
            alias = f"project/{slug(name)}"
            space_id = await self._create(
                conn, "project", alias, name, description, total, principal.user_id
            )
            return await self.visible(conn, principal, space_id)

    async def _create(
        self,
        conn: AsyncConnection,
        drive_type: str,
        alias: str,
        name: str,
        description: str,
        quota_total: int | None,
        creator: str,
    ) -> str:
        """A new space under `alias`, or the first free `alias-2`, `alias-3`, ..."""
        space_id = uuid.uuid4().hex
        provider = self._provider(drive_type)
        info = await provider.create_space(space_id)
        try:
            row = {
                "id": space_id,
                "name": name,
                "description": description,
                "drive_type": drive_type,
                "provider": provider.name,
                "root_id": info.root_id,
                "etag": info.etag,
                "quota_total": quota_total or None,
                "quota_used": info.used,
                "status": "enabled",
                "created_by": creator,
            }
            await self.add_space(conn, alias, row, roles.MANAGER)
        except BaseException:
            await _forget(provider, space_id)
            raise
        return space_id

    async def add_space(
        self, conn: AsyncConnection, alias: str, row: dict[str, Any], role: str
    ) -> None:
        """Insert the space `row` under `alias` (or the first free `alias-2`, ...), its
        creator (`row["created_by"]`, one of our users) holding `role` in it, and log its
        creation, in the caller's transaction."""
        now = self._clock.now()
        if not await store.insert_with_free_alias(conn, alias, row, now, ALIAS_ATTEMPTS):
            raise Conflict(f"no free alias like {alias}; try again", code="conflict")
        creator = row["created_by"]
        member = {"principal_type": USER, "principal_id": creator, "role": role}
        await store.add_member(
            conn, {"id": store.new_member_id(), "space_id": row["id"], **member}, now
        )
        data = {"driveType": row["drive_type"], "name": row["name"], "etag": row["etag"]}
        await changes.append(conn, row["id"], "created", {**data, "createdBy": creator}, now)

    async def update(
        self, principal: Principal, space_id: str, patch: Mapping[str, Any], restore: bool
    ) -> SpaceView:
        async with self.transaction() as conn:
            view = await self.managed(conn, principal, space_id)
            values: dict[str, Any] = {}
            if "name" in patch:
                values["name"] = validate_name(patch["name"])
            if "description" in patch:
                values["description"] = description_of(patch["description"])
            if "quota" in patch:
                if not principal.is_admin:
                    raise Forbidden("only administrators may change a quota")
                values["quota_total"] = quota_patch(patch["quota"])
            if restore:
                if view.space.status != "disabled":
                    raise Conflict("the space is not disabled", code="conflict")
                values["status"] = "enabled"
            elif view.space.status == "disabled" and values:
                raise Conflict(
                    "a disabled space cannot be changed; restore it first", code="conflict"
                )
            if not values:
                raise BadRequest("nothing to change: give name, description or quota")
            now = self._clock.now()
            await store.update_space(conn, space_id, values, now)
            for kind, key in (
                ("renamed", "name"),
                ("described", "description"),
                ("quota", "quota_total"),
                ("restored", "status"),
            ):
                if key in values:
                    await changes.append(conn, space_id, kind, {key: values[key]}, now)
            return await self.visible(conn, principal, space_id)

    async def disable(self, principal: Principal, space_id: str) -> None:
        async with self.transaction() as conn:
            view = await self.managed(conn, principal, space_id)
            if view.space.drive_type == "personal" and not principal.is_admin:
                raise Forbidden("only administrators may disable a personal space")
            if view.space.status == "disabled":
                return
            await store.update_space(conn, space_id, {"status": "disabled"}, self._clock.now())
            await changes.append(conn, space_id, "disabled", {}, self._clock.now())

    async def purge(self, principal: Principal, space_id: str) -> None:
        async with self.transaction() as conn:
            view = await self.managed(conn, principal, space_id)
            if view.space.status != "disabled":
                raise Conflict(
                    "only a disabled space can be purged; disable it first", code="conflict"
                )
            for share_space_id, _folder, _used in await share_spaces_of(conn, space_id):
                for shared in group_rows(await store.get_with_members(conn, share_space_id)):
                    await self._log_deleted(conn, shared)
            await self._log_deleted(conn, view)
            await store.delete_space(conn, space_id)  # its share spaces with it (a cascade)
            provider = self._providers.get(view.space.provider)
        if provider is not None:
            await _forget(provider, space_id)

    async def _log_deleted(self, conn: AsyncConnection, view: SpaceView) -> None:
        """A space goes: its members hear it, though they can no longer see it."""
        lost = [PrincipalKey(m.principal_type, m.principal_id) for m in view.members]
        await changes.append(conn, view.space.id, "deleted", {}, self._clock.now(), lost=lost)

    async def visible(
        self, conn: AsyncConnection, principal: Principal, space_id: str, for_update: bool = False
    ) -> SpaceView:
        """The space if the caller sees it, read in the caller's transaction; else 404."""
        if not is_identifier(space_id):
            raise NotFound(f"no space {space_id!r}")
        rows = await store.get_with_members(conn, space_id, for_update=for_update)
        views = group_rows(rows)
        if not views or not rule.sees(principal, views[0].members, self._clock.now()):
            raise NotFound(f"no space {space_id}")
        return views[0]

    async def managed(
        self, conn: AsyncConnection, principal: Principal, space_id: str
    ) -> SpaceView:
        """A space the caller may manage, locked until the transaction ends."""
        view = await self.visible(conn, principal, space_id, for_update=True)
        if rule.manages(principal, view.members, self._clock.now()):
            return view
        raise Forbidden("only managers of this space may do that")

    def _provider(self, drive_type: str) -> SpaceStore:
        """The provider configured for this type of space, else the first one."""
        name = self._provider_for_type.get(drive_type)
        return self._providers[name] if name else self._default_provider


async def _forget(provider: SpaceStore, space_id: str) -> None:
    try:
        await provider.delete_space(space_id)
    except Exception:
        logger.warning(
            "could not remove space %s from provider %s", space_id, provider.name, exc_info=True
        )


async def _personal_id(conn: AsyncConnection, principal: Principal) -> str:
    space_id = await store.personal_space_id(conn, principal.user_id)
    if space_id is None:
        raise NotFound("you have no personal space")
    return space_id
