"""Shared fixtures: a registry on a real uvicorn server with a fresh SQLite database."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette

from registry.app import create_app
from registry.config import Settings, load_settings
from registry.db import create_engine
from registry.idp.keys import IdpKeys
from registry.migrate import upgrade
from tests.postgres import PostgresCluster, start_for_tests
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


def start_registry_context(settings: Settings, idp_key_dir: Path | None) -> Any:
    if idp_key_dir is not None and settings.embedded_idp:
        (settings.data_dir / "idp").mkdir(parents=True, exist_ok=True)
        shutil.copy(idp_key_dir / "signing-key.json", settings.data_dir / "idp")
    migrate(settings)
    app = create_app(settings)
    return app, serve(app, settings.port)


@pytest.fixture
def registry(tmp_path: Path, idp_key_dir: Path) -> Iterator[Registry]:
    port = free_port()
    settings = registry_settings(tmp_path / "data", port)
    app, server = start_registry_context(settings, idp_key_dir)
    with server as url:
        yield Registry(url, app, settings)


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
