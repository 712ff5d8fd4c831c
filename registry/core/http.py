"""Request parsing every API endpoint shares: a bounded JSON body, boolean headers, query
parameters given at most once, and whole numbers in ASCII digits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request

from common.bounded import read_capped
from registry.core.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024
INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() also takes '٣' and '²'
FLAGS = {"T": True, "F": False}  # LibreGraph's boolean headers (Purge, Restore)


async def read_body(request: Request) -> bytes:
    """The request's body, up to MAX_BODY_BYTES (413 beyond)."""
    declared = request.headers.get("content-length")
    body = await read_capped(request.stream(), MAX_BODY_BYTES, declared)
    if body is None:
        raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes")
    return body


async def json_body(request: Request) -> dict[str, Any]:
    return json_object(await read_body(request))


def has_body(request: Request) -> bool:
    """Whether the request declares a body (a length other than 0, or chunks)."""
    return request.headers.get("content-length", "0") not in {"", "0"} or (
        "transfer-encoding" in request.headers
    )


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object; else 400."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object")
    return value


def flag(request: Request, header: str) -> bool:
    """A LibreGraph boolean header: `T` or `F`, absent meaning `F`; anything else is refused."""
    values = request.headers.getlist(header)
    if not values:
        return False
    if len(values) > 1 or values[0] not in FLAGS:
        raise BadRequest(f"header {header} must be T or F, once")
    return FLAGS[values[0]]


def query(request: Request) -> Mapping[str, str]:
    """The query's parameters, each at most once: a repeated one is refused rather than the
    last one silently winning. Every registry route reads its query through this."""
    params = request.query_params
    for key in params:
        if len(params.getlist(key)) > 1:
            raise BadRequest(f"query parameter {key} is given more than once")
    return params


def whole_number(text: str, maximum: int = INT64_MAX) -> int | None:
    """`text` as a whole number from 0 to `maximum` written in ASCII digits, else None."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None
