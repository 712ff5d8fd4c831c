"""Two real registries, zurich.test and paris.test, over TLS on loopback with the real DNS
server of these tests, and helpers to peer them and talk to them (tests/federation/
test_peering.py, test_peer_messages.py).

Both registries tell the time by one `ShiftedClock` (the system's, moved by the test), so an
invitation can expire while `spacereg peer` processes, on the system clock, still agree.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

from federation.keys import SigningKeys
from federation.safe_http import SafeHttpClient
from federation.signing import OcmSignatureAuth
from registry.runtime.demo_ca import CertFiles, make_certs
from registry.runtime.federation_wiring import discovery_config
from registry.runtime.settings import Settings
from registry.runtime.wiring import Services
from tests.conftest import registry_settings, start_registry_context
from tests.federation.dnsserver import DnsServer
from tests.federation.signed_servers import ShiftedClock
from tests.schema import check_response
from tests.servers import TcpRelay, free_port, serve

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1/32"
NAMES = ["registry.zurich.test", "registry.paris.test", "127.0.0.1"]


@dataclass
class Site:
    domain: str
    port: int
    base_url: str
    settings: Settings
    services: Services

    def client(self, certs: CertFiles, username: str = "admin") -> httpx2.AsyncClient:
        """Every answer is checked against registry/openapi.yaml."""
        assert self.services.idp is not None
        token = self.services.idp.access_token_for(username)
        return httpx2.AsyncClient(
            base_url=f"https://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=certs.ca_file),
            timeout=15,
            event_hooks={"response": [check_response]},
        )


@dataclass
class Pair:
    dns: DnsServer
    certs: CertFiles
    clock: ShiftedClock
    zurich: Site
    paris: Site
    relays: dict[str, TcpRelay] = field(default_factory=dict)
    servers: dict[str, _Served] = field(default_factory=dict)

    @contextmanager
    def stopped(self, site: Site) -> Iterator[None]:
        """`site`'s server stopped for the block (its port refuses connections), then
        started again: a new process's worth of services on the same database and port."""
        served = self.servers[site.domain]
        served.close_clients()
        served.stop()
        try:
            yield
        finally:
            site.services = served.start()


class LoopKeeper:
    """The app, remembering the event loop its server runs it in."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = self.loop or asyncio.get_running_loop()
        await self.app(scope, receive, send)


async def _close_clients(services: Services) -> None:
    await services.outbound.aclose()
    await services.discovery.aclose()


class _Served:
    """One registry's server on its port, which can be stopped and started again."""

    def __init__(self, settings: Settings, idp_key_dir: Path, clock: ShiftedClock, port: int):
        self._settings, self._idp_key_dir, self._clock, self._port = (
            settings,
            idp_key_dir,
            clock,
            port,
        )
        self._keeper: LoopKeeper | None = None
        self._server: ExitStack | None = None

    def start(self) -> Services:
        app, _plain = start_registry_context(self._settings, self._idp_key_dir, self._clock)
        self._keeper = LoopKeeper(app)
        tls = {
            "ssl_certfile": self._settings.tls_certfile,
            "ssl_keyfile": self._settings.tls_keyfile,
        }
        self._server = ExitStack()
        self._server.enter_context(serve(self._keeper, self._port, **tls))
        services: Services = app.state.services
        return services

    def close_clients(self) -> None:
        """Close the pool of connections to the other registry (see `two_registries`)."""
        keeper = self._keeper
        assert keeper is not None and keeper.loop is not None
        services = keeper.app.state.services
        asyncio.run_coroutine_threadsafe(_close_clients(services), keeper.loop).result(10)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


@contextmanager
def two_registries(
    tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path, *, relayed: bool = False
) -> Iterator[Pair]:
    """zurich.test and paris.test, serving until the block ends. `relayed`: each is reached
    through a `TcpRelay` on its published port (`Pair.relays`), so a test can take it down."""
    certs = make_certs(tmp_path_factory.mktemp("peering-tls"), NAMES)
    clock = ShiftedClock()
    with DnsServer().running() as dns, ExitStack() as stack:
        ports = {"zurich.test": free_port(), "paris.test": free_port()}
        for domain, port in ports.items():
            dns.add(f"registry.{domain}", "A", ["127.0.0.1"])
            dns.add(f"_spacereg._tcp.{domain}", "SRV", [f"10 5 {port} registry.{domain}."])
        sites, relays, servers = {}, {}, {}
        for domain, port in ports.items():
            settings = registry_settings(
                tmp_path_factory.mktemp(domain),
                port,
                domain=domain,
                base_url=f"https://registry.{domain}:{port}",
                tls_certfile=certs.cert_file,
                tls_keyfile=certs.key_file,
                federation={
                    "dns_nameservers": [dns.nameserver],
                    "allow_private_networks": [LOOPBACK],
                    "ca_file": certs.ca_file,
                    "open_peering": domain == "paris.test",  # zurich needs an invitation
                },
            )
            served = free_port() if relayed else port
            servers[domain] = _Served(settings, idp_key_dir, clock, served)
            services = servers[domain].start()
            stack.callback(servers[domain].stop)
            if relayed:
                relays[domain] = TcpRelay(port, served)
                stack.callback(relays[domain].close)
            sites[domain] = Site(domain, port, settings.base_url, settings, services)
        yield Pair(dns, certs, clock, sites["zurich.test"], sites["paris.test"], relays, servers)
        for relay in relays.values():
            relay.up()  # the registries' pools close their connections through it
        # Each registry's pool holds idle TLS connections to the other, which read no
        # close_notify: close both pools first, or each server waits for them at shutdown.
        for server in servers.values():
            server.close_clients()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path) -> Iterator[Pair]:
    with two_registries(tmp_path_factory, idp_key_dir) as both:
        yield both


@pytest.fixture
def clock(pair: Pair) -> Iterator[ShiftedClock]:
    yield pair.clock
    pair.clock.offset = timedelta(0)


async def invite(site: Site, certs: CertFiles, **body: Any) -> str:
    async with site.client(certs) as admin:
        response = await admin.post("/api/v1/peers/invitations", json=body or None)
    assert response.status_code == 201, response.text
    assert response.json()["domain"] == site.domain
    return str(response.json()["invitation"])


async def accept(site: Site, certs: CertFiles, invitation: str) -> httpx2.Response:
    async with site.client(certs) as admin:
        return await admin.post("/api/v1/peers", json={"invitation": invitation})


async def peers_of(site: Site, certs: CertFiles) -> dict[str, dict[str, Any]]:
    async with site.client(certs) as admin:
        response = await admin.get("/api/v1/peers")
    assert response.status_code == 200
    return {peer["domain"]: peer for peer in response.json()["value"]}


async def state_becomes(site: Site, certs: CertFiles, domain: str, state: str) -> bool:
    """Whether `site` holds `domain` in `state` within 10 s (a queued notice arrives)."""
    for _attempt in range(100):
        if (await peers_of(site, certs))[domain]["state"] == state:
            return True
        await asyncio.sleep(0.1)
    return False


def refused(response: httpx2.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


async def peered(pair: Pair) -> None:
    response = await accept(pair.paris, pair.certs, await invite(pair.zurich, pair.certs))
    assert response.status_code == 201, response.text


async def signed_post(
    sender: Site,
    url: str,
    doc: dict[str, Any],
    headers: dict[str, str] | None = None,
    keys: SigningKeys | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A request signed with `sender`'s keys (or `keys`), through an SSRF-safe client on our
    DNS; the answer's status, JSON body and headers."""
    auth = OcmSignatureAuth(keys or sender.services.signing_keys, sender.services.clock)
    client = SafeHttpClient(discovery_config(sender.settings))
    try:
        answer = await client.exchange(
            url,
            orjson.dumps(doc),
            {"Content-Type": "application/json", **(headers or {})},
            what="test",
            auth=auth,
        )
    finally:
        await client.aclose()
    return answer.status, answer.json_object("answer"), dict(answer.headers)


async def ping(sender: Site, certs: CertFiles, domain: str) -> httpx2.Response:
    """`sender` sends `domain` a signed hello (through the admin API)."""
    async with sender.client(certs) as admin:
        return await admin.post(f"/api/v1/peers/{domain}/ping")
