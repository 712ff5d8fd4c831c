"""Who is known here: federation's `UserDirectory` (does a user exist?) and the lookup the
spaces wing uses to name invitees."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from registry.auth import user_store


class RegisteredUsers:
    """Users known to this registry (seen, or provisioned by the embedded IdP)."""

    def __init__(self, engine: AsyncEngine, home_issuer: str) -> None:
        self._engine = engine
        self._home_issuer = home_issuer

    async def user_exists(self, username: str) -> bool:
        """Whether a user of our home issuer goes by `username`."""
        async with self._engine.connect() as conn:
            return await user_store.home_user_exists(conn, self._home_issuer, username)

    async def user_id(self, id_or_username: str) -> str | None:
        """Our id of the user named by id or username, if exactly one matches."""
        async with self._engine.connect() as conn:
            found = await user_store.find(conn, id_or_username)
        return None if found is None else str(found.id)
