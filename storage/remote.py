"""The `remote` driver: spaces held by a provider service (`spacereg provider serve`), reached
over its signed HTTP API; changes arrive as signed deliveries at `callback_app()`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
import orjson
import stamina

from common.waiting import set_within
from storage.davproxy import DavProxy
from storage.inbox import Inbox
from storage.provider import (
    Availability,
    Change,
    Emitter,
    Entry,
    PathNotFound,
    ProviderUnavailable,
    SpaceInfo,
    SpaceNotFound,
    StorageError,
    Worker,
)
from storage.signatures import MIN_SECRET_LENGTH, HmacAuth
from storage.wire import API, DAV_MOUNT, entry_of, space_of

logger = logging.getLogger("spacereg.storage.remote")

OPTIONS = {
    "url",
    "secret",
    "callback_url",
    "lease_seconds",
    "timeout_seconds",
    "probe_seconds",
    "retry_max_seconds",
    "ca_file",
}


# How long the subscription worker waits for its own callback to listen, and how often it looks.
CALLBACK_WAIT_S = 10.0
CALLBACK_PROBE_S = 0.05


class RemoteProvider(Emitter):
    """A provider service's spaces. Its worker keeps a subscription alive and reconciles after
    each (re)subscription, so deliveries lost while anything was down do no harm."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        callback_url: str,
        *,
        lease_seconds: int = 3600,
        timeout_seconds: float = 10.0,
        probe_seconds: float = 30.0,
        retry_seconds: tuple[float, float] = (1.0, 60.0),
        verify: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.name = name
        self.url = url.rstrip("/")
        self.callback_url = callback_url
        self.lease_seconds = lease_seconds
        self.probe_seconds = probe_seconds
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.http = httpx2.AsyncClient(
            auth=HmacAuth(secret), timeout=timeout_seconds, follow_redirects=False, verify=verify
        )
        # WebDAV bodies stream through, so their requests sign UNSIGNED-PAYLOAD.
        self._dav_http = httpx2.AsyncClient(
            auth=HmacAuth(secret, unsigned_payload=True),
            timeout=timeout_seconds,
            follow_redirects=False,
            verify=verify,
        )
        self._available: bool | None = None
        self._trouble = asyncio.Event()
        self._inbox = Inbox(name, self._emit)
        self._dav = DavProxy(self._dav_http, self.url + DAV_MOUNT)

    # --- spaces, over the signed API ---

    async def create_space(self, space_id: str) -> SpaceInfo:
        answer = await self._call("POST", "/spaces", json={"id": space_id}, space_id=space_id)
        with _answer():
            return space_of(answer)

    async def get_space(self, space_id: str) -> SpaceInfo:
        answer = await self._call("GET", f"/spaces/{_q(space_id)}", space_id=space_id)
        with _answer():
            return space_of(answer)

    async def list_spaces(self) -> list[str]:
        answer = await self._call("GET", "/spaces")
        with _answer():
            return [str(s) for s in answer["spaces"]]

    async def set_quota(self, space_id: str, total: int | None) -> None:
        path = f"/spaces/{_q(space_id)}/quota"
        await self._call("PUT", path, json={"total": total}, space_id=space_id)

    async def delete_space(self, space_id: str) -> None:
        await self._call("DELETE", f"/spaces/{_q(space_id)}", space_id=space_id)

    async def stat(self, space_id: str, path: str) -> Entry:
        item = await self._call(
            "GET", f"/spaces/{_q(space_id)}/stat", params={"path": path}, space_id=space_id
        )
        with _answer():
            return entry_of(item)

    def dav_app(self) -> DavProxy:
        """The service's WebDAV, which reports the writes made through it itself."""
        return self._dav

    def callback_app(self) -> Inbox:
        return self._inbox

    def workers(self) -> Mapping[str, Worker]:
        return {"subscription": self._keep_subscribed}

    async def close(self) -> None:
        self._callbacks.clear()
        await self.http.aclose()
        await self._dav_http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        space_id: str = "",
    ) -> Any:
        """The service's JSON answer (None when it has no body), or the StorageError it means."""
        content = b"" if json is None else orjson.dumps(json)
        headers = {"Content-Type": "application/json"} if json is not None else {}
        try:
            response = await self.http.request(
                method, self.url + API + path, content=content, params=params, headers=headers
            )
        except httpx2.HTTPError as exc:
            raise await self._unreachable(f"{method} {path}: {exc!r}") from exc
        if response.is_success:
            with _answer():
                return orjson.loads(response.content) if response.content else None
        code, message = _error_of(response)
        if response.status_code >= 500 or response.status_code == 401:
            raise await self._unreachable(f"{method} {path}: {response.status_code} {message}")
        if code == "spaceNotFound":
            raise SpaceNotFound(space_id)
        if code == "pathNotFound":
            raise PathNotFound((params or {}).get("path", path))
        raise StorageError(f"provider {self.name}: {response.status_code} {code}: {message}")

    # --- availability and the subscription worker ---

    async def _set_available(self, available: bool, reason: str = "") -> None:
        if self._available == available:
            return
        self._available = available
        if available:
            logger.info("provider %s is reachable", self.name)
        else:
            logger.warning("provider %s is unreachable: %s", self.name, reason)
        await self._emit(Availability(self.name, available, reason))

    async def _unreachable(self, reason: str) -> ProviderUnavailable:
        """Note that the service failed (the worker then resubscribes); returns the error."""
        self._trouble.set()
        await self._set_available(False, reason)
        return ProviderUnavailable(f"provider {self.name}: {reason}")

    async def _keep_subscribed(self) -> None:
        await self._callback_listening()
        secret = secrets.token_urlsafe(32)
        least, most = self.retry_seconds
        retrying = stamina.AsyncRetryingCaller(
            attempts=None, timeout=None, wait_initial=least, wait_max=most, wait_jitter=0
        ).on(StorageError)
        while True:  # each round backs off afresh
            lease = await retrying(self._subscribe_and_reconcile, secret)
            await self._hold(lease)

    async def _subscribe_and_reconcile(self, secret: str) -> float:
        try:
            lease = await self._subscribe(secret)
            await self._set_available(True)
            await self._reconcile()
        except StorageError as exc:
            if not isinstance(exc, ProviderUnavailable):
                logger.error("provider %s: cannot subscribe: %s", self.name, exc)
            raise
        return lease

    async def _callback_listening(self) -> None:
        """Wait (a while) until our callback answers at all: the host starts this worker before
        it listens, and the provider refuses a subscription whose callback it cannot reach.
        Only reachability counts here, so the certificate is not checked."""
        probing = stamina.AsyncRetryingCaller(
            attempts=None,
            timeout=CALLBACK_WAIT_S,
            wait_initial=CALLBACK_PROBE_S,
            wait_max=CALLBACK_PROBE_S,
            wait_jitter=0,
        )
        async with httpx2.AsyncClient(verify=False, timeout=1.0) as probe:
            with contextlib.suppress(httpx2.TransportError):
                await probing(httpx2.TransportError, probe.get, self.callback_url)

    async def _subscribe(self, secret: str) -> float:
        self._trouble.clear()
        metadata = await self._call("GET", "/metadata")
        with _answer():
            topic = str(metadata["name"])
        if metadata.get("available") is False:
            raise await self._unreachable(f"backend unavailable: {metadata.get('reason', '')}")
        inbox = self._inbox
        # Deliveries may come signed with the new secret before the answer to our request does.
        inbox.secrets = [secret, *inbox.secrets[:1]] if secret not in inbox.secrets else [secret]
        inbox.topic = topic
        try:
            body = {
                "callback": self.callback_url,
                "secret": secret,
                "lease_seconds": self.lease_seconds,
            }
            answer = await self._call("POST", "/subscriptions", json=body)
        finally:
            inbox.topic = None
        inbox.secrets = [secret]
        with _answer():
            lease = float(answer["lease_seconds"])
        logger.info("provider %s: subscribed for %.0f s", self.name, lease)
        return lease

    async def _reconcile(self) -> None:
        """Report every space's current state, naming no paths (nothing is known of where it
        changed): the host ignores ETags it already has."""
        answer = await self._call("GET", "/spaces", params={"details": "1"})
        with _answer():
            infos = [space_of(item) for item in answer["spaces"]]
        for info in infos:
            await self._emit(Change(info.space_id, info.etag, info.used, ()))

    async def _hold(self, lease: float) -> None:
        """Wait until renewal is due (at 2/3 of the lease), probing the service meanwhile;
        return early when a call or the probe failed."""
        renew_at = self.clock() + lease * 2 / 3
        while (left := renew_at - self.clock()) > 0:
            await set_within(self._trouble, min(left, self.probe_seconds))
            if self._trouble.is_set() or self._available is False:
                return
            if self.clock() >= renew_at:
                return
            try:
                metadata = await self._call("GET", "/metadata")
            except StorageError:
                return
            if isinstance(metadata, dict) and metadata.get("available") is False:
                await self._unreachable(f"backend unavailable: {metadata.get('reason', '')}")
                return


def _q(space_id: str) -> str:
    return quote(space_id, safe="")


@contextlib.contextmanager
def _answer() -> Iterator[None]:
    """Turn an answer of the wrong shape into a StorageError."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise StorageError(f"unexpected answer from the provider service: {exc!r}") from exc


def _error_of(response: httpx2.Response) -> tuple[str, str]:
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return "unknown", response.text[:200]


def from_config(name: str, options: Mapping[str, Any]) -> RemoteProvider:
    def fail(message: str) -> StorageError:
        return StorageError(f"provider {name!r} (remote driver): {message}")

    if unknown := set(options) - OPTIONS:
        raise fail(f"unknown options {', '.join(sorted(unknown))}")
    for key in ("url", "callback_url"):
        parts = urlsplit(str(options.get(key, "")))
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise fail(f"option {key!r} must be an absolute http(s) URL")
    secret = str(options.get("secret", ""))
    if len(secret) < MIN_SECRET_LENGTH:
        raise fail(f"option 'secret' is required, at least {MIN_SECRET_LENGTH} characters")
    try:
        lease = int(options.get("lease_seconds", 3600))
        timeout = float(options.get("timeout_seconds", 10))
        probe = float(options.get("probe_seconds", 30))
        retry_max = float(options.get("retry_max_seconds", 60))
    except (TypeError, ValueError) as exc:
        raise fail(f"bad number: {exc}") from exc
    if min(lease, timeout, probe, retry_max) <= 0:
        raise fail("lease_seconds, timeout_seconds, probe_seconds, retry_max_seconds must be > 0")
    verify: ssl.SSLContext | bool = True
    if ca_file := options.get("ca_file"):
        verify = ssl.create_default_context(cafile=str(ca_file))
    return RemoteProvider(
        name,
        str(options["url"]),
        secret,
        str(options["callback_url"]),
        lease_seconds=lease,
        timeout_seconds=timeout,
        probe_seconds=probe,
        retry_seconds=(min(1.0, retry_max), retry_max),
        verify=verify,
    )
