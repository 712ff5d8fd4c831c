"""Applying a peer's change messages to our mountpoints of its share (the recipient's side).

A message (`share_changes.SharePush` sent it, through the peers' inbox: a repeat of one
message id gets the first answer) names the peer's subscription, its `seq` there, the shares
it concerns (one per user of ours who received the space) and the change. Each accepted
share's mountpoint takes the change in one transaction with our change log, so its user's
feed, SSE stream and webhooks carry it like a local change, with the paths at the mountpoint.

Each share records the subscription and `seq` it applied last. The next `seq` of that
subscription is applied; one already applied is dropped. A `state` message (sent after each
subscribe and renewal) holds the space's root ETag and size at a `seq`, which the mountpoint
takes unless it holds a later one (logged as a `content` change of `/` if it differs). A
gap, or a change of another subscription, means we may have missed changes: we re-read the
share's root at the peer (`RemoteRoot`), log one change if it differs from what the
mountpoint holds, and renew our subscription. Every such message is answered with 200, even
one for shares we do not hold (any other answer would make the peer's outbox retry what can
never apply); a message we cannot read is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.changes import log as changes
from registry.core.clock import Clock
from registry.core.errors import Unavailable
from registry.core.text import is_identifier, unsafe_character
from registry.peers.guard import Transaction
from registry.peers.store import PeerRecord
from registry.shares import renewals, store
from registry.shares.errors import InvalidShare
from registry.shares.mountpoints import ShareGone
from registry.shares.remote_root import RemoteRoot, RootState
from registry.shares.share_changes import PUSHED, STATE
from registry.spaces import availability
from registry.spaces.availability import AVAILABLE, UNAVAILABLE
from registry.spaces.provider_store import Recorded, record_content
from registry.spaces.store import spaces, update_space

KINDS = {**PUSHED, STATE: ("etag", "used")}

# What a message is to a share (and the keys of the answer, counting shares).
APPLIED, RESYNCED, REPEATED = "applied", "resynced", "repeated"
SHARES_PER_MESSAGE_MAX = 1000
READS_MAX = 2  # re-reads of the root for one message, should others change the share meanwhile
PATHS_PER_MESSAGE_MAX = 100
# What a change of these kinds makes of the mountpoint's availability, and why.
AVAILABILITY = {
    "disabled": (UNAVAILABLE, "disabled by its owner"),
    "deleted": (UNAVAILABLE, "deleted by its owner"),
    "restored": (AVAILABLE, "restored by its owner"),
}


class RemoteChanges:
    def __init__(
        self, transaction: Transaction, root: RemoteRoot, domain: str, clock: Clock
    ) -> None:
        self._transaction = transaction
        self._root = root
        self._domain = domain
        self._clock = clock

    async def receive(self, peer: PeerRecord, doc: dict[str, Any]) -> dict[str, Any]:
        message = _parse(doc)
        root: RootState | None = None
        read: set[str] = set()  # the shares `root` was read for
        for _attempt in range(READS_MAX + 1):
            async with self._transaction() as conn:
                found = await _shares(conn, peer.domain, message["shares"])
                behind = [s for s in found if _step(s, message) == RESYNCED and s.id not in read]
                if not behind:
                    return await self._take_all(conn, found, message, root)
            root = await self._read(behind[0])  # outside the transaction: it asks the peer
            read.update(share.id for share in behind)
        raise Unavailable("other messages changed the share meanwhile; send again")

    async def _take_all(
        self,
        conn: AsyncConnection,
        found: list[Any],
        message: dict[str, Any],
        root: RootState | None,
    ) -> dict[str, int]:
        """Apply the message to each share's mountpoint; how many took it how."""
        counts = dict.fromkeys((APPLIED, RESYNCED, REPEATED), 0)
        now = self._clock.now()
        renew: dict[str, Any] = {}  # a share re-read after a gap, by the space it shares
        for share in found:
            step = _step(share, message)
            if step == RESYNCED and root is None:
                continue  # the peer no longer takes its secret: the share is ending
            counts[step] += 1
            if step != REPEATED:
                await self._take(conn, share, message, root if step == RESYNCED else None, now)
            if step == RESYNCED and message["kind"] != STATE:
                renew.setdefault(share.webdav_uri, share)
        for share in renew.values():  # once per subscription, however many shares it serves
            await renewals.resubscribe(conn, share, self._domain, now)
        return counts

    async def _take(
        self,
        conn: AsyncConnection,
        share: Any,
        message: dict[str, Any],
        root: RootState | None,
        now: datetime,
    ) -> None:
        """Apply the message to the share's mountpoint, caught up from `root` first when
        given (re-read after a gap; then a content change is in `root` already)."""
        if message["kind"] == STATE:
            root = RootState(message["data"]["etag"], message["data"]["used"])
        if root is not None:
            await _caught_up(conn, share.mountpoint_id, root, now)
        if root is None or message["kind"] not in ("content", STATE):  # else `root` says it
            await _apply(conn, share.mountpoint_id, message, now)
        values = {"change_subscription": message["subscription"], "change_seq": message["seq"]}
        await store.set_incoming(conn, share.id, values, now)

    async def _read(self, share: Any) -> RootState | None:
        """The share's root at the peer (None: the peer no longer takes its secret)."""
        try:
            return await self._root.read(share)
        except ShareGone:
            return None


def _step(share: Any, message: dict[str, Any]) -> str:
    """What the message is to the share: the next, one it took already, or one after a gap
    (or of a subscription it does not know)."""
    seq, same = message["seq"], share.change_subscription == message["subscription"]
    if same and seq <= share.change_seq:
        return REPEATED
    if message["kind"] == STATE:
        return APPLIED  # the state at `seq`: what came before it does not matter
    return APPLIED if same and seq == share.change_seq + 1 else RESYNCED


async def _shares(conn: AsyncConnection, peer: str, provider_ids: list[str]) -> list[Any]:
    """Our users' accepted shares among `provider_ids` of `peer`, locked for the caller."""
    found = (
        select(store.incoming)
        .where(
            store.incoming.c.peer_domain == peer,
            store.incoming.c.provider_id.in_(provider_ids),
            store.incoming.c.state == store.ACCEPTED,
            store.incoming.c.mountpoint_id.is_not(None),
        )
        .order_by(store.incoming.c.id)
        .with_for_update()
    )
    return list((await conn.execute(found)).all())


async def _caught_up(
    conn: AsyncConnection, mountpoint_id: str, root: RootState, now: datetime
) -> None:
    """Log what the re-read root shows, if the mountpoint does not hold it yet."""
    recorded = await record_content(
        conn, store.MOUNTPOINT_PROVIDER, mountpoint_id, root.etag, root.used, now
    )
    if recorded is Recorded.CHANGED:
        data = {"etag": root.etag, "used": root.used, "paths": ["/"]}
        await changes.append(conn, mountpoint_id, "content", data, now)


async def _apply(
    conn: AsyncConnection, mountpoint_id: str, message: dict[str, Any], now: datetime
) -> None:
    kind, data = message["kind"], message["data"]
    if kind == "content":
        await update_space(
            conn, mountpoint_id, {"etag": data["etag"], "quota_used": data["used"]}, now
        )
        await changes.append(conn, mountpoint_id, "content", data, now)
    elif kind == "renamed":
        await update_space(conn, mountpoint_id, {"name": data["name"]}, now)
        await changes.append(conn, mountpoint_id, "renamed", data, now)
    else:
        state, reason = AVAILABILITY.get(kind, (data.get("availability"), "reported by its owner"))
        which = spaces.c.id == mountpoint_id
        await availability.mark(conn, which, state == AVAILABLE, reason, now)


def _parse(doc: dict[str, Any]) -> dict[str, Any]:
    """The message's subscription, seq, shares, and change kind and data; InvalidShare
    naming every field that is wrong."""
    subscription, seq, shares = doc.get("subscriptionId"), doc.get("seq"), doc.get("shares")
    change = doc.get("change")
    errors: list[tuple[str, str]] = []
    if not isinstance(subscription, str) or not is_identifier(subscription):
        errors.append(("subscriptionId", "an id is required"))
    if type(seq) is not int or seq < 0:
        errors.append(("seq", "a whole number is required"))
    if (
        not isinstance(shares, list)
        or not 0 < len(shares) <= SHARES_PER_MESSAGE_MAX
        or not all(isinstance(s, str) and is_identifier(s) for s in shares)
    ):
        errors.append(("shares", f"1 to {SHARES_PER_MESSAGE_MAX} share ids are required"))
    kind = change.get("type") if isinstance(change, dict) else None
    data = change.get("data") if isinstance(change, dict) else None
    if kind not in KINDS or not isinstance(data, dict):
        errors.append(("change", f"an object with a type (one of {', '.join(KINDS)}) and data"))
    else:
        errors += [(f"change.data.{name}", text) for name, text in _data_errors(kind, data)]
    if errors:
        raise InvalidShare(errors)
    assert isinstance(data, dict)
    kept = {k: data[k] for k in KINDS[str(kind)] if k in data}
    return {"subscription": subscription, "seq": seq, "shares": shares, "kind": kind, "data": kept}


def _data_errors(kind: str, data: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with the data of a change of `kind`."""
    if kind == STATE:
        return _content_errors({**data, "paths": []})
    if kind == "content":
        return _content_errors(data)
    if kind == "renamed":
        name = data.get("name")
        if not _text(name, 255):
            return [("name", "a string of 1 to 255 characters is required")]
    if kind == "availability" and data.get("availability") not in (AVAILABLE, UNAVAILABLE):
        return [("availability", "available or unavailable")]
    return []


def _text(value: Any, longest: int) -> bool:
    """Whether `value` is text of 1 to `longest` characters that a client may give."""
    return isinstance(value, str) and 0 < len(value) <= longest and unsafe_character(value) is None


def _content_errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with a content change's data (or a state's, with no paths)."""
    paths = data.get("paths")
    found = []
    if not _text(data.get("etag"), 255):
        found.append(("etag", "a string of 1 to 255 characters is required"))
    if type(data.get("used")) is not int or data["used"] < 0:
        found.append(("used", "a number of bytes is required"))
    if (
        not isinstance(paths, list)
        or len(paths) > PATHS_PER_MESSAGE_MAX
        or not all(_text(p, 4096) and p.startswith("/") for p in paths)
    ):
        found.append(("paths", f"up to {PATHS_PER_MESSAGE_MAX} paths, each from /"))
    if not isinstance(data.get("pathsTruncated", False), bool):
        found.append(("pathsTruncated", "true or false"))
    return found
