"""The one list of what the client endpoints announce (`status.php`, the OCS capabilities).
Only what really works is in it: a capability that lands adds its section or flag here."""

from __future__ import annotations

from copy import deepcopy
from importlib.metadata import version
from typing import Any

PRODUCT = "spacereg"
# The ownCloud server version whose client protocol we speak; clients pick features by it.
SERVER_VERSION = (10, 11, 0)

SECTIONS: dict[str, dict[str, Any]] = {
    "files": {
        "bigfilechunking": True,  # OC-Chunked v1 at the gateway (spaces.webdav.chunking_v1)
        "privateLinks": False,
        "undelete": False,
        "versioning": False,
        "blacklisted_files": [".htaccess"],
    },
    "checksums": {"supportedTypes": ["SHA1"], "preferredUploadType": "SHA1"},
    "dav": {"chunking": "1.0"},  # chunking NG at /remote.php/dav/uploads/<user>/
    "spaces": {"enabled": True, "version": "1.0.0", "projects": True},
}


def status() -> dict[str, Any]:
    """`status.php`: the fields the clients read before anything else."""
    text = ".".join(map(str, SERVER_VERSION))
    return {
        "installed": True,
        "maintenance": False,
        "needsDbUpgrade": False,
        "version": f"{text}.0",
        "versionstring": text,
        "edition": "Community",
        "productname": PRODUCT,
        "product": PRODUCT,
        "productversion": version("spacereg"),
        "extendedSupport": False,
    }


def capabilities() -> dict[str, Any]:
    """The `data` of the OCS capabilities answer."""
    major, minor, micro = SERVER_VERSION
    return {
        "version": {
            "major": major,
            "minor": minor,
            "micro": micro,
            "string": ".".join(map(str, SERVER_VERSION)),
            "edition": "Community",
            "product": PRODUCT,
        },
        "capabilities": {
            "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav", "status": status()},
            **deepcopy(SECTIONS),
        },
    }
