"""Everything a running registry holds, built once at start-up and closed at shutdown."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import httpx2
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from common.supervisor import Job, Supervisor
from federation.discovery import Discovery
from federation.instance import LocalInstance
from federation.keys import SigningKeys
from federation.oidc import TokenValidator, TrustedIssuer, fetched_safely
from federation.safe_http import SafeHttpClient
from federation.webhooks import WebhookClient
from registry.auth.app_passwords import AppPasswords
from registry.auth.basic import ClientAuthenticator
from registry.auth.directory import RegisteredUsers
from registry.auth.identity import Authenticator, register
from registry.auth.idp.keys import IdpKeys
from registry.auth.idp.server import EmbeddedIdp, PartnerClients
from registry.auth.idp.throttle import LoginThrottle
from registry.auth.idp.users import load_users
from registry.auth.partners import PartnerTokens
from registry.changes.bus import Bus, LocalBus
from registry.changes.feed import ChangeFeed
from registry.changes.hub import Hub, Tailer
from registry.changes.nats_bus import NatsBus
from registry.changes.signal import ChangeSignal
from registry.changes.unit_of_work import UnitOfWork
from registry.changes.worker_bus import WorkerBus, node_directory
from registry.core.clock import SYSTEM_CLOCK, Clock
from registry.outbox import store as outbox
from registry.outbox.delivery import DeliveryWorker
from registry.outbox.senders import PeerSender, WebhookSender
from registry.outbox.subscriptions import Subscriptions
from registry.peers.service import Peering
from registry.runtime.db import create_engine
from registry.runtime.federation_wiring import (
    Federation,
    build_peering,
    build_shares,
    discovery_config,
    local_instance,
)
from registry.runtime.node_jobs import NodeJobs
from registry.runtime.retention import Retention
from registry.runtime.settings import ProviderConfig, Settings
from registry.shares import Shares
from registry.spaces.dav_backends import DavBackends, ProviderBackends
from registry.spaces.items import ItemPaths
from registry.spaces.members import MemberService
from registry.spaces.provider_events import ProviderEvents
from registry.spaces.service import SpaceService
from registry.spaces.webdav.extensions import DavExtensions
from registry.spaces.webdav.locking import Locks
from registry.spaces.webdav.properties import DeadProperties
from registry.spaces.webdav.uploads import ChunkedUploads
from storage import ChangeSource, StorageProvider, load_provider

logger = logging.getLogger("spacereg")


@dataclass
class Services:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    http: httpx2.AsyncClient
    issuer_http: httpx2.AsyncClient  # reaches the home issuer (the embedded IdP in process)
    providers: dict[str, StorageProvider]
    spaces: SpaceService
    members: MemberService
    items: ItemPaths
    dav_backends: DavBackends
    validator: TokenValidator
    authenticator: Authenticator
    app_passwords: AppPasswords
    client_authenticator: ClientAuthenticator
    idp: EmbeddedIdp | None
    instance: LocalInstance
    signing_keys: SigningKeys
    users: RegisteredUsers
    bus: Bus
    hub: Hub
    tailer: Tailer
    feed: ChangeFeed
    outbound: SafeHttpClient
    subscriptions: Subscriptions
    delivery: DeliveryWorker
    retention: Retention
    provider_events: ProviderEvents
    supervisor: Supervisor
    discovery: Discovery
    peering: Peering
    dav: DavExtensions
    shares: Shares


def load_idp(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    throttle: LoginThrottle,
    partners: PartnerClients | None = None,
) -> EmbeddedIdp:
    directory = settings.data_dir / "idp"
    keys = IdpKeys.load_or_create(directory, clock)
    users = load_users(directory, settings.idp_users, logger.warning)
    return EmbeddedIdp(
        settings.idp_issuer,
        settings.audience,
        settings.base_url,
        keys,
        users,
        engine,
        clock,
        throttle,
        partners,
    )


def build(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Services:
    """Wire the registry together; nothing here does I/O except reading key files. Every part
    tells the time by `clock` (tests pass one they move)."""
    engine = create_engine(settings.database_url)
    providers = {config.name: _provider(settings, config) for config in settings.providers}
    http = httpx2.AsyncClient(
        timeout=10, follow_redirects=False, verify=_tls_context(settings.federation.ca_file)
    )
    throttle = LoginThrottle(engine, clock)  # app passwords' failures count with sign-ins'

    async def partner_client(client_id: str) -> str | None:  # peering is made below
        return await peering.client_origin(client_id)

    idp = (
        load_idp(settings, engine, clock, throttle, partner_client)
        if settings.embedded_idp
        else None
    )
    issuer_http = http
    if idp is not None:  # its own URL may not resolve from here (a name only clients know)
        transport = httpx2.ASGITransport(Starlette(routes=idp.routes()))
        issuer_http = httpx2.AsyncClient(transport=transport, timeout=10)
    issuers = [
        TrustedIssuer(
            issuer.url,
            issuer.audience,
            issuer.groups_claim,
            static_keys=idp.keys.public if idp and issuer.url == idp.issuer else None,
        )
        for issuer in settings.trusted_issuers()
    ]

    def validator_clock() -> float:
        return clock.now().timestamp()

    validator = TokenValidator(issuers, http, clock=validator_clock)
    bus = _bus(settings)
    signal = ChangeSignal(bus)
    unit_of_work = UnitOfWork(engine, signal)
    unit_of_work.fan_out(outbox.queue_webhooks)
    spaces = SpaceService(
        unit_of_work,
        providers,
        settings.default_project_quota,
        settings.default_personal_quota,
        settings.provider_for_type(),
        clock=clock,
    )
    hub = Hub(clock)
    tailer = Tailer(engine, hub, settings.change_poll_seconds)
    outbound = SafeHttpClient(discovery_config(settings))
    webhooks = WebhookClient(outbound)
    signing_keys = SigningKeys.load_or_create(settings.data_dir / "federation-keys")
    peer_sender = PeerSender(outbound, signing_keys)
    delivery = DeliveryWorker(
        engine,
        {
            outbox.WEBHOOK: WebhookSender(webhooks),
            outbox.PEER: peer_sender,
            outbox.PEER_NOTICE: peer_sender,
        },
        timedelta(seconds=settings.delivery_max_age_seconds),
        clock=clock,
        poll_seconds=settings.change_poll_seconds,
    )
    signal.listen(tailer.wake)
    signal.listen(delivery.wake)
    app_passwords = app_password_service(settings, engine, clock, throttle, issuers[0].url)
    discovery = Discovery(discovery_config(settings))
    peering = build_peering(
        settings, engine, outbound, discovery, signing_keys, clock, wake=delivery.wake
    )
    authenticator = Authenticator(
        validator,
        spaces.transaction,
        spaces.ensure_personal_space,
        home_issuer=issuers[0].url,
        admin_users=frozenset(settings.admin_users),
        admin_role=settings.admin_role,
        roles_claim=settings.roles_claim,
        clock=clock,
        partners=PartnerTokens(
            TokenValidator([], http, clock=validator_clock, fetch_json=fetched_safely(outbound)),
            peering.vouched_issuers,
            audience=settings.domain,
        ),
    )
    instance = local_instance(settings)
    shares = build_shares(
        spaces,
        ProviderBackends(providers),
        discovery,
        peering,
        Federation(outbound, signing_keys, instance),
        clock,
        wake=delivery.wake,
        open_federation=settings.federation.open_shares,
    )
    unit_of_work.fan_out(shares.outgoing.notify_members)
    unit_of_work.fan_out(shares.push.fan_out)
    return Services(
        settings,
        clock,
        engine,
        http,
        issuer_http,
        providers,
        spaces,
        MemberService(spaces, clock=clock),
        ItemPaths(spaces, providers),
        shares.backends,
        validator,
        authenticator,
        app_passwords,
        ClientAuthenticator(authenticator.authenticate, app_passwords, engine.begin),
        idp,
        instance,
        signing_keys,
        RegisteredUsers(engine, issuers[0].url),
        bus,
        hub,
        tailer,
        ChangeFeed(engine, hub, clock),
        outbound,
        Subscriptions(
            engine, spaces, webhooks, topic=f"{settings.base_url}/api/v1/events", clock=clock
        ),
        delivery,
        Retention(engine, timedelta(days=settings.change_retention_days), clock),
        ProviderEvents(engine, spaces, clock),
        Supervisor(),
        discovery,
        peering,
        DavExtensions(Locks(engine, clock), DeadProperties(engine), ChunkedUploads(engine, clock)),
        shares,
    )


def app_password_service(
    settings: Settings, engine: AsyncEngine, clock: Clock, throttle: LoginThrottle, issuer: str
) -> AppPasswords:
    """App passwords over the database (also for `spacereg app-password`)."""
    return AppPasswords(engine.begin, throttle, clock, issuer, frozenset(settings.admin_users))


def _provider(settings: Settings, config: ProviderConfig) -> StorageProvider:
    """Drivers told of changes over HTTP get the URL where `callback_app()` is mounted."""
    options = {"callback_url": f"{settings.base_url}/callbacks/providers/{config.name}"}
    options.update(config.options)
    return load_provider(config.name, config.driver, options)


def _tls_context(ca_file: str | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


@asynccontextmanager
async def closing(services: Services) -> AsyncIterator[Services]:
    """`services`, whose database engine, HTTP clients and providers are closed at the end."""
    async with AsyncExitStack() as stack:
        stack.push_async_callback(services.engine.dispose)
        stack.push_async_callback(services.http.aclose)
        stack.push_async_callback(services.issuer_http.aclose)
        stack.push_async_callback(services.outbound.aclose)
        stack.push_async_callback(services.discovery.aclose)
        for provider in services.providers.values():
            stack.push_async_callback(provider.close)
        yield services


@asynccontextmanager
async def running(services: Services) -> AsyncIterator[None]:
    """Start-up work that needs the event loop, and orderly shutdown."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(closing(services))
        await services.bus.start()
        stack.push_async_callback(services.bus.close)
        if services.idp is not None:
            await _provision(services.idp, services.spaces, services.clock)
        await services.tailer.start_position()
        stack.push_async_callback(services.supervisor.stop)
        _start_workers(services)
        yield


def _start_workers(services: Services) -> None:
    supervisor = services.supervisor
    supervisor.start("change-tailer", services.tailer.run)
    supervisor.start(
        "sse-keep-alive", partial(services.hub.keep_alive, services.settings.sse_keepalive_seconds)
    )
    supervisor.start("provider-events", services.provider_events.run)
    once: dict[str, Job] = {
        "delivery": services.delivery.run,
        "retention": services.retention.run,
        "share-renewals": services.shares.renewals.run,
        "reconcile": partial(services.provider_events.reconcile, services.providers),
    }
    for name, provider in services.providers.items():
        if isinstance(provider, ChangeSource):
            provider.subscribe(partial(services.provider_events.submit, name))
            for job, run in provider.workers().items():
                once[f"provider:{name}:{job}"] = run
    if services.settings.workers == 1:
        for name, run in once.items():
            supervisor.start(name, run)
    else:
        lock_file = services.settings.data_dir / "node-jobs.lock"
        supervisor.start("node-jobs", NodeJobs(lock_file, supervisor, once).run)


def _bus(settings: Settings) -> Bus:
    """NATS between replicas when configured; else, between this node's worker processes."""
    if settings.nats_url:
        return NatsBus([settings.nats_url])
    if settings.workers > 1:
        return WorkerBus(node_directory(settings.data_dir))
    return LocalBus()


async def _provision(idp: EmbeddedIdp, spaces: SpaceService, clock: Clock) -> None:
    """Make the embedded IdP's users known, so they can be invited before their first login."""
    async with spaces.transaction() as conn:
        for user in idp.users.values():
            await register(
                conn,
                spaces.ensure_personal_space,
                idp.issuer,
                user.username,
                user.username,
                user.display_name,
                user.email,
                clock.now(),
            )
