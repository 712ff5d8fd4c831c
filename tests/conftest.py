"""Shared fixtures: a registry on a real uvicorn server with a fresh SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette

from registry.auth.idp.keys import IdpKeys
from registry.core.clock import SYSTEM_CLOCK, Clock
from registry.runtime.app import create_app
from registry.runtime.db import create_engine
from registry.runtime.migrate import upgrade
from registry.runtime.settings import Settings, load_settings
from tests.browser import browser_context, chromium, pytest_runtest_makereport  # noqa: F401
from tests.postgres import PostgresCluster, start_for_tests
from tests.processes import install_idp_key
from tests.schema import check_response
from tests.servers import free_port, serve

DEMO_USERS = [
    {
        "username": "einstein",
        "password": "relativity",
        "display_name": "Albert Einstein",
        "groups": ["physics-lovers", "sailing-lovers"],
    },
    {
        "username": "marie",
        "password": "radioactivity",
        "display_name": "Marie Curie",
        "groups": ["physics-lovers"],
    },
    {"username": "richard", "password": "superfluidity", "display_name": "Richard Feynman"},
    {"username": "admin", "password": "admin-secret", "display_name": "Administrator"},
]


@dataclass
class Registry:
    url: str
    app: Starlette
    settings: Settings

    def token(self, username: str) -> str:
        return self.app.state.services.idp.access_token_for(username)  # type: ignore[no-any-return]

    def client(self, username: str | None = None, **kwargs: Any) -> httpx2.AsyncClient:
        """A client whose every response is checked against registry/openapi.yaml."""
        headers = {"Authorization": f"Bearer {self.token(username)}"} if username else {}
        return httpx2.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=10,
            event_hooks={"response": [check_response]},
            **kwargs,
        )


@pytest.fixture(scope="session")
def idp_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RSA key for every test registry: generating it is the slow part of start-up."""
    directory = tmp_path_factory.mktemp("idp-key")
    IdpKeys.load_or_create(directory)
    return directory


def registry_settings(data_dir: Path, port: int, **raw: Any) -> Settings:
    return load_settings(
        env={}, overrides={"data_dir": data_dir, "port": port, "idp_users": DEMO_USERS, **raw}
    )


def migrate(settings: Settings) -> None:
    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    # A thread of its own, so that async tests can start registries too.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def build_app(
    settings: Settings, idp_key_dir: Path | None, clock: Clock = SYSTEM_CLOCK
) -> Starlette:
    """The registry's app, its embedded IdP signing with the tests' shared key."""
    if idp_key_dir is not None and settings.embedded_idp:
        install_idp_key(idp_key_dir, settings.data_dir)
    return create_app(settings, clock=clock)


def start_registry_context(
    settings: Settings, idp_key_dir: Path | None, clock: Clock = SYSTEM_CLOCK
) -> Any:
    """The migrated registry's app, and a context manager that serves it (yielding its URL)."""
    migrate(settings)
    app = build_app(settings, idp_key_dir, clock)
    return app, serve(app, settings.port)


@contextmanager
def running_registry(
    data_dir: Path, idp_key_dir: Path | None, clock: Clock = SYSTEM_CLOCK, **raw: Any
) -> Iterator[Registry]:
    """A registry with these settings on a free port, served until the block ends; it tells the
    time by `clock` (a `tests.clock.FakeClock` lets a test move it)."""
    settings = registry_settings(data_dir, free_port(), **raw)
    app, server = start_registry_context(settings, idp_key_dir, clock)
    with server as url:
        yield Registry(url, app, settings)


@pytest.fixture
def registry(tmp_path: Path, idp_key_dir: Path) -> Iterator[Registry]:
    with running_registry(tmp_path / "data", idp_key_dir) as running:
        yield running


@pytest.fixture
async def einstein(registry: Registry) -> AsyncIterator[httpx2.AsyncClient]:
    async with registry.client("einstein") as client:
        yield client


@pytest.fixture
async def admin(registry: Registry) -> AsyncIterator[httpx2.AsyncClient]:
    async with registry.client("admin") as client:
        yield client


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole session (skipped where missing, required in CI)."""
    cluster = start_for_tests()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> str:
    """A fresh, empty database on the session's cluster."""
    return postgres.create_database()
