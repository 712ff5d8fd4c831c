"""Why a share operation is refused; each code is stable (HTTP answers, the partner)."""

from __future__ import annotations

from registry.core.errors import BadRequest, Conflict, NotFound, NotSupported, TooManyRequests


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


class TooManyShares(TooManyRequests):
    code = "too_many_shares"
