"""Sharing with a peer's user (zurich's side of the acceptance story).

A folder becomes a *share space* (a space whose root is that folder); a whole space is shared
as it is. Either way the recipient (`marie@paris.test`) becomes a `remote` member with the
role given, and a signed `POST /ocm/shares` is queued in the outbox in the same transaction:
delivered and retried by `PeerSender`, never lost, never sent twice by a second identical
request (which answers with the share already made).

Role changes and removals of that member, made through the space's permissions like any
other member's, reach the recipient's registry through `notify_members` (a fan-out of the
unit of work): `SHARE_CHANGE_PERMISSION` and `SHARE_UNSHARED`, queued with the change.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.addresses import Address, parse_address
from federation.discovery import DiscoveredPeer
from federation.errors import InvalidAddress
from registry.access import roles
from registry.access.principal import REMOTE, Principal
from registry.auth.user_store import user_id_named
from registry.changes import log as changes
from registry.changes.events import ChangeEvent
from registry.core.clock import Clock
from registry.core.errors import BadRequest, Forbidden, NotFound, Unavailable
from registry.outbox import store as outbox
from registry.peers import store as peers
from registry.peers.guard import hash_token
from registry.shares import ocm, store, subscriptions
from registry.spaces import store as spaces
from registry.spaces.dav_backends import DavBackends, webdav_url
from registry.spaces.permission_routes import Recipient
from registry.spaces.service import SpaceService
from registry.spaces.validation import slug
from registry.spaces.views import MemberView
from storage import PathNotFound, StorageError

# The registry at a domain, or the error saying it cannot be reached (`Peering.discover`).
Discover = Callable[[str], Awaitable[DiscoveredPeer]]
LEGACY_OCM = ("1.0", "1.1")


@dataclass(frozen=True)
class Shared:
    """A share asked for: by whom, of what, with whom, and where the peer takes it."""

    principal: Principal
    space_id: str
    path: str
    address: Address
    role: str
    peer: peers.PeerRecord
    endpoint: str
    legacy: bool


class OutgoingShares:
    def __init__(
        self,
        spaces_service: SpaceService,
        backends: DavBackends,
        discover: Discover,
        domain: str,
        base_url: str,
        clock: Clock,
        *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._spaces = spaces_service
        self._backends = backends
        self._discover = discover
        self._domain = domain
        self._base_url = base_url
        self._clock = clock
        self._wake = wake  # the delivery worker, to send a queued share now

    async def recipient(self, object_id: str) -> Recipient:
        """Whom an invite's `objectId` names: one of our users first (by id or username,
        which may hold an `@`; `name@our-domain` is our `name`), else a peer's user."""
        async with self._spaces.transaction() as conn:
            if await user_id_named(conn, object_id) is not None:
                return Recipient(object_id, federated=False)
        try:
            address = parse_address(object_id)
        except InvalidAddress:
            return Recipient(object_id, federated=False)
        if address.domain == self._domain:
            return Recipient(address.user, federated=False)
        return Recipient(object_id, federated=True)

    async def share(
        self, principal: Principal, space_id: str, path: str, recipient: str, role: str
    ) -> MemberView:
        """Share `path` ("/" for the whole space) of a space the caller manages; answers the
        remote member as a permission. The same share again answers the same permission."""
        address = _address(recipient)
        path = _folder(path)
        peer = await self._peer(address.domain)
        endpoint, legacy = await self._ocm_endpoint(address.domain)
        shared = Shared(principal, space_id, path, address, role, peer, endpoint, legacy)
        try:
            member = await self._share(shared)
        except IntegrityError:  # the same share, made meanwhile by a concurrent request
            member = await self._share(shared)
        self._wake()
        return member

    async def _share(self, asked: Shared) -> MemberView:
        principal, space_id, path, address = (
            asked.principal,
            asked.space_id,
            asked.path,
            asked.address,
        )
        async with self._spaces.transaction() as conn:
            view = await self._spaces.managed(conn, principal, space_id)
            if view.space.parent_id is not None or view.space.remote_url is not None:
                raise BadRequest("a share space or a mountpoint cannot be shared again")
            found = await store.outgoing_for(conn, space_id, path, str(address))
            if found is None:
                if path != "/":
                    await self._check_folder(view.space, path)
                found = await self._create(conn, asked, view.space)
            shared = await self._spaces.visible(conn, principal, found.space_id)
        member = shared.member(found.member_id)
        assert member is not None
        return member

    async def _create(self, conn: AsyncConnection, asked: Shared, space: Any) -> Any:
        principal, path, address, role = asked.principal, asked.path, asked.address, asked.role
        now = self._clock.now()
        share_id = uuid.uuid4().hex
        shared_id = (
            space.id if path == "/" else await self._share_space(conn, principal, space, path)
        )
        member_id = spaces.new_member_id()
        values = {"principal_type": REMOTE, "principal_id": str(address), "role": role}
        await spaces.add_member(conn, {"id": member_id, "space_id": shared_id, **values}, now)
        data = {"principalType": REMOTE, "principalId": str(address), "role": role}
        await changes.append(conn, shared_id, "member_added", data, now)
        secret = secrets.token_urlsafe(32)
        await store.add_outgoing(
            conn,
            {
                "id": share_id,
                "space_id": shared_id,
                "source_space_id": space.id,
                "path": path,
                "recipient": str(address),
                "peer_domain": asked.peer.domain,
                "ocm_endpoint": asked.endpoint,
                "member_id": member_id,
                "role": role,
                "state": store.DELIVERING,
                "secret_hash": hash_token(secret),
                "created_by": principal.user_id,
            },
            now,
        )
        name = space.name if path == "/" else path.rsplit("/", 1)[-1]
        document = ocm.share_document(
            share_with=str(address),
            name=name,
            provider_id=share_id,
            owner=f"{principal.username}@{self._domain}",
            owner_name=principal.display_name,
            webdav_uri=webdav_url(_Id(shared_id), self._base_url),
            secret=secret,
            role=role,
            legacy=asked.legacy,
        )
        await outbox.queue_peer(conn, share_id, asked.endpoint + "/shares", document, now)
        found = await store.outgoing_by_id(conn, share_id)
        assert found is not None
        return found

    async def _share_space(
        self, conn: AsyncConnection, principal: Principal, space: Any, path: str
    ) -> str:
        """A new space whose root is the folder `path` of `space`; the sharer manages it."""
        share_space_id = uuid.uuid4().hex
        name = path.rsplit("/", 1)[-1]
        row = {
            "id": share_space_id,
            "name": name,
            "description": f"{path} of {space.name}",
            "drive_type": "share",
            "provider": space.provider,
            "root_id": f"{share_space_id}!{share_space_id}",
            "etag": space.etag,
            "quota_total": None,
            "quota_used": 0,
            "status": "enabled",
            "parent_id": space.id,
            "parent_path": path,
            "created_by": principal.user_id,
        }
        await self._spaces.add_space(conn, f"share/{slug(name)}", row, roles.MANAGER)
        return share_space_id

    async def _check_folder(self, space: Any, path: str) -> None:
        files = self._backends.for_space(space)
        if files is None:
            raise BadRequest("the storage holding this space offers no folders to share")
        try:
            entry = await files.sizes.stat(space.id, path)
        except PathNotFound as exc:
            raise NotFound(f"no folder {path} in this space") from exc
        except StorageError as exc:
            raise Unavailable(f"the storage could not find {path}: {exc}") from exc
        if not entry.is_dir:
            raise BadRequest(f"{path} is a file; share a folder (or the whole space)")

    async def _peer(self, domain: str) -> peers.PeerRecord:
        async with self._spaces.transaction() as conn:
            peer = await peers.find_peer(conn, domain)
        if peer is None or peer.state != peers.ACTIVE:
            state = "not a peer" if peer is None else peer.state
            raise Forbidden(f"{domain} is {state}; peer with it first", code="peer_not_active")
        return peer

    async def _ocm_endpoint(self, domain: str) -> tuple[str, bool]:
        """The peer's OCM API base, and whether it speaks only OCM 1.0/1.1 (legacy shape)."""
        found = await self._discover(domain)
        version = found.ocm.api_version.lstrip("v")
        return found.ocm.end_point, version.startswith(LEGACY_OCM)

    async def shared_by(self, principal: Principal) -> list[Any]:
        async with self._spaces.transaction() as conn:
            return list(await store.outgoing_created_by(conn, principal.user_id))

    async def notify_members(self, conn: AsyncConnection, events: Sequence[ChangeEvent]) -> None:
        """The unit of work's fan-out: a remote member's role changed or removed, or a shared
        space purged, tells the recipient's registry, in the transaction of the change."""
        for event in events:
            if event.kind == "deleted":
                for purged in await store.outgoing_in(conn, event.space_id):
                    await self._notify(conn, purged, event, "SHARE_UNSHARED")
                continue
            if event.data.get("principalType") != REMOTE:
                continue
            if event.kind not in ("member_changed", "member_removed"):
                continue
            share = await store.outgoing_of_member(
                conn, event.space_id, str(event.data["principalId"])
            )
            if share is None or share.state == store.DECLINED:  # the recipient ended it
                continue
            if event.kind == "member_removed":
                await self._notify(conn, share, event, "SHARE_UNSHARED")
            else:
                await self._notify(conn, share, event, "SHARE_CHANGE_PERMISSION")

    async def _notify(
        self, conn: AsyncConnection, share: Any, event: ChangeEvent, kind: str
    ) -> None:
        notification: dict[str, Any] = {}
        if kind == "SHARE_UNSHARED":
            await store.delete_outgoing(conn, share.id)
            await subscriptions.end(conn, share)
        else:
            role = str(event.data["role"])
            notification["permissions"] = ocm.PERMISSIONS[role]
            await store.set_outgoing(conn, share.id, {"role": role}, event.time)
        if share.state == store.DECLINED:
            return  # the recipient has nothing left to hear of
        body = {
            "notificationType": kind,
            "resourceType": "folder",
            "providerId": share.id,
            "notification": notification,
        }
        event_id = f"{share.id}:{event.seq}"
        url = share.ocm_endpoint + "/notifications"
        await outbox.queue_peer(conn, event_id, url, body, event.time)


@dataclass(frozen=True)
class _Id:
    id: str


def _address(recipient: str) -> Address:
    try:
        return parse_address(recipient)
    except InvalidAddress as exc:
        raise BadRequest(f"recipient: {exc}") from exc


def _folder(path: str) -> str:
    """A folder's path in a space as changes name it (`/a/rel/path`), or `/`."""
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise BadRequest("a path to share has no . or .. segments")
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise BadRequest("a path to share has no control characters")
    return "/" + "/".join(segments)
