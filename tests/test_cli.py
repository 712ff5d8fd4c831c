"""The `spacereg` command as a newcomer uses it: serve, token, migrate."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from registry.runtime.cli import GRACEFUL_SHUTDOWN_S
from tests.processes import SPACEREG, RegistryProcess, clean_env
from tests.servers import free_port
from tests.sse import events


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SPACEREG, *args], capture_output=True, text=True, timeout=60, env=clean_env(**env)
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RegistryProcess]:
    """`spacereg serve` on defaults but for the port, as its own process (its IdP key and
    users made on this first start)."""
    registry = RegistryProcess(tmp_path, free_port())
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
    output = registry.output()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
    assert "Application shutdown complete" in output
    assert registry.process is not None
    assert registry.process.returncode in (0, -15), output


def test_serve_then_token_lists_the_personal_space(served):
    data_dir = served.data_dir
    token = run("--data-dir", str(data_dir), "token", "einstein", SPACEREG_PORT=str(served.port))
    assert token.returncode == 0, token.stderr
    response = httpx2.get(
        f"{served.url}/graph/v1.0/me/drives",
        headers={"Authorization": f"Bearer {token.stdout.strip()}"},
    )
    assert response.status_code == 200
    assert response.json()["value"][0]["driveAlias"] == "personal/einstein"
    assert (data_dir / "spacereg.db").exists()


def test_demo_users_are_stored_with_hashed_passwords_only(served):
    data_dir = served.data_dir
    users = json.loads((data_dir / "idp" / "users.json").read_text())
    assert {u["username"] for u in users} == {"einstein", "marie", "richard", "admin"}
    assert all(
        set(u) == {"username", "display_name", "email", "groups", "password_hash"} for u in users
    )
    assert oct((data_dir / "idp" / "users.json").stat().st_mode & 0o777) == "0o600"


async def test_sigterm_stops_serve_while_an_event_stream_stays_open(served):
    token = served.token("einstein")
    assert served.process is not None
    async with events(served.url, token):
        asked_at = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(served.process.wait, 30)  # raises if it still serves
        assert time.monotonic() - asked_at < GRACEFUL_SHUTDOWN_S + 10


def test_token_for_an_unknown_user_fails(tmp_path):
    result = run("--data-dir", str(tmp_path), "token", "nobody")
    assert result.returncode == 1
    assert "no user 'nobody'" in result.stderr


def test_token_is_refused_when_the_embedded_idp_is_off(tmp_path):
    result = run(
        "--data-dir",
        str(tmp_path),
        "token",
        "einstein",
        SPACEREG_TRUSTED_ISSUERS="https://idp.example",
    )
    assert result.returncode == 2
    assert "embedded IdP is off" in result.stderr


def test_configuration_errors_are_reported(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('port = "eighty"\n')
    result = run("--config", str(config), "migrate")
    assert result.returncode == 2
    assert "port" in result.stderr
    config.write_text("colour = 'blue'\n")
    result = run("--config", str(config), "migrate")
    assert result.returncode == 2
    assert "unknown configuration keys: colour" in result.stderr


def test_keys_are_made_once_and_then_found_by_every_later_run(tmp_path):
    first = run("--data-dir", str(tmp_path), "keys")
    assert first.returncode == 0, first.stderr
    kid = first.stdout.strip()
    assert (tmp_path / "federation-keys" / f"{kid}.pem").exists()
    assert any((tmp_path / "idp").iterdir())
    again = run("--data-dir", str(tmp_path), "keys")
    assert again.stdout.strip() == kid


def test_keys_makes_the_demo_users_once_so_replicas_sharing_the_directory_agree(tmp_path):
    """Replicas that each made the demo users at their first start would each hold other
    passwords than the users.json the last of them wrote."""
    first = run("--data-dir", str(tmp_path), "keys")
    assert "Embedded IdP demo users" in first.stderr
    stored = (tmp_path / "idp" / "users.json").read_bytes()
    again = run("--data-dir", str(tmp_path), "keys")
    assert "Embedded IdP demo users" not in again.stderr
    assert (tmp_path / "idp" / "users.json").read_bytes() == stored
