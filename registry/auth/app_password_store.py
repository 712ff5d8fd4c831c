"""The `app_passwords` table: each function takes the connection of its caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.models import AppPassword, User, table

app_passwords = table(AppPassword)
users = table(User)


async def insert(
    conn: AsyncConnection, key: str, user_id: str, label: str, digest: str, now: datetime
) -> None:
    await conn.execute(
        app_passwords.insert().values(
            id=key, user_id=user_id, label=label, digest=digest, created_at=now
        )
    )


async def of_user(conn: AsyncConnection, user_id: str) -> Sequence[RowMapping]:
    result = await conn.execute(
        select(app_passwords.c.id, app_passwords.c.label, app_passwords.c.created_at)
        .where(app_passwords.c.user_id == user_id)
        .order_by(app_passwords.c.created_at, app_passwords.c.id)
    )
    return result.mappings().all()


async def remove(conn: AsyncConnection, user_id: str, key: str) -> bool:
    gone = await conn.execute(
        delete(app_passwords).where(app_passwords.c.id == key, app_passwords.c.user_id == user_id)
    )
    return bool(gone.rowcount)


async def with_user(conn: AsyncConnection, key: str) -> RowMapping | None:
    """The password `key` with its user's id, issuer, username and display name."""
    result = await conn.execute(
        select(
            app_passwords.c.digest,
            users.c.id.label("user_id"),
            users.c.issuer,
            users.c.username,
            users.c.display_name,
        )
        .join(users, users.c.id == app_passwords.c.user_id)
        .where(app_passwords.c.id == key)
    )
    return result.mappings().first()
