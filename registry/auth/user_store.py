"""Users as the trusted issuers know them, keyed by (issuer, subject)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.models import User, table

users = table(User)


async def upsert(
    conn: AsyncConnection,
    issuer: str,
    subject: str,
    username: str,
    display_name: str,
    email: str | None,
    now: datetime,
) -> tuple[str, bool]:
    """Return (user id, created); a new user was first seen at `now`. Safe when several
    replicas see a new user at once."""
    found = await find_by_subject(conn, issuer, subject)
    if found is not None:
        if (found.display_name, found.email) != (display_name, email):
            await conn.execute(
                users.update()
                .where(users.c.id == found.id)
                .values(display_name=display_name, email=email)
            )
        return found.id, False
    user_id = uuid.uuid4().hex
    try:
        async with conn.begin_nested():
            await conn.execute(
                users.insert().values(
                    id=user_id,
                    issuer=issuer,
                    subject=subject,
                    username=username,
                    display_name=display_name,
                    email=email,
                    created_at=now,
                )
            )
    except IntegrityError:
        found = await find_by_subject(conn, issuer, subject)
        if found is None:
            raise
        return found.id, False
    return user_id, True


async def find_by_subject(conn: AsyncConnection, issuer: str, subject: str) -> Row[Any] | None:
    result = await conn.execute(
        select(users).where(users.c.issuer == issuer, users.c.subject == subject)
    )
    return result.first()


async def user_id_named(conn: AsyncConnection, id_or_username: str) -> str | None:
    """Our id of the user named by id or by username, if exactly one matches."""
    result = await conn.execute(
        select(users.c.id)
        .where((users.c.id == id_or_username) | (users.c.username == id_or_username))
        .limit(2)
    )
    ids = result.scalars().all()
    return str(ids[0]) if len(ids) == 1 else None


async def home_user_exists(conn: AsyncConnection, issuer: str, username: str) -> bool:
    return await home_user_id(conn, issuer, username) is not None


async def home_user_id(conn: AsyncConnection, issuer: str, username: str) -> str | None:
    result = await conn.execute(
        select(users.c.id).where(users.c.issuer == issuer, users.c.username == username).limit(1)
    )
    found = result.scalar()
    return None if found is None else str(found)


async def email_of(conn: AsyncConnection, user_id: str) -> str | None:
    result = await conn.execute(select(users.c.email).where(users.c.id == user_id))
    email = result.scalar()
    return None if email is None else str(email)
