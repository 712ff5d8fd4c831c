"""Spaces and their members.

Listing a user's spaces is one statement driven by the `ix_members_principal` index: its cost grows
with the spaces the user can see, not with all spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Select

from registry.models import Member, Space, User, table
from registry.odata import Filter, OrderBy

spaces = table(Space)
members = table(Member)
users = table(User)

MEMBER_COLUMNS = (
    members.c.id.label("m_id"),
    members.c.principal_type.label("m_type"),
    members.c.principal_id.label("m_principal"),
    members.c.role.label("m_role"),
    members.c.expires_at.label("m_expires"),
    members.c.created_at.label("m_created"),
    users.c.display_name.label("m_display_name"),
    users.c.username.label("m_username"),
)


def principal_clause(user_id: str, groups: Sequence[str]) -> ColumnElement[bool]:
    by_user = and_(members.c.principal_type == "user", members.c.principal_id == user_id)
    if not groups:
        return by_user
    by_group = and_(members.c.principal_type == "group", members.c.principal_id.in_(groups))
    return or_(by_user, by_group)


async def list_page(
    conn: AsyncConnection,
    visible_to: tuple[str, Sequence[str]] | None,
    where: Filter | None,
    order: OrderBy | None,
    offset: int,
    limit: int,
) -> list[Row]:
    """One page of spaces (all spaces when `visible_to` is None) joined with their members.

    Rows repeat a space once per member; they come in page order.
    """
    page: Select[Any] = select(spaces)
    if visible_to is not None:
        mine = select(members.c.space_id).where(
            principal_clause(*visible_to),
            or_(members.c.expires_at.is_(None), members.c.expires_at > datetime.now(UTC)),
        )
        page = page.where(spaces.c.id.in_(mine))
    if where is not None:
        clauses = [spaces.c[cond.column] == cond.value for cond in where.conditions]
        page = page.where(or_(*clauses) if where.any_of else and_(*clauses))
    page = page.order_by(*_order(order)).offset(offset).limit(limit)
    cte = page.cte("page")
    statement = (
        select(cte, *MEMBER_COLUMNS)
        .select_from(
            cte.outerjoin(members, members.c.space_id == cte.c.id).outerjoin(
                users,
                and_(members.c.principal_type == "user", users.c.id == members.c.principal_id),
            )
        )
        .order_by(*_order(order, cte.c), members.c.created_at, members.c.id)
    )
    return list((await conn.execute(statement)).all())


def _order(order: OrderBy | None, columns: Any = None) -> list[Any]:
    columns = spaces.c if columns is None else columns
    if order is None:
        return [columns.name, columns.id]
    column = columns[order.column]
    return [column.desc() if order.descending else column.asc(), columns.id]


async def get_with_members(conn: AsyncConnection, space_id: str) -> list[Row]:
    statement = (
        select(spaces, *MEMBER_COLUMNS)
        .select_from(
            spaces.outerjoin(members, members.c.space_id == spaces.c.id).outerjoin(
                users,
                and_(members.c.principal_type == "user", users.c.id == members.c.principal_id),
            )
        )
        .where(spaces.c.id == space_id)
        .order_by(members.c.created_at, members.c.id)
    )
    return list((await conn.execute(statement)).all())


async def get(conn: AsyncConnection, space_id: str, *, for_update: bool = False) -> Row | None:
    statement = select(spaces).where(spaces.c.id == space_id)
    if for_update:
        statement = statement.with_for_update()
    return (await conn.execute(statement)).first()


async def personal_space_id(conn: AsyncConnection, user_id: str) -> str | None:
    statement = (
        select(spaces.c.id)
        .join(members, members.c.space_id == spaces.c.id)
        .where(
            spaces.c.drive_type == "personal",
            spaces.c.created_by == user_id,
            members.c.principal_type == "user",
            members.c.principal_id == user_id,
        )
    )
    return (await conn.execute(statement)).scalar()


async def alias_taken(conn: AsyncConnection, alias: str) -> bool:
    return (
        await conn.execute(select(spaces.c.id).where(spaces.c.alias == alias))
    ).first() is not None


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    await conn.execute(spaces.insert().values(created_at=now, updated_at=now, **values))


async def update_space(conn: AsyncConnection, space_id: str, values: dict[str, Any]) -> None:
    await conn.execute(
        update(spaces).where(spaces.c.id == space_id).values(updated_at=datetime.now(UTC), **values)
    )


async def delete_space(conn: AsyncConnection, space_id: str) -> None:
    await conn.execute(delete(members).where(members.c.space_id == space_id))
    await conn.execute(delete(spaces).where(spaces.c.id == space_id))


async def add_member(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(members.insert().values(created_at=datetime.now(UTC), **values))


async def find_member(
    conn: AsyncConnection, space_id: str, principal_type: str, principal_id: str
) -> Row | None:
    statement = select(members).where(
        members.c.space_id == space_id,
        members.c.principal_type == principal_type,
        members.c.principal_id == principal_id,
    )
    return (await conn.execute(statement)).first()


async def update_member(conn: AsyncConnection, member_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(members).where(members.c.id == member_id).values(**values))


async def delete_member(conn: AsyncConnection, member_id: str) -> None:
    await conn.execute(delete(members).where(members.c.id == member_id))


async def count_managers(conn: AsyncConnection, space_id: str) -> int:
    statement = (
        select(func.count())
        .select_from(members)
        .where(members.c.space_id == space_id, members.c.role == "manager")
    )
    return int((await conn.execute(statement)).scalar_one())
