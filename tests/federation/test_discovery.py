"""Discovery end to end: real DNS, real TLS servers on loopback, no mocks."""

from __future__ import annotations

import dataclasses

import pytest

from federation.config import DiscoveryConfig
from federation.discovery import Discovery
from federation.errors import (
    BlockedAddress,
    FetchFailed,
    IssuerMismatch,
    UnknownAccount,
)
from tests.federation.conftest import Site
from tests.federation.dnsserver import DnsServer


async def test_discovery_through_srv(discovery: Discovery, paris: Site) -> None:
    found = await discovery.discover("marie@paris.test")
    assert found.location.how == "dns-srv"
    assert found.location.origin == paris.origin
    assert found.metadata.domain == "paris.test"
    assert found.metadata.base_url == paris.origin
    assert found.metadata.endpoints["drives"] == paris.origin + "/graph/v1.0/me/drives"
    assert found.issuer == paris.origin + "/idp"
    assert found.openid.jwks_uri == paris.origin + "/idp/jwks"
    assert [k["kid"] for k in found.registry_keys] == [paris.keys.active.kid]
    assert {s.name for s in found.steps} == {
        "dns",
        "webfinger",
        "metadata",
        "openid-configuration",
        "jwks",
    }


async def test_discovery_through_txt(discovery: Discovery, sites: dict[str, Site]) -> None:
    found = await discovery.discover("einstein@zurich.test")
    assert found.location.how == "dns-txt"
    assert found.location.origin == sites["zurich"].origin


async def test_discovery_through_bare_domain(
    config: DiscoveryConfig, sites: dict[str, Site]
) -> None:
    bare = sites["bare"]
    async with Discovery(dataclasses.replace(config, default_port=bare.port)) as client:
        found = await client.discover("marie@bare.test")
    assert found.location.how == "domain"
    assert found.location.origin == bare.origin


async def test_explicit_port_in_address_skips_dns(
    discovery: Discovery, sites: dict[str, Site], dns_server: DnsServer
) -> None:
    closed = sites["closed"]  # its users are addressed as user@closed.test:<port>
    before = dns_server.queries[("_spacereg._tcp.closed.test", "SRV")]
    found = await discovery.discover(f"marie@closed.test:{closed.port}")
    assert found.location.how == "address"
    assert found.metadata.domain == f"closed.test:{closed.port}"
    assert dns_server.queries[("_spacereg._tcp.closed.test", "SRV")] == before


async def test_address_at_a_domain_the_registry_does_not_serve(
    discovery: Discovery, sites: dict[str, Site]
) -> None:
    with pytest.raises(UnknownAccount, match=r"does not know marie@bare.test"):
        await discovery.discover(f"marie@bare.test:{sites['bare'].port}")


async def test_srv_priority_is_honoured_with_failover(
    discovery: Discovery, sites: dict[str, Site]
) -> None:
    found = await discovery.discover("marie@lyon.test")
    assert found.location.origin == sites["lyon"].origin  # priority 10 is dead, 20 answers


async def test_issuer_mismatch_is_rejected(discovery: Discovery, paris: Site) -> None:
    paris.knobs.issuer_override = "https://evil.test/idp"
    try:
        with pytest.raises(IssuerMismatch, match=r"names issuer 'https://evil.test/idp'"):
            await discovery.discover("marie@paris.test")
    finally:
        paris.knobs.issuer_override = None


async def test_unknown_account_where_the_registry_reveals_it(
    discovery: Discovery, sites: dict[str, Site]
) -> None:
    port = sites["closed"].port
    with pytest.raises(UnknownAccount):
        await discovery.discover(f"nobody@closed.test:{port}")


async def test_loopback_registry_is_refused_without_allow_list(config: DiscoveryConfig) -> None:
    async with Discovery(dataclasses.replace(config, allow_private_networks=())) as client:
        with pytest.raises(BlockedAddress, match=r"registry.paris.test resolves to 127.0.0.1"):
            await client.discover("marie@paris.test")


async def test_domain_without_registry_fails_clearly(discovery: Discovery) -> None:
    with pytest.raises(FetchFailed, match=r"nowhere.test"):
        await discovery.discover("marie@nowhere.test")
