"""The append-only change log. Written in the same transaction as the change it records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from registry.models import ChangeRecord, table

changes = table(ChangeRecord)


async def append(conn: AsyncConnection, space_id: str, kind: str, payload: dict[str, Any]) -> None:
    await conn.execute(
        changes.insert().values(
            space_id=space_id, kind=kind, payload=payload, created_at=datetime.now(UTC)
        )
    )
