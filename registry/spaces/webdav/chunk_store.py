"""The SQL of chunked uploads: an upload per owner and key, its chunks by name."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.models import DavUpload, DavUploadChunk, table
from registry.core.unique import insert_once

UPLOADS = table(DavUpload)
CHUNKS = table(DavUploadChunk)


async def find(conn: AsyncConnection, owner: str, key: str, *, hold: bool = False) -> str | None:
    """The upload's id; `hold` locks its row until the transaction ends (PostgreSQL), so
    that one request at a time adds a chunk and sees the upload complete."""
    query = select(UPLOADS.c.id).where(UPLOADS.c.owner == owner, UPLOADS.c.key == key)
    found = await conn.execute(query.with_for_update() if hold else query)
    return found.scalar()


async def create(
    conn: AsyncConnection, upload_id: str, owner: str, key: str, space_id: str | None, now: datetime
) -> bool:
    """Start the upload; False if the owner has one of that key already (a client sends
    its first chunks at once, and every replica agrees which of them started it)."""
    values = {"id": upload_id, "owner": owner, "key": key, "space_id": space_id, "created_at": now}
    return await insert_once(conn, UPLOADS, values)


async def put_chunk(conn: AsyncConnection, upload_id: str, name: str, data: bytes) -> None:
    """Store a chunk, replacing one of the same name (a client's retry)."""
    await conn.execute(delete(CHUNKS).where(CHUNKS.c.upload_id == upload_id, CHUNKS.c.name == name))
    await conn.execute(
        insert(CHUNKS).values(upload_id=upload_id, name=name, size=len(data), data=data)
    )


async def chunks(conn: AsyncConnection, upload_id: str) -> list[tuple[str, int]]:
    """The upload's chunks as (name, size)."""
    rows = await conn.execute(
        select(CHUNKS.c.name, CHUNKS.c.size).where(CHUNKS.c.upload_id == upload_id)
    )
    return [(name, size) for name, size in rows]


async def chunk_data(conn: AsyncConnection, upload_id: str, name: str) -> bytes:
    found = await conn.execute(
        select(CHUNKS.c.data).where(CHUNKS.c.upload_id == upload_id, CHUNKS.c.name == name)
    )
    return bytes(found.scalar_one())


async def remove(conn: AsyncConnection, upload_id: str) -> None:
    await conn.execute(delete(CHUNKS).where(CHUNKS.c.upload_id == upload_id))
    await conn.execute(delete(UPLOADS).where(UPLOADS.c.id == upload_id))


async def prune(conn: AsyncConnection, started_before: datetime) -> int:
    """Remove the uploads begun before `started_before` and their chunks."""
    old = select(UPLOADS.c.id).where(UPLOADS.c.created_at < started_before)
    await conn.execute(delete(CHUNKS).where(CHUNKS.c.upload_id.in_(old)))
    result = await conn.execute(delete(UPLOADS).where(UPLOADS.c.created_at < started_before))
    return int(result.rowcount or 0)
