"""Storage providers: where the files of a space live. Knows nothing of users or domains."""

from storage.drivers import DriverNotFound, load_provider
from storage.provider import (
    Availability,
    Change,
    ChangeCallback,
    Entry,
    PathNotFound,
    ProviderEvent,
    ProviderUnavailable,
    SpaceInfo,
    SpaceNotFound,
    StorageError,
    StorageProvider,
    Worker,
)

__all__ = [
    "Availability",
    "Change",
    "ChangeCallback",
    "DriverNotFound",
    "Entry",
    "PathNotFound",
    "ProviderEvent",
    "ProviderUnavailable",
    "SpaceInfo",
    "SpaceNotFound",
    "StorageError",
    "StorageProvider",
    "Worker",
    "load_provider",
]
