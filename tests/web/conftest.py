"""Web UI fixtures: a browser-like client that logs in through the embedded IdP's form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx2
import pytest

from tests.conftest import DEMO_USERS, Registry
from tests.schema import check_response

PASSWORDS = {user["username"]: user["password"] for user in DEMO_USERS}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """What a browser does that matters here: cookies, forms, following redirects by hand."""

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client

    async def log_in(self, username: str, next_path: str = "/") -> httpx2.Response:
        started = await self.client.get("/login", params={"next": next_path})
        assert started.status_code == 303, started.text
        form = await self.client.get(started.headers["location"])
        assert form.status_code == 200, form.text
        fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form.text))
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        signed_in = await self.client.post(
            "/idp/authorize",
            data={**fields, "username": username, "password": PASSWORDS[username]},
        )
        assert signed_in.status_code == 302, signed_in.text
        return await self.client.get(signed_in.headers["location"])

    async def csrf(self, path: str = "/") -> str:
        page = await self.client.get(path)
        found = CSRF.search(page.text)
        assert found, page.text
        return found.group(1)


@pytest.fixture
async def browser(registry: Registry) -> AsyncIterator[Browser]:
    """Every answer it receives is checked against registry/openapi.yaml."""
    hooks = {"response": [check_response]}
    async with httpx2.AsyncClient(base_url=registry.url, timeout=10, event_hooks=hooks) as client:
        yield Browser(client)
