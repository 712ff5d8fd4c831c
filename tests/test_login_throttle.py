"""The embedded IdP's sign-in is throttled per username and per client address, in the database
(so that replicas count together) and by the injected clock; and a wrong password costs as long
for an unknown username as for a known one."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from registry.auth.idp.throttle import (
    ADDRESS_FAILURES,
    STREAK_FORGOTTEN_AFTER,
    USER_FAILURES,
)
from tests.clock import FakeClock
from tests.conftest import Registry, running_registry
from tests.test_idp import code_from, log_in, pkce

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def idp(tmp_path: Path, idp_key_dir: Path, clock: FakeClock) -> Iterator[Registry]:
    with running_registry(tmp_path / "data", idp_key_dir, clock=clock) as registry:
        yield registry


def retry_after(response) -> int:
    assert response.status_code == 429, response.text
    assert "Too many failed sign-ins" in response.text
    return int(response.headers["retry-after"])


async def test_failures_for_a_username_are_refused_with_429_until_the_lock_lapses(idp, clock):
    _, challenge = pkce()
    async with idp.client() as client:
        for _ in range(USER_FAILURES):
            assert (await log_in(client, challenge, password="wrong")).status_code == 401
        refused = await log_in(client, challenge)  # the right password, but too late
        wait = retry_after(refused)
        assert 0 < wait <= 60
        # Another user at the same address is not held back.
        other = await log_in(client, challenge, username="marie", password="radioactivity")
        await code_from(other)

        clock.advance(timedelta(seconds=wait - 1))
        retry_after(await log_in(client, challenge))
        clock.advance(timedelta(seconds=1))
        await code_from(await log_in(client, challenge))
        # The success ended the streak: a wrong password is only wrong again.
        assert (await log_in(client, challenge, password="wrong")).status_code == 401


async def test_each_failure_after_a_lock_locks_longer(idp, clock):
    _, challenge = pkce()
    async with idp.client() as client:
        for _ in range(USER_FAILURES):
            await log_in(client, challenge, password="wrong")
        first = retry_after(await log_in(client, challenge, password="wrong"))
        clock.advance(timedelta(seconds=first))
        assert (await log_in(client, challenge, password="wrong")).status_code == 401
        second = retry_after(await log_in(client, challenge, password="wrong"))
    assert second == 2 * first


@pytest.mark.parametrize("username", ["nobody", "x" * 5000, "n\u00e4me \U0001f600"])
async def test_unknown_usernames_are_throttled_like_known_ones(idp, username):
    _, challenge = pkce()
    async with idp.client() as client:
        for _ in range(USER_FAILURES):
            response = await log_in(client, challenge, username=username, password="wrong")
            assert response.status_code == 401
        retry_after(await log_in(client, challenge, username=username, password="wrong"))


async def test_failures_from_one_address_are_refused_whatever_the_username(idp, clock):
    _, challenge = pkce()
    async with idp.client() as client:
        for attempt in range(ADDRESS_FAILURES):
            response = await log_in(client, challenge, username=f"guess-{attempt}")
            assert response.status_code == 401
        wait = retry_after(await log_in(client, challenge))
        clock.advance(timedelta(seconds=wait))
        await code_from(await log_in(client, challenge))


async def test_successes_do_not_use_up_an_address(idp):
    _, challenge = pkce()
    async with idp.client() as client:
        for _ in range(ADDRESS_FAILURES + 5):
            await code_from(await log_in(client, challenge))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"


async def test_replicas_count_failures_together(tmp_path, idp_key_dir, clock, database_url):
    with ExitStack() as stack:
        a = stack.enter_context(
            running_registry(tmp_path / "a", idp_key_dir, clock=clock, database_url=database_url)
        )
        # Behind one load balancer both answer for one URL, so one issuer for the IdP.
        b = stack.enter_context(
            running_registry(
                tmp_path / "b", idp_key_dir, clock=clock, database_url=database_url, base_url=a.url
            )
        )
        replicas = [a, b]
        _, challenge = pkce()
        for attempt in range(USER_FAILURES):
            async with replicas[attempt % 2].client() as client:
                response = await log_in(client, challenge, password="wrong")
                assert response.status_code == 401
        for replica in replicas:
            async with replica.client() as client:
                retry_after(await log_in(client, challenge))


async def test_a_wrong_password_takes_as_long_for_an_unknown_username(idp, clock):
    _, challenge = pkce()

    async def seconds_to_refuse(client, username: str) -> float:
        started = time.perf_counter()
        response = await log_in(client, challenge, username=username, password="wrong")
        elapsed = time.perf_counter() - started
        assert response.status_code == 401
        clock.advance(STREAK_FORGOTTEN_AFTER)  # so that no try is throttled
        return elapsed

    known, unknown = [], []
    async with idp.client() as client:
        await seconds_to_refuse(client, "einstein")  # warm up
        for attempt in range(7):
            known.append(await seconds_to_refuse(client, "einstein"))
            unknown.append(await seconds_to_refuse(client, f"nobody-{attempt}"))
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 1 / 3 < ratio < 3, (known, unknown)
