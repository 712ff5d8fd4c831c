"""Find storage drivers through the `spacereg.storage` entry point group."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from storage.provider import StorageError, StorageProvider

ENTRY_POINT_GROUP = "spacereg.storage"


class DriverNotFound(StorageError):
    pass


def load_provider(name: str, driver: str, options: Mapping[str, Any]) -> StorageProvider:
    """Build provider `name` with the factory registered under `driver`."""
    found = entry_points(group=ENTRY_POINT_GROUP).select(name=driver)
    if not found:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        raise DriverNotFound(f"no storage driver {driver!r} (installed: {', '.join(known)})")
    factory = next(iter(found)).load()
    provider = factory(name, options)
    if not isinstance(provider, StorageProvider):
        raise DriverNotFound(f"driver {driver!r} did not build a StorageProvider")
    return provider
