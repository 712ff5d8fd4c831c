"""The well-known discovery routes a registry serves.

How the registry mounts them (in `registry/app.py`):

    from federation.instance import Endpoints, LocalInstance
    from federation.keys import SigningKeys
    from federation.wellknown import well_known_routes

    instance = LocalInstance(
        domain=settings.domain,                     # e.g. "paris.test"
        base_url=settings.base_url,                 # e.g. "https://paris.test"
        issuers=tuple(i.url for i in settings.trusted_issuers()),  # first: our users' issuer
        software_version=importlib.metadata.version("spacereg"),
        allow_http=settings.federation.allow_http,
    )
    keys = SigningKeys.load_or_create(settings.data_dir / "federation-keys")
    routes = [*well_known_routes(instance, user_directory, keys), *other_routes]

`user_directory` implements `federation.webfinger.UserDirectory` (`async user_exists(username)`);
it is only consulted when `instance.reveal_unknown_users` is set. Routes served:
`/.well-known/webfinger`, `/.well-known/space-registry`, `/.well-known/jwks.json`,
`/.well-known/ocm`, `/ocm-provider`, and, while `instance.ocm_api_available` is False,
`{endpoints.ocm}/...` answering 501. All are public, CORS `*`, and never answer 500 on bad input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from federation.instance import LocalInstance
from federation.keys import SigningKeys
from federation.metadata import JWKS_PATH, metadata_document
from federation.ocm_discovery import ocm_discovery_document, ocm_not_implemented
from federation.responses import ALL_METHODS, json_response, refuse_method
from federation.webfinger import UserDirectory, WebFingerApp

__all__ = ["well_known_routes"]

METADATA_MAX_AGE_S = 3600
JWKS_MAX_AGE_S = 300  # short: rotated keys must reach peers well inside the overlap

Endpoint = Callable[[Request], Awaitable[Response]]


def _static_json(document: dict[str, Any], max_age_s: int) -> Endpoint:
    body = orjson.dumps(document)

    async def endpoint(request: Request) -> Response:
        return refuse_method(request.method) or json_response(body, max_age_s=max_age_s)

    return endpoint


def _jwks_endpoint(keys: SigningKeys) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return refuse_method(request.method) or json_response(
            keys.jwks(), media_type="application/jwk-set+json", max_age_s=JWKS_MAX_AGE_S
        )

    return endpoint


def well_known_routes(
    instance: LocalInstance,
    users: UserDirectory,
    keys: SigningKeys,
    *,
    ocm_notifications: bool = False,
    ocm_invites: bool = False,
    ocm_token_endpoint: str | None = None,
) -> list[BaseRoute]:
    """`ocm_notifications`, `ocm_invites`, `ocm_token_endpoint`: whether the registry serves
    those OCM endpoints (the last: at that path), so that OCM discovery announces them."""
    document = ocm_discovery_document(
        instance,
        notifications=ocm_notifications,
        invites=ocm_invites,
        token_endpoint=ocm_token_endpoint,
    )
    ocm = _static_json(document, METADATA_MAX_AGE_S)
    routes: list[BaseRoute] = [
        Route("/.well-known/webfinger", WebFingerApp(instance, users), methods=ALL_METHODS),
        Route(
            "/.well-known/space-registry",
            _static_json(metadata_document(instance), METADATA_MAX_AGE_S),
            methods=ALL_METHODS,
        ),
        Route(JWKS_PATH, _jwks_endpoint(keys), methods=ALL_METHODS),
        Route("/.well-known/ocm", ocm, methods=ALL_METHODS),
        Route("/ocm-provider", ocm, methods=ALL_METHODS),
        Route("/ocm-provider/", ocm, methods=ALL_METHODS),
    ]
    if not instance.ocm_api_available:
        ocm_path = instance.endpoints.ocm.rstrip("/")
        routes.append(Route(ocm_path + "/{rest:path}", ocm_not_implemented, methods=ALL_METHODS))
    return routes
