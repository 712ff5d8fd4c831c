"""Shares over HTTP: the OCM endpoints peers call (signed), and LibreGraph's views of shares
for our users (`sharedByMe`, `sharedWithMe`, accepting into and declining from the virtual
Shares drive)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access.principal import Authenticate
from registry.core.errors import BadRequest
from registry.core.http import json_body, read_body
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.peers.inbox import Inbox
from registry.shares import Shares
from registry.shares.invites import INVITE_ACCEPTED_PATH
from registry.shares.share_changes import SHARE_CHANGES_PATH
from registry.shares.share_json import SHARES_DRIVE_ID, received_item, sent_item
from registry.shares.subscriptions import SUBSCRIPTIONS_PATH
from registry.shares.tokens import TOKEN_PATH, InvalidGrant

OCM_SHARES_PATH = "/ocm/shares"
OCM_NOTIFICATIONS_PATH = "/ocm/notifications"


class ShareRoutes:
    def __init__(self, shares: Shares, inbox: Inbox, authenticate: Authenticate) -> None:
        self._inbox = inbox
        self._subscriptions = shares.subscriptions
        self._remote_changes = shares.remote_changes
        self._outgoing = shares.outgoing
        self._incoming = shares.incoming
        self._notifications = shares.notifications
        self._tokens = shares.tokens
        self._invites = shares.invites
        self._authenticate = authenticate

    async def receive_share(self, request: Request) -> Response:
        body = await read_body(request)
        return JSONResponse(await self._incoming.receive(request, body), status_code=201)

    async def receive_notification(self, request: Request) -> Response:
        body = await read_body(request)
        await self._notifications.receive(request, body)
        return JSONResponse({}, status_code=201)

    async def exchange_token(self, request: Request) -> Response:
        """OCM's code flow; its refusals in OAuth's shape, as OCM servers expect them."""
        body = await read_body(request)
        try:
            return JSONResponse(await self._tokens.exchange(request, body))
        except InvalidGrant as exc:
            answer = {"error": exc.code, "error_description": exc.message}
            return JSONResponse(answer, status_code=400)

    async def invite(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        return JSONResponse(await self._invites.invite(principal), status_code=201)

    async def accept_invitation(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        text = (await json_body(request)).get("invitation")
        if not isinstance(text, str) or not text:
            raise BadRequest("'invitation' is required (the string the inviter handed you)")
        return JSONResponse(await self._invites.accept(principal, text))

    async def invitation_accepted(self, request: Request) -> Response:
        body = await read_body(request)
        return JSONResponse(await self._invites.accepted(request, body))

    async def shared_by_me(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        shares = await self._outgoing.shared_by(principal)
        return JSONResponse({"value": [sent_item(share) for share in shares]})

    async def shared_with_me(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        shares = await self._incoming.shared_with(principal)
        return JSONResponse({"value": [received_item(share) for share in shares]})

    async def accept(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        body = await json_body(request)
        remote = body.get("remoteItem")
        share_id = remote.get("id") if isinstance(remote, dict) else None
        if not isinstance(share_id, str) or not share_id:
            raise BadRequest("give the share as {'remoteItem': {'id': <id from sharedWithMe>}}")
        share = await self._incoming.accept(principal, share_id)
        return JSONResponse(received_item(share), status_code=201)

    async def decline(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        await self._incoming.decline(principal, request.path_params["item_id"])
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        shares = f"/graph/v1beta1/drives/{SHARES_DRIVE_ID}"
        return [
            Resource(OCM_SHARES_PATH, {"POST": self.receive_share}),
            Resource(OCM_NOTIFICATIONS_PATH, {"POST": self.receive_notification}),
            Resource(
                SUBSCRIPTIONS_PATH, {"POST": self._inbox.endpoint(self._subscriptions.receive)}
            ),
            Resource(
                SHARE_CHANGES_PATH, {"POST": self._inbox.endpoint(self._remote_changes.receive)}
            ),
            Resource(TOKEN_PATH, {"POST": self.exchange_token}),
            Resource(INVITE_ACCEPTED_PATH, {"POST": self.invitation_accepted}),
            Resource("/api/v1/ocm/invitations", {"POST": self.invite}),
            Resource("/api/v1/ocm/invitations/accept", {"POST": self.accept_invitation}),
            Resource("/graph/v1beta1/me/drive/sharedByMe", {"GET": self.shared_by_me}),
            Resource("/graph/v1beta1/me/drive/sharedWithMe", {"GET": self.shared_with_me}),
            Resource(f"{shares}/root/children", {"POST": self.accept}),
            Resource(f"{shares}/items/{{item_id}}", {"DELETE": self.decline}),
        ]
