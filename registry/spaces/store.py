"""Spaces and their members.

Listing a user's spaces is one statement driven by the `ix_members_principal` index: its cost grows
with the spaces the user can see, not with all spaces.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    bindparam,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from registry.access import rule
from registry.access.principal import USER, PrincipalKey
from registry.core.models import ListingVersion, Member, Space, User, table
from registry.spaces.odata import Filter, OrderBy

spaces = table(Space)
members = table(Member)
users = table(User)
listing_versions = table(ListingVersion)

MEMBER_COLUMNS = (
    members.c.id.label("m_id"),
    members.c.principal_type.label("m_type"),
    members.c.principal_id.label("m_principal"),
    members.c.role.label("m_role"),
    members.c.expires_at.label("m_expires"),
    members.c.created_at.label("m_created"),
    users.c.display_name.label("m_display_name"),
)


def _with_members(source: Any) -> Any:
    """`source` (spaces, or a page of them) outer-joined with members and their user names."""
    return source.outerjoin(members, members.c.space_id == source.c.id).outerjoin(
        users, and_(members.c.principal_type == USER, users.c.id == members.c.principal_id)
    )


async def list_page(
    conn: AsyncConnection,
    visible_to: frozenset[PrincipalKey] | None,
    now: datetime,
    where: Filter | None,
    order: OrderBy | None,
    offset: int,
    limit: int,
    *,
    with_members: bool = True,
) -> list[Row[Any]]:
    """One page of the spaces these principals hold a role in at `now` (all spaces when
    `visible_to` is None) joined with their members; or, not `with_members`, only their `id`
    and `version` (what a listing that keeps encoded drives needs first).

    Rows repeat a space once per member; they come in page order.
    """
    conditions = () if where is None else where.conditions
    shape = (
        with_members,
        None if visible_to is None else rule.key_types(visible_to),
        tuple(cond.column for cond in conditions),
        where is not None and where.any_of,
        None if order is None else (order.column, order.descending),
    )
    statement = _page_statement(*shape)
    params: dict[str, Any] = {"offset": offset, "limit": limit}
    if visible_to is not None:
        params.update(rule.bound_values(visible_to, now))
    for n, cond in enumerate(conditions):
        params[f"where_{n}"] = cond.value
    return list((await conn.execute(statement, params)).all())


# The listing's statements are built once per shape (with members or only versions, the kinds
# and numbers of principals, filtered columns, and/or, order): building and hashing a statement
# costs more than running it.
STATEMENTS_CACHED = 256


async def listing_versions_of(
    conn: AsyncConnection, keys: frozenset[PrincipalKey]
) -> tuple[tuple[str, str, int], ...]:
    """The listing versions of `keys` as (type, id, version), in key order; a key without a row
    (version 0) is left out."""
    shape, values = rule.each_key(keys)
    rows = await conn.execute(_versions_statement(shape), values)
    return tuple((row[0], row[1], row[2]) for row in rows)


@lru_cache(maxsize=STATEMENTS_CACHED)
def _versions_statement(shape: tuple[tuple[str, int], ...]) -> Select[Any]:
    columns = (listing_versions.c.principal_type, listing_versions.c.principal_id)
    named = rule.naming_each(*columns, shape)
    return select(*columns, listing_versions.c.version).where(named).order_by(*columns)


async def first_role_end(
    conn: AsyncConnection, keys: frozenset[PrincipalKey], now: datetime
) -> datetime | None:
    """When the first role `keys` hold at `now` ends (None: none of them ends)."""
    statement = _role_ends_statement(rule.key_types(keys))
    ends: datetime | None = (await conn.execute(statement, rule.bound_values(keys, now))).scalar()
    return ends


_role_ends_statement = lru_cache(maxsize=STATEMENTS_CACHED)(rule.role_ends_bound)


@lru_cache(maxsize=STATEMENTS_CACHED)
def _page_statement(
    with_members: bool,
    visible: tuple[str, ...] | None,
    where_columns: tuple[str, ...],
    any_of: bool,
    order_key: tuple[str, bool] | None,
) -> Select[Any]:
    order = None if order_key is None else OrderBy(*order_key)
    page: Select[Any] = select(spaces)
    if visible is not None:
        page = page.where(spaces.c.id.in_(rule.spaces_held_bound(visible)))
    if where_columns:
        clauses = [
            spaces.c[column] == bindparam(f"where_{n}") for n, column in enumerate(where_columns)
        ]
        page = page.where(or_(*clauses) if any_of else and_(*clauses))
    page = (
        page.order_by(*_order(order))
        .offset(bindparam("offset", type_=BigInteger))
        .limit(bindparam("limit", type_=Integer))
    )
    if not with_members:
        return page.with_only_columns(spaces.c.id, spaces.c.version)
    cte = page.cte("page")
    return (
        select(cte, *MEMBER_COLUMNS)
        .select_from(_with_members(cte))
        .order_by(*_order(order, cte.c), members.c.created_at, members.c.id)
    )


def _order(order: OrderBy | None, columns: Any = None) -> list[Any]:
    columns = spaces.c if columns is None else columns
    if order is None:
        return [columns.name, columns.id]
    column = columns[order.column]
    return [column.desc() if order.descending else column.asc(), columns.id]


async def get_with_members(
    conn: AsyncConnection, space_id: str, *, for_update: bool = False
) -> list[Row[Any]]:
    """The space's row once per member; `for_update` locks the space row (PostgreSQL)."""
    statement = _spaces_with_members(spaces.c.id == space_id)
    if for_update:
        statement = statement.with_for_update(of=spaces)
    return list((await conn.execute(statement)).all())


async def with_members(conn: AsyncConnection, space_ids: Sequence[str]) -> list[Row[Any]]:
    """These spaces' rows once per member, each space's together."""
    statement = _spaces_with_members(spaces.c.id.in_(space_ids))
    return list((await conn.execute(statement)).all())


def _spaces_with_members(condition: ColumnElement[bool]) -> Select[Any]:
    return (
        select(spaces, *MEMBER_COLUMNS)
        .select_from(_with_members(spaces))
        .where(condition)
        .order_by(spaces.c.id, members.c.created_at, members.c.id)
    )


async def personal_space_id(conn: AsyncConnection, user_id: str) -> str | None:
    statement = (
        select(spaces.c.id)
        .join(members, members.c.space_id == spaces.c.id)
        .where(
            spaces.c.drive_type == "personal",
            spaces.c.created_by == user_id,
            members.c.principal_type == USER,
            members.c.principal_id == user_id,
        )
    )
    return (await conn.execute(statement)).scalar()


async def quota_total(conn: AsyncConnection, space_id: str) -> int | None:
    found = select(spaces.c.quota_total).where(spaces.c.id == space_id)
    return (await conn.execute(found)).scalar()


async def alias_taken(conn: AsyncConnection, alias: str) -> bool:
    return (
        await conn.execute(select(spaces.c.id).where(spaces.c.alias == alias))
    ).first() is not None


async def insert(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> None:
    await conn.execute(spaces.insert().values(created_at=now, updated_at=now, **values))


async def free_alias(conn: AsyncConnection, alias: str) -> str:
    """`alias` if no space has it, else the first free `alias-2`, `alias-3`, ..."""
    candidate, suffix = alias, 1
    while await alias_taken(conn, candidate):
        suffix += 1
        candidate = f"{alias}-{suffix}"
    return candidate


async def insert_with_free_alias(
    conn: AsyncConnection, alias: str, values: dict[str, Any], now: datetime, attempts: int
) -> str | None:
    """Insert the space under `alias` or the next free one; the alias it got, or None when
    other transactions took the free one `attempts` times in a row.

    An alias another transaction is inserting makes the insert wait for it and then do nothing
    (no unique-index error, on SQLite and PostgreSQL alike), so concurrent creators of one name
    each end up with an alias of their own."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for _ in range(attempts):
        candidate = await free_alias(conn, alias)
        statement = (
            dialect.insert(spaces)
            .values(created_at=now, updated_at=now, alias=candidate, **values)
            .on_conflict_do_nothing(index_elements=[spaces.c.alias])
        )
        if (await conn.execute(statement)).rowcount == 1:
            return candidate
    return None


async def update_space(
    conn: AsyncConnection, space_id: str, values: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        update(spaces).where(spaces.c.id == space_id).values(updated_at=now, **values)
    )


async def delete_space(conn: AsyncConnection, space_id: str) -> None:
    """Its members go with it (ON DELETE CASCADE)."""
    await conn.execute(delete(spaces).where(spaces.c.id == space_id))


async def add_member(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> None:
    await conn.execute(members.insert().values(created_at=now, **values))


async def update_member(conn: AsyncConnection, member_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(members).where(members.c.id == member_id).values(**values))


async def delete_member(conn: AsyncConnection, member_id: str) -> None:
    await conn.execute(delete(members).where(members.c.id == member_id))


def new_member_id() -> str:
    return uuid.uuid4().hex
