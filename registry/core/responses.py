"""JSON responses encoded with orjson (listing drives is dominated by encoding), and the one
timestamp format every JSON body uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def timestamp(moment: datetime) -> str:
    """`2024-05-01T12:00:00.000000Z`; a naive moment is taken as UTC."""
    if moment.tzinfo is not None:
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        moment = moment.replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"
