"""Peering of two real registries, zurich.test and paris.test, over TLS on loopback with the
real DNS server of these tests: an invitation, its signed acceptance, both sides holding the
other, suspension, revocation, the refusals by their codes, and `spacereg peer` as processes.

Both registries tell the time by one `ShiftedClock` (the system's, moved by the test), so an
invitation can expire while `spacereg peer` processes, on the system clock, still agree.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

from federation.invitations import Invitation, new_invitation, parse_invitation
from federation.safe_http import SafeHttpClient
from federation.signing import OcmSignatureAuth
from registry.peers.service import ACCEPT_PATH, PING_PATH
from registry.runtime.settings import Settings
from registry.runtime.wiring import Services, discovery_config
from tests.conftest import registry_settings, start_registry_context
from tests.federation.dnsserver import DnsServer
from tests.federation.signed_servers import ShiftedClock
from tests.federation.tls_servers import CertFiles, make_certs
from tests.processes import clean_env
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
        sites, relays, keepers = {}, {}, []
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
            app, _plain = start_registry_context(settings, idp_key_dir, clock)
            keeper = LoopKeeper(app)
            tls = {"ssl_certfile": certs.cert_file, "ssl_keyfile": certs.key_file}
            served = free_port() if relayed else port
            stack.enter_context(serve(keeper, served, **tls))
            if relayed:
                relays[domain] = TcpRelay(port, served)
                stack.callback(relays[domain].close)
            services = app.state.services
            sites[domain] = Site(domain, port, settings.base_url, settings, services)
            keepers.append((keeper, services))
        yield Pair(dns, certs, clock, sites["zurich.test"], sites["paris.test"], relays)
        for relay in relays.values():
            relay.up()  # the registries' pools close their connections through it
        # Each registry's pool holds idle TLS connections to the other, which read no
        # close_notify: close both pools first, or each server waits for them at shutdown.
        for keeper, services in keepers:
            assert keeper.loop is not None
            asyncio.run_coroutine_threadsafe(_close_clients(services), keeper.loop).result(10)


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


async def signed_post(sender: Site, url: str, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A request signed with `sender`'s keys, through an SSRF-safe client on our DNS."""
    auth = OcmSignatureAuth(sender.services.signing_keys, sender.services.clock)
    client = SafeHttpClient(discovery_config(sender.settings))
    try:
        answer = await client.exchange(
            url, orjson.dumps(doc), {"Content-Type": "application/json"}, what="test", auth=auth
        )
    finally:
        await client.aclose()
    return answer.status, answer.json_object("answer")


async def ping(sender: Site, certs: CertFiles, domain: str) -> httpx2.Response:
    """`sender` sends `domain` a signed hello (through the admin API)."""
    async with sender.client(certs) as admin:
        return await admin.post(f"/api/v1/peers/{domain}/ping")


async def test_after_invite_and_accept_both_registries_hold_the_other_as_active(
    pair: Pair,
) -> None:
    zurich, paris, certs = pair.zurich, pair.paris, pair.certs
    invitation = await invite(zurich, certs)

    response = await accept(paris, certs, invitation)

    assert response.status_code == 201, response.text
    assert response.json()["domain"] == "zurich.test"
    seen_by_paris = (await peers_of(paris, certs))["zurich.test"]
    assert seen_by_paris["state"] == "active"
    assert seen_by_paris["baseUrl"] == zurich.base_url
    assert seen_by_paris["jwksUrl"] == f"{zurich.base_url}/.well-known/jwks.json"
    assert seen_by_paris["issuers"] == [f"{zurich.base_url}/idp"]
    assert "http-sig" in seen_by_paris["capabilities"]
    seen_by_zurich = (await peers_of(zurich, certs))["paris.test"]
    assert seen_by_zurich["state"] == "active"
    assert seen_by_zurich["issuers"] == [f"{paris.base_url}/idp"]
    assert seen_by_zurich["pinned"] is True
    assert seen_by_zurich["lastContact"] is not None


async def test_a_used_invitation_is_refused_on_both_sides(pair: Pair) -> None:
    invitation = await invite(pair.zurich, pair.certs)
    assert (await accept(pair.paris, pair.certs, invitation)).status_code == 201

    refused(await accept(pair.paris, pair.certs, invitation), 409, "invitation_used")


async def test_an_expired_invitation_is_refused(pair: Pair, clock: ShiftedClock) -> None:
    invitation = await invite(pair.zurich, pair.certs, expires="1h")
    clock.offset = timedelta(hours=1, seconds=1)

    refused(await accept(pair.paris, pair.certs, invitation), 400, "invitation_expired")


async def test_an_unknown_or_malformed_invitation_is_refused(pair: Pair) -> None:
    forged = str(new_invitation("zurich.test"))
    refused(await accept(pair.paris, pair.certs, forged), 400, "invitation_unknown")
    refused(await accept(pair.paris, pair.certs, "not an invitation"), 400, "invitation_malformed")


async def test_an_invitation_for_another_registry_is_refused_on_both_sides(pair: Pair) -> None:
    real = await invite(pair.zurich, pair.certs)
    token = parse_invitation(real).token
    # paris is handed an invitation naming paris itself
    own = str(Invitation(token, "paris.test"))
    refused(await accept(pair.paris, pair.certs, own), 400, "invitation_wrong_domain")

    # zurich is sent (signed, by paris) an invitation naming lyon.test
    elsewhere = {"domain": "paris.test", "invitation": str(Invitation(token, "lyon.test"))}
    status, body = await signed_post(pair.paris, pair.zurich.base_url + ACCEPT_PATH, elsewhere)
    assert (status, body["error"]["code"]) == (400, "invitation_wrong_domain")

    assert (await accept(pair.paris, pair.certs, real)).status_code == 201  # still unused


async def test_an_unsigned_acceptance_is_refused(pair: Pair) -> None:
    invitation = await invite(pair.zurich, pair.certs)
    context = ssl.create_default_context(cafile=pair.certs.ca_file)
    async with httpx2.AsyncClient(verify=context, timeout=10) as client:
        response = await client.post(
            f"https://127.0.0.1:{pair.zurich.port}{ACCEPT_PATH}",
            json={"domain": "paris.test", "invitation": invitation},
        )
    refused(response, 401, "signature_missing")
    assert (await accept(pair.paris, pair.certs, invitation)).status_code == 201  # still unused


async def test_a_suspended_peer_gets_403_until_resumed(pair: Pair) -> None:
    await peered(pair)
    paris, certs = pair.paris, pair.certs
    assert (await ping(paris, certs, "zurich.test")).json() == {
        "domain": "zurich.test",
        "state": "active",
    }
    async with pair.zurich.client(certs) as admin:
        response = await admin.post("/api/v1/peers/paris.test/suspend")
        assert response.json()["state"] == "suspended"

        refused(await ping(paris, certs, "zurich.test"), 403, "peer_suspended")

        assert (await admin.post("/api/v1/peers/paris.test/resume")).json()["state"] == "active"
        refused(await admin.post("/api/v1/peers/paris.test/resume"), 409, "peer_not_suspended")
    assert (await ping(paris, certs, "zurich.test")).status_code == 200


async def test_a_pinned_peer_s_unsigned_requests_are_refused(pair: Pair) -> None:
    await peered(pair)
    context = ssl.create_default_context(cafile=pair.certs.ca_file)
    async with httpx2.AsyncClient(verify=context, timeout=10) as client:
        response = await client.post(
            f"https://127.0.0.1:{pair.zurich.port}{PING_PATH}", json={"domain": "paris.test"}
        )
    refused(response, 401, "signature_missing")


async def test_revocation_is_immediate_on_both_sides(pair: Pair) -> None:
    await peered(pair)
    async with pair.zurich.client(pair.certs) as admin:
        response = await admin.post("/api/v1/peers/paris.test/revoke")
    assert response.status_code == 200
    assert response.json()["state"] == "revoked"

    assert await state_becomes(pair.paris, pair.certs, "zurich.test", "revoked")
    assert (await peers_of(pair.zurich, pair.certs))["paris.test"]["queuedDeliveries"] == 0
    for sender, other in ((pair.paris, "zurich.test"), (pair.zurich, "paris.test")):
        refused(await ping(sender, pair.certs, other), 403, "peer_revoked")

    await peered(pair)  # a new invitation makes them partners again
    assert (await peers_of(pair.zurich, pair.certs))["paris.test"]["state"] == "active"


async def test_a_registry_open_to_federation_peers_without_an_invitation(pair: Pair) -> None:
    async with pair.zurich.client(pair.certs) as admin:
        response = await admin.post("/api/v1/peers", json={"domain": "paris.test"})
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "active"
    assert (await peers_of(pair.paris, pair.certs))["zurich.test"]["state"] == "active"

    async with pair.paris.client(pair.certs) as admin:
        response = await admin.post("/api/v1/peers", json={"domain": "zurich.test"})
    refused(response, 403, "peering_not_invited")


async def test_only_admins_manage_peers(pair: Pair) -> None:
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        refused(await einstein.get("/api/v1/peers"), 403, "adminRequired")
        refused(await einstein.post("/api/v1/peers/invitations"), 403, "adminRequired")
    async with pair.zurich.client(pair.certs) as admin:
        refused(await admin.get("/api/v1/peers/nowhere.test"), 404, "peer_unknown")


# ---- `spacereg peer`, real processes beside the running registries ----


def spacereg(pair: Pair, site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        SPACEREG_DOMAIN=site.domain,
        SPACEREG_BASE_URL=site.base_url,
        SPACEREG_DNS_NAMESERVERS=pair.dns.nameserver,
        SPACEREG_CA_FILE=pair.certs.ca_file,
        SPACEREG_ALLOW_PRIVATE_NETWORKS=LOOPBACK,
    )
    command = [sys.executable, "-m", "registry", "--data-dir", str(site.settings.data_dir)]
    return subprocess.run(
        [*command, "peer", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_spacereg_peer_invite_accept_list_suspend_revoke(pair: Pair) -> None:
    invited = spacereg(pair, pair.zurich, "invite", "--expires", "2d")
    assert invited.returncode == 0, invited.stderr
    invitation = invited.stdout.strip().splitlines()[-1]

    accepted = spacereg(pair, pair.paris, "accept", invitation)
    assert accepted.returncode == 0, accepted.stderr
    assert "zurich.test" in accepted.stdout

    again = spacereg(pair, pair.paris, "accept", invitation)
    assert again.returncode == 1
    assert again.stderr.rstrip().endswith("[invitation_used]")

    for site, other in ((pair.zurich, "paris.test"), (pair.paris, "zurich.test")):
        listed = spacereg(pair, site, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        peers = {p["domain"]: p for p in orjson.loads(listed.stdout)["value"]}
        assert peers[other]["state"] == "active"
        table = spacereg(pair, site, "list")
        assert table.stdout.splitlines()[0].split()[:2] == ["DOMAIN", "STATE"]
        assert any(line.split()[:2] == [other, "active"] for line in table.stdout.splitlines())

    suspended = spacereg(pair, pair.zurich, "suspend", "paris.test")
    assert (suspended.returncode, suspended.stdout.strip()) == (0, "paris.test: suspended")
    revoked = spacereg(pair, pair.paris, "revoke", "zurich.test")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked; a signed notice to the partner is queued" in revoked.stdout
    # paris's running server sends the notice the command queued
    for _attempt in range(100):
        listed = spacereg(pair, pair.zurich, "list", "--json")
        if orjson.loads(listed.stdout)["value"][0]["state"] == "revoked":
            break
        time.sleep(0.2)
    assert orjson.loads(listed.stdout)["value"][0]["state"] == "revoked"

    unknown = spacereg(pair, pair.zurich, "revoke", "nowhere.test")
    assert unknown.returncode == 1
    assert unknown.stderr.rstrip().endswith("[peer_unknown]")


def test_spacereg_peer_accept_domain_asks_a_registry_open_to_federation(pair: Pair) -> None:
    asked = spacereg(pair, pair.zurich, "accept", "--domain", "paris.test")
    assert asked.returncode == 0, asked.stderr
    assert "peered with paris.test" in asked.stdout

    denied = spacereg(pair, pair.paris, "accept", "--domain", "zurich.test")
    assert denied.returncode == 1
    assert denied.stderr.rstrip().endswith("[peering_not_invited]")
