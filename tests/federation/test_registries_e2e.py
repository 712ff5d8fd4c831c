"""Two real spacereg registries, zurich.test and paris.test, find each other over TLS and DNS.

Each registry is the full application (`registry.app.create_app`) on a loopback port, with a
certificate from a test CA of this module, its own `domain` and https `base_url`. A DNS server of
this module publishes SRV `_spacereg._tcp.paris.test` and TXT `_spacereg.zurich.test`; a second
one publishes only addresses, so that paris is found through its bare domain. Discovery runs
with the configuration each registry builds from its own settings, and as `spacereg discover`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from federation.discovery import Discovery
from federation.errors import BlockedAddress
from registry.runtime.demo_ca import CertFiles, make_certs
from registry.runtime.federation_wiring import discovery_config
from registry.runtime.settings import Settings
from registry.runtime.wiring import Services
from tests.conftest import registry_settings, start_registry_context
from tests.federation.dnsserver import DnsServer
from tests.schema import check_response
from tests.servers import free_port, serve

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1/32"  # plays the public internet, as in conftest.py
NAMES = ["registry.zurich.test", "zurich.test", "registry.paris.test", "paris.test", "127.0.0.1"]


@dataclass
class Site:
    domain: str
    port: int
    base_url: str  # https://registry.<domain>:<port>
    settings: Settings
    services: Services  # of the running app

    @property
    def local_url(self) -> str:
        """The same server by IP, for test clients that do not use our DNS server."""
        return f"https://127.0.0.1:{self.port}"


@dataclass
class Federation:
    dns: DnsServer
    bare_dns: DnsServer  # addresses only: no SRV, no TXT
    certs: CertFiles
    zurich: Site
    paris: Site


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path) -> Iterator[Federation]:
    certs = make_certs(tmp_path_factory.mktemp("e2e-tls"), NAMES)
    with DnsServer().running() as dns, DnsServer().running() as bare_dns:
        ports = {"zurich.test": free_port(), "paris.test": free_port()}
        for server in (dns, bare_dns):
            for domain in ports:
                server.add(domain, "A", ["127.0.0.1"])
                server.add(f"registry.{domain}", "A", ["127.0.0.1"])
        dns.add(
            "_spacereg._tcp.paris.test",
            "SRV",
            [f"10 5 {ports['paris.test']} registry.paris.test."],
        )
        dns.add(
            "_spacereg.zurich.test",
            "TXT",
            [f'"v=spacereg1; url=https://registry.zurich.test:{ports["zurich.test"]}"'],
        )
        sites, servers = {}, []
        for domain, port in ports.items():
            base_url = f"https://registry.{domain}:{port}"
            settings = registry_settings(
                tmp_path_factory.mktemp(domain),
                port,
                domain=domain,
                base_url=base_url,
                tls_certfile=certs.cert_file,
                tls_keyfile=certs.key_file,
                federation={
                    "dns_nameservers": [dns.nameserver],
                    "allow_private_networks": [LOOPBACK],
                    "ca_file": certs.ca_file,
                },
            )
            # The helper's plain-http server is not entered: this one serves TLS, as in production.
            app, _plain_http = start_registry_context(settings, idp_key_dir)
            servers.append(
                serve(
                    app, port, ssl_certfile=settings.tls_certfile, ssl_keyfile=settings.tls_keyfile
                )
            )
            sites[domain] = Site(domain, port, base_url, settings, app.state.services)
        with servers[0], servers[1]:
            yield Federation(dns, bare_dns, certs, sites["zurich.test"], sites["paris.test"])


def published_keys(site: Site) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = site.services.signing_keys.jwks()["keys"]
    return keys


def access_token(site: Site, username: str) -> str:
    assert site.services.idp is not None
    return site.services.idp.access_token_for(username)


def checked_client(federation: Federation, site: Site) -> httpx2.AsyncClient:
    """Every answer is checked against registry/openapi.yaml."""
    return httpx2.AsyncClient(
        base_url=site.local_url,
        verify=ssl.create_default_context(cafile=federation.certs.ca_file),
        timeout=10,
        event_hooks={"response": [check_response]},
    )


async def test_zurich_discovers_marie_at_paris_through_dns_srv(federation: Federation) -> None:
    zurich, paris = federation.zurich, federation.paris
    async with Discovery(discovery_config(zurich.settings)) as discovery:
        found = await discovery.discover("marie@paris.test")

    assert found.location.how == "dns-srv"
    assert found.location.origin == paris.base_url
    assert found.location.record.startswith("_spacereg._tcp.paris.test SRV 10 5")
    assert found.webfinger.subject == "acct:marie@paris.test"
    assert found.metadata.domain == "paris.test"
    assert found.metadata.base_url == paris.base_url
    assert found.metadata.endpoints["drives"] == f"{paris.base_url}/graph/v1.0/me/drives"
    assert found.metadata.issuers == (f"{paris.base_url}/idp",)
    assert found.issuer == f"{paris.base_url}/idp"
    assert found.openid.jwks_uri == f"{paris.base_url}/idp/jwks"
    assert found.openid.token_endpoint == f"{paris.base_url}/idp/token"
    assert found.metadata.jwks_uri == f"{paris.base_url}/.well-known/jwks.json"
    assert list(found.registry_keys) == published_keys(paris)
    assert published_keys(paris) != published_keys(zurich)
    assert [step.name for step in found.steps] == [
        "dns",
        "webfinger",
        "metadata",
        "openid-configuration",
        "jwks",
    ]
    assert {step.source for step in found.steps} == {"fetched"}


async def test_the_drives_endpoint_paris_announces_lists_maries_spaces(
    federation: Federation,
) -> None:
    paris = federation.paris
    async with Discovery(discovery_config(federation.zurich.settings)) as discovery:
        drives = (await discovery.discover("marie@paris.test")).metadata.endpoints["drives"]
    assert drives.startswith(paris.base_url + "/")

    path = drives.removeprefix(paris.base_url)
    headers = {"Authorization": f"Bearer {access_token(paris, 'marie')}"}
    async with checked_client(federation, paris) as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 200
    assert [d["driveAlias"] for d in response.json()["value"]] == ["personal/marie"]


async def test_paris_discovers_einstein_at_zurich_through_dns_txt(federation: Federation) -> None:
    zurich, paris = federation.zurich, federation.paris
    async with Discovery(discovery_config(paris.settings)) as discovery:
        found = await discovery.discover("einstein@zurich.test")

    assert found.location.how == "dns-txt"
    assert found.location.origin == zurich.base_url
    assert found.metadata.domain == "zurich.test"
    assert found.metadata.base_url == zurich.base_url
    assert found.metadata.endpoints["drives"] == f"{zurich.base_url}/graph/v1.0/me/drives"
    assert found.issuer == f"{zurich.base_url}/idp"
    assert found.openid.jwks_uri == f"{zurich.base_url}/idp/jwks"
    assert list(found.registry_keys) == published_keys(zurich)


async def test_paris_is_found_at_its_bare_domain_when_dns_publishes_no_record(
    federation: Federation,
) -> None:
    paris = federation.paris
    config = dataclasses.replace(
        discovery_config(federation.zurich.settings),
        dns_nameservers=(federation.bare_dns.nameserver,),
        default_port=paris.port,  # 443 in production
    )
    async with Discovery(config) as discovery:
        found = await discovery.discover("marie@paris.test")

    assert found.location.how == "domain"
    assert found.location.origin == f"https://paris.test:{paris.port}"
    assert found.metadata.base_url == paris.base_url
    assert found.issuer == f"{paris.base_url}/idp"
    assert list(found.registry_keys) == published_keys(paris)


async def test_discovery_refuses_loopback_unless_configuration_allows_it(
    federation: Federation,
) -> None:
    zurich = federation.zurich.settings
    strict = zurich.federation.model_copy(update={"allow_private_networks": ()})
    settings = zurich.model_copy(update={"federation": strict})
    async with Discovery(discovery_config(settings)) as discovery:
        with pytest.raises(BlockedAddress, match=r"127\.0\.0\.1"):
            await discovery.discover("marie@paris.test")


@pytest.mark.parametrize("domain", ["zurich.test", "paris.test"])
async def test_webfinger_of_both_registries_answers_as_documented(
    federation: Federation, domain: str
) -> None:
    site = federation.zurich if domain == "zurich.test" else federation.paris
    other = "paris.test" if domain == "zurich.test" else "zurich.test"
    webfinger = "/.well-known/webfinger"
    async with checked_client(federation, site) as client:
        response = await client.get(webfinger, params={"resource": f"acct:marie@{domain}"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/jrd+json"
        assert response.headers["access-control-allow-origin"] == "*"
        links = {link["rel"]: link["href"] for link in response.json()["links"]}
        assert links == {
            "http://openid.net/specs/connect/1.0/issuer": f"{site.base_url}/idp",
            "https://spacereg.org/rel/registry": f"{site.base_url}/.well-known/space-registry",
            "http://webfinger.owncloud/rel/server-instance": site.base_url,
        }

        response = await client.get(
            webfinger,
            params={"resource": site.base_url},
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["subject"] == site.base_url

        response = await client.get(webfinger, params={"resource": f"acct:marie@{other}"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        response = await client.get(webfinger, params={"resource": "marie"})
        assert response.status_code == 400
        response = await client.post(webfinger)
        assert response.status_code == 405

        for path in ("/.well-known/space-registry", "/.well-known/jwks.json", "/.well-known/ocm"):
            assert (await client.get(path)).status_code == 200


# ---- `spacereg discover`, the real command in a process of its own ----


def spacereg(
    federation: Federation, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SPACEREG_")}
    environment.update(
        {
            "SPACEREG_DNS_NAMESERVERS": federation.dns.nameserver,
            "SPACEREG_CA_FILE": federation.certs.ca_file,
            "SPACEREG_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "registry", "--data-dir", str(tmp_path / "cli"), "discover", *args],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_spacereg_discover_names_the_registry_and_how_it_was_found(
    federation: Federation, tmp_path: Path
) -> None:
    paris = federation.paris
    result = spacereg(federation, tmp_path, "marie@paris.test")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("marie@paris.test\n")
    assert (
        f"registry host   {paris.base_url}  (found by DNS SRV (_spacereg._tcp.paris.test SRV "
        f"10 5 {paris.port} registry.paris.test))"
    ) in out
    assert f"registry        {paris.base_url}  (domain paris.test" in out
    assert f"drives            {paris.base_url}/graph/v1.0/me/drives" in out
    assert f"issuer          {paris.base_url}/idp  (OpenID configuration checked)" in out
    assert f"keys (JWKS)     {paris.base_url}/.well-known/jwks.json  (1 key(s))" in out


def test_spacereg_discover_json_has_the_issuer(federation: Federation, tmp_path: Path) -> None:
    zurich = federation.zurich
    result = spacereg(federation, tmp_path, "einstein@zurich.test", "--json")

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["registry"]["found_by"] == "dns-txt"
    assert doc["registry"]["origin"] == zurich.base_url
    assert doc["issuer"]["url"] == f"{zurich.base_url}/idp"
    assert doc["issuer"]["jwks_uri"] == f"{zurich.base_url}/idp/jwks"
    assert doc["metadata"]["base_url"] == zurich.base_url
    assert doc["registry_keys"] == [key["kid"] for key in published_keys(zurich)]


def test_spacereg_discover_fails_with_the_reason_when_loopback_is_not_allowed(
    federation: Federation, tmp_path: Path
) -> None:
    result = spacereg(federation, tmp_path, "marie@paris.test", SPACEREG_ALLOW_PRIVATE_NETWORKS="")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("spacereg discover: cannot discover marie@paris.test: ")
    assert "127.0.0.1" in result.stderr
    assert result.stderr.rstrip().endswith("[blocked_address]")


def test_spacereg_discover_rejects_an_invalid_address(
    federation: Federation, tmp_path: Path
) -> None:
    result = spacereg(federation, tmp_path, "not-an-address")

    assert result.returncode == 2
    assert "cannot discover not-an-address" in result.stderr
    assert "[invalid_address]" in result.stderr
