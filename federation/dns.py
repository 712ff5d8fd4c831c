"""DNS look-ups discovery needs (SRV, TXT, A/AAAA) behind a small Protocol, so tests can inject."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from federation.addresses import parse_host
from federation.errors import DnsLookupFailed, FetchFailed, InvalidAddress
from federation.netpolicy import IPAddress

__all__ = [
    "DnsPythonResolver",
    "Records",
    "Resolver",
    "SrvTarget",
    "order_srv",
]

T = TypeVar("T")


@dataclass(frozen=True)
class SrvTarget:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Records(Generic[T]):
    """An answer and its TTL; `values` is empty when the name or type does not exist."""

    values: tuple[T, ...]
    ttl_s: float | None


class Resolver(Protocol):
    async def srv(self, name: str) -> Records[SrvTarget]: ...
    async def txt(self, name: str) -> Records[str]: ...
    async def addresses(self, host: str) -> list[IPAddress]: ...


def order_srv(targets: Sequence[SrvTarget], rng: random.Random | None = None) -> list[SrvTarget]:
    """RFC 2782 order: lowest priority first; within one priority, weighted random."""
    rng = rng or random.Random()
    ordered: list[SrvTarget] = []
    for priority in sorted({t.priority for t in targets}):
        group = [t for t in targets if t.priority == priority]
        group.sort(key=lambda t: t.weight == 0, reverse=True)  # zero weights first, per RFC
        while group:
            total = sum(t.weight for t in group)
            pick = rng.uniform(0, total) if total else 0
            running = 0
            for index, target in enumerate(group):
                running += target.weight
                if running >= pick:
                    ordered.append(group.pop(index))
                    break
    return ordered


def _nameserver(text: str) -> dns.nameserver.Do53Nameserver:
    try:
        host, port = parse_host(text.strip())
        ipaddress.ip_address(host)
    except (InvalidAddress, ValueError) as exc:
        raise ValueError(f"dns_nameservers: {text!r} is not ip[:port]") from exc
    return dns.nameserver.Do53Nameserver(host, port or 53)


class DnsPythonResolver:
    """dnspython's async resolver; with no nameservers configured, the system's own."""

    def __init__(self, nameservers: Sequence[str] = (), timeout_s: float = 3.0) -> None:
        self._use_system_for_addresses = not nameservers
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [_nameserver(n) for n in nameservers]
        else:
            try:
                self._resolver = dns.asyncresolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                self._resolver = dns.asyncresolver.Resolver(configure=False)
        self._resolver.lifetime = timeout_s
        self._resolver.timeout = timeout_s / 2

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            return await self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.Timeout as exc:
            raise DnsLookupFailed(f"DNS {rdtype} {name}: no answer in time") from exc
        except dns.exception.DNSException as exc:
            raise DnsLookupFailed(f"DNS {rdtype} {name}: {exc}") from exc

    async def srv(self, name: str) -> Records[SrvTarget]:
        answer = await self._query(name, "SRV")
        if answer is None or answer.rrset is None:
            return Records((), None)
        values = tuple(
            SrvTarget(r.priority, r.weight, r.port, r.target.to_text(omit_final_dot=True))
            for r in answer
        )
        return Records(values, float(answer.rrset.ttl))

    async def txt(self, name: str) -> Records[str]:
        answer = await self._query(name, "TXT")
        if answer is None or answer.rrset is None:
            return Records((), None)
        values = tuple(b"".join(r.strings).decode("utf-8", "replace") for r in answer)
        return Records(values, float(answer.rrset.ttl))

    async def addresses(self, host: str) -> list[IPAddress]:
        """Every address of `host` (IPv4 first); FetchFailed when it has none."""
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if self._use_system_for_addresses:
            found = await self._system_addresses(host)
        else:
            a, aaaa = await asyncio.gather(self._query(host, "A"), self._query(host, "AAAA"))
            found = [ipaddress.ip_address(r.address) for ans in (a, aaaa) if ans for r in ans]
        if not found:
            raise FetchFailed(f"host {host!r} has no address in DNS")
        return found

    async def _system_addresses(self, host: str) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise FetchFailed(f"host {host!r} cannot be resolved: {exc}") from exc
        seen: dict[IPAddress, None] = {}
        for family, *_rest, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                seen[ipaddress.ip_address(str(sockaddr[0]).split("%")[0])] = None
        return sorted(seen, key=lambda ip: ip.version)
