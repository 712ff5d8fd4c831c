"""Shares' SQL: shares we sent (`outgoing_shares`) and shares we received (`incoming_shares`).
Each function takes the connection of its caller's transaction and `now` from its caller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.models import (
    IncomingShare,
    Member,
    OutboxEntry,
    OutgoingShare,
    Peer,
    RemoteSubscription,
    User,
    table,
)
from registry.core.unique import insert_once
from registry.peers.store import ACTIVE, REVOKED

outgoing = table(OutgoingShare)
incoming = table(IncomingShare)
outbox = table(OutboxEntry)
members = table(Member)
peers = table(Peer)
users = table(User)
remote = table(RemoteSubscription)

# States of a share, as both sides see it.
DELIVERING, PENDING, ACCEPTED, DECLINED = "delivering", "pending", "accepted", "declined"
# The provider of a mountpoint space: none of ours holds its files, the peer does.
MOUNTPOINT_PROVIDER = ""


async def add_outgoing(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> None:
    await conn.execute(outgoing.insert().values(created_at=now, updated_at=now, **values))


async def outgoing_for(
    conn: AsyncConnection, source_space_id: str, path: str, recipient: str
) -> Row[Any] | None:
    return (
        await conn.execute(
            select(outgoing).where(
                outgoing.c.source_space_id == source_space_id,
                outgoing.c.path == path,
                outgoing.c.recipient == recipient,
            )
        )
    ).first()


async def outgoing_by_id(conn: AsyncConnection, share_id: str) -> Row[Any] | None:
    return (await conn.execute(select(outgoing).where(outgoing.c.id == share_id))).first()


async def outgoing_by_secret(conn: AsyncConnection, secret_hash: str) -> Row[Any] | None:
    found = select(outgoing).where(outgoing.c.secret_hash == secret_hash)
    return (await conn.execute(found)).first()


async def outgoing_of_member(
    conn: AsyncConnection, space_id: str, recipient: str
) -> Row[Any] | None:
    found = select(outgoing).where(
        outgoing.c.space_id == space_id, outgoing.c.recipient == recipient
    )
    return (await conn.execute(found)).first()


async def outgoing_in(conn: AsyncConnection, space_id: str) -> Sequence[Row[Any]]:
    """The shares of a space, or of folders of it (their share spaces go with it)."""
    found = select(outgoing).where(
        (outgoing.c.space_id == space_id) | (outgoing.c.source_space_id == space_id)
    )
    return (await conn.execute(found)).all()


async def outgoing_created_by(conn: AsyncConnection, user_id: str) -> Sequence[Row[Any]]:
    """The user's shares, each with `delivery`: the state of the outbox row that carries it
    (None once finished rows are pruned)."""
    carrying = and_(outbox.c.event_id == outgoing.c.id, outbox.c.kind == "peer")
    rows = await conn.execute(
        select(outgoing, outbox.c.state.label("delivery"))
        .select_from(outgoing.outerjoin(outbox, carrying))
        .where(outgoing.c.created_by == user_id)
        .order_by(outgoing.c.created_at, outgoing.c.id)
    )
    return rows.all()


async def set_outgoing(
    conn: AsyncConnection, share_id: str, values: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        update(outgoing).where(outgoing.c.id == share_id).values(updated_at=now, **values)
    )


async def delete_outgoing(conn: AsyncConnection, share_id: str) -> None:
    await conn.execute(delete(outgoing).where(outgoing.c.id == share_id))


async def add_incoming(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> None:
    await conn.execute(incoming.insert().values(created_at=now, updated_at=now, **values))


async def incoming_for(conn: AsyncConnection, provider_id: str, sender: str) -> Row[Any] | None:
    found = select(incoming).where(
        incoming.c.provider_id == provider_id, incoming.c.sender == sender
    )
    return (await conn.execute(found)).first()


async def incoming_by_provider(
    conn: AsyncConnection, provider_id: str, peer_domain: str
) -> Row[Any] | None:
    found = select(incoming).where(
        incoming.c.provider_id == provider_id, incoming.c.peer_domain == peer_domain
    )
    return (await conn.execute(found.with_for_update())).first()


async def incoming_by_id(conn: AsyncConnection, share_id: str) -> Row[Any] | None:
    found = select(incoming).where(incoming.c.id == share_id).with_for_update()
    return (await conn.execute(found)).first()


async def incoming_by_mountpoint(conn: AsyncConnection, space_id: str) -> Row[Any] | None:
    found = select(incoming).where(incoming.c.mountpoint_id == space_id)
    return (await conn.execute(found)).first()


async def incoming_of_user(conn: AsyncConnection, user_id: str) -> Sequence[Row[Any]]:
    rows = await conn.execute(
        select(incoming)
        .where(incoming.c.user_id == user_id)
        .order_by(incoming.c.created_at, incoming.c.id)
    )
    return rows.all()


async def received_since(conn: AsyncConnection, user_id: str, since: datetime) -> int:
    """How many shares reached `user_id` from `since` on (the per-recipient rate limit)."""
    counted = select(func.count()).where(
        incoming.c.user_id == user_id, incoming.c.created_at >= since
    )
    return int((await conn.execute(counted)).scalar_one())


async def set_incoming(
    conn: AsyncConnection, share_id: str, values: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        update(incoming).where(incoming.c.id == share_id).values(updated_at=now, **values)
    )


async def accepted_of_remote(
    conn: AsyncConnection, peer_domain: str, webdav_uri: str
) -> Sequence[Row[Any]]:
    """Our users' accepted shares of one space of a peer (its WebDAV URL names it)."""
    found = select(incoming).where(
        incoming.c.peer_domain == peer_domain,
        incoming.c.webdav_uri == webdav_uri,
        incoming.c.state == ACCEPTED,
    )
    return (await conn.execute(found.order_by(incoming.c.created_at, incoming.c.id))).all()


async def delete_incoming(conn: AsyncConnection, share_id: str) -> None:
    await conn.execute(delete(incoming).where(incoming.c.id == share_id))


async def incoming_by_provider_id(conn: AsyncConnection, provider_id: str) -> Sequence[Row[Any]]:
    found = select(incoming).where(incoming.c.provider_id == provider_id)
    return (await conn.execute(found.with_for_update())).all()


async def display_name(conn: AsyncConnection, user_id: str) -> str:
    found = select(users.c.display_name).where(users.c.id == user_id)
    return str((await conn.execute(found)).scalar_one())


async def peer_id(conn: AsyncConnection, domain: str) -> str | None:
    found = select(peers.c.id).where(peers.c.domain == domain)
    return (await conn.execute(found)).scalar()


async def peer_base_url(conn: AsyncConnection, domain: str) -> str | None:
    found = select(peers.c.base_url).where(peers.c.domain == domain)
    return (await conn.execute(found)).scalar()


async def set_member_role(conn: AsyncConnection, space_id: str, user_id: str, role: str) -> None:
    await conn.execute(
        update(members)
        .where(members.c.space_id == space_id, members.c.principal_id == user_id)
        .values(role=role)
    )


async def delivery_states(conn: AsyncConnection, event_ids: Sequence[str]) -> dict[str, Any]:
    """The state and end (`done_at`) of our peer messages with these ids, where still kept."""
    found = select(outbox.c.event_id, outbox.c.state, outbox.c.done_at).where(
        outbox.c.kind == "peer", outbox.c.event_id.in_(event_ids)
    )
    return {row.event_id: row for row in await conn.execute(found)}


async def remote_subscription(
    conn: AsyncConnection, peer_domain: str, webdav_uri: str
) -> Row[Any] | None:
    found = select(remote).where(
        remote.c.peer_domain == peer_domain, remote.c.webdav_uri == webdav_uri
    )
    return (await conn.execute(found)).first()


async def add_remote(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> bool:
    """Record our subscription to a peer's space; False if it is recorded already."""
    return await insert_once(conn, remote, {**values, "created_at": now, "updated_at": now})


async def set_remote(
    conn: AsyncConnection, row_id: str, values: dict[str, Any], now: datetime
) -> None:
    await conn.execute(update(remote).where(remote.c.id == row_id).values(updated_at=now, **values))


async def delete_remote(conn: AsyncConnection, row_id: str) -> None:
    await conn.execute(delete(remote).where(remote.c.id == row_id))


async def delete_remote_of_peer(conn: AsyncConnection, peer_domain: str) -> None:
    await conn.execute(delete(remote).where(remote.c.peer_domain == peer_domain))


async def remote_where(conn: AsyncConnection, *where: Any) -> Sequence[Row[Any]]:
    """Our subscriptions at peers that match `where` (columns of `remote`), locked for the
    caller's transaction; those another replica's holds locked are skipped (it handles them)."""
    found = select(remote).where(*where).order_by(remote.c.id)
    return (await conn.execute(found.with_for_update(skip_locked=True))).all()


async def accepted_unsubscribed(conn: AsyncConnection) -> Sequence[Row[Any]]:
    """Accepted shares from active peers with no subscription of ours to their space (the
    peering was revoked and made again since they were accepted)."""
    subscribed = select(remote.c.id).where(
        remote.c.peer_domain == incoming.c.peer_domain, remote.c.webdav_uri == incoming.c.webdav_uri
    )
    active = select(peers.c.domain).where(peers.c.status == ACTIVE)
    found = select(incoming).where(
        incoming.c.state == ACCEPTED, ~subscribed.exists(), incoming.c.peer_domain.in_(active)
    )
    return (await conn.execute(found.order_by(incoming.c.created_at, incoming.c.id))).all()


async def revoked_peer_ids(conn: AsyncConnection) -> list[str]:
    found = select(peers.c.id).where(peers.c.status == REVOKED)
    return [str(peer) for peer in (await conn.execute(found)).scalars()]
