"""Webhook subscriptions: a server-side consumer asks for the changes to some or all of the
caller's spaces to be POSTed to its callback, for a lease it renews."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.challenge import CallbackRefused
from federation.webhooks import WebhookClient
from registry.access.principal import Principal
from registry.core.clock import Clock
from registry.core.errors import BadRequest, NotFound
from registry.core.responses import timestamp
from registry.core.text import is_identifier, unsafe_character
from registry.outbox import subscription_store as store
from registry.spaces.service import SpaceService

LEASE_MIN_S = 60
LEASE_MAX_S = 7 * 24 * 3600
LEASE_DEFAULT_S = 24 * 3600
SECRET_MIN_CHARS = 16
SECRET_MAX_CHARS = 255
CALLBACK_MAX_CHARS = 1024
DRIVES_MAX = 1000


class Subscriptions:
    def __init__(
        self,
        engine: AsyncEngine,
        spaces: SpaceService,
        client: WebhookClient,
        topic: str,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._spaces = spaces
        self._client = client
        self._topic = topic
        self._clock = clock

    async def create(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        callback = _callback(body.get("callbackUrl"))
        secret = _secret(body.get("secret"))
        lease = _lease(body.get("leaseSeconds", LEASE_DEFAULT_S))
        drives = _drives(body.get("drives"))
        for space_id in drives or ():
            await self._spaces.get_visible(principal, space_id)
        await self._confirm(callback, lease)
        now = self._clock.now()
        values = {
            "id": secrets.token_hex(16),
            "owner_id": principal.user_id,
            "owner_groups": list(principal.groups),
            "callback_url": callback,
            "secret": secret,
            "all_drives": drives is None,
            "expires_at": now + timedelta(seconds=lease),
            "created_at": now,
        }
        async with self._engine.begin() as conn:
            await store.insert(conn, values, drives or [])
        return _json(values, drives)

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            found = await store.owned(conn, principal.user_id)
        return [_json(row._mapping, drives) for row, drives in found]

    async def get(self, principal: Principal, subscription_id: str) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            row, drives = await self._owned(conn, principal, subscription_id)
        return _json(row._mapping, drives)

    async def renew(
        self, principal: Principal, subscription_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A new lease, confirmed by the callback again, as WebSub renews."""
        lease = _lease(body.get("leaseSeconds", LEASE_DEFAULT_S))
        unknown = set(body) - {"leaseSeconds"}
        if unknown:
            raise BadRequest(f"only leaseSeconds can be changed, not {', '.join(sorted(unknown))}")
        async with self._engine.connect() as conn:
            row, _ = await self._owned(conn, principal, subscription_id)
        await self._confirm(row.callback_url, lease)
        async with self._engine.begin() as conn:
            await store.renew(conn, row.id, self._clock.now() + timedelta(seconds=lease))
        return await self.get(principal, subscription_id)

    async def delete(self, principal: Principal, subscription_id: str) -> None:
        async with self._engine.begin() as conn:
            await self._owned(conn, principal, subscription_id)
            await store.remove(conn, subscription_id)

    async def _owned(
        self, conn: AsyncConnection, principal: Principal, subscription_id: str
    ) -> store.WithDrives:
        found = None
        if is_identifier(subscription_id):
            found = await store.get(conn, subscription_id, principal.user_id)
        if found is None:
            raise NotFound(f"no subscription {subscription_id}")
        return found

    async def _confirm(self, callback: str, lease: int) -> None:
        try:
            await self._client.confirm(callback, self._topic, lease)
        except CallbackRefused as exc:
            raise BadRequest(
                f"the callback did not confirm the subscription: {exc}",
                code="callbackNotConfirmed",
            ) from exc


def _json(subscription: Mapping[Any, Any], drives: list[str] | None) -> dict[str, Any]:
    return {
        "id": subscription["id"],
        "callbackUrl": subscription["callback_url"],
        "drives": drives,
        "expirationDateTime": timestamp(subscription["expires_at"]),
        "createdDateTime": timestamp(subscription["created_at"]),
    }


def _callback(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith(("https://", "http://"))
        or any(c.isspace() for c in value)
        or unsafe_character(value) is not None
    ):
        raise BadRequest("callbackUrl must be an http(s) URL")
    if len(value) > CALLBACK_MAX_CHARS:
        raise BadRequest(f"callbackUrl is longer than {CALLBACK_MAX_CHARS} characters")
    return value


def _secret(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not SECRET_MIN_CHARS <= len(value) <= SECRET_MAX_CHARS
        or unsafe_character(value) is not None
    ):
        raise BadRequest(
            f"secret must be a string of {SECRET_MIN_CHARS} to {SECRET_MAX_CHARS} characters, "
            "none of them a control character"
        )
    return value


def _lease(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("leaseSeconds must be a whole number")
    if not LEASE_MIN_S <= value <= LEASE_MAX_S:
        raise BadRequest(f"leaseSeconds must be from {LEASE_MIN_S} to {LEASE_MAX_S}")
    return value


def _drives(value: Any) -> list[str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or len(value) > DRIVES_MAX
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise BadRequest(f"drives must be a list of 1 to {DRIVES_MAX} drive ids, or null for all")
    return sorted(set(value))
