"""Who is known here: federation's `UserDirectory` (does a user exist?). The spaces wing names
invitees with `user_store.user_id_named`, in the transaction that checked the inviter's role."""

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
