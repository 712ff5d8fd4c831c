"""Members of a space as LibreGraph permissions on its root, and the role definitions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access import roles
from registry.access.principal import Authenticate, Principal
from registry.core.clock import Clock
from registry.core.errors import BadRequest, Forbidden, NotFound
from registry.core.http import json_body
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.core.text import unsafe_character
from registry.spaces.drive_json import permission
from registry.spaces.items import ItemPaths
from registry.spaces.members import UNCHANGED, MemberService, Unchanged
from registry.spaces.service import SpaceService
from registry.spaces.views import MemberView

RECIPIENT_TYPE = "@libre.graph.recipient.type"


class Recipient(NamedTuple):
    """Whom an invite's `objectId` names: a local user (by id or username) or a peer's."""

    name: str
    federated: bool


class FederatedInvites(Protocol):
    """Invitations of a peer's users, which the shares wing implements (a folder, or the
    whole space at `/`)."""

    async def recipient(self, object_id: str) -> Recipient: ...

    async def share(
        self, principal: Principal, space_id: str, path: str, recipient: str, role: str
    ) -> MemberView: ...


class PermissionRoutes:
    """Members and role definitions, bound to the space service and the caller's
    authentication; expiries must lie ahead of `clock`."""

    def __init__(
        self,
        spaces: SpaceService,
        members: MemberService,
        authenticate: Authenticate,
        clock: Clock,
        items: ItemPaths,
        federated: FederatedInvites | None = None,
    ) -> None:
        self._spaces = spaces
        self._members = members
        self._authenticate = authenticate
        self._clock = clock
        self._items = items
        self._federated = federated

    async def invite(self, request: Request) -> Response:
        """The root (`root/invite`) or a folder by path (`root:/{path}:/invite`)."""
        principal = await self._authenticate(request)
        path = request.path_params.get("path", "/")
        return await self._invite(request, principal, request.path_params["id"], path)

    async def invite_item(self, request: Request) -> Response:
        """A folder by its item id: `oc:id` and the drive JSON's ids (`<drive>!<number>`), or
        the bare number WebDAV reports as `oc:fileid`, which names an item of this drive."""
        principal = await self._authenticate(request)
        space_id, item_id = request.path_params["id"], request.path_params["item_id"]
        view, path = await self._items.locate(
            principal, item_id if "!" in item_id else f"{space_id}!{item_id}"
        )
        if view.space.id != space_id:
            raise NotFound(f"no item {item_id} in drive {space_id}")
        return await self._invite(request, principal, space_id, path)

    async def _invite(
        self, request: Request, principal: Principal, space_id: str, path: str
    ) -> Response:
        body = await json_body(request)
        role = _role(body.get("roles"))
        expires = _expiry(body.get("expirationDateTime"), self._clock.now())
        raw_recipients = body.get("recipients")
        if not isinstance(raw_recipients, list) or not raw_recipients or len(raw_recipients) > 100:
            raise BadRequest("recipients must be a list of 1 to 100 recipients")
        recipients = [_recipient(item) for item in raw_recipients]
        local: list[tuple[str, str]] = []
        remote: list[str] = []
        for kind, name in recipients:
            found = await self._recipient(name) if kind == "user" else Recipient(name, False)
            if found.federated:
                remote.append(found.name)
            else:
                local.append((kind, found.name))
        if local and path != "/":
            raise Forbidden(
                "a folder is shared with users of other registries only", code="notFederated"
            )
        if remote and expires is not None:
            raise BadRequest("a share with a user of another registry does not expire")
        granted = (
            await self._members.invite(principal, space_id, local, role, expires) if local else []
        )
        federated = self._federated
        for name in remote:
            assert federated is not None  # `_recipient` said so
            granted.append(await federated.share(principal, space_id, path, name, role))
        return JSONResponse({"value": [permission(m, unified_roles=True) for m in granted]})

    async def _recipient(self, object_id: str) -> Recipient:
        if self._federated is None:
            return Recipient(object_id, federated=False)
        return await self._federated.recipient(object_id)

    async def list_permissions(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        view = await self._spaces.get_visible(principal, request.path_params["id"])
        return JSONResponse(
            {
                "@libre.graph.permissions.actions.allowedValues": roles.actions(roles.MANAGER),
                "@libre.graph.permissions.roles.allowedValues": roles.DEFINITIONS,
                "value": [permission(m, unified_roles=True) for m in view.members],
            }
        )

    async def update_permission(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        body = await json_body(request)
        role = _role(body["roles"]) if "roles" in body else None
        expires: datetime | Unchanged | None = UNCHANGED
        if "expirationDateTime" in body:
            expires = _expiry(body["expirationDateTime"], self._clock.now())
        if role is None and isinstance(expires, Unchanged):
            raise BadRequest("nothing to change: give roles or expirationDateTime")
        member = await self._members.update_member(
            principal, request.path_params["id"], request.path_params["perm_id"], role, expires
        )
        return JSONResponse(permission(member, unified_roles=True))

    async def delete_permission(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        await self._members.remove_member(
            principal, request.path_params["id"], request.path_params["perm_id"]
        )
        return Response(status_code=204)

    async def role_definitions(self, request: Request) -> Response:
        await self._authenticate(request)
        return JSONResponse(roles.DEFINITIONS)

    async def role_definition(self, request: Request) -> Response:
        await self._authenticate(request)
        role = _role_named(request.path_params["role_id"])
        if role is None:
            raise NotFound("no such role definition")
        return JSONResponse(roles.definition(role))

    def routes(self) -> list[Route]:
        root = "/graph/v1beta1/drives/{id}/root"
        definitions = "/graph/v1beta1/roleManagement/permissions/roleDefinitions"
        return [
            Resource(f"{root}/invite", {"POST": self.invite}),
            _any_path(Resource(f"{root}:/{{path:path}}:/invite", {"POST": self.invite})),
            Resource(
                "/graph/v1beta1/drives/{id}/items/{item_id}/invite", {"POST": self.invite_item}
            ),
            Resource(f"{root}/permissions", {"GET": self.list_permissions}),
            Resource(
                f"{root}/permissions/{{perm_id}}",
                {"PATCH": self.update_permission, "DELETE": self.delete_permission},
            ),
            Resource(definitions, {"GET": self.role_definitions}),
            Resource(f"{definitions}/{{role_id}}", {"GET": self.role_definition}),
        ]


def _any_path(route: Route) -> Route:
    """`route` for every `{path}`, line breaks included (Starlette's pattern stops at one),
    so that such a path is refused as one, not as a route that does not exist."""
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


def _role(value: Any) -> str:
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], str):
        raise BadRequest("roles must be a list with one role id")
    role = _role_named(value[0])
    if role is None:
        raise BadRequest(f"unknown role {value[0]!r}")
    return role


def _role_named(text: str) -> str | None:
    """A role named by its unified role definition id or by its name (both work everywhere)."""
    return roles.ROLE_BY_UNIFIED_ID.get(text) or (text if text in roles.RANK else None)


def _expiry(value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("expirationDateTime must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # overflow: past year 9999 in UTC
        raise BadRequest("expirationDateTime must be an ISO 8601 date-time string") from exc
    if moment <= now:
        raise BadRequest("expirationDateTime must be in the future")
    return moment


def _recipient(item: Any) -> tuple[str, str]:
    """(type, name): a group's name, or a user's id or username (the service looks it up)."""
    if not isinstance(item, dict) or not isinstance(item.get("objectId"), str):
        raise BadRequest("each recipient needs an objectId")
    kind = item.get(RECIPIENT_TYPE, "user")
    object_id = item["objectId"].strip()
    if not object_id or len(object_id) > 255 or unsafe_character(object_id) is not None:
        raise BadRequest("objectId must be 1 to 255 characters, none a control character")
    if kind not in ("user", "group"):
        raise BadRequest(f"{RECIPIENT_TYPE} must be 'user' or 'group'")
    return kind, object_id
