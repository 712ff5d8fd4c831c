"""Discovery configuration: built once by the registry from its settings, then passed down.

The registry builds it from `registry.runtime.settings.Settings` (federation never reads settings):

    DiscoveryConfig(
        dns_nameservers=settings.federation.dns_nameservers,
        allow_private_networks=settings.federation.allow_private_networks,
        allow_http=settings.federation.allow_http,
        ca_file=settings.federation.ca_file,
    )
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DiscoveryConfig"]


@dataclass(frozen=True)
class DiscoveryConfig:
    # "ip" or "ip:port" or "[v6]:port"; empty: the system's resolvers (and getaddrinfo for A/AAAA)
    dns_nameservers: tuple[str, ...] = ()
    # CIDRs that may be fetched although not public (e.g. "10.0.0.0/8", "127.0.0.0/8")
    allow_private_networks: tuple[str, ...] = ()
    # plain http for development only; https is always accepted
    allow_http: bool = False
    # PEM bundle of CAs to trust instead of the system's (a private PKI, or the tests' CA)
    ca_file: str | None = None
    # port of a bare domain's registry when DNS publishes nothing (443 except in tests)
    default_port: int = 443
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 5.0
    dns_timeout_s: float = 3.0
    max_body_bytes: int = 256 * 1024
    max_redirects: int = 3
    # TTLs from DNS and Cache-Control are clamped into [min_ttl_s, max_ttl_s]
    min_ttl_s: float = 60.0
    max_ttl_s: float = 24 * 3600.0
    default_ttl_s: float = 3600.0
    negative_ttl_s: float = 60.0
    # how long past expiry an answer may still be served while its remote is down
    max_stale_s: float = 7 * 24 * 3600.0
    user_agent: str = "spacereg-discovery/1"

    @property
    def schemes(self) -> tuple[str, ...]:
        """The URL schemes discovery may fetch: https, and plain http when allowed."""
        return ("https", "http") if self.allow_http else ("https",)
