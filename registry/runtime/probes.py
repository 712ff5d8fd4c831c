"""Whether what the registry depends on answers now: shared by `/readyz` and the metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.changes.bus import Bus
from registry.changes.nats_bus import NatsBus
from storage import ProviderUnavailable, StorageError, StorageProvider

PROBE_TIMEOUT_S = 2.0
# No space has this id: a provider that answers "not found" for it is reachable.
_NO_SUCH_SPACE = "00000000-0000-0000-0000-000000000000"


async def database_problem(engine: AsyncEngine) -> str | None:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # whatever failed (a timeout, a refused connection), it is not ready
        return f"database unreachable: {type(exc).__name__}"
    return None


def bus_problem(bus: Bus) -> str | None:
    if isinstance(bus, NatsBus) and not bus.connected:
        return "bus unreachable: not connected to NATS"
    return None


async def provider_problem(provider: StorageProvider) -> str | None:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await provider.get_space(_NO_SUCH_SPACE)
    except TimeoutError:
        return f"provider {provider.name} unreachable: no answer in {PROBE_TIMEOUT_S:g} s"
    except ProviderUnavailable as exc:
        return f"provider {provider.name} unreachable: {type(exc).__name__}"
    except StorageError:
        return None  # it answered (not found)
    return None


async def provider_problems(providers: Mapping[str, StorageProvider]) -> dict[str, str | None]:
    """Each provider's problem (None: it answers), probed at once."""
    found = await asyncio.gather(*(provider_problem(p) for p in providers.values()))
    return dict(zip(providers, found, strict=True))
