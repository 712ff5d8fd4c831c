"""Cross-domain shares (Open Cloud Mesh): what we share with a peer's users, and what peers
share with ours."""

from __future__ import annotations

from dataclasses import dataclass

from registry.shares.incoming import IncomingShares
from registry.shares.invites import OcmInvites
from registry.shares.mountpoints import MountpointBackends
from registry.shares.notifications import Notifications
from registry.shares.outgoing import OutgoingShares
from registry.shares.remote_changes import RemoteChanges
from registry.shares.renewals import Renewals
from registry.shares.share_changes import SharePush
from registry.shares.subscriptions import ShareSubscriptions
from registry.shares.tokens import ShareTokens


@dataclass
class Shares:
    """The wing's parts, as `runtime.wiring` builds them and the routes use them."""

    outgoing: OutgoingShares
    incoming: IncomingShares
    notifications: Notifications
    tokens: ShareTokens
    backends: MountpointBackends
    invites: OcmInvites
    subscriptions: ShareSubscriptions
    renewals: Renewals
    push: SharePush
    remote_changes: RemoteChanges
