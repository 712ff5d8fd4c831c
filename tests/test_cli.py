"""The `spacereg` command as a newcomer uses it: serve, token, migrate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx2
import pytest

from tests.servers import free_port

SPACEREG = [sys.executable, "-m", "registry"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SPACEREG, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def served(tmp_path):
    """`spacereg serve` on defaults but for the port, as its own process."""
    port = free_port()
    env = {**os.environ, "SPACEREG_PORT": str(port)}
    process = subprocess.Popen(
        [*SPACEREG, "--data-dir", str(tmp_path), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx2.get(f"{url}/healthz").status_code == 200:
                break
        except httpx2.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"spacereg serve did not start:\n{process.stdout.read()}")
        time.sleep(0.1)
    try:
        yield url, tmp_path, env
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
        # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
        assert "Application shutdown complete" in output
        assert process.returncode in (0, -15), output


def test_serve_then_token_lists_the_personal_space(served):
    url, data_dir, env = served
    token = run("--data-dir", str(data_dir), "token", "einstein", env=env)
    assert token.returncode == 0, token.stderr
    response = httpx2.get(
        f"{url}/graph/v1.0/me/drives", headers={"Authorization": f"Bearer {token.stdout.strip()}"}
    )
    assert response.status_code == 200
    assert response.json()["value"][0]["driveAlias"] == "personal/einstein"
    assert (data_dir / "spacereg.db").exists()


def test_demo_users_are_stored_with_hashed_passwords_only(served):
    _, data_dir, _ = served
    users = json.loads((data_dir / "idp" / "users.json").read_text())
    assert {u["username"] for u in users} == {"einstein", "marie", "richard", "admin"}
    assert all(
        set(u) == {"username", "display_name", "email", "groups", "password_hash"} for u in users
    )
    assert oct((data_dir / "idp" / "users.json").stat().st_mode & 0o777) == "0o600"


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
        env={"SPACEREG_TRUSTED_ISSUERS": "https://idp.example"},
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
