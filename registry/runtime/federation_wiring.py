"""The federation half of the wiring: who we are to peers, how we reach them (discovery,
the SSRF-safe client), peering and shares. `wiring.build` and the `spacereg peer` and
`discover` commands build them here, so each part is made one way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

from sqlalchemy.ext.asyncio import AsyncEngine

from federation.config import DiscoveryConfig
from federation.discovery import Discovery
from federation.instance import Endpoints, LocalInstance
from federation.keys import SigningKeys
from federation.peer_keys import PeerKeyring
from federation.safe_http import SafeHttpClient
from registry.core.clock import Clock
from registry.peers.guard import PeerGuard
from registry.peers.rate import PeerRateLimits
from registry.peers.service import Peering
from registry.runtime.settings import Settings
from registry.shares import Shares
from registry.shares.incoming import IncomingShares
from registry.shares.invites import OcmInvites
from registry.shares.mountpoints import MountpointBackends, MountpointProxy
from registry.shares.notifications import Notifications
from registry.shares.outgoing import OutgoingShares
from registry.shares.remote_changes import RemoteChanges
from registry.shares.remote_root import RemoteRoot
from registry.shares.renewals import Renewals, partnership_revoked
from registry.shares.share_changes import SharePush
from registry.shares.subscriptions import ShareSubscriptions
from registry.shares.tokens import ShareTokens
from registry.spaces.dav_backends import DavBackends
from registry.spaces.service import SpaceService


@dataclass(frozen=True)
class Federation:
    """What shares need to talk to peers: the SSRF-safe client, our keys, who we are."""

    outbound: SafeHttpClient
    keys: SigningKeys
    instance: LocalInstance


def build_shares(
    spaces: SpaceService,
    held: DavBackends,
    discovery: Discovery,
    peering: Peering,
    federation: Federation,
    clock: Clock,
    *,
    wake: Callable[[], None],
    open_federation: bool = False,
) -> Shares:
    """Shares both ways; `held`: the back ends of the spaces we hold (a share space's
    folder is checked there), extended with the proxy to peers for mountpoints;
    `open_federation`: shares from registries we do not peer with are taken too."""
    domain, guard = federation.instance.domain, peering.guard
    base_url = federation.instance.base_url
    inbox = peering.inbox
    incoming = IncomingShares(
        spaces,
        guard,
        inbox,
        peering.discover,
        domain,
        base_url,
        clock,
        open_federation=open_federation,
    )
    outgoing = OutgoingShares(spaces, held, peering.discover, domain, base_url, clock, wake=wake)
    proxy = MountpointProxy(
        spaces, incoming, federation.outbound, discovery, federation.keys, domain, clock
    )
    push = SharePush(domain)
    return Shares(
        outgoing,
        incoming,
        Notifications(spaces, guard, inbox, incoming, clock),
        ShareTokens(spaces.transaction, guard, clock),
        MountpointBackends(held, proxy),
        OcmInvites(spaces, peering, clock),
        ShareSubscriptions(spaces.transaction, clock, push.state),
        Renewals(spaces.transaction, domain, clock, wake=wake),
        push,
        RemoteChanges(
            spaces.transaction, RemoteRoot(federation.outbound, proxy.token), domain, clock
        ),
    )


def build_peering(
    settings: Settings,
    engine: AsyncEngine,
    outbound: SafeHttpClient,
    discovery: Discovery,
    keys: SigningKeys,
    clock: Clock,
    *,
    wake: Callable[[], None] = lambda: None,
) -> Peering:
    """Peering over the database, signing with `keys` (also for `spacereg peer`, where no
    delivery worker runs to `wake`: the server's finds queued notices by polling)."""
    federation = settings.federation
    limits = PeerRateLimits(
        federation.peer_requests_per_second, federation.peer_request_burst, clock
    )
    guard = PeerGuard(engine.begin, PeerKeyring(outbound), settings.base_url, clock, limits)
    return Peering(
        engine.begin,
        discovery,
        outbound,
        keys,
        guard,
        settings.domain,
        clock,
        open_federation=federation.open_peering,
        wake=wake,
        on_revoked=partnership_revoked,
    )


def local_instance(settings: Settings) -> LocalInstance:
    """What this registry announces in its discovery documents."""
    return LocalInstance(
        domain=settings.domain,
        base_url=settings.base_url,
        issuers=tuple(issuer.url for issuer in settings.trusted_issuers()),
        software_version=version("spacereg"),
        allow_http=settings.federation.allow_http or settings.base_url.startswith("http://"),
        reveal_unknown_users=settings.federation.reveal_unknown_users,
        endpoints=Endpoints(changes="/api/v1/changes", events="/api/v1/events"),
        ocm_api_available=True,
    )


def discovery_config(settings: Settings) -> DiscoveryConfig:
    federation = settings.federation
    return DiscoveryConfig(
        dns_nameservers=federation.dns_nameservers,
        allow_private_networks=federation.allow_private_networks,
        allow_http=federation.allow_http,
        ca_file=federation.ca_file,
    )
