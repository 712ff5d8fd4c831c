"""WebDAV of a mountpoint (paris's side of the data path): the files of a share a peer's
user made with ours, read and written through our own gateway.

The gateway has checked the caller's role on the mountpoint (a viewer cannot write, whatever
the peer would allow). The request is then forwarded, streamed both ways, to the share's
WebDAV URL at the peer with a short-lived token got by exchanging the share's secret at the
peer's token endpoint (OCM's code flow, signed); ETags and conditional headers pass through
as they are. The peer unreachable: 503, and the mountpoint says `unavailable` in listings
until a request gets through again. The peer refusing the secret: the share is gone, and so
is the mountpoint (404).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.discovery import Discovery
from federation.errors import DiscoveryError
from federation.keys import SigningKeys
from federation.safe_http import SafeHttpClient
from federation.signing import OcmSignatureAuth
from registry.core.clock import Clock
from registry.core.errors import NotFound, Unavailable
from registry.shares import store
from registry.shares.incoming import IncomingShares
from registry.spaces import availability
from registry.spaces import store as spaces
from registry.spaces.dav_backends import DavBackends, SpaceFiles
from registry.spaces.service import SpaceService
from registry.spaces.share_dav import hrefs_renamed
from storage import Entry, SpaceInfo, StorageError

logger = logging.getLogger("spacereg.shares")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"authorization",
    }
)
TOKEN_MARGIN = timedelta(seconds=30)  # a token this close to its end is renewed first
# The peer's answer arrives a TLS record (16 KiB) at a time; each piece passed on costs a trip
# through the ASGI stack, so pieces are gathered up to this size first.
FORWARD_CHUNK_BYTES = 256 * 1024
SHARES_KNOWN_MAX = 10_000  # mountpoints whose share is kept in memory, before starting afresh


class ShareGone(Exception):
    """The peer no longer takes the share's secret."""


class MountpointBackends:
    """The back end of each space: a proxy to the peer for mountpoints, else `held`'s."""

    def __init__(self, held: DavBackends, proxy: MountpointProxy) -> None:
        self._held = held
        self._proxy = proxy

    def for_space(self, space: Any) -> SpaceFiles | None:
        if space.remote_url is None:
            return self._held.for_space(space)
        return SpaceFiles(self._proxy.app(space.id, space.availability), _NO_SIZES)


class MountpointProxy:
    def __init__(
        self,
        spaces_service: SpaceService,
        incoming: IncomingShares,
        outbound: SafeHttpClient,
        discovery: Discovery,
        keys: SigningKeys,
        domain: str,
        clock: Clock,
    ) -> None:
        self._spaces = spaces_service
        self._incoming = incoming
        self._outbound = outbound
        self._discovery = discovery
        self._auth = OcmSignatureAuth(keys, clock)
        self._domain = domain
        self._clock = clock
        self._tokens: dict[str, tuple[str, datetime]] = {}  # share id: token, until
        # Mountpoint id to its share as read once: where the files are and the secret do not
        # change (the gateway checks the caller's role on the mountpoint on every request).
        self._shares: dict[str, Any] = {}

    def app(self, space_id: str, availability: str) -> ASGIApp:
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            await self._serve(space_id, availability, scope, receive, send)

        return serve

    async def _serve(
        self, space_id: str, availability: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        share = await self._share(space_id)
        outer = f"{scope.get('root_path', '')}/{space_id}"
        rest = scope["path"][len(outer) :]
        remote = share.webdav_uri.rstrip("/")
        url = remote + quote(rest)
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            token = await self.token(share)
            headers = [*_forwarded(scope, outer, remote), ("Authorization", f"Bearer {token}")]
            body = _body(receive) if _has_body(scope) else None
            async with self._outbound.stream(scope["method"], url, headers, body) as answer:
                if answer.status_code == 401:
                    self._tokens.pop(share.id, None)  # the next request exchanges again
                await self._available(space_id, availability, True)
                reply = send
                if scope["method"] == "PROPFIND":
                    reply = hrefs_renamed(send, urlsplit(remote).path, quote(outer))
                headers_out = [(k, v) for k, v in answer.headers.raw if k.lower() not in HOP_BY_HOP]
                await reply(
                    {
                        "type": "http.response.start",
                        "status": answer.status_code,
                        "headers": headers_out,
                    }
                )
                async for chunk in answer.aiter_raw(FORWARD_CHUNK_BYTES):
                    await reply({"type": "http.response.body", "body": chunk, "more_body": True})
                await reply({"type": "http.response.body", "body": b""})
        except ShareGone as exc:
            self._shares.pop(space_id, None)
            async with self._spaces.transaction() as conn:
                await self._incoming.unshared(conn, share)
            raise NotFound("the share was ended by its owner") from exc
        except DiscoveryError as exc:
            await self._available(space_id, availability, False, str(exc))
            raise Unavailable(
                f"{share.peer_domain} holds these files and cannot be reached; try again later",
                headers={"Retry-After": "30"},
            ) from exc

    async def _share(self, space_id: str) -> Any:
        share = self._shares.get(space_id)
        if share is None:
            async with self._spaces.transaction() as conn:
                share = await store.incoming_by_mountpoint(conn, space_id)
            if share is None:
                raise NotFound(f"no space {space_id}")
            if len(self._shares) >= SHARES_KNOWN_MAX:
                self._shares.clear()
            self._shares[space_id] = share
        return share

    async def token(self, share: Any) -> str:
        """A short-lived token to the share at its peer (also for re-reading its root)."""
        held = self._tokens.get(share.id)
        now = self._clock.now()
        if held is not None and held[1] - TOKEN_MARGIN > now:
            return held[0]
        found = await self._discovery.discover_domain(share.peer_domain)
        endpoint = found.ocm.token_end_point or f"{share.ocm_endpoint}/token"
        form = urlencode(
            {"grant_type": "authorization_code", "client_id": self._domain, "code": share.secret}
        ).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        answer = await self._outbound.exchange(
            endpoint, form, headers, what="share token exchange", auth=self._auth
        )
        if answer.status == 400:
            raise ShareGone(share.id)
        doc = answer.json_object("share token")
        token, expires = doc.get("access_token"), doc.get("expires_in")
        if answer.status != 200 or not isinstance(token, str) or not isinstance(expires, int):
            raise _Refused(f"{endpoint}: HTTP {answer.status}")
        self._tokens[share.id] = (token, now + timedelta(seconds=expires))
        return token

    async def _available(self, space_id: str, was: str, available: bool, reason: str = "") -> None:
        """Record a change of the mountpoint's reachability (logged, so clients hear it)."""
        if (was == availability.AVAILABLE) == available:
            return
        async with self._spaces.transaction() as conn:
            which = spaces.spaces.c.id == space_id
            changed = await availability.mark(conn, which, available, reason, self._clock.now())
        if changed:
            state = availability.state_of(available)
            logger.warning("mountpoint %s is %s %s", space_id, state, reason)


class _Refused(DiscoveryError):
    """The peer answered the token exchange with something we cannot use."""


def _has_body(scope: Scope) -> bool:
    return any(
        k == b"transfer-encoding" or (k == b"content-length" and v != b"0")
        for k, v in scope["headers"]
    )


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client went away before the body ended")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _forwarded(scope: Scope, outer: str, remote: str) -> list[tuple[str, str]]:
    """The request's end-to-end headers, a Destination inside the mountpoint named at the peer."""
    kept = []
    for key, value in scope["headers"]:
        if key in HOP_BY_HOP:
            continue
        text = value.decode("latin-1")
        if key == b"destination":
            path = unquote(urlsplit(text).path)
            if path.startswith(outer + "/"):
                text = remote + quote(path[len(outer) :])
        kept.append((key.decode("latin-1"), text))
    return kept


class _NoSizes:
    """A mountpoint's usage is the peer's business: no quota of ours applies to it."""

    async def get_space(self, space_id: str) -> SpaceInfo:
        raise StorageError("a mountpoint's usage is not ours")

    async def stat(self, space_id: str, path: str) -> Entry:
        raise StorageError("a mountpoint's usage is not ours")


_NO_SIZES = _NoSizes()
