"""The Spaces page and a space's page (its files and members), with the forms that change
them. Every rule is the services': the pages only parse forms and show what they answer."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access import roles
from registry.access.principal import GROUP, USER
from registry.core.errors import BadRequest, Forbidden
from registry.core.routing import Resource
from registry.spaces.drive_json import quota
from registry.spaces.members import MemberService
from registry.spaces.permission_routes import FederatedInvites
from registry.spaces.service import SpaceService
from registry.web.auth import WebAuth
from registry.web.files import Files, child, clean_path
from registry.web.render import page, render, see_other


def space_url(space_id: str, folder: str = "/") -> str:
    return f"/spaces/{space_id}" + ("" if folder == "/" else "?" + urlencode({"path": folder}))


def crumbs(folder: str) -> list[tuple[str, str]]:
    """(name, path) of each folder from the root down to `folder`."""
    parts = [p for p in folder.split("/") if p]
    return [(name, "/" + "/".join(parts[: i + 1])) for i, name in enumerate(parts)]


class SpacePages:
    def __init__(
        self,
        auth: WebAuth,
        spaces: SpaceService,
        members: MemberService,
        files: Files,
        federated: FederatedInvites,
    ) -> None:
        self._auth = auth
        self._spaces = spaces
        self._members = members
        self._files = files
        self._federated = federated

    async def spaces_page(self, request: Request) -> Response:
        session, principal = await self._auth.user(request)
        views, _more = await self._spaces.list_visible(principal, None, None, 0, held_only=True)
        listed = [
            (view.space, quota(view.space.quota_total, view.space.quota_used)) for view in views
        ]
        return render(
            request, "spaces.html", user=principal, csrf=session.csrf_token, spaces=listed
        )

    async def create(self, request: Request) -> Response:
        _session, principal, form = await self._auth.form(request)
        view = await self._spaces.create_project(
            principal, str(form.get("name", "")), str(form.get("description", "")), None
        )
        return see_other(space_url(view.space.id))

    async def space_page(self, request: Request) -> Response:
        session, principal = await self._auth.user(request)
        space_id = request.path_params["space_id"]
        folder = clean_path(request.query_params.get("path", "/"))
        view = await self._spaces.get_visible(principal, space_id)
        role = self._spaces.role(principal, view)
        entries = await self._files.listing(principal, space_id, folder)
        return render(
            request,
            "space.html",
            user=principal,
            csrf=session.csrf_token,
            space=view.space,
            usage=quota(view.space.quota_total, view.space.quota_used),
            members=view.members,
            role=role,
            writes=roles.at_least(role, roles.EDITOR),
            manages=roles.at_least(role, roles.MANAGER) or principal.is_admin,
            folder=folder,
            crumbs=crumbs(folder),
            entries=entries,
            roles=(roles.VIEWER, roles.EDITOR, roles.MANAGER),
        )

    async def file(self, request: Request) -> Response:
        """Download (GET) or upload (PUT, from the page's script with the CSRF header)."""
        session, principal = await self._auth.user(request)
        if request.method == "PUT":
            self._auth.check(request, session, "")
        path = clean_path(request.path_params["path"])
        return self._files.relay(request, principal, request.path_params["space_id"], path)

    async def new_folder(self, request: Request) -> Response:
        _session, principal, form = await self._auth.form(request)
        space_id, folder = request.path_params["space_id"], clean_path(str(form.get("path", "/")))
        await self._files.make_folder(principal, space_id, child(folder, str(form.get("name", ""))))
        return see_other(space_url(space_id, folder))

    async def rename(self, request: Request) -> Response:
        _session, principal, form = await self._auth.form(request)
        space_id, path = request.path_params["space_id"], clean_path(str(form.get("path", "")))
        if path == "/":
            raise BadRequest("the space's root folder has the space's name; rename the space")
        folder = clean_path(path.rsplit("/", 1)[0])
        target = child(folder, str(form.get("name", "")))
        await self._files.move(principal, space_id, path, target)
        return see_other(space_url(space_id, folder))

    async def delete(self, request: Request) -> Response:
        _session, principal, form = await self._auth.form(request)
        space_id, path = request.path_params["space_id"], clean_path(str(form.get("path", "")))
        if path == "/":
            raise BadRequest("the space's root folder cannot be deleted")
        await self._files.delete(principal, space_id, path)
        return see_other(space_url(space_id, clean_path(path.rsplit("/", 1)[0])))

    async def share_page(self, request: Request) -> Response:
        """The "Share with" dialog for one folder of a space."""
        session, principal = await self._auth.user(request)
        space_id = request.path_params["space_id"]
        folder = clean_path(request.query_params.get("path", "/"))
        view = await self._spaces.get_visible(principal, space_id)
        return render(
            request,
            "share.html",
            user=principal,
            csrf=session.csrf_token,
            space=view.space,
            folder=folder,
            roles=(roles.VIEWER, roles.EDITOR, roles.MANAGER),
        )

    async def add_member(self, request: Request) -> Response:
        """A local user or group joins the space; a person at another registry (an address
        such as marie@paris.test) receives a share of the space or of one folder."""
        _session, principal, form = await self._auth.form(request)
        space_id = request.path_params["space_id"]
        kind, name = str(form.get("kind", USER)), str(form.get("recipient", "")).strip()
        role, folder = str(form.get("role", "")), clean_path(str(form.get("path", "/")))
        if kind not in {USER, GROUP} or not name:
            raise BadRequest("name a user or a group")
        if role not in roles.RANK:
            raise BadRequest(f"unknown role {role!r}")
        if kind == USER:
            found = await self._federated.recipient(name)  # our user first, then a peer's
            if found.federated:
                await self._federated.share(principal, space_id, folder, found.name, role)
                return see_other(space_url(space_id, folder))
            name = found.name
        if folder != "/":
            raise Forbidden("a folder is shared with people at other organisations only")
        await self._members.invite(principal, space_id, [(kind, name)], role, None)
        return see_other(space_url(space_id))

    def routes(self) -> list[Route]:
        one = "/spaces/{space_id}"
        return [
            Resource("/", {"GET": page(self.spaces_page)}),
            Resource("/spaces", {"POST": page(self.create)}),
            Resource(one, {"GET": page(self.space_page)}),
            Resource(one + "/files/{path:path}", {"GET": page(self.file), "PUT": page(self.file)}),
            Resource(one + "/folders", {"POST": page(self.new_folder)}),
            Resource(one + "/rename", {"POST": page(self.rename)}),
            Resource(one + "/delete", {"POST": page(self.delete)}),
            Resource(one + "/members", {"POST": page(self.add_member)}),
            Resource(one + "/share", {"GET": page(self.share_page)}),
        ]
