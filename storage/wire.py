"""What a provider service and the remote driver say to each other, in one place for both ends:
where the API and the WebDAV app are mounted, spaces and entries as JSON, and error answers
(`{"error": {"code", "message"}}`, also those of the WebDAV proxy and the signature check)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from storage.provider import Entry, SpaceInfo

API = "/provider/v1"
DAV_MOUNT = "/dav/spaces"


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return JSON({"error": {"code": code, "message": message}}, status, headers)


def space_json(info: SpaceInfo) -> dict[str, Any]:
    return {
        "id": info.space_id,
        "rootId": info.root_id,
        "etag": info.etag,
        "used": info.used,
        "modified": info.modified.isoformat(),
    }


def space_of(item: Mapping[str, Any]) -> SpaceInfo:
    """The SpaceInfo in `space_json`'s shape; KeyError, TypeError or ValueError if it is not."""
    return SpaceInfo(
        str(item["id"]),
        str(item["rootId"]),
        str(item["etag"]),
        int(item["used"]),
        datetime.fromisoformat(item["modified"]),
    )


def entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "isDir": entry.is_dir,
        "size": entry.size,
        "etag": entry.etag,
        "modified": entry.modified.isoformat(),
    }


def entry_of(item: Mapping[str, Any]) -> Entry:
    """The Entry in `entry_json`'s shape; KeyError, TypeError or ValueError if it is not."""
    return Entry(
        str(item["path"]),
        bool(item["isDir"]),
        int(item["size"]),
        str(item["etag"]),
        datetime.fromisoformat(item["modified"]),
    )
