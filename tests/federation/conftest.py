"""Federation fixtures: a test CA, a real DNS server and HTTPS registries, all on loopback.

Addresses: 127.0.0.1 plays the public internet (tests allow exactly 127.0.0.1/32), 127.0.0.2
plays a private network that discovery must not reach unless configuration allows it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta

import httpx2
import pytest

from federation.config import DiscoveryConfig
from federation.discovery import Discovery
from federation.instance import LocalInstance
from federation.keys import SigningKeys
from federation.metadata import JWKS_PATH
from federation.signing import OcmSignatureAuth
from registry.runtime.demo_ca import CertFiles, make_certs
from tests.federation.dnsserver import DnsServer, bind
from tests.federation.signed_servers import Receiver, Sender, receiver_app, sender_app
from tests.federation.tls_servers import (
    TEST_NAMES,
    Directory,
    Knobs,
    build_app,
    serve_tls,
)
from tests.servers import free_port, serve

PUBLIC = "127.0.0.1/32"


@dataclass
class Site:
    name: str
    port: int
    origin: str
    instance: LocalInstance
    knobs: Knobs
    users: Directory
    keys: SigningKeys


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("tls"), TEST_NAMES)


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    with DnsServer().running() as server:
        yield server


@pytest.fixture(scope="session")
def sites(
    certs: CertFiles, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Site]]:
    """paris (SRV), zurich (TXT), bare (the domain), lyon (SRV with a dead first choice),
    closed (reveals unknown users), internal (on 127.0.0.2, same port as paris)."""
    found: dict[str, Site] = {}
    with ExitStack() as stack:

        def start(
            name: str,
            domain: str,
            host: str,
            ip: str = "127.0.0.1",
            port: int = 0,
            reveal_unknown_users: bool = False,
        ) -> Site:
            sock = bind(ip, port)
            port = sock.getsockname()[1]
            base = f"https://{host}:{port}"
            instance = LocalInstance(
                domain=domain.format(port=port),
                base_url=base,
                issuers=(base + "/idp",),
                software_version="0.1.0-test",
                capabilities=("drives", "changes"),
                reveal_unknown_users=reveal_unknown_users,
            )
            keys = SigningKeys.load_or_create(tmp_path_factory.mktemp(f"keys-{name}"))
            knobs, users = Knobs(), Directory({"marie", "einstein"})
            app = build_app(instance, users, keys, knobs, name)
            stack.enter_context(serve_tls(app, certs, sock))
            site = Site(name, port, base, instance, knobs, users, keys)
            found[name] = site
            return site

        paris = start("paris", "paris.test", "registry.paris.test")
        start("internal", "internal.test", "internal.test", ip="127.0.0.2", port=paris.port)
        zurich = start("zurich", "zurich.test", "reg.zurich.test")
        start("bare", "bare.test", "bare.test")
        lyon = start("lyon", "lyon.test", "registry.lyon.test")
        start("closed", "closed.test:{port}", "closed.test", reveal_unknown_users=True)

        dead_port = free_port()
        dns_server.add(
            "_spacereg._tcp.paris.test", "SRV", [f"10 5 {paris.port} registry.paris.test."], ttl=120
        )
        dns_server.add(
            "_spacereg.zurich.test",
            "TXT",
            [f'"v=spacereg1; url=https://reg.zurich.test:{zurich.port}"', '"unrelated=1"'],
        )
        dns_server.add(
            "_spacereg._tcp.lyon.test",
            "SRV",
            [f"20 0 {lyon.port} registry.lyon.test.", f"10 0 {dead_port} registry.lyon.test."],
        )
        for name in (
            "registry.paris.test",
            "reg.zurich.test",
            "bare.test",
            "registry.lyon.test",
            "public.test",
            "hang.test",
            "closed.test",
        ):
            dns_server.add(name, "A", ["127.0.0.1"])
        dns_server.add("internal.test", "A", ["127.0.0.2"])
        dns_server.add("mapped.test", "AAAA", ["::ffff:127.0.0.2"])
        yield found


@pytest.fixture
def config(certs: CertFiles, dns_server: DnsServer, sites: dict[str, Site]) -> DiscoveryConfig:
    return discovery_config(certs, dns_server)


def discovery_config(certs: CertFiles, dns_server: DnsServer) -> DiscoveryConfig:
    """The test DNS server, the test CA, 127.0.0.1 playing the public internet."""
    return DiscoveryConfig(
        dns_nameservers=(dns_server.nameserver,),
        allow_private_networks=(PUBLIC,),
        ca_file=certs.ca_file,
        connect_timeout_s=2.0,
        read_timeout_s=2.0,
        dns_timeout_s=2.0,
    )


@pytest.fixture
async def discovery(config: DiscoveryConfig) -> AsyncIterator[Discovery]:
    async with Discovery(config) as client:
        yield client


@pytest.fixture
def paris(sites: dict[str, Site]) -> Site:
    return sites["paris"]


# Signed requests: a sending peer publishing its keys, a receiver verifying (one each per module).


def tls(certs: CertFiles) -> dict[str, str]:
    return {"ssl_certfile": certs.cert_file, "ssl_keyfile": certs.key_file}


@pytest.fixture(scope="module")
def sender(
    certs: CertFiles, sites: dict[str, Site], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Sender, str]]:
    """The sending peer: its keys, and the origin (a DNS name) where it publishes its JWKS."""
    sender = Sender(SigningKeys.load_or_create(tmp_path_factory.mktemp("sender-keys")))
    port = free_port()
    with serve(sender_app(sender), port, **tls(certs)):
        yield sender, f"https://public.test:{port}"


@pytest.fixture(scope="module")
def receiving(
    certs: CertFiles, dns_server: DnsServer, sender: tuple[Sender, str]
) -> Iterator[Receiver]:
    port = free_port()
    receiver = Receiver(
        base_url=f"https://127.0.0.1:{port}",
        jwks_url=sender[1] + JWKS_PATH,
        config=discovery_config(certs, dns_server),
    )
    with serve(receiver_app(receiver), port, **tls(certs)):
        yield receiver


@pytest.fixture
def receiver(receiving: Receiver) -> Iterator[Receiver]:
    yield receiving
    receiving.clock.offset = timedelta(0)
    receiving.legacy = None


@pytest.fixture
def keys(sender: tuple[Sender, str]) -> SigningKeys:
    return sender[0].keys


@pytest.fixture
async def plain(certs: CertFiles) -> AsyncIterator[httpx2.AsyncClient]:
    context = ssl.create_default_context(cafile=certs.ca_file)
    async with httpx2.AsyncClient(verify=context, timeout=5, trust_env=False) as client:
        yield client


@pytest.fixture
async def signing(certs: CertFiles, keys: SigningKeys) -> AsyncIterator[httpx2.AsyncClient]:
    context = ssl.create_default_context(cafile=certs.ca_file)
    auth = OcmSignatureAuth(keys)
    async with httpx2.AsyncClient(verify=context, timeout=5, auth=auth, trust_env=False) as client:
        yield client
