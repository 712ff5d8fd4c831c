"""Federation fixtures: a test CA, a real DNS server and HTTPS registries, all on loopback.

Addresses: 127.0.0.1 plays the public internet (tests allow exactly 127.0.0.1/32), 127.0.0.2
plays a private network that discovery must not reach unless configuration allows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from federation.config import DiscoveryConfig
from federation.discovery import Discovery
from federation.instance import LocalInstance
from federation.keys import SigningKeys
from tests.federation.dnsserver import DnsServer, bind
from tests.federation.tls_servers import (
    CertFiles,
    Directory,
    Knobs,
    build_app,
    make_certs,
    serve_tls,
)
from tests.servers import free_port

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
    return make_certs(tmp_path_factory.mktemp("tls"))


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
