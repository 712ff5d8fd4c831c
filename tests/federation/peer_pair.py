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
    servers: dict[str, Server] = field(default_factory=dict)

    @contextmanager
    def stopped(self, site: Site) -> Iterator[None]:
        """`site`'s registry stopped until the block ends (its port refuses connections; in
        a relayed pair the relay cuts the other's connections to it), then started again on
        the same settings, database and port, as a new process: `site.services` are the new
        process's."""
        relay, server = self.relays.get(site.domain), self.servers[site.domain]
        if relay is not None:
            relay.down()  # cuts the other registry's connections to it, so it stops at once
        server.close_clients(site.services)
        server.stop()
        try:
            yield
        finally:
            site.services = server.start()
            if relay is not None:
                relay.up()


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


class Server:
    """One registry's server on its port: started, stopped, and started again on the same
    settings (database, data directory) as a restarted process would be."""

    def __init__(
        self, settings: Settings, idp_key_dir: Path, clock: ShiftedClock, port: int, **tls: Any
    ) -> None:
        self._settings, self._idp_key_dir, self._clock = settings, idp_key_dir, clock
        self._port, self._tls = port, tls
        self._keeper: LoopKeeper | None = None
        self._serving = ExitStack()

    def start(self) -> Services:
        app, _plain = start_registry_context(self._settings, self._idp_key_dir, self._clock)
        self._keeper = LoopKeeper(app)
        self._serving.enter_context(serve(self._keeper, self._port, **self._tls))
        services: Services = app.state.services
        return services

    def close_clients(self, services: Services) -> None:
        """Close its pools of connections to other servers, in the loop that serves it."""
        assert self._keeper is not None and self._keeper.loop is not None
        asyncio.run_coroutine_threadsafe(_close_clients(services), self._keeper.loop).result(10)

    def stop(self) -> None:
        self._serving.close()


@contextmanager
def two_registries(
    tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path, *, relayed: bool = False
) -> Iterator[Pair]:
    """zurich.test and paris.test, serving until the block ends. `relayed`: each is reached
    through a `TcpRelay` on its published port (`Pair.relays`), so a test can take it down,
    or stop and start it again (`Pair.stopped`)."""
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
            tls = {"ssl_certfile": certs.cert_file, "ssl_keyfile": certs.key_file}
            served = free_port() if relayed else port
            servers[domain] = Server(settings, idp_key_dir, clock, served, **tls)
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
        for site in sites.values():
            servers[site.domain].close_clients(site.services)


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
