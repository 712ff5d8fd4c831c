"""Storage providers: where the files of a space live. Knows nothing of users or domains."""

from storage.drivers import DriverNotFound, load_provider
from storage.provider import (
    Availability,
    Change,
    ChangeCallback,
    ChangeSource,
    DavBackend,
    Entry,
    HttpChangeSource,
    PathNotFound,
    ProviderEvent,
    ProviderUnavailable,
    SpaceInfo,
    SpaceNotFound,
    SpaceStore,
    StorageError,
    StorageProvider,
    Worker,
    change_path,
)

__all__ = [
    "Availability",
    "Change",
    "ChangeCallback",
    "ChangeSource",
    "DavBackend",
    "DriverNotFound",
    "Entry",
    "HttpChangeSource",
    "PathNotFound",
    "ProviderEvent",
    "ProviderUnavailable",
    "SpaceInfo",
    "SpaceNotFound",
    "SpaceStore",
    "StorageError",
    "StorageProvider",
    "Worker",
    "change_path",
    "load_provider",
]
