"""The registry's answer to federation's `UserDirectory`: does a user exist here?"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.core.models import User


class RegisteredUsers:
    """Users of our home issuer known to this registry (seen, or provisioned by the IdP)."""

    def __init__(self, engine: AsyncEngine, home_issuer: str) -> None:
        self._engine = engine
        self._home_issuer = home_issuer

    async def user_exists(self, username: str) -> bool:
        statement = select(User.id).where(
            User.issuer == self._home_issuer, User.username == username
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(statement.limit(1))).first() is not None
