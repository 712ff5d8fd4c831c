"""The registry's tables, a module per concept. Migrations in `migrations/` create exactly
these; importing this package registers every table on `Base.metadata`."""

from registry.core.models.base import NAMING, Base, BigId, UtcDateTime, table
from registry.core.models.delivery import Destination, OutboxEntry, Subscription, SubscriptionDrive
from registry.core.models.identity import AppPassword, IdpGrant, LoginFailure, User, WebSession
from registry.core.models.peering import InboxMessage, Peer, PeerInvitation, SignatureReplay
from registry.core.models.shares import (
    IncomingShare,
    OcmInvitation,
    OutgoingShare,
    RemoteSubscription,
    ShareSubscription,
    ShareToken,
)
from registry.core.models.spaces import (
    ChangeAudience,
    ChangeRecord,
    ListingVersion,
    LogHorizon,
    Member,
    Space,
)
from registry.core.models.webdav import DavLock, DavProperty, DavUpload, DavUploadChunk

__all__ = [
    "NAMING",
    "AppPassword",
    "Base",
    "BigId",
    "ChangeAudience",
    "ChangeRecord",
    "DavLock",
    "DavProperty",
    "DavUpload",
    "DavUploadChunk",
    "Destination",
    "IdpGrant",
    "InboxMessage",
    "IncomingShare",
    "ListingVersion",
    "LogHorizon",
    "LoginFailure",
    "Member",
    "OcmInvitation",
    "OutboxEntry",
    "OutgoingShare",
    "Peer",
    "PeerInvitation",
    "RemoteSubscription",
    "ShareSubscription",
    "ShareToken",
    "SignatureReplay",
    "Space",
    "Subscription",
    "SubscriptionDrive",
    "User",
    "UtcDateTime",
    "WebSession",
    "table",
]
