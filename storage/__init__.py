"""Storage providers: where the files of a space live. Knows nothing of users or domains."""

from storage.drivers import DriverNotFound, load_provider
from storage.provider import (
    Change,
    ChangeCallback,
    Entry,
    PathNotFound,
    SpaceInfo,
    SpaceNotFound,
    StorageError,
    StorageProvider,
)

__all__ = [
    "Change",
    "ChangeCallback",
    "DriverNotFound",
    "Entry",
    "PathNotFound",
    "SpaceInfo",
    "SpaceNotFound",
    "StorageError",
    "StorageProvider",
    "load_provider",
]
