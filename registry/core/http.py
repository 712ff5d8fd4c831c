"""Request parsing every API endpoint shares: a bounded JSON body, boolean headers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from common.bounded import read_capped
from registry.core.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024


async def json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    body = await read_capped(request.stream(), MAX_BODY_BYTES, declared)
    if body is None:
        raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object")
    return value


def flag(request: Request, header: str) -> bool:
    return request.headers.get(header, "").strip().upper() == "T"
