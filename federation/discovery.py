"""The discovery client: from `marie@paris.test` to paris's registry, endpoints, keys and issuer.

Steps: DNS (SRV, then TXT, else the domain) → WebFinger at that origin → the registry metadata
document and the issuer's OpenID configuration (in parallel) → the registry's JWKS. Every step
is cached on its own (see `cache.py`), so many addresses at one domain share DNS, metadata, OIDC
and JWKS look-ups, and concurrent callers share one in-flight look-up per key.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlencode

from federation.addresses import Address, parse_address, parse_host
from federation.cache import CacheSource, DiscoveryCache
from federation.clock import Clock, MonotonicClock
from federation.config import DiscoveryConfig
from federation.dns import DnsPythonResolver, order_srv
from federation.errors import (
    BadStatus,
    BlockedAddress,
    FetchFailed,
    IssuerNotTrusted,
    MalformedDocument,
    UnknownAccount,
)
from federation.jrd import JRD_MEDIA_TYPE, OIDC_ISSUER_REL, REGISTRY_REL, Jrd, parse_jrd
from federation.keys import parse_jwks
from federation.locate import (
    DnsFindings,
    RegistryLocation,
    host_locations,
    lookup_dns,
    registry_locations,
)
from federation.metadata import RegistryMetadata, parse_metadata
from federation.ocm_discovery import OcmProvider, parse_ocm_discovery
from federation.oidc_discovery import (
    OpenIDConfiguration,
    openid_configuration_url,
    parse_openid_configuration,
)
from federation.safe_http import SafeHttpClient

__all__ = ["DiscoveredPeer", "DiscoveredRegistry", "Discovery", "Step"]

_WEBFINGER_ACCEPT = f"{JRD_MEDIA_TYPE}, application/json;q=0.9"
T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    name: str
    target: str
    source: CacheSource


@dataclass(frozen=True)
class DiscoveredRegistry:
    address: Address
    location: RegistryLocation
    webfinger: Jrd
    metadata: RegistryMetadata
    openid: OpenIDConfiguration
    registry_keys: tuple[dict[str, Any], ...]
    steps: tuple[Step, ...]

    @property
    def issuer(self) -> str:
        return self.openid.issuer

    @property
    def stale(self) -> bool:
        return any(step.source == "stale" for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "registry": {
                "origin": self.location.origin,
                "found_by": self.location.how,
                "record": self.location.record,
            },
            "subject": self.webfinger.subject,
            "metadata": {
                "metadata_version": self.metadata.metadata_version,
                "domain": self.metadata.domain,
                "base_url": self.metadata.base_url,
                "endpoints": self.metadata.endpoints,
                "issuers": list(self.metadata.issuers),
                "jwks_uri": self.metadata.jwks_uri,
                "capabilities": list(self.metadata.capabilities),
                "software": self.metadata.software,
            },
            "issuer": {
                "url": self.openid.issuer,
                "jwks_uri": self.openid.jwks_uri,
                "authorization_endpoint": self.openid.authorization_endpoint,
                "token_endpoint": self.openid.token_endpoint,
            },
            "registry_keys": [k.get("kid") for k in self.registry_keys],
            "steps": [{"name": s.name, "target": s.target, "source": s.source} for s in self.steps],
            "stale": self.stale,
        }


@dataclass(frozen=True)
class DiscoveredPeer:
    """A registry found by its domain (for peering): its metadata and its OCM discovery."""

    location: RegistryLocation
    metadata: RegistryMetadata
    ocm: OcmProvider

    @property
    def jwks_url(self) -> str:
        """Where it publishes the keys it signs with: OCM's `jwksUri`, else the metadata's."""
        return self.ocm.jwks_uri or self.metadata.jwks_uri


class Discovery:
    """One per process; `aclose()` (or `async with`) releases connections and background work."""

    def __init__(self, config: DiscoveryConfig, *, clock: Clock | None = None) -> None:
        self._config = config
        self._resolver = DnsPythonResolver(config.dns_nameservers, config.dns_timeout_s)
        self._http = SafeHttpClient(config, self._resolver)
        self._rng = random.Random()
        self.cache = DiscoveryCache(
            clock or MonotonicClock(),
            min_ttl_s=config.min_ttl_s,
            max_ttl_s=config.max_ttl_s,
            default_ttl_s=config.default_ttl_s,
            negative_ttl_s=config.negative_ttl_s,
            max_stale_s=config.max_stale_s,
        )

    async def __aenter__(self) -> Discovery:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.cache.aclose()
        await self._http.aclose()

    async def discover(self, address: str | Address) -> DiscoveredRegistry:
        addr = parse_address(address) if isinstance(address, str) else address
        steps: list[Step] = []
        locations = await self._locations(addr, steps)
        location, jrd = await self._webfinger(addr, locations, steps)
        registry_url = jrd.href(REGISTRY_REL)
        issuer = jrd.href(OIDC_ISSUER_REL)
        where = f"WebFinger answer for {addr.acct} at {location.origin}"
        if registry_url is None:
            raise MalformedDocument(f"{where}: no link with rel {REGISTRY_REL}")
        if issuer is None:
            raise MalformedDocument(f"{where}: no link with rel {OIDC_ISSUER_REL}")
        metadata, openid = await asyncio.gather(
            self._metadata(registry_url, addr.domain, steps), self._openid(issuer, steps)
        )
        if issuer not in metadata.issuers:
            raise IssuerNotTrusted(
                f"WebFinger names issuer {issuer}, which {registry_url} does not list"
            )
        keys = await self._jwks(metadata.jwks_uri, steps)
        return DiscoveredRegistry(addr, location, jrd, metadata, openid, keys, tuple(steps))

    async def discover_domain(self, domain: str) -> DiscoveredPeer:
        """DNS → the registry metadata at that origin (its `domain` must be `domain`) → its
        OCM discovery (`<base_url>/.well-known/ocm`), for the signing keys' JWKS URI."""
        host, port = parse_host(domain)
        addr = Address("registry", host, port)
        steps: list[Step] = []
        failure: Exception | None = None
        for location in await self._locations(addr, steps):
            url = f"{location.origin}/.well-known/space-registry"
            try:
                metadata = await self._metadata(url, addr.domain, steps)
            except BadStatus:
                raise
            except (BlockedAddress, FetchFailed) as exc:
                failure = exc
                continue
            return DiscoveredPeer(location, metadata, await self._ocm(metadata.base_url, steps))
        assert failure is not None
        raise failure

    async def _ocm(self, base_url: str, steps: list[Step]) -> OcmProvider:
        url = f"{base_url}/.well-known/ocm"
        return await self._document(
            "ocm", f"ocm {url}", url, "OCM discovery", lambda d: parse_ocm_discovery(d, url), steps
        )

    async def _locations(self, addr: Address, steps: list[Step]) -> list[RegistryLocation]:
        if addr.port is not None:
            return host_locations(addr.domain, "address", self._config)

        async def load() -> tuple[DnsFindings, float | None]:
            return await lookup_dns(self._resolver, addr.host)

        findings, source = await self.cache.get(f"dns {addr.host}", load)
        steps.append(Step("dns", addr.host, source))
        srv = order_srv(findings.srv, self._rng) if findings.srv else []
        return registry_locations(addr, findings, srv, self._config)

    async def _webfinger(
        self, addr: Address, locations: list[RegistryLocation], steps: list[Step]
    ) -> tuple[RegistryLocation, Jrd]:
        """Try each location in order; move on only when one cannot be reached at all."""
        query = urlencode(
            [("resource", addr.acct), ("rel", REGISTRY_REL), ("rel", OIDC_ISSUER_REL)]
        )
        failure: Exception | None = None
        for location in locations:
            url = f"{location.origin}/.well-known/webfinger?{query}"

            async def load(url: str = url) -> tuple[Jrd, float | None]:
                try:
                    fetched = await self._http.get(
                        url, what="WebFinger answer", accept=_WEBFINGER_ACCEPT
                    )
                except BadStatus as exc:
                    if exc.status == 404:
                        raise UnknownAccount(
                            f"{url}: the registry does not know {addr}", 404
                        ) from exc
                    raise
                return parse_jrd(fetched.json_object("WebFinger answer"), url), fetched.ttl_s

            try:
                jrd, source = await self.cache.get(f"webfinger {url}", load)
            except BadStatus:
                raise  # the registry answered: another location would not know better
            except (BlockedAddress, FetchFailed) as exc:
                failure = exc
                continue
            steps.append(Step("webfinger", url, source))
            return location, jrd
        assert failure is not None
        raise failure

    async def _document(
        self,
        step: str,
        key: str,
        url: str,
        what: str,
        parse: Callable[[dict[str, Any]], T],
        steps: list[Step],
    ) -> T:
        """Fetch the JSON document at `url` and parse it, cached under `key`."""

        async def load() -> tuple[T, float | None]:
            fetched = await self._http.get(url, what=what)
            return parse(fetched.json_object(what)), fetched.ttl_s

        value, source = await self.cache.get(key, load)
        steps.append(Step(step, url, source))
        return value

    async def _metadata(self, url: str, domain: str, steps: list[Step]) -> RegistryMetadata:
        return await self._document(
            "metadata",
            f"metadata {url} {domain}",
            url,
            "registry metadata",
            lambda doc: parse_metadata(doc, url, domain),
            steps,
        )

    async def _openid(self, issuer: str, steps: list[Step]) -> OpenIDConfiguration:
        return await self._document(
            "openid-configuration",
            f"openid {issuer}",
            openid_configuration_url(issuer),
            "OpenID configuration",
            lambda doc: parse_openid_configuration(doc, issuer),
            steps,
        )

    async def _jwks(self, url: str, steps: list[Step]) -> tuple[dict[str, Any], ...]:
        return await self._document(
            "jwks", f"jwks {url}", url, "JWKS", lambda doc: parse_jwks(doc, url), steps
        )
