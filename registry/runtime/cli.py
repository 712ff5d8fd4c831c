"""`spacereg`: serve, migrate, keys, token, app-password, discover, peer, demo, provider serve."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from registry.runtime import logs
from registry.runtime.peer_cli import add_peer_commands, cmd_peer
from registry.runtime.settings import ConfigError, Settings, load_settings

GRACEFUL_SHUTDOWN_S = 10.0  # what open connections get on SIGTERM before they are closed


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging("text")
    if getattr(args, "own_settings", False):  # not the registry: reads its own configuration
        return int(args.command(args))
    try:
        settings = load_settings(
            args.config,
            overrides={
                "data_dir": args.data_dir,
                "host": getattr(args, "host", None),
                "port": getattr(args, "port", None),
                "workers": getattr(args, "workers", None),
            },
        )
    except ConfigError as exc:
        print(f"spacereg: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    return int(args.command(args, settings))


def configure_logging(log_format: str) -> None:
    """Our logging, in this process (and in each worker process of `serve --workers`)."""
    logging.basicConfig(level=logging.INFO)
    logs.configure(log_format)
    for noisy in ("alembic", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # stamina logs every retry it schedules; the loops log what failed themselves, in words.
    logging.getLogger("stamina").setLevel(logging.ERROR)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spacereg", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./var)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the registry")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers", type=int, help="worker processes answering on the port (default 1)"
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not upgrade the database first (replicas: run `migrate` once)",
    )
    serve.set_defaults(command=cmd_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(command=cmd_migrate)

    keys = commands.add_parser(
        "keys",
        help="make the signing keys in the data directory if missing (once, before replicas "
        "that share it start), print the federation key id",
    )
    keys.set_defaults(command=cmd_keys)

    token = commands.add_parser("token", help="print an access token from the embedded IdP")
    token.add_argument("username")
    token.set_defaults(command=cmd_token)

    app_password = commands.add_parser(
        "app-password", help="print a new app password of USER (for WebDAV and desktop clients)"
    )
    app_password.add_argument("username")
    app_password.add_argument("--label", default="", help="what the password is for")
    app_password.set_defaults(command=cmd_app_password)

    discover = commands.add_parser("discover", help="find the registry serving USER@DOMAIN")
    discover.add_argument("address")
    discover.add_argument("--json", action="store_true", help="print JSON for scripts")
    discover.set_defaults(command=cmd_discover)

    add_peer_commands(commands, cmd_peer)

    provider = commands.add_parser("provider", help="run a storage provider as its own service")
    provider_commands = provider.add_subparsers(required=True, metavar="COMMAND")
    provider_serve = provider_commands.add_parser(
        "serve", help="serve one storage driver over the signed provider API"
    )
    provider_serve.add_argument(
        "--config", dest="provider_config", type=Path, help="the provider's TOML file"
    )
    provider_serve.add_argument("--host")
    provider_serve.add_argument("--port", type=int)
    provider_serve.set_defaults(command=cmd_provider_serve, own_settings=True)

    demo = commands.add_parser(
        "demo", help="run zurich.test and paris.test, peered, on this machine (Ctrl-C stops)"
    )
    demo.add_argument(
        "--data-dir", dest="demo_dir", type=Path, default=Path("demo"), help="default ./demo"
    )
    demo.add_argument("--share", action="store_true", help="seed a folder shared with Marie")
    demo.add_argument("--zurich-port", type=int, default=8443)
    demo.add_argument("--paris-port", type=int, default=8444)
    demo.add_argument("--dns-port", type=int, default=5300, help="DNS for *.test (UDP, TCP)")
    demo.set_defaults(command=cmd_demo, own_settings=True)
    return parser


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if not args.no_migrate:
        asyncio.run(_migrate(settings, "head"))
    if settings.workers > 1:
        from registry.runtime import workers

        workers.serve(settings, args.config)
        return 0
    app = frozen_app(settings)
    _run(app, settings.host, settings.port, settings.tls_certfile, settings.tls_keyfile)
    return 0


def frozen_app(settings: Settings) -> Any:
    """The app, its start-up objects kept out of every later full collection (they caused the
    p99 tail): for `serve` and each of its workers."""
    from registry.runtime.app import create_app

    app = create_app(settings)
    gc.collect()
    gc.freeze()
    return app


def _run(app: Any, host: str, port: int, certfile: str | None, keyfile: str | None) -> None:
    import uvicorn

    uvicorn.run(app, **uvicorn_options(host, port, certfile, keyfile))


def uvicorn_options(
    host: str, port: int, certfile: str | None, keyfile: str | None
) -> dict[str, Any]:
    """How an app, registry or provider, is served, alone or in a worker process: behind
    proxies, no access log, and uvicorn's own events through our handlers (`log_config=None`),
    formatted as configured."""
    return {
        "host": host,
        "port": port,
        "proxy_headers": True,
        "ssl_certfile": certfile,
        "ssl_keyfile": keyfile,
        "log_config": None,
        "log_level": "info",
        "access_log": False,
        # Event streams and sync clients' connections never end by themselves: on SIGTERM
        # they get this long, then are closed (their clients reconnect, to another replica).
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }


def cmd_demo(args: argparse.Namespace) -> int:
    from registry.runtime import demo

    options = demo.Options(
        args.demo_dir, (args.zurich_port, args.paris_port), args.dns_port, args.share
    )
    try:
        asyncio.run(demo.run(options, _migrate, sys.stdout))
    except OSError as exc:  # a port in use
        print(f"spacereg demo: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(_migrate(settings, args.revision))
    print(f"database at revision {args.revision}")
    return 0


async def _migrate(settings: Settings, revision: str) -> None:
    from registry.runtime.db import create_engine
    from registry.runtime.migrate import upgrade

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine, revision)
    finally:
        await engine.dispose()


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr)


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Replicas sharing a data directory would each make their own keys (and demo users) on a
    first start at once; a one-shot job runs this first, so that they all find the same ones."""
    from registry.runtime.workers import prepare_keys

    print(prepare_keys(settings, _to_stderr).active.kid)
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from registry.auth.idp.keys import IdpKeys
    from registry.auth.idp.users import load_users

    if not settings.embedded_idp:
        print(
            "spacereg: the embedded IdP is off (external issuers are configured); "
            "get a token from your identity provider",
            file=sys.stderr,
        )
        return 2
    directory = settings.data_dir / "idp"
    users = load_users(directory, settings.idp_users, _to_stderr)
    user = users.get(args.username)
    if user is None:
        print(
            f"spacereg: no user {args.username!r} (known: {', '.join(sorted(users))})",
            file=sys.stderr,
        )
        return 1
    keys = IdpKeys.load_or_create(directory)
    print(
        keys.access_token(
            settings.idp_issuer, settings.audience, user.username, user.profile(), "spacereg-cli"
        )
    )
    return 0


def cmd_app_password(args: argparse.Namespace, settings: Settings) -> int:
    """Works beside a running `spacereg serve`: it only adds a row to the shared database."""
    from registry.auth import user_store
    from registry.auth.idp.throttle import LoginThrottle
    from registry.core.clock import SYSTEM_CLOCK
    from registry.core.errors import ApiError
    from registry.runtime.db import create_engine
    from registry.runtime.wiring import app_password_service

    async def make() -> int:
        await _migrate(settings, "head")
        engine = create_engine(settings.database_url)
        issuer = settings.trusted_issuers()[0].url
        try:
            async with engine.connect() as conn:
                user_id = await user_store.home_user_id(conn, issuer, args.username)
            if user_id is None:
                print(
                    f"spacereg: no user {args.username!r} yet (users are known once they "
                    "signed in, or when `spacereg serve` started with them in the embedded IdP)",
                    file=sys.stderr,
                )
                return 1
            throttle = LoginThrottle(engine, SYSTEM_CLOCK)
            service = app_password_service(settings, engine, SYSTEM_CLOCK, throttle, issuer)
            made = await service.create(user_id, args.label)
        except ApiError as exc:
            print(f"spacereg: {exc.message}", file=sys.stderr)
            return 2
        finally:
            await engine.dispose()
        print(f"app password {made.key} of {args.username} (shown once):")
        print(made.password)
        return 0

    return asyncio.run(make())


def cmd_discover(args: argparse.Namespace, settings: Settings) -> int:
    from federation.discover_cli import run_discover
    from registry.runtime.federation_wiring import discovery_config

    return asyncio.run(
        run_discover(
            args.address, discovery_config(settings), args.json, sys.stdout, err=sys.stderr
        )
    )


def cmd_provider_serve(args: argparse.Namespace) -> int:
    from storage import StorageError
    from storage.service import create_service_app
    from storage.service_config import ServiceConfigError, load_service_config

    try:
        config = load_service_config(
            args.provider_config or args.config,
            overrides={"data_dir": args.data_dir, "host": args.host, "port": args.port},
        )
        app = create_service_app(config)
    except (ServiceConfigError, StorageError) as exc:
        print(f"spacereg: provider configuration error: {exc}", file=sys.stderr)
        return 2
    _run(app, config.host, config.port, config.tls_certfile, config.tls_keyfile)
    return 0
