"""Small JSON responses for the well-known endpoints: stable error shape and CORS for all."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = [
    "ALL_METHODS",
    "CORS_HEADERS",
    "error_response",
    "json_response",
    "method_not_allowed",
    "preflight_response",
    "refuse_method",
]

CORS_HEADERS = {"Access-Control-Allow-Origin": "*"}
# routes take every method so that the wrong one gets our JSON 405, not a plain-text one
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Accept",
    "Access-Control-Max-Age": "86400",
}


def json_response(
    body: Any,
    *,
    status: int = 200,
    media_type: str = "application/json",
    max_age_s: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    all_headers = dict(CORS_HEADERS)
    if max_age_s is not None:
        all_headers["Cache-Control"] = f"public, max-age={max_age_s}"
    all_headers.update(headers or {})
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type=media_type, headers=all_headers)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """`{"error": {"code", "message"}}`; errors are never cached by intermediaries."""
    return json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def preflight_response() -> Response:
    return Response(status_code=204, headers=PREFLIGHT_HEADERS)


def refuse_method(method: str) -> Response | None:
    """None for GET and HEAD; the CORS preflight answer for OPTIONS; our JSON 405 otherwise."""
    if method in ("GET", "HEAD"):
        return None
    return preflight_response() if method == "OPTIONS" else method_not_allowed()


def method_not_allowed() -> Response:
    return error_response(
        405,
        "method_not_allowed",
        "only GET, HEAD and OPTIONS are allowed here",
        headers={"Allow": "GET, HEAD, OPTIONS"},
    )
