"""The sharer's fan-out of a subscribed space's changes (`shares/share_changes.py`), on SQLite
and PostgreSQL: one peer message per live subscription, numbered, with only what the peer may
know; nothing for other spaces, other kinds, or a lapsed subscription."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from registry.changes import log as changes
from registry.changes.unit_of_work import UnitOfWork
from registry.core.models import OutboxEntry, OutgoingShare, Peer, table
from registry.shares.share_changes import SHARE_CHANGES_PATH, SharePush
from registry.shares.subscriptions import subscriptions
from tests.databases import database_url, migrated_engine

__all__ = ["database_url"]  # fixtures

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SPACE, ELSEWHERE = "s" * 32, "e" * 32


def share(share_id: str, peer: str, state: str) -> dict[str, Any]:
    return {
        "id": share_id,
        "space_id": SPACE,
        "source_space_id": ELSEWHERE,
        "path": f"/a/{share_id}",
        "recipient": f"{share_id}@{peer}",
        "peer_domain": peer,
        "ocm_endpoint": f"https://{peer}/ocm",
        "member_id": share_id,
        "role": "editor",
        "state": state,
        "secret_hash": share_id * 8,
        "created_by": "einstein",
        "created_at": NOW,
        "updated_at": NOW,
    }


def subscription(sub_id: str, peer: str, expires_at: datetime) -> dict[str, Any]:
    return {
        "id": sub_id,
        "space_id": SPACE,
        "peer_domain": peer,
        "seq": 0,
        "expires_at": expires_at,
        "created_at": NOW,
        "updated_at": NOW,
    }


async def test_each_change_of_a_subscribed_space_is_one_numbered_message_per_live_subscription(
    database_url: str,
) -> None:
    async with migrated_engine(database_url) as engine:
        async with engine.begin() as conn:
            for peer in ("paris.test", "lyon.test", "nice.test"):
                row = {"id": peer, "domain": peer, "base_url": f"https://registry.{peer}"}
                await conn.execute(table(Peer).insert().values(**row, created_at=NOW))
            await conn.execute(
                table(OutgoingShare).insert(),
                [
                    share("marie", "paris.test", "accepted"),
                    share("richard", "paris.test", "accepted"),
                    share("pierre", "paris.test", "declined"),
                    share("luc", "lyon.test", "accepted"),
                    share("anne", "nice.test", "declined"),  # its cancel is on its way
                ],
            )
            await conn.execute(
                subscriptions.insert(),
                [
                    subscription("live", "paris.test", NOW + timedelta(hours=1)),
                    subscription("lapsed", "lyon.test", NOW - timedelta(seconds=1)),
                    subscription("ending", "nice.test", NOW + timedelta(hours=1)),
                ],
            )
        work = UnitOfWork(engine)
        work.fan_out(SharePush("zurich.test").fan_out)
        async with work.begin() as conn:
            content = {"etag": '"e1"', "used": 5, "paths": ["/new.txt"], "internal": "x"}
            first = await changes.append(conn, SPACE, "content", content, NOW)
            member = {"principalType": "user", "principalId": "einstein", "role": "manager"}
            await changes.append(conn, SPACE, "member_added", member, NOW)
            await changes.append(conn, ELSEWHERE, "content", content, NOW)
            second = await changes.append(conn, SPACE, "renamed", {"name": "Renamed"}, NOW)

        outbox = table(OutboxEntry)
        async with engine.connect() as conn:
            sent = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
            rows = await conn.execute(select(subscriptions.c.id, subscriptions.c.seq))
            numbered = {sub_id: seq for sub_id, seq in rows}
    assert [row.event_id for row in sent] == [f"live:{first.seq}", f"live:{second.seq}"]
    assert {row.destination for row in sent} == {"https://registry.paris.test" + SHARE_CHANGES_PATH}
    assert [row.payload for row in sent] == [
        {
            "domain": "zurich.test",
            "subscriptionId": "live",
            "seq": 1,
            "shares": ["marie", "richard"],
            "change": {
                "type": "content",
                "time": "2026-11-30T12:00:00.000000Z",
                "data": {"etag": '"e1"', "used": 5, "paths": ["/new.txt"]},
            },
        },
        {
            "domain": "zurich.test",
            "subscriptionId": "live",
            "seq": 2,
            "shares": ["marie", "richard"],
            "change": {
                "type": "renamed",
                "time": "2026-11-30T12:00:00.000000Z",
                "data": {"name": "Renamed"},
            },
        },
    ]
    assert numbered == {"live": 2, "lapsed": 0, "ending": 0}
