"""API errors and the one place they become HTTP responses.

Every error body has the LibreGraph shape
`{"error": {"code", "message", "innererror": {"date", "request-id"}}}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from registry.core.clock import Clock
from registry.core.responses import JSONResponse

logger = logging.getLogger("spacereg.errors")


class ApiError(Exception):
    status = 400
    code = "invalidRequest"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.headers = headers
        # Members beside `error` that a protocol wants (OCM's `message`, `validationErrors`).
        self.extra = extra


class BadRequest(ApiError):
    pass


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    status = 403
    code = "accessDenied"


class NotFound(ApiError):
    status = 404
    code = "itemNotFound"


class Conflict(ApiError):
    status = 409
    code = "nameAlreadyExists"


class Gone(ApiError):
    status = 410
    code = "cursorExpired"


class PayloadTooLarge(ApiError):
    status = 413
    code = "requestTooLarge"


class PreconditionFailed(ApiError):
    status = 412
    code = "preconditionFailed"


class Locked(ApiError):
    """A WebDAV lock protects the resource and the request did not submit its token."""

    status = 423
    code = "locked"


class TooManyRequests(ApiError):
    """Refused for now; `Retry-After` says in how many seconds to try again."""

    status = 429
    code = "tooManyRequests"

    def __init__(self, message: str, retry_after_s: int, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)}, **kwargs)


class UriTooLong(ApiError):
    status = 414
    code = "uriTooLong"


class NotSupported(ApiError):
    status = 501
    code = "notSupported"


class Unavailable(ApiError):
    status = 503
    code = "serviceNotAvailable"


class InsufficientStorage(ApiError):
    status = 507
    code = "quotaLimitReached"


_HTTP_CODES = {
    400: "invalidRequest",
    401: "unauthenticated",
    403: "accessDenied",
    404: "itemNotFound",
    405: "methodNotAllowed",
    409: "conflict",
    410: "gone",
    413: "requestTooLarge",
    414: "uriTooLong",
    415: "unsupportedMediaType",
    501: "notSupported",
}


def error_response(
    request: Request,
    now: datetime,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        **(extra or {}),
        "error": {
            "code": code,
            "message": message,
            "innererror": {
                "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "request-id": request.scope.get("spacereg.request_id", ""),
            },
        },
    }
    return JSONResponse(body, status_code=status, headers=headers)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def exception_handlers(clock: Clock) -> dict[Any, Handler]:
    """The app's handlers: every error it raises on purpose becomes the LibreGraph body, dated
    by `clock`. Any other exception is answered by `internal_error`."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(
            request, clock.now(), exc.status, exc.code, exc.message, exc.headers, exc.extra
        )

    async def http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, "generalException")
        return error_response(
            request, clock.now(), exc.status_code, code, str(exc.detail), exc.headers
        )

    return {ApiError: api_error, HTTPException: http_exception}


def internal_error(clock: Clock) -> Handler:
    """The answer to an exception nothing else handled (`common.server_errors` logs it)."""

    async def unexpected(request: Request, exc: Exception) -> Response:
        message = "internal error; see the server log"
        return error_response(request, clock.now(), 500, "generalException", message)

    return unexpected
