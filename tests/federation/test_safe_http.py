"""SSRF rules on real connections: private answers, redirects, rebinding, timeouts, big bodies."""

from __future__ import annotations

import dataclasses

import pytest

from federation.config import DiscoveryConfig
from federation.errors import (
    BlockedAddress,
    FetchTimeout,
    InsecureScheme,
    MalformedDocument,
    ResponseTooLarge,
    TooManyRedirects,
)
from federation.safe_http import SafeHttpClient
from tests.federation.conftest import Site
from tests.federation.dnsserver import DnsServer, bind, sequence

PRIVATE_TOO = ("127.0.0.0/8",)


def client_for(config: DiscoveryConfig, **changes: object) -> SafeHttpClient:
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    return SafeHttpClient(config)


async def whoami(http: SafeHttpClient, url: str) -> str:
    try:
        fetched = await http.get(url, what="whoami")
        return str(fetched.json_object("whoami")["server"])
    finally:
        await http.aclose()


async def test_public_name_is_fetched_with_tls_verified_by_name(
    config: DiscoveryConfig, paris: Site
) -> None:
    assert await whoami(client_for(config), f"https://public.test:{paris.port}/whoami") == "paris"


async def test_name_resolving_to_private_address_is_refused(
    config: DiscoveryConfig, paris: Site
) -> None:
    with pytest.raises(BlockedAddress, match=r"internal.test resolves to 127.0.0.2"):
        await whoami(client_for(config), f"https://internal.test:{paris.port}/whoami")


async def test_name_resolving_to_private_address_is_fetched_when_allowed(
    config: DiscoveryConfig, paris: Site
) -> None:
    http = client_for(config, allow_private_networks=PRIVATE_TOO)
    assert await whoami(http, f"https://internal.test:{paris.port}/whoami") == "internal"


async def test_ipv4_mapped_ipv6_answer_is_refused(config: DiscoveryConfig, paris: Site) -> None:
    with pytest.raises(BlockedAddress, match=r"::ffff:7f00:2"):
        await whoami(client_for(config), f"https://mapped.test:{paris.port}/whoami")


async def test_ip_literal_urls_are_checked_too(config: DiscoveryConfig, paris: Site) -> None:
    with pytest.raises(BlockedAddress):
        await whoami(client_for(config), f"https://127.0.0.2:{paris.port}/whoami")


async def test_redirect_to_private_address_is_refused(config: DiscoveryConfig, paris: Site) -> None:
    url = f"https://public.test:{paris.port}/redirect?to=https://internal.test:{paris.port}/whoami"
    with pytest.raises(BlockedAddress, match=r"internal.test"):
        await whoami(client_for(config), url)
    assert await whoami(client_for(config, allow_private_networks=PRIVATE_TOO), url) == "internal"


async def test_redirect_to_plain_http_is_refused(config: DiscoveryConfig, paris: Site) -> None:
    url = f"https://public.test:{paris.port}/redirect?to=http://public.test:{paris.port}/whoami"
    with pytest.raises(InsecureScheme):
        await whoami(client_for(config), url)


async def test_more_than_three_redirects_are_refused(config: DiscoveryConfig, paris: Site) -> None:
    base = f"https://public.test:{paris.port}"
    assert await whoami(client_for(config), f"{base}/redirect-loop?n=2") == "paris"  # 3 redirects
    with pytest.raises(TooManyRedirects):
        await whoami(client_for(config), f"{base}/redirect-loop?n=3")  # 4 redirects


async def test_rebinding_connects_to_the_checked_address(
    config: DiscoveryConfig, paris: Site, dns_server: DnsServer, sites: dict[str, Site]
) -> None:
    """First answer public, later answers private: we connect where we checked, once."""
    dns_server.add("rebind.test", "A", sequence(["127.0.0.1"], ["127.0.0.2"]), ttl=0)
    before = dns_server.queries[("rebind.test", "A")]
    internal_hits = sites["internal"].knobs.hits["/whoami"]
    assert await whoami(client_for(config), f"https://rebind.test:{paris.port}/whoami") == "paris"
    assert dns_server.queries[("rebind.test", "A")] == before + 1
    assert sites["internal"].knobs.hits["/whoami"] == internal_hits


async def test_rebinding_from_private_is_refused_and_allowed_by_configuration(
    config: DiscoveryConfig, paris: Site, dns_server: DnsServer
) -> None:
    url = f"https://rebind.test:{paris.port}/whoami"
    dns_server.add("rebind.test", "A", sequence(["127.0.0.2"], ["127.0.0.1"]), ttl=0)
    with pytest.raises(BlockedAddress):
        await whoami(client_for(config), url)
    dns_server.add("rebind.test", "A", sequence(["127.0.0.2"], ["127.0.0.1"]), ttl=0)
    assert await whoami(client_for(config, allow_private_networks=PRIVATE_TOO), url) == "internal"


async def test_plain_http_is_refused_unless_configured(config: DiscoveryConfig) -> None:
    with pytest.raises(InsecureScheme):
        await whoami(client_for(config), "http://public.test/whoami")
    with pytest.raises(InsecureScheme):
        await whoami(client_for(config, allow_http=True), "ftp://public.test/whoami")


async def test_read_timeout(config: DiscoveryConfig, paris: Site) -> None:
    http = client_for(config, read_timeout_s=0.2)
    with pytest.raises(FetchTimeout):
        await whoami(http, f"https://public.test:{paris.port}/slow?s=2")


async def test_connect_timeout_when_tls_handshake_never_answers(config: DiscoveryConfig) -> None:
    sock = bind("127.0.0.1")
    sock.listen(5)  # the kernel accepts TCP; nobody ever speaks TLS
    try:
        http = client_for(config, connect_timeout_s=0.2)
        with pytest.raises(FetchTimeout):
            await whoami(http, f"https://hang.test:{sock.getsockname()[1]}/whoami")
    finally:
        sock.close()


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_oversized_bodies_are_refused(
    config: DiscoveryConfig, paris: Site, path: str
) -> None:
    http = client_for(config, max_body_bytes=64 * 1024)
    with pytest.raises(ResponseTooLarge, match=r"larger than 65536 bytes"):
        await whoami(http, f"https://public.test:{paris.port}{path}")


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_post_reads_an_oversized_answer_only_up_to_the_cap(
    config: DiscoveryConfig, paris: Site, path: str
) -> None:
    http = client_for(config, max_body_bytes=64 * 1024)
    try:
        url = f"https://public.test:{paris.port}{path}"
        assert await http.post(url, b"{}", {}, what="delivery") == 200
    finally:
        await http.aclose()


async def test_non_json_answer_names_the_document(config: DiscoveryConfig, paris: Site) -> None:
    with pytest.raises(MalformedDocument, match=r"whoami at https://public.test.*not valid JSON"):
        await whoami(client_for(config), f"https://public.test:{paris.port}/not-json")
