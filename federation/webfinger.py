"""Serving `GET /.well-known/webfinger` (RFC 7033) for our users and our instance URLs.

Enumeration: unless `LocalInstance.reveal_unknown_users` is set, every syntactically valid
`acct:<user>@<our domain>` gets the same instance-level answer, whether or not the user exists,
and the user directory is not consulted at all (no timing difference either). The links only say
where our registry and issuer are, which is public anyway; whether a user exists is learnt only by
an authenticated peer when it shares. With `reveal_unknown_users`, unknown users get 404.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response

from federation.addresses import parse_address
from federation.errors import InvalidAddress
from federation.instance import LocalInstance
from federation.jrd import JRD_MEDIA_TYPE, OIDC_ISSUER_REL, OWNCLOUD_INSTANCE_REL, REGISTRY_REL
from federation.responses import (
    CORS_HEADERS,
    error_response,
    method_not_allowed,
    preflight_response,
)

__all__ = ["UserDirectory", "instance_links", "negotiate_media_type", "webfinger_endpoint"]

MAX_RESOURCE_CHARS = 1024
JRD_MAX_AGE_S = 600
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


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


def webfinger_endpoint(
    instance: LocalInstance, users: UserDirectory
) -> Callable[[Request], Awaitable[Response]]:
    links = instance_links(instance)
    our_netlocs = {urlsplit(instance.base_url).netloc.lower(), instance.domain}
    schemes = {"https", "http"} if instance.allow_http else {"https"}

    async def account_is_ours(resource: str) -> None:
        address = parse_address(resource)
        if address.domain != instance.domain:
            raise _NotOurs(f"{address.domain} is not served here")
        if instance.reveal_unknown_users and not await users.user_exists(address.user):
            raise _NotOurs("no such account here")

    def url_is_ours(resource: str) -> None:
        parts = urlsplit(resource)
        if not parts.netloc or _CONTROL.search(resource):
            raise InvalidAddress(f"resource {resource!r} is not a valid URL")
        if parts.scheme.lower() not in schemes or parts.netloc.lower() not in our_netlocs:
            raise _NotOurs(f"{resource} is not a URL of this instance")

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return preflight_response()
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed()
        resources = request.query_params.getlist("resource")
        if len(resources) != 1 or not resources[0]:
            return error_response(
                400, "invalid_request", "exactly one non-empty 'resource' parameter is required"
            )
        resource = resources[0]
        try:
            if len(resource) > MAX_RESOURCE_CHARS or _CONTROL.search(resource):
                raise InvalidAddress("resource is too long or has spaces or control characters")
            if resource[:5].lower() == "acct:":
                await account_is_ours(resource)
            elif resource[:8].lower() == "https://" or resource[:7].lower() == "http://":
                url_is_ours(resource)
            elif _SCHEME.match(resource):
                raise _NotOurs(f"this server has nothing for {resource.split(':', 1)[0]}: URIs")
            else:
                raise InvalidAddress("resource must be a URI such as acct:user@host or https://…")
        except InvalidAddress as exc:
            return error_response(400, "invalid_request", str(exc))
        except _NotOurs as exc:
            return error_response(404, "not_found", str(exc))
        rels = request.query_params.getlist("rel")
        chosen = [link for link in links if link["rel"] in rels] if rels else links
        media_type = negotiate_media_type(request.headers.get("accept", ""))
        return Response(
            orjson.dumps({"subject": resource, "links": chosen}),
            media_type=media_type,
            headers={
                **CORS_HEADERS,
                "Cache-Control": f"public, max-age={JRD_MAX_AGE_S}",
                "Vary": "Accept",
            },
        )

    return endpoint
