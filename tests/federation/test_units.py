"""Pure functions of federation: addresses, IP policy, SRV order, cache headers, Retry-After,
documents."""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from federation.addresses import Address, parse_address
from federation.config import DiscoveryConfig
from federation.dns import SrvTarget, order_srv
from federation.errors import (
    InvalidAddress,
    IssuerMismatch,
    MalformedDocument,
    NoRegistry,
    RegistryMismatch,
)
from federation.httpcache import ttl_from_headers
from federation.instance import Endpoints, LocalInstance
from federation.locate import DnsFindings, registry_locations
from federation.metadata import metadata_document, parse_metadata
from federation.netpolicy import NetworkPolicy, is_public_address
from federation.ocm_discovery import OcmPublicKey, ocm_discovery_document, parse_ocm_discovery
from federation.oidc_discovery import parse_openid_configuration
from federation.retry_after import retry_after_s
from federation.webfinger import negotiate_media_type


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("marie@paris.test", Address("marie", "paris.test")),
        ("acct:marie@Paris.Test", Address("marie", "paris.test")),
        ("a@b@paris.test", Address("a@b", "paris.test")),
        ("acct:juliet%40capulet.example@shop.test", Address("juliet@capulet.example", "shop.test")),
        ("marie@paris.test:8443", Address("marie", "paris.test", 8443)),
        ("marie@[::1]:8443", Address("marie", "::1", 8443)),
        ("marie@10.0.0.1", Address("marie", "10.0.0.1")),
        ("marie@bücher.test", Address("marie", "xn--bcher-kva.test")),
    ],
)
def test_addresses_split_at_the_last_at_sign(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "marie",
        "@paris.test",
        "marie@",
        "marie@paris.test:0",
        "marie@paris.test:x",
        "marie@pa ris.test",
        "ma/rie@paris.test",
        "marie@-paris.test",
        "marie@[::1",
        "a" * 600,
    ],
)
def test_invalid_addresses_are_refused(text: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_address(text)


def test_acct_uri_escapes_at_signs_in_the_user() -> None:
    assert parse_address("a@b@paris.test").acct == "acct:a%40b@paris.test"
    assert str(parse_address("marie@paris.test:8443")) == "marie@paris.test:8443"


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.1.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "::127.0.0.1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert not is_public_address(ipaddress.ip_address(ip))
    assert not NetworkPolicy().allows(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses_are_allowed(ip: str) -> None:
    assert NetworkPolicy().allows(ipaddress.ip_address(ip))


def test_allow_list_admits_private_networks_and_their_mapped_forms() -> None:
    policy = NetworkPolicy(["10.0.0.0/8", "fd00::/8"])
    assert policy.allows(ipaddress.ip_address("10.2.3.4"))
    assert policy.allows(ipaddress.ip_address("::ffff:10.2.3.4"))
    assert policy.allows(ipaddress.ip_address("fd00::5"))
    assert not policy.allows(ipaddress.ip_address("192.168.0.1"))
    with pytest.raises(ValueError, match=r"not a CIDR"):
        NetworkPolicy(["ten"])


def test_srv_order_honours_priority_then_weight() -> None:
    targets = [SrvTarget(20, 0, 1, "c"), SrvTarget(10, 90, 1, "a"), SrvTarget(10, 10, 1, "b")]
    firsts: Counter[str] = Counter()
    rng = random.Random(7)
    for _ in range(2000):
        ordered = order_srv(targets, rng)
        assert ordered[-1].target == "c"
        firsts[ordered[0].target] += 1
    assert 0.85 < firsts["a"] / 2000 < 0.95


def test_srv_target_dot_means_no_registry() -> None:
    findings = DnsFindings((SrvTarget(0, 0, 0, ""),), ())
    with pytest.raises(NoRegistry):
        registry_locations(
            parse_address("m@x.test"), findings, list(findings.srv), DiscoveryConfig()
        )


@pytest.mark.parametrize(
    "record",
    [
        "v=spacereg1",
        "v=spacereg1; url=http://x.test",
        "v=spacereg1; url=https://x.test/path",
        "v=spacereg1; url=https://bad host",
    ],
)
def test_malformed_txt_records_are_named(record: str) -> None:
    with pytest.raises(MalformedDocument, match=r"DNS TXT _spacereg.x.test"):
        registry_locations(
            parse_address("m@x.test"), DnsFindings((), (record,)), [], DiscoveryConfig()
        )


@pytest.mark.parametrize(
    ("headers", "ttl"),
    [
        ({}, None),
        ({"cache-control": "public, max-age=600"}, 600),
        ({"cache-control": "max-age=600", "age": "100"}, 500),
        ({"cache-control": "no-store"}, 0),
        ({"cache-control": "no-cache, max-age=600"}, 0),
        (
            {"expires": "Thu, 01 Jan 2026 01:00:00 GMT", "date": "Thu, 01 Jan 2026 00:00:00 GMT"},
            3600,
        ),
        ({"expires": "0"}, 0),
    ],
)
def test_ttl_from_cache_headers(headers: dict[str, str], ttl: float | None) -> None:
    assert ttl_from_headers(headers) == ttl


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("120", 120),
        ("Thu, 01 Jan 2026 00:05:00 GMT", 300),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0),  # a date already past: no wait
        ("-5", None),
        ("soon", None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(value: str | None, seconds: float | None) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_s({} if value is None else {"retry-after": value}, now) == seconds


def test_accept_negotiation_prefers_jrd() -> None:
    assert negotiate_media_type("application/json") == "application/json"
    assert negotiate_media_type("application/json;q=0.5") == "application/json"
    assert negotiate_media_type("application/json;q=0") == "application/jrd+json"


INSTANCE = LocalInstance(
    domain="Paris.test",
    base_url="https://paris.test/",
    issuers=("https://paris.test/idp",),
    software_version="1.2.3",
)


def test_our_metadata_round_trips_through_the_parser() -> None:
    doc = metadata_document(INSTANCE)
    parsed = parse_metadata(doc, "https://paris.test/m", "paris.test")
    assert parsed.base_url == "https://paris.test"
    assert parsed.endpoints == {
        "drives": "https://paris.test/graph/v1.0/me/drives",
        "ocm": "https://paris.test/ocm",
    }


def test_metadata_announces_only_the_apis_offered() -> None:
    offering = replace(INSTANCE, endpoints=Endpoints(changes="/api/v1/changes"))
    assert set(metadata_document(offering)["endpoints"]) == {"drives", "changes", "ocm"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metadata_version": "2.0"}, "metadata_version"),
        ({"domain": 5}, "'domain'"),
        ({"endpoints": []}, "'endpoints'"),
        ({"issuers": []}, "'issuers'"),
        ({"jwks_uri": "/relative"}, "'jwks_uri'"),
        ({"endpoints": {"drives": "ftp://x"}}, "endpoints.drives"),
        ({"capabilities": [1]}, "'capabilities'"),
    ],
)
def test_malformed_metadata_names_the_field(change: dict[str, Any], message: str) -> None:
    doc = {**metadata_document(INSTANCE), **change}
    with pytest.raises(MalformedDocument, match=message):
        parse_metadata(doc, "https://paris.test/m", "paris.test")


def test_metadata_for_another_domain_is_a_mismatch() -> None:
    with pytest.raises(RegistryMismatch):
        parse_metadata(metadata_document(INSTANCE), "https://paris.test/m", "zurich.test")


def test_openid_configuration_issuer_must_match_exactly() -> None:
    doc = {"issuer": "https://paris.test/idp", "jwks_uri": "https://paris.test/idp/jwks"}
    assert parse_openid_configuration(doc, "https://paris.test/idp").jwks_uri.endswith("/jwks")
    with pytest.raises(IssuerMismatch):
        parse_openid_configuration(doc, "https://paris.test/idp/")
    with pytest.raises(MalformedDocument, match=r"jwks_uri"):
        parse_openid_configuration({"issuer": "https://i.test"}, "https://i.test")


def test_ocm_discovery_documents_parse_including_older_1x() -> None:
    ours = parse_ocm_discovery(ocm_discovery_document(INSTANCE), "https://paris.test/ocm")
    assert ours.end_point == "https://paris.test/ocm"
    old = {
        "enabled": True,
        "apiVersion": "1.1.0",
        "endPoint": "https://nc.test/ocm/",
        "capabilities": ["/invite-accepted"],
    }
    assert parse_ocm_discovery(old, "u").capabilities == ("invite-accepted",)
    with pytest.raises(MalformedDocument, match=r"apiVersion"):
        parse_ocm_discovery({**old, "apiVersion": "2.0"}, "u")


def test_our_ocm_discovery_announces_only_what_exists() -> None:
    doc = ocm_discovery_document(INSTANCE)
    assert doc["capabilities"] == ["http-sig"]
    assert doc["criteria"] == ["must-use-http-sig"]
    assert doc["jwksUri"] == INSTANCE.base_url + "/.well-known/jwks.json"
    both = ocm_discovery_document(INSTANCE, notifications=True, invites=True)
    assert both["capabilities"] == ["http-sig", "notifications", "invites"]
    ours = parse_ocm_discovery(doc, "u")
    assert ours.signs_http_sig and ours.jwks_uri == doc["jwksUri"] and ours.public_key is None


def test_peer_ocm_discovery_exposes_criteria_keys_and_legacy_public_key() -> None:
    nextcloud = {
        "enabled": True,
        "apiVersion": "1.1.0",
        "endPoint": "https://nc.test/ocm",
        "capabilities": ["/invite-accepted", "/notifications"],
        "publicKey": {"keyId": "https://nc.test/ocm#signature", "publicKeyPem": "PEM"},
    }
    legacy = parse_ocm_discovery(nextcloud, "u")
    assert legacy.capabilities == ("invite-accepted", "notifications")
    assert not legacy.signs_http_sig and legacy.jwks_uri is None and legacy.criteria == ()
    assert legacy.public_key == OcmPublicKey("https://nc.test/ocm#signature", "PEM")
    current = {
        **nextcloud,
        "apiVersion": "1.3.0",
        "capabilities": ["http-sig", "exchange-token"],
        "criteria": ["must-use-http-sig", "must-exchange-token"],
        "jwksUri": "https://nc.test/.well-known/jwks.json",
    }
    peer = parse_ocm_discovery(current, "u")
    assert peer.signs_http_sig and peer.criteria == ("must-use-http-sig", "must-exchange-token")
    assert peer.jwks_uri == "https://nc.test/.well-known/jwks.json"
    for field, value, message in [
        ("jwksUri", "/jwks.json", "jwksUri"),
        ("criteria", "must-use-http-sig", "criteria"),
        ("publicKey", {"keyId": "k"}, "publicKey"),
    ]:
        with pytest.raises(MalformedDocument, match=message):
            parse_ocm_discovery({**current, field: value}, "u")
