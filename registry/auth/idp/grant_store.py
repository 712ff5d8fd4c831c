"""The embedded IdP's authorization codes and refresh tokens, kept by SHA-256 only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.models import IdpGrant, table

grants = table(IdpGrant)


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(grants.insert().values(**values))


async def redeem(
    conn: AsyncConnection, token_hash: str, kind: str, client_id: str, now: datetime
) -> Row[Any] | None:
    """Mark an unused, unexpired grant used and return it; None if there is none such."""
    result = await conn.execute(
        update(grants)
        .where(
            grants.c.token_hash == token_hash,
            grants.c.kind == kind,
            grants.c.client_id == client_id,
            grants.c.used_at.is_(None),
            grants.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(grants)
    )
    found: Row[Any] | None = result.first()
    return found
