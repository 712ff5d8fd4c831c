"""The one check of a peer's signed request: the peer is known and active, the request is
signed (RFC 9421, the h11s verifier) with a key it publishes at its JWKS URL, not replayed
(the replay cache is a table every replica shares), and within the peer's rate limit. A peer
that has signed once is pinned: its unsigned requests are refused from then on."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from federation.addresses import format_host, parse_host
from federation.errors import (
    InvalidAddress,
    SignatureError,
    SignatureKeysUnavailable,
    SignatureMissing,
)
from federation.incoming import IncomingRequest, VerifiedSignature
from federation.peer_keys import KeyResolver, PeerKeyring
from federation.verification import RequestVerifier
from registry.core.clock import Clock
from registry.core.errors import BadRequest
from registry.peers import store
from registry.peers.errors import (
    NotAPeer,
    PeerKeysUnavailable,
    PeerRevoked,
    PeerSuspended,
    SignatureRefused,
)
from registry.peers.rate import PeerRateLimits

Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]

# A peer's last contact is written at most this often: not one write per signed request.
CONTACT_RESOLUTION = timedelta(seconds=60)

__all__ = ["DbReplayCache", "PeerGuard", "Transaction", "hash_token", "peer_domain"]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def peer_domain(value: Any) -> str:
    """A registry's domain as peers name it (`host` or `host:port`), normalised; else 400."""
    if not isinstance(value, str) or not value:
        raise BadRequest("'domain' is required (a host name, optionally with a port)")
    try:
        return format_host(*parse_host(value.strip()))
    except InvalidAddress as exc:
        raise BadRequest(f"'domain': {exc}") from exc


class DbReplayCache:
    """`federation.replay.ReplayCache` over the `signature_replays` table."""

    def __init__(self, transaction: Transaction, clock: Clock) -> None:
        self._transaction = transaction
        self._clock = clock

    async def first_use(self, signature_id: str, until: datetime) -> bool:
        async with self._transaction() as conn:
            return await store.first_use(conn, signature_id, until, self._clock.now())


class PeerGuard:
    def __init__(
        self,
        transaction: Transaction,
        keyring: PeerKeyring,
        base_url: str,
        clock: Clock,
        limits: PeerRateLimits | None = None,
    ) -> None:
        self._transaction = transaction
        self._keyring = keyring
        self._base_url = base_url
        self._clock = clock
        self.limits = limits
        self._verifier = RequestVerifier(DbReplayCache(transaction, clock), clock)

    async def signed_by(
        self, request: Request, body: bytes, keys: KeyResolver
    ) -> VerifiedSignature:
        """Verify `request` against `keys`; a refusal becomes the API error of its code."""
        incoming = IncomingRequest.from_scope(request.scope, self._base_url, body)
        try:
            return await self._verifier.verify(incoming, keys)
        except SignatureKeysUnavailable as exc:
            raise PeerKeysUnavailable(str(exc), headers={"Retry-After": "30"}) from exc
        except SignatureError as exc:
            raise SignatureRefused(str(exc), code=exc.code) from exc

    def keys_of(self, domain: str, jwks_url: str) -> KeyResolver:
        return self._keyring.jwks(jwks_url, peer=domain)

    async def check_stranger(
        self, request: Request, body: bytes, domain: str, jwks_url: str
    ) -> None:
        """Verify a request of a registry we do not peer with (open federation) against the
        keys it publishes at `jwks_url`; it counts against its rate limit like a peer's."""
        await self.signed_by(request, body, self.keys_of(domain, jwks_url))
        if self.limits is not None:
            self.limits.take(domain)

    async def check(
        self,
        request: Request,
        body: bytes,
        domain: str,
        *,
        required: bool = True,
        allow_suspended: bool = False,
    ) -> store.PeerRecord:
        """The peer `domain` that sent `request`, or the error saying why it is refused:
        unknown (`peer_unknown`), suspended or revoked (403), a `signature_*` code, or over
        its rate limit (429 `peer_rate_limited`)."""
        async with self._transaction() as conn:
            peer = await store.find_peer(conn, domain)
        if peer is None:
            raise NotAPeer(f"{domain} is not a peer of this registry")
        if peer.state == store.REVOKED:
            raise PeerRevoked(f"the peering with {domain} was revoked")
        if peer.state == store.SUSPENDED and not allow_suspended:
            raise PeerSuspended(f"the peering with {domain} is suspended")
        signed = True
        try:
            await self.signed_by(request, body, self.keys_of(domain, peer.jwks_url))
        except SignatureRefused as exc:
            if exc.code != SignatureMissing.code or required or peer.signed_at is not None:
                raise
            signed = False
        if self.limits is not None:
            self.limits.take(domain)
        now = self._clock.now()
        last = peer.last_contact_at
        if (signed and peer.signed_at is None) or last is None or now - last >= CONTACT_RESOLUTION:
            async with self._transaction() as conn:
                await store.contacted(conn, domain, now, signed=signed)
        return peer
