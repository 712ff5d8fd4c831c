"""Benchmark `GET /graph/v1.0/me/drives`: latency that does not grow with the registry's size.

For each size, seeds a fresh database with that many spaces (one manager each, a fake user) of
which the bench user (einstein) sees exactly 100, starts the registry as its own process on
127.0.0.1, and drives it with a small asyncio HTTP/1.1 keep-alive client. It prints latency
percentiles, requests/s, the server's own time (`Server-Timing`), the in-process floor (the same
listing plus JSON encoding, timed alone in this process), and the ratios against the targets.

    .venv/bin/python bench/drives.py [--sizes 10000,1000000] [--concurrency 32] [--duration 5]
                                     [--database-url postgresql+asyncpg://.../scratch]

A PostgreSQL URL must name a scratch database: its registry tables are dropped and re-created.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.access import roles
from registry.access.principal import Principal
from registry.auth.idp.keys import IdpKeys
from registry.changes.unit_of_work import UnitOfWork
from registry.core.models import Base, Member, Space, User, table
from registry.runtime.db import create_engine
from registry.runtime.migrate import upgrade
from registry.runtime.settings import Settings, load_settings
from registry.spaces.drive_json import drive
from registry.spaces.service import SpaceService
from storage import load_provider
from tests.processes import stop_process, wait_until_serving
from tests.servers import free_port

HOST = "127.0.0.1"
VISIBLE = 100  # spaces the bench user sees: the personal space and 99 others
VIA_GROUP = 20  # of those, seen through a group membership rather than directly
SPACES_PER_FAKE_USER = 10
CHUNK_ROWS = 50_000
MAX_REQUESTS = 20_000
SEQUENTIAL_S = 2.0
WARMUP_S = 1.0
FLOOR_ITERATIONS = 500
USER = {
    "username": "einstein",
    "password": "relativity",
    "display_name": "Albert Einstein",
    "email": "einstein@example.org",
    "groups": ["physics-lovers", "sailing-lovers"],
}
TARGET_SERVER_OVER_FLOOR = 1.5
TARGET_GROWTH = 1.2
TARGET_P99_MS = 30.0


@dataclass
class Load:
    """What one run of the load generator saw."""

    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else 0.0

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0

    @property
    def mean_server_ms(self) -> float:
        return statistics.fmean(self.server_ms) if self.server_ms else 0.0

    def line(self, label: str) -> str:
        return (
            f"  {label:<26} n={len(self.latencies_ms):>6}  {self.rps:>8.0f} req/s  "
            f"p50 {self.pct(50):6.2f}  p90 {self.pct(90):6.2f}  p99 {self.pct(99):6.2f}  "
            f"mean {self.mean_ms:6.2f} ms  server {self.mean_server_ms:6.2f} ms"
            + (f"  ERRORS {self.errors}" if self.errors else "")
        )


@dataclass
class Result:
    size: int
    seed_s: float
    floor_mean_ms: float
    floor_p50_ms: float
    body_bytes: int
    sequential: Load
    health: Load
    drives: Load


# ---------------------------------------------------------------- seeding


def _ids() -> Iterator[str]:
    while True:
        yield secrets.token_hex(16)


async def _reset(engine: AsyncEngine) -> None:
    """Start from an empty schema (for a scratch PostgreSQL database given by URL)."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


async def seed(settings: Settings, total: int, fresh: bool) -> tuple[str, float]:
    """Fill the database; returns the bench user's id and the seconds it took."""
    started = time.perf_counter()
    engine = create_engine(settings.database_url)
    try:
        if not fresh:
            await _reset(engine)
        await upgrade(engine)
        user_id = await _insert(engine, settings, total)
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return user_id, time.perf_counter() - started


async def _insert(engine: AsyncEngine, settings: Settings, total: int) -> str:
    spaces, members, users = table(Space), table(Member), table(User)
    ids = _ids()
    now = datetime.now(UTC)
    issuer = settings.idp_issuer
    me = next(ids)
    fake_users = [next(ids) for _ in range(max(1, total // SPACES_PER_FAKE_USER))]
    user_rows: list[dict[str, Any]] = [
        {
            "id": me,
            "issuer": issuer,
            "subject": USER["username"],
            "username": USER["username"],
            "display_name": USER["display_name"],
            "email": USER["email"],
            "created_at": now,
        }
    ]
    user_rows += [
        {
            "id": uid,
            "issuer": issuer,
            "subject": f"user{n}",
            "username": f"user{n}",
            "display_name": f"User {n}",
            "email": f"user{n}@example.org",
            "created_at": now,
        }
        for n, uid in enumerate(fake_users)
    ]
    # The visible ones are spread evenly over all spaces, so names sort among the others.
    stride = max(1, total // VISIBLE)
    visible = {n * stride for n in range(VISIBLE)}
    async with engine.begin() as conn:
        for start in range(0, len(user_rows), CHUNK_ROWS):
            await conn.execute(users.insert(), user_rows[start : start + CHUNK_ROWS])
        for start in range(0, total, CHUNK_ROWS):
            space_rows, member_rows = [], []
            for n in range(start, min(total, start + CHUNK_ROWS)):
                space_id = next(ids)
                personal = n == 0
                owner = me if personal else fake_users[n % len(fake_users)]
                created = now - timedelta(seconds=total - n)
                space_rows.append(
                    {
                        "id": space_id,
                        "alias": "personal/einstein" if personal else f"project/space-{n}",
                        "name": USER["display_name"] if personal else f"Space {n * 7919 % total}",
                        "description": "" if n % 3 else f"Project space number {n}",
                        "drive_type": "personal" if personal else "project",
                        "provider": "local",
                        "root_id": space_id,
                        "etag": f'"{secrets.token_hex(8)}"',
                        "quota_total": 10 * 1024**3,
                        "quota_used": n * 4096 % (10 * 1024**3),
                        "image": ".space/image.png" if n % 5 == 0 else None,
                        "readme": ".space/readme.md" if n % 4 == 0 else None,
                        "status": "enabled",
                        "availability": "available",
                        "created_by": owner,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                member_rows.append(_member(next(ids), space_id, "user", owner, "manager", created))
                if n in visible and not personal:
                    if len(visible) - (n // stride) <= VIA_GROUP:
                        kind, who = "group", USER["groups"][0]
                    else:
                        kind, who = "user", me
                    role = roles.EDITOR if n % 2 else roles.VIEWER
                    member_rows.append(_member(next(ids), space_id, kind, who, role, created))
            await conn.execute(spaces.insert(), space_rows)
            await conn.execute(members.insert(), member_rows)
    return me


def _member(
    member_id: str, space_id: str, kind: str, who: str, role: str, created: datetime
) -> dict[str, Any]:
    return {
        "id": member_id,
        "space_id": space_id,
        "principal_type": kind,
        "principal_id": who,
        "role": role,
        "expires_at": None,
        "created_at": created,
    }


# ---------------------------------------------------------------- in-process floor


async def floor(settings: Settings, user_id: str, iterations: int) -> tuple[float, float, int]:
    """The listing (SQL, grouping, drive objects, JSON) timed alone: (mean ms, p50 ms, bytes)."""
    engine = create_engine(settings.database_url)
    provider = load_provider("local", "local", {"root": str(settings.data_dir / "spaces")})
    service = SpaceService(UnitOfWork(engine), {"local": provider}, 0, 0)
    principal = Principal(
        user_id, USER["username"], USER["display_name"], tuple(USER["groups"]), False
    )

    async def once() -> bytes:
        views, _more = await service.list_visible(principal, None, None, 0)
        return orjson.dumps({"value": [drive(v, settings.base_url, False) for v in views]})

    try:
        body = b""
        for _ in range(50):
            body = await once()
        count = len(orjson.loads(body)["value"])
        if count != VISIBLE:
            raise SystemExit(f"the bench user sees {count} drives, not {VISIBLE}")
        times = []
        for _ in range(iterations):
            started = time.perf_counter()
            await once()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
        await provider.close()
    return statistics.fmean(times), statistics.median(times), len(body)


# ---------------------------------------------------------------- load generator


def _request(path: str, port: int, token: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _parse_head(head: bytes) -> tuple[int, int, float | None]:
    status = int(head[9:12])
    length, server = 0, None
    for raw in head.split(b"\r\n")[1:]:
        name, _, value = raw.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"server-timing":
            for part in value.split(b";"):
                if part.strip().startswith(b"dur="):
                    server = float(part.strip()[4:].split(b",")[0])
    return status, length, server


async def load(
    port: int, request: bytes, concurrency: int, duration_s: float, max_requests: int
) -> Load:
    result = Load()
    remaining = [max_requests]
    connections = [await asyncio.open_connection(HOST, port) for _ in range(concurrency)]
    deadline = time.perf_counter() + duration_s

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while remaining[0] > 0 and time.perf_counter() < deadline:
            remaining[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, server = _parse_head(head)
            await reader.readexactly(length)
            if status != 200:
                result.errors += 1
                continue
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            if server is not None:
                result.server_ms.append(server)

    began = time.perf_counter()
    try:
        await asyncio.gather(*(client(r, w) for r, w in connections))
    finally:
        result.wall_s = time.perf_counter() - began
        for _, writer in connections:
            writer.close()
    return result


# ---------------------------------------------------------------- the registry process


def _config(directory: Path, port: int, database_url: str | None) -> Path:
    groups = ", ".join(f'"{g}"' for g in USER["groups"])
    lines = [
        f'data_dir = "{directory / "data"}"',
        f'host = "{HOST}"',
        f"port = {port}",
        *([f'database_url = "{database_url}"'] if database_url else []),
        "",
        "[[idp_users]]",
        *(f'{key} = "{USER[key]}"' for key in ("username", "password", "display_name", "email")),
        f"groups = [{groups}]",
    ]
    path = directory / "spacereg.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEREG_")}
    command = [sys.executable, "-m", "registry", "--config", str(config), "serve", "--no-migrate"]
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


async def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    if not await asyncio.to_thread(wait_until_serving, f"http://{HOST}:{port}", process, 60):
        raise SystemExit(f"the registry did not start:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text()[-4000:]


# ---------------------------------------------------------------- one size


async def run_size(size: int, args: argparse.Namespace) -> Result:
    directory = Path(tempfile.mkdtemp(prefix=f"spacereg-bench-{size}-"))
    try:
        port = free_port()
        config = _config(directory, port, args.database_url)
        settings = load_settings(config, env={})
        print(f"\n== {size:,} spaces ({settings.database_url.split(':')[0]}) ==", flush=True)
        user_id, seed_s = await seed(settings, size, fresh=args.database_url is None)
        print(f"  seeded in {seed_s:.1f} s", flush=True)
        floor_mean, floor_p50, body_bytes = await floor(settings, user_id, FLOOR_ITERATIONS)
        print(
            f"  floor (in process): mean {floor_mean:.2f} ms  p50 {floor_p50:.2f} ms  "
            f"body {body_bytes:,} bytes",
            flush=True,
        )
        keys = IdpKeys.load_or_create(settings.data_dir / "idp")
        token = keys.access_token(
            settings.idp_issuer,
            settings.audience,
            USER["username"],
            {
                "preferred_username": USER["username"],
                "name": USER["display_name"],
                "email": USER["email"],
                "groups": USER["groups"],
            },
            "spacereg-cli",
        )
        log = directory / "server.log"
        process = _start(config, log)
        try:
            await _wait_ready(port, process, log)
            drives = _request("/graph/v1.0/me/drives", port, token)
            health = _request("/healthz", port, None)
            await load(port, drives, args.concurrency, WARMUP_S, MAX_REQUESTS)
            sequential = await load(port, drives, 1, SEQUENTIAL_S, MAX_REQUESTS)
            print(sequential.line("drives, 1 client"), flush=True)
            health_load = await load(port, health, args.concurrency, args.duration, MAX_REQUESTS)
            print(health_load.line(f"healthz, {args.concurrency} clients"), flush=True)
            drives_load = await load(port, drives, args.concurrency, args.duration, MAX_REQUESTS)
            print(drives_load.line(f"drives, {args.concurrency} clients"), flush=True)
        finally:
            stop_process(process, signal.SIGINT)
        return Result(
            size, seed_s, floor_mean, floor_p50, body_bytes, sequential, health_load, drives_load
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- report


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(results: list[Result], concurrency: int) -> None:
    print("\n== summary ==")
    header = (
        f"{'spaces':>10} {'seed s':>7} {'floor ms':>9} {'server ms':>10} {'srv/floor':>9} "
        f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'req/s':>7} {'healthz req/s':>14}"
    )
    print(header)
    for r in results:
        ratio = r.sequential.mean_server_ms / r.floor_mean_ms
        d = r.drives
        print(
            f"{r.size:>10,} {r.seed_s:>7.1f} {r.floor_mean_ms:>9.2f} "
            f"{r.sequential.mean_server_ms:>10.2f} {ratio:>9.2f} {d.pct(50):>7.2f} "
            f"{d.pct(90):>7.2f} {d.pct(99):>7.2f} {d.rps:>7.0f} {r.health.rps:>14.0f}"
        )
    print("\n== targets ==")
    for r in results:
        ratio = r.sequential.mean_server_ms / r.floor_mean_ms
        print(
            f"  {r.size:>10,}: server time / floor = {ratio:.2f} "
            f"(target <= {TARGET_SERVER_OVER_FLOOR})  {_mark(ratio <= TARGET_SERVER_OVER_FLOOR)}"
        )
        p99 = r.drives.pct(99)
        print(
            f"  {r.size:>10,}: p99 at {concurrency} clients = {p99:.2f} ms "
            f"(target < {TARGET_P99_MS:.0f})  {_mark(p99 < TARGET_P99_MS)}"
        )
        if r.drives.errors or r.sequential.errors:
            print(f"  {r.size:>10,}: {r.drives.errors + r.sequential.errors} error responses  MISS")
    if len(results) >= 2:
        small, large = results[0], results[-1]
        growth = {
            f"p50 at {concurrency}": large.drives.pct(50) / small.drives.pct(50),
            f"p99 at {concurrency}": large.drives.pct(99) / small.drives.pct(99),
            "sequential mean": large.sequential.mean_ms / small.sequential.mean_ms,
        }
        for label, value in growth.items():
            print(
                f"  {large.size:,}/{small.size:,} latency, {label} = {value:.2f} "
                f"(target <= {TARGET_GROWTH})  {_mark(value <= TARGET_GROWTH)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated space counts")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per loaded run")
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (default SQLite)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(size < VISIBLE for size in sizes):
        parser.error(f"every size must be at least {VISIBLE}")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = [asyncio.run(run_size(size, args)) for size in sizes]
    report(results, args.concurrency)


if __name__ == "__main__":
    main()
