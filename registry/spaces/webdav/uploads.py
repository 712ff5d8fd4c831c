"""Chunked uploads, whichever protocol brings the chunks: they wait in the registry's
database (every replica may receive any chunk, and no storage provider ever holds a chunk as
a file), then the whole file goes to the space in one PUT through the gateway's checks, so it
appears at once or not at all, counts against the quota by its total, and is one change."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message, Receive

from registry.core.clock import Clock
from registry.spaces.webdav import chunk_store

# Chunks of an upload left unfinished this long are removed by the retention sweep.
ABANDONED_AFTER = timedelta(days=1)
MAX_CHUNK_BYTES = 100 * 1024 * 1024  # larger chunks get 413; clients then send smaller ones


@dataclass(frozen=True)
class Upload:
    id: str
    chunks: tuple[tuple[str, int], ...]  # (name, size) in the order they make the file

    @property
    def size(self) -> int:
        return sum(size for _, size in self.chunks)


class ChunkedUploads:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def begin(self, owner: str, key: str, space_id: str | None = None) -> bool:
        """Start an upload; False if the owner has one of that key already."""
        async with self._engine.begin() as conn:
            return await chunk_store.create(
                conn, uuid.uuid4().hex, owner, _digest(key), space_id, self._clock.now()
            )

    async def add(
        self, owner: str, key: str, name: str, data: bytes, *, space_id: str | None = None
    ) -> Upload | None:
        """Store a chunk and return the upload as it is now. Given a `space_id` (OC-Chunked
        v1, which has no start), the first chunk starts the upload; else None when there is
        no upload of that key."""
        async with self._engine.begin() as conn:
            upload_id = await chunk_store.find(conn, owner, _digest(key), hold=True)
            if upload_id is None:
                if space_id is None:
                    return None
                await chunk_store.create(
                    conn, uuid.uuid4().hex, owner, _digest(key), space_id, self._clock.now()
                )  # or another chunk of the same upload started it just now
                upload_id = await chunk_store.find(conn, owner, _digest(key), hold=True)
                assert upload_id is not None
            await chunk_store.put_chunk(conn, upload_id, name, data)
            return Upload(upload_id, _ordered(await chunk_store.chunks(conn, upload_id)))

    async def get(self, owner: str, key: str) -> Upload | None:
        async with self._engine.connect() as conn:
            upload_id = await chunk_store.find(conn, owner, _digest(key))
            if upload_id is None:
                return None
            return Upload(upload_id, _ordered(await chunk_store.chunks(conn, upload_id)))

    def body(self, upload: Upload) -> Receive:
        """The file the chunks make, read from the database one chunk at a time."""
        names = [name for name, _ in upload.chunks]

        async def receive() -> Message:
            if not names:
                return {"type": "http.disconnect"}
            async with self._engine.connect() as conn:
                data = await chunk_store.chunk_data(conn, upload.id, names.pop(0))
            return {"type": "http.request", "body": data, "more_body": bool(names)}

        return receive

    async def end(self, upload: Upload) -> None:
        async with self._engine.begin() as conn:
            await chunk_store.remove(conn, upload.id)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def _ordered(chunks: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Chunks named by numbers go by their value (`2` before `10`), others by name."""
    if all(name.isascii() and name.isdigit() for name, _ in chunks):
        return tuple(sorted(chunks, key=lambda chunk: int(chunk[0])))
    return tuple(sorted(chunks))
