"""Why a peering operation is refused; each code is stable (HTTP answers, CLI, the partner)."""

from __future__ import annotations

from registry.core.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unavailable,
)


class InvitationMalformed(BadRequest):
    code = "invitation_malformed"


class InvitationUnknown(BadRequest):
    code = "invitation_unknown"


class InvitationUsed(Conflict):
    code = "invitation_used"


class InvitationExpired(BadRequest):
    code = "invitation_expired"


class InvitationWrongDomain(BadRequest):
    """The invitation names another registry than the one it is presented to."""

    code = "invitation_wrong_domain"


class PeerUnknown(NotFound):
    code = "peer_unknown"


class PeerSuspended(Forbidden):
    code = "peer_suspended"


class PeerRevoked(Forbidden):
    code = "peer_revoked"


class PeerUnreachable(Unavailable):
    """Discovery of the partner, or the request to it, failed; the message says where."""

    code = "peer_unreachable"


class PeerNotSuspended(Conflict):
    code = "peer_not_suspended"


class PeerRefused(ApiError):
    """The partner refused; `code` is the partner's own (e.g. `invitation_used`)."""

    status = 502

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message, code=code)
        self.status = status if 400 <= status < 500 else 502


class SignatureRefused(ApiError):
    """A peer's signed request failed verification; `code` is the federation's `signature_*`."""

    status = 401


class PeerKeysUnavailable(Unavailable):
    """The peer's keys could not be fetched to check its signature: try again later."""

    code = "signature_keys_unavailable"


class OpenFederationOff(Forbidden):
    code = "peering_not_invited"


class NotAPeer(Forbidden):
    """A request claims to come from a registry we do not peer with."""

    code = "peer_unknown"


class PeerRateLimited(TooManyRequests):
    code = "peer_rate_limited"


class MessageIdInvalid(BadRequest):
    code = "message_id_invalid"


class MessageInProgress(Conflict):
    """Another replica is handling this message right now: send it again later."""

    code = "message_in_progress"


class RepeatedRefusal(ApiError):
    """A repeated message that was refused the first time: refused alike."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status = status
