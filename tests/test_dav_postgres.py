"""Locks, dead properties and chunked uploads on PostgreSQL behave as on SQLite (the same
tests, against a registry on a PostgreSQL database)."""

from __future__ import annotations

import pytest

from tests import test_dav_chunked_uploads as chunked
from tests import test_dav_locks as locks
from tests import test_dav_properties as properties
from tests.conftest import Registry
from tests.test_postgres_api import pg_registry  # noqa: F401 (a fixture)

pytestmark = pytest.mark.postgres


async def test_locks(pg_registry: Registry):  # noqa: F811
    async with pg_registry.client("einstein") as einstein:
        await locks.test_a_lock_keeps_writers_without_its_token_out(pg_registry, einstein)
        await locks.test_a_locked_folder_protects_what_is_below_it(pg_registry, einstein)


async def test_dead_properties(pg_registry: Registry):  # noqa: F811
    async with pg_registry.client("einstein") as einstein:
        await properties.test_properties_are_stored_returned_moved_copied_and_deleted(
            pg_registry, einstein
        )


async def test_chunked_uploads(pg_registry: Registry):  # noqa: F811
    async with pg_registry.client("einstein") as einstein:
        await chunked.test_oc_chunked_v1_writes_the_file_once_every_chunk_came(
            pg_registry, einstein
        )
        await chunked.test_chunking_ng_writes_the_file_on_the_move_of_its_chunks(
            pg_registry, einstein
        )
