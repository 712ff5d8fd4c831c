"""An HTTP client that fetches only what discovery may fetch (the SSRF rules live here).

Every new connection resolves its host through our resolver, keeps only the addresses the
`NetworkPolicy` allows, and connects to one of exactly those: the check and the connect use the
same answer, so a name that changes its answer in between (DNS rebinding) gains nothing. TLS
still verifies the certificate against the host name (SNI and Host stay the name, not the IP).
Redirects are followed by hand, at most `max_redirects`, each hop under the same rules.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2
import orjson

from common.bounded import read_capped
from federation.config import DiscoveryConfig
from federation.dns import DnsPythonResolver, Resolver
from federation.errors import (
    BadStatus,
    BlockedAddress,
    FetchFailed,
    FetchTimeout,
    InsecureScheme,
    InvalidAddress,
    MalformedDocument,
    ResponseTooLarge,
    TooManyRedirects,
)
from federation.httpcache import ttl_from_headers
from federation.netpolicy import NetworkPolicy

__all__ = ["CheckedNetworkBackend", "Fetched", "SafeHttpClient"]

_REDIRECTS = {301, 302, 303, 307, 308}


class CheckedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """Resolve, check, and connect to the checked address; never let the OS resolve again."""

    def __init__(
        self,
        resolver: Resolver,
        policy: NetworkPolicy,
        inner: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolver = resolver
        self._policy = policy
        self._inner = inner or httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2 interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        name = host.strip("[]")
        found = await self._resolver.addresses(name)
        allowed = [ip for ip in found if self._policy.allows(ip)]
        if not allowed:
            shown = ", ".join(str(ip) for ip in found)
            raise BlockedAddress(
                f"{name} resolves to {shown}: not a public address and not in "
                "allow_private_networks"
            )
        failure: Exception | None = None
        for ip in allowed:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2 interface)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise BlockedAddress("discovery never connects to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CheckedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport with its connection pool rebuilt around our network backend.

    httpx2 does not take a network backend, so we replace its pool (`_pool`) with an httpcore2
    pool that uses `CheckedNetworkBackend`; everything else (streams, error mapping) is httpx2's.
    """

    def __init__(self, ssl_context: ssl.SSLContext, backend: CheckedNetworkBackend) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=50,
            max_keepalive_connections=20,
            keepalive_expiry=30.0,
            network_backend=backend,
        )


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    headers: httpx2.Headers
    body: bytes
    ttl_s: float | None

    def json_object(self, what: str) -> dict[str, Any]:
        """The body as a JSON object, or MalformedDocument naming `what` and the URL."""
        try:
            value = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise MalformedDocument(f"{what} at {self.url} is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise MalformedDocument(f"{what} at {self.url} is not a JSON object")
        return value

    def error(self) -> dict[str, Any]:
        """The `error` object of a refusal in the registries' shape (`code`, `message`), or
        an empty one when the body holds none."""
        try:
            value = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return {}
        found = value.get("error") if isinstance(value, dict) else None
        return found if isinstance(found, dict) else {}


class SafeHttpClient:
    def __init__(self, config: DiscoveryConfig, resolver: Resolver | None = None) -> None:
        """`resolver` defaults to the one the configuration describes."""
        self._config = config
        resolver = resolver or DnsPythonResolver(config.dns_nameservers, config.dns_timeout_s)
        ssl_context = ssl.create_default_context(cafile=config.ca_file)
        backend = CheckedNetworkBackend(resolver, NetworkPolicy(config.allow_private_networks))
        self._client = httpx2.AsyncClient(
            transport=_CheckedTransport(ssl_context, backend),
            timeout=httpx2.Timeout(
                connect=config.connect_timeout_s,
                read=config.read_timeout_s,
                write=config.read_timeout_s,
                pool=config.connect_timeout_s,
            ),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": config.user_agent},
        )
        self._deadline_s = config.dns_timeout_s + config.connect_timeout_s + config.read_timeout_s

    async def aclose(self) -> None:
        await self._client.aclose()

    def check_url(self, url: str) -> httpx2.URL:
        """Refuse what we would never fetch: other schemes, plain http in production, userinfo."""
        try:
            parsed = httpx2.URL(url)
        except (httpx2.InvalidURL, TypeError) as exc:
            raise InvalidAddress(f"{url!r} is not a URL") from exc
        if parsed.scheme not in self._config.schemes:
            raise InsecureScheme(f"{url} is not https (plain http is allowed only when configured)")
        if not parsed.host or parsed.userinfo:
            raise InvalidAddress(f"{url} must have a host and no user information")
        return parsed

    async def get(self, url: str, *, what: str, accept: str = "application/json") -> Fetched:
        """GET `url`; `what` names the document in errors ("WebFinger answer", "JWKS")."""
        cap = self._config.max_body_bytes
        target = self.check_url(url)
        for _hop in range(self._config.max_redirects + 1):
            request = self._client.build_request("GET", target, headers={"Accept": accept})
            response, body = await self._send(request, what)
            if body is None:
                raise ResponseTooLarge(f"{what} at {target} is larger than {cap} bytes")
            fetched = Fetched(
                url=str(target),
                status=response.status_code,
                headers=response.headers,
                body=body,
                ttl_s=ttl_from_headers(response.headers),
            )
            if fetched.status not in _REDIRECTS:
                return self._checked_status(fetched, what)
            location = fetched.headers.get("location")
            if not location:
                raise BadStatus(f"{what} at {target}: redirect without Location", fetched.status)
            target = self.check_url(str(target.join(location)))
        raise TooManyRedirects(f"{what} at {url}: more than {self._config.max_redirects} redirects")

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        what: str,
        auth: httpx2.Auth | None = None,
    ) -> int:
        """POST `body` to `url` (no redirects followed); returns the status, reads little.
        `auth` signs the request as it is sent (`federation.signing.OcmSignatureAuth`)."""
        request = self._client.build_request(
            "POST", self.check_url(url), content=body, headers=headers
        )
        response, _answer = await self._send(request, what, auth)
        return response.status_code

    async def exchange(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        what: str,
        auth: httpx2.Auth | None = None,
    ) -> Fetched:
        """As `post`, keeping the answer (any status; its body capped) for the caller to read."""
        request = self._client.build_request(
            "POST", self.check_url(url), content=body, headers=headers
        )
        response, answer = await self._send(request, what, auth)
        if answer is None:
            raise ResponseTooLarge(f"answer to {what} at {url} is too large")
        return Fetched(str(request.url), response.status_code, response.headers, answer, None)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        content: AsyncIterable[bytes] | None = None,
    ) -> AsyncIterator[httpx2.Response]:
        """Any request to `url` under the same rules (no redirects followed), its body
        streamed from `content`; yields the answer with its body still to read. Failing to
        connect or to get the answer's head is FetchFailed or FetchTimeout."""
        request = self._client.build_request(
            method, self.check_url(url), headers=headers, content=content
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            raise FetchTimeout(f"{method} {url}: timed out ({type(exc).__name__})") from exc
        except httpx2.TransportError as exc:
            raise FetchFailed(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(
        self, request: httpx2.Request, what: str, auth: httpx2.Auth | None = None
    ) -> tuple[httpx2.Response, bytes | None]:
        """One exchange under the overall deadline; the answer's body is read up to
        `max_body_bytes` (None: it is larger, the rest is left unread). Network failures and
        timeouts become FetchFailed and FetchTimeout."""
        where = f"{what} {'at' if request.method == 'GET' else 'to'} {request.url}"
        try:
            async with asyncio.timeout(self._deadline_s):
                response = await self._client.send(request, stream=True, auth=auth)
                try:
                    body = await read_capped(
                        response.aiter_bytes(),
                        self._config.max_body_bytes,
                        response.headers.get("content-length"),
                    )
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise FetchTimeout(f"{where} took too long") from exc
        except httpx2.TimeoutException as exc:
            raise FetchTimeout(f"{where}: timed out ({type(exc).__name__})") from exc
        except httpx2.TransportError as exc:
            raise FetchFailed(f"{where}: {type(exc).__name__}: {exc}") from exc
        return response, body

    @staticmethod
    def _checked_status(fetched: Fetched, what: str) -> Fetched:
        if fetched.status == 200:
            return fetched
        raise BadStatus(f"{what} at {fetched.url}: HTTP {fetched.status}", fetched.status)
