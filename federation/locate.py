"""Step 1 of discovery: which origin serves a domain's registry (DNS SRV, DNS TXT, the domain)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from federation.addresses import Address, format_host, parse_host
from federation.config import DiscoveryConfig
from federation.dns import Records, Resolver, SrvTarget
from federation.errors import InvalidAddress, MalformedDocument, NoRegistry

__all__ = ["DnsFindings", "RegistryLocation", "lookup_dns", "registry_locations"]

TXT_VERSION = "v=spacereg1"


@dataclass(frozen=True)
class RegistryLocation:
    origin: str  # "https://registry.paris.test:8443"
    how: str  # "dns-srv", "dns-txt", "domain" or "address" (an explicit port)
    record: str  # the DNS record it came from, for humans; "" when none


@dataclass(frozen=True)
class DnsFindings:
    srv: tuple[SrvTarget, ...]
    txt: tuple[str, ...]


def srv_name(host: str) -> str:
    return f"_spacereg._tcp.{host}"


def txt_name(host: str) -> str:
    return f"_spacereg.{host}"


async def lookup_dns(resolver: Resolver, host: str) -> tuple[DnsFindings, float | None]:
    """SRV and TXT together; the TTL is the smallest of what was found (None: nothing found)."""
    srv, txt = await asyncio.gather(resolver.srv(srv_name(host)), resolver.txt(txt_name(host)))
    ours = tuple(t for t in txt.values if t.strip().startswith(TXT_VERSION))
    ttls = [r.ttl_s for r in (srv, Records(ours, txt.ttl_s)) if r.values and r.ttl_s is not None]
    return DnsFindings(srv.values, ours), (min(ttls) if ttls else None)


def registry_locations(
    address: Address, findings: DnsFindings, ordered_srv: list[SrvTarget], config: DiscoveryConfig
) -> list[RegistryLocation]:
    """SRV wins over TXT, TXT over the bare domain; an SRV target "." means "no registry here"."""
    host = address.host
    if ordered_srv:
        if any(t.target in ("", ".") for t in ordered_srv):
            raise NoRegistry(f"{srv_name(host)} says {host} offers no registry (target '.')")
        return [
            RegistryLocation(
                origin="https://" + format_host(t.target, None if t.port == 443 else t.port),
                how="dns-srv",
                record=f"{srv_name(host)} SRV {t.priority} {t.weight} {t.port} {t.target}",
            )
            for t in ordered_srv
        ]
    if findings.txt:
        record = findings.txt[0]
        return [
            RegistryLocation(_txt_origin(record, host, config), "dns-txt", f"{txt_name(host)} TXT")
        ]
    port = None if config.default_port == 443 else config.default_port
    return host_locations(format_host(host, port), "domain", config)


def host_locations(hostport: str, how: str, config: DiscoveryConfig) -> list[RegistryLocation]:
    """https at the host itself; then plain http, when development allows it."""
    return [RegistryLocation(f"{scheme}://{hostport}", how, "") for scheme in config.schemes]


def _txt_origin(record: str, host: str, config: DiscoveryConfig) -> str:
    fields = {}
    for part in record.split(";"):
        name, _, value = part.strip().partition("=")
        fields[name.strip().lower()] = value.strip()
    url = fields.get("url", "")
    scheme, sep, rest = url.partition("://")
    where = f"DNS TXT {txt_name(host)}"
    if not sep or scheme.lower() not in config.schemes:
        raise MalformedDocument(f"{where}: url= must be an https URL, got {url!r}")
    hostport, _, path = rest.partition("/")
    if path:
        raise MalformedDocument(f"{where}: url= must be an origin without a path, got {url!r}")
    try:
        name, port = parse_host(hostport)
    except InvalidAddress as exc:
        raise MalformedDocument(f"{where}: url= has an invalid host: {exc}") from exc
    return f"{scheme.lower()}://{format_host(name, port)}"
