"""What storage providers report, copied into the registry and logged as changes: a space's
new root ETag and usage, or a provider going away and coming back.

Applying an event is idempotent (a report of the ETag we already hold changes nothing), so a
repeated delivery or a full reconciliation after a provider restart logs nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select, update

from registry.models import Space, table
from registry.spaces import SpaceService
from registry.store import changes
from storage import Availability, Change, ProviderEvent, StorageError, StorageProvider

logger = logging.getLogger("spacereg.providers")

spaces = table(Space)

PATHS_PER_CHANGE_MAX = 100


class ProviderEvents:
    """Providers hand events to `submit`, which only queues them (a provider may report from
    inside a registry transaction); `run`, a supervised worker, applies them. Changes to one
    space that queue up are merged into one."""

    def __init__(self, space_service: SpaceService) -> None:
        self._spaces = space_service
        self._changes: dict[tuple[str, str], Change] = {}
        self._availability: list[tuple[str, Availability]] = []
        self._woken = asyncio.Event()

    async def submit(self, provider: str, event: ProviderEvent) -> None:
        if isinstance(event, Change):
            key = (provider, event.space_id)
            prior = self._changes.pop(key, None)
            if prior is not None:
                paths = tuple(dict.fromkeys((*prior.paths, *event.paths)))
                event = replace(event, paths=paths)
            self._changes[key] = event
        else:
            self._availability.append((provider, event))
        self._woken.set()

    async def run(self) -> None:
        while True:
            await self._woken.wait()
            self._woken.clear()
            while self._changes or self._availability:
                await self._apply_queued()

    async def reconcile(self, providers: Mapping[str, StorageProvider]) -> None:
        """Compare every space with its provider once, for what changed while we were down."""
        async with self._spaces.transaction() as conn:
            rows = (await conn.execute(select(spaces.c.id, spaces.c.provider))).all()
        for space_id, name in rows:
            provider = providers.get(name)
            if provider is None:
                continue
            try:
                info = await provider.get_space(space_id)
            except StorageError as exc:
                logger.warning("cannot reconcile space %s on %s: %s", space_id, name, exc)
                continue
            await self.submit(name, Change(space_id, info.etag, info.used, ()))

    async def _apply_queued(self) -> None:
        availability, self._availability = self._availability, []
        changes_, self._changes = self._changes, {}
        try:
            for provider, event in availability:
                await self._availability_changed(provider, event)
                availability = availability[1:]
            for key, change in list(changes_.items()):
                await self._content_changed(key[0], change)
                del changes_[key]
        except BaseException:
            # Put back what was not applied (newer reports win), then let the supervisor retry.
            self._availability[:0] = availability
            for key, change in changes_.items():
                self._changes.setdefault(key, change)
            raise

    async def _content_changed(self, provider: str, change: Change) -> None:
        async with self._spaces.transaction() as conn:
            found = (
                await conn.execute(
                    select(spaces.c.etag, spaces.c.quota_used)
                    .where(spaces.c.id == change.space_id, spaces.c.provider == provider)
                    .with_for_update()
                )
            ).first()
            if found is None:
                logger.debug("provider %s reported unknown space %s", provider, change.space_id)
                return
            if (found.etag, found.quota_used) == (change.etag, change.used):
                return
            await conn.execute(
                update(spaces)
                .where(spaces.c.id == change.space_id)
                .values(etag=change.etag, quota_used=change.used, updated_at=datetime.now(UTC))
            )
            paths = list(change.paths)
            data: dict[str, object] = {
                "etag": change.etag,
                "used": change.used,
                "paths": paths[:PATHS_PER_CHANGE_MAX],
            }
            if len(paths) > PATHS_PER_CHANGE_MAX:
                data["pathsTruncated"] = True
            await changes.append(conn, change.space_id, "content", data)

    async def _availability_changed(self, provider: str, event: Availability) -> None:
        state = "available" if event.available else "unavailable"
        async with self._spaces.transaction() as conn:
            affected = list(
                (
                    await conn.execute(
                        select(spaces.c.id).where(
                            spaces.c.provider == provider, spaces.c.availability != state
                        )
                    )
                ).scalars()
            )
            if not affected:
                return
            await conn.execute(
                update(spaces).where(spaces.c.id.in_(affected)).values(availability=state)
            )
            for space_id in affected:
                await changes.append(
                    conn, space_id, "availability", {"availability": state, "reason": event.reason}
                )
        logger.warning(
            "provider %s is %s (%s): %d spaces", provider, state, event.reason, len(affected)
        )
