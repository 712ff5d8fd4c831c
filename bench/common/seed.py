"""Seeding a registry database for `bench/drives.py`: `total` spaces, one manager each (a fake
user), of which the bench user sees exactly `VISIBLE`; its configuration and its user's token."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.load import HOST
from registry.access import roles
from registry.auth.idp.keys import IdpKeys
from registry.core.models import Base, Member, Space, User, table
from registry.runtime.db import create_engine
from registry.runtime.migrate import upgrade
from registry.runtime.settings import Settings

VISIBLE = 100  # spaces the bench user sees: the personal space and 99 others
VIA_GROUP = 20  # of those, seen through a group membership rather than directly
SPACES_PER_FAKE_USER = 10
CHUNK_ROWS = 50_000
# The seeded spaces are rows only: held by a provider the bench registry does not configure, so
# that its start-up reconciliation skips them instead of asking its local provider about each
# (at a million spaces that takes minutes and competes with the requests measured).
PROVIDER = "seeded"


@dataclass(frozen=True)
class BenchUser:
    username: str
    password: str
    display_name: str
    email: str
    groups: tuple[str, ...]


USER = BenchUser(
    "einstein",
    "relativity",
    "Albert Einstein",
    "einstein@example.org",
    ("physics-lovers", "sailing-lovers"),
)


def _ids() -> Iterator[str]:
    while True:
        yield secrets.token_hex(16)


async def _reset(engine: AsyncEngine) -> None:
    """Start from an empty schema (for a scratch PostgreSQL database given by URL)."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


async def seed(settings: Settings, total: int, fresh: bool) -> tuple[str, float]:
    """Fill the database; returns the bench user's id and the seconds it took."""
    started = time.perf_counter()
    engine = create_engine(settings.database_url)
    try:
        if not fresh:
            await _reset(engine)
        await upgrade(engine)
        user_id = await _insert(engine, settings, total)
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return user_id, time.perf_counter() - started


async def _insert(engine: AsyncEngine, settings: Settings, total: int) -> str:
    spaces, members, users = table(Space), table(Member), table(User)
    ids = _ids()
    now = datetime.now(UTC)
    issuer = settings.idp_issuer
    me = next(ids)
    fake_users = [next(ids) for _ in range(max(1, total // SPACES_PER_FAKE_USER))]
    user_rows: list[dict[str, Any]] = [
        {
            "id": me,
            "issuer": issuer,
            "subject": USER.username,
            "username": USER.username,
            "display_name": USER.display_name,
            "email": USER.email,
            "created_at": now,
        }
    ]
    user_rows += [
        {
            "id": uid,
            "issuer": issuer,
            "subject": f"user{n}",
            "username": f"user{n}",
            "display_name": f"User {n}",
            "email": f"user{n}@example.org",
            "created_at": now,
        }
        for n, uid in enumerate(fake_users)
    ]
    # The visible ones are spread evenly over all spaces, so names sort among the others.
    stride = max(1, total // VISIBLE)
    visible = {n * stride for n in range(VISIBLE)}
    async with engine.begin() as conn:
        for start in range(0, len(user_rows), CHUNK_ROWS):
            await conn.execute(users.insert(), user_rows[start : start + CHUNK_ROWS])
        for start in range(0, total, CHUNK_ROWS):
            space_rows, member_rows = [], []
            for n in range(start, min(total, start + CHUNK_ROWS)):
                space_id = next(ids)
                personal = n == 0
                owner = me if personal else fake_users[n % len(fake_users)]
                created = now - timedelta(seconds=total - n)
                space_rows.append(
                    {
                        "id": space_id,
                        "alias": "personal/einstein" if personal else f"project/space-{n}",
                        "name": USER.display_name if personal else f"Space {n * 7919 % total}",
                        "description": "" if n % 3 else f"Project space number {n}",
                        "drive_type": "personal" if personal else "project",
                        "provider": PROVIDER,
                        "root_id": space_id,
                        "etag": f'"{secrets.token_hex(8)}"',
                        "quota_total": 10 * 1024**3,
                        "quota_used": n * 4096 % (10 * 1024**3),
                        "image": ".space/image.png" if n % 5 == 0 else None,
                        "readme": ".space/readme.md" if n % 4 == 0 else None,
                        "status": "enabled",
                        "availability": "available",
                        "created_by": owner,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                member_rows.append(_member(next(ids), space_id, "user", owner, "manager", created))
                if n in visible and not personal:
                    if len(visible) - (n // stride) <= VIA_GROUP:
                        kind, who = "group", USER.groups[0]
                    else:
                        kind, who = "user", me
                    role = roles.EDITOR if n % 2 else roles.VIEWER
                    member_rows.append(_member(next(ids), space_id, kind, who, role, created))
            await conn.execute(spaces.insert(), space_rows)
            await conn.execute(members.insert(), member_rows)
    return me


def _member(
    member_id: str, space_id: str, kind: str, who: str, role: str, created: datetime
) -> dict[str, Any]:
    return {
        "id": member_id,
        "space_id": space_id,
        "principal_type": kind,
        "principal_id": who,
        "role": role,
        "expires_at": None,
        "created_at": created,
    }


def write_config(directory: Path, port: int, database_url: str | None) -> Path:
    """A `spacereg.toml` for a registry on `directory`/data whose IdP knows the bench user."""
    groups = ", ".join(f'"{g}"' for g in USER.groups)
    lines = [
        f'data_dir = "{directory / "data"}"',
        f'host = "{HOST}"',
        f"port = {port}",
        *([f'database_url = "{database_url}"'] if database_url else []),
        "",
        "[[idp_users]]",
        *(
            f'{key} = "{getattr(USER, key)}"'
            for key in ("username", "password", "display_name", "email")
        ),
        f"groups = [{groups}]",
    ]
    path = directory / "spacereg.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def user_token(settings: Settings) -> str:
    """An access token for the bench user, signed by the registry's own IdP key."""
    keys = IdpKeys.load_or_create(settings.data_dir / "idp")
    return keys.access_token(
        settings.idp_issuer,
        settings.audience,
        USER.username,
        {
            "preferred_username": USER.username,
            "name": USER.display_name,
            "email": USER.email,
            "groups": list(USER.groups),
        },
        "spacereg-cli",
    )
