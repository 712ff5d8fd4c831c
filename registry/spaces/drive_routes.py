"""LibreGraph drives: `/graph/{v1.0,v1beta1}/me/drives`, `/drives`, `/drives/{id}`."""

from __future__ import annotations

import base64
import binascii

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access.principal import Authenticate
from registry.core.clock import Clock
from registry.core.errors import BadRequest, NotSupported
from registry.core.http import flag, has_body, json_body, query, whole_number
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.spaces.drive_json import drive
from registry.spaces.listing import DriveListing, HeldDrives, VirtualDrives, no_virtual_drives
from registry.spaces.odata import PageQuery, parse_filter, parse_orderby
from registry.spaces.service import SpaceService
from registry.spaces.views import SpaceView


class DriveRoutes:
    """The drive endpoints, bound to the space service and the caller's authentication."""

    def __init__(
        self,
        spaces: SpaceService,
        authenticate: Authenticate,
        base_url: str,
        clock: Clock,
        virtual: VirtualDrives = no_virtual_drives,
    ) -> None:
        self._spaces = spaces
        self._listing = DriveListing(spaces, base_url)
        self._held = HeldDrives(self._listing, clock, virtual)
        self._authenticate = authenticate
        self._base_url = base_url

    async def my_drives(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        query = _query(request)
        async with self._spaces.reading() as conn:
            page = await self._held.page(conn, principal, query, _unified(request))
        return _collection(request, page.drives, page.more, query[2], page.virtual)

    async def all_drives(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        query = _query(request)
        async with self._spaces.reading() as conn:
            drives, more = await self._listing.page(
                conn, principal, query, _unified(request), held_only=False
            )
        return _collection(request, drives, more, query[2])

    async def my_drive(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        view = await self._spaces.personal_space(principal)
        return self._one(request, view)

    async def get_drive(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        view = await self._spaces.get_visible(principal, request.path_params["id"])
        return self._one(request, view)

    async def create_drive(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        body = await json_body(request)
        if body.get("driveType", "project") != "project":
            raise BadRequest("only project spaces can be created")
        quota = body.get("quota")
        if quota is not None and not isinstance(quota, dict):
            raise BadRequest("quota must be an object with 'total'")
        view = await self._spaces.create_project(
            principal,
            body.get("name"),
            body.get("description"),
            None if quota is None else quota.get("total"),
        )
        response = self._one(request, view, status=201)
        response.headers["Location"] = f"{request.url.path}/{view.space.id}"
        return response

    async def update_drive(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        restore = flag(request, "restore")
        body = await json_body(request) if not restore or has_body(request) else {}
        view = await self._spaces.update(
            principal, request.path_params["id"], body, restore=restore
        )
        return self._one(request, view)

    async def delete_drive(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        spaces = self._spaces
        if flag(request, "purge"):
            await spaces.purge(principal, request.path_params["id"])
        else:
            await spaces.disable(principal, request.path_params["id"])
        return Response(status_code=204)

    def _one(self, request: Request, view: SpaceView, status: int = 200) -> Response:
        return JSONResponse(drive(view, self._base_url, _unified(request)), status_code=status)

    def routes(self) -> list[Route]:
        found: list[Route] = []
        for version in ("v1.0", "v1beta1"):
            prefix = f"/graph/{version}"
            found += [
                Resource(f"{prefix}/me/drives", {"GET": self.my_drives}),
                Resource(f"{prefix}/me/drive", {"GET": self.my_drive}),
                Resource(f"{prefix}/drives", {"GET": self.all_drives, "POST": self.create_drive}),
                Resource(
                    f"{prefix}/drives/{{id}}",
                    {
                        "GET": self.get_drive,
                        "PATCH": self.update_drive,
                        "DELETE": self.delete_drive,
                    },
                ),
            ]
        return found


def _collection(
    request: Request,
    drives: list[bytes],
    more: bool,
    offset: int,
    first: list[bytes] | None = None,
) -> Response:
    """`{"value": [...]}` of the encoded drives `first` then `drives`, and the next page's
    link when `more` follow."""
    body = b'{"value":[' + b",".join([*(first or ()), *drives]) + b"]"
    if more:
        token = base64.urlsafe_b64encode(str(offset + len(drives)).encode()).decode().rstrip("=")
        link = str(request.url.include_query_params(**{"$skiptoken": token}))
        body += b',"@odata.nextLink":' + orjson.dumps(link)
    return Response(body + b"}", media_type=JSONResponse.media_type)


def _query(request: Request) -> PageQuery:
    params = query(request)
    unknown = {k for k in params if k.startswith("$")} - {
        "$filter",
        "$orderby",
        "$skiptoken",
        "$expand",
        "$select",
    }
    if unknown:
        raise NotSupported(f"query option {sorted(unknown)[0]} is not supported")
    return (
        parse_filter(params.get("$filter")),
        parse_orderby(params.get("$orderby")),
        _offset(params.get("$skiptoken")),
    )


def _offset(token: str | None) -> int:
    """The offset a `$skiptoken` we gave out stands for: base64 of ASCII digits, in int64."""
    if token is None:
        return 0
    try:
        value = whole_number(base64.urlsafe_b64decode(token.encode() + b"==").decode("ascii"))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("malformed $skiptoken") from exc
    if value is None:
        raise BadRequest("malformed $skiptoken")
    return value


def _unified(request: Request) -> bool:
    # The scope's path: `request.url` builds a whole URL, a twentieth of a cached listing.
    return "/v1beta1/" in request.scope["path"]
