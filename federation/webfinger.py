"""Serving `GET /.well-known/webfinger` (RFC 7033) for our users and our instance URLs.

Enumeration: unless `LocalInstance.reveal_unknown_users` is set, every syntactically valid
`acct:<user>@<our domain>` gets the same instance-level answer, whether or not the user exists,
and the user directory is not consulted at all (no timing difference either). The links only say
where our registry and issuer are, which is public anyway; whether a user exists is learnt only by
an authenticated peer when it shares. With `reveal_unknown_users`, unknown users get 404.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from federation.addresses import parse_address
from federation.errors import InvalidAddress
from federation.instance import LocalInstance
from federation.jrd import JRD_MEDIA_TYPE, OIDC_ISSUER_REL, OWNCLOUD_INSTANCE_REL, REGISTRY_REL
from federation.responses import CORS_HEADERS, error_response, refuse_method

__all__ = ["UserDirectory", "WebFingerApp", "instance_links", "negotiate_media_type"]

MAX_RESOURCE_CHARS = 1024
JRD_MAX_AGE_S = 600
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_PLAIN_USER = re.compile(r"[A-Za-z0-9._~+-]+")  # needs no unescaping or normalising
_JRD_HEADERS = [
    *((name.lower().encode(), value.encode()) for name, value in CORS_HEADERS.items()),
    (b"cache-control", f"public, max-age={JRD_MAX_AGE_S}".encode()),
    (b"vary", b"Accept"),
]


class UserDirectory(Protocol):
    """What WebFinger needs to know about our users; the registry implements it."""

    async def user_exists(self, username: str) -> bool: ...


class _NotOurs(Exception):
    pass


def instance_links(instance: LocalInstance) -> list[dict[str, Any]]:
    """The links every answer carries: issuer, our registry, ownCloud's server instance."""
    return [
        {"rel": OIDC_ISSUER_REL, "href": instance.issuers[0]},
        {
            "rel": REGISTRY_REL,
            "type": "application/json",
            "href": instance.url("/.well-known/space-registry"),
        },
        {
            "rel": OWNCLOUD_INSTANCE_REL,
            "href": instance.base_url,
            "titles": {"en": instance.title, "und": instance.title},
        },
    ]


@functools.lru_cache(maxsize=256)
def negotiate_media_type(accept: str) -> str:
    """JRD unless the client asks for application/json and not for JRD (ownCloud desktop)."""
    wanted = set()
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        if re.search(r"(^|;)\s*q\s*=\s*0(\.0*)?\s*($|;)", params):
            continue
        wanted.add(media.strip().lower())
    if "application/json" in wanted and JRD_MEDIA_TYPE not in wanted:
        return "application/json"
    return JRD_MEDIA_TYPE


class WebFingerApp:
    """A plain ASGI app: WebFinger is hit often, so it skips Request/Response objects."""

    def __init__(self, instance: LocalInstance, users: UserDirectory) -> None:
        self._instance = instance
        self._users = users
        self._links = instance_links(instance)
        self._all_links = orjson.dumps(self._links)
        self._our_netlocs = {urlsplit(instance.base_url).netloc.lower(), instance.domain}
        self._schemes = {"https", "http"} if instance.allow_http else {"https"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        refused = refuse_method(method)
        if refused is not None:
            await refused(scope, receive, send)
            return
        params = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        resources = [value for name, value in params if name == "resource"]
        error = await self._check(resources)
        if error is not None:
            await error(scope, receive, send)
            return
        rels = [value for name, value in params if name == "rel"]
        links = orjson.dumps([k for k in self._links if k["rel"] in rels]) if rels else None
        body = b'{"subject":%b,"links":%b}' % (orjson.dumps(resources[0]), links or self._all_links)
        accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
        media_type = negotiate_media_type(accept.decode("latin-1")).encode()
        headers = [
            (b"content-type", media_type),
            (b"content-length", str(len(body)).encode()),
            *_JRD_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    async def _check(self, resources: list[str]) -> Response | None:
        """None when the resource is ours; otherwise the 400 or 404 to answer."""
        if len(resources) != 1 or not resources[0]:
            return error_response(
                400, "invalid_request", "exactly one non-empty 'resource' parameter is required"
            )
        resource = resources[0]
        try:
            if len(resource) > MAX_RESOURCE_CHARS or _CONTROL.search(resource):
                raise InvalidAddress("resource is too long or has spaces or control characters")
            if resource[:5].lower() == "acct:":
                await self._account_is_ours(resource)
            elif resource[:8].lower() == "https://" or resource[:7].lower() == "http://":
                self._url_is_ours(resource)
            elif _SCHEME.match(resource):
                raise _NotOurs(f"this server has nothing for {resource.split(':', 1)[0]}: URIs")
            else:
                raise InvalidAddress("resource must be a URI such as acct:user@host or https://…")
        except InvalidAddress as exc:
            return error_response(400, "invalid_request", str(exc))
        except _NotOurs as exc:
            return error_response(404, "not_found", str(exc))
        return None

    async def _account_is_ours(self, resource: str) -> None:
        user, _, domain = resource[5:].rpartition("@")
        if not (domain == self._instance.domain and _PLAIN_USER.fullmatch(user)):
            address = parse_address(resource)  # the slow, thorough path: escapes, case, errors
            if address.domain != self._instance.domain:
                raise _NotOurs(f"{address.domain} is not served here")
            user = address.user
        if self._instance.reveal_unknown_users and not await self._users.user_exists(user):
            raise _NotOurs("no such account here")

    def _url_is_ours(self, resource: str) -> None:
        try:
            parts = urlsplit(resource)
        except ValueError as exc:  # a bracket that is no IPv6 address
            raise InvalidAddress(f"resource {resource!r} is not a valid URL") from exc
        if not parts.netloc:
            raise InvalidAddress(f"resource {resource!r} is not a valid URL")
        if (
            parts.scheme.lower() not in self._schemes
            or parts.netloc.lower() not in self._our_netlocs
        ):
            raise _NotOurs(f"{resource} is not a URL of this instance")
