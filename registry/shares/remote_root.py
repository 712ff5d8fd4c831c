"""Re-reading the root of a share we received, at the peer that holds it: a PROPFIND of its
root (depth 0) with the token the mountpoint proxy uses, so it reads what our user reads.
What a missed change message would have told us is caught up from here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from defusedxml import DefusedXmlException, ElementTree

from common.bounded import read_capped
from federation.errors import DiscoveryError
from federation.safe_http import SafeHttpClient
from registry.core.errors import Unavailable

ROOT_ANSWER_MAX_BYTES = 64 * 1024
PROPFIND = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    b"<d:prop><d:getetag/><oc:size/></d:prop></d:propfind>"
)
ETAG, SIZE = "{DAV:}getetag", "{http://owncloud.org/ns}size"


@dataclass(frozen=True)
class RootState:
    etag: str
    used: int


class RemoteRoot:
    def __init__(self, outbound: SafeHttpClient, token: Callable[[Any], Awaitable[str]]) -> None:
        self._outbound = outbound
        self._token = token

    async def read(self, share: Any) -> RootState:
        """The share's root as its peer holds it now; Unavailable if it cannot be read."""
        try:
            headers = [
                ("Authorization", f"Bearer {await self._token(share)}"),
                ("Depth", "0"),
                ("Content-Type", "application/xml"),
            ]
            url = share.webdav_uri.rstrip("/") + "/"
            async with self._outbound.stream("PROPFIND", url, headers, _body()) as answer:
                declared = answer.headers.get("content-length")
                body = await read_capped(answer.aiter_bytes(), ROOT_ANSWER_MAX_BYTES, declared)
                status = answer.status_code
        except DiscoveryError as exc:
            raise Unavailable(f"{share.peer_domain} could not be read: {exc}") from exc
        if status != 207 or body is None:
            raise Unavailable(f"{share.peer_domain} answered the root's PROPFIND with {status}")
        return _root_state(body, share.peer_domain)


async def _body() -> AsyncIterator[bytes]:
    yield PROPFIND


def _root_state(body: bytes, peer: str) -> RootState:
    try:
        tree = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise Unavailable(f"{peer} answered the root's PROPFIND with bad XML") from exc
    etag = tree.findtext(f".//{ETAG}")
    size = tree.findtext(f".//{SIZE}") or "0"
    if not etag or not size.isdigit():
        raise Unavailable(f"{peer} named no ETag or size of the share's root")
    return RootState(etag, int(size))
