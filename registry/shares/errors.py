"""Why a share operation is refused; each code is stable (HTTP answers, the partner)."""

from __future__ import annotations

from typing import Any

from registry.core.errors import ApiError, BadRequest, Conflict, NotFound, NotSupported


class InvalidShare(BadRequest):
    """An OCM request we cannot take, with OCM's `validationErrors` beside our error."""

    code = "invalid_share"

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        listed = [{"name": name, "message": message} for name, message in errors]
        message = "; ".join(f"{name}: {text}" for name, text in errors)
        super().__init__(message, extra={"message": message, "validationErrors": listed})


class ShareNotSupported(NotSupported):
    code = "share_not_supported"


class ShareUnknown(NotFound):
    code = "share_unknown"


class ShareStateConflict(Conflict):
    code = "share_state_conflict"


class TooManyShares(ApiError):
    status = 429
    code = "too_many_shares"

    def __init__(self, message: str, retry_after_s: int, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)}, **kwargs)
