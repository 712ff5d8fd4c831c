"""`spacereg peer ...`: peering from the command line, beside a running `spacereg serve`.

The commands use the registry's database and signing keys directly (so they work while the
server runs on the same data directory or database), and the network only to accept an
invitation and to tell a partner of a revocation. Errors print their stable code and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

from registry.core.errors import ApiError
from registry.runtime.settings import Settings


def add_peer_commands(commands: Any, run: Any) -> None:
    """The `peer` subcommands on the CLI's parser; `run(args, settings)` runs one."""
    peer = commands.add_parser("peer", help="peer with partner registries")
    actions = peer.add_subparsers(required=True, metavar="ACTION", dest="action")
    invite = actions.add_parser("invite", help="print a single-use invitation (last line)")
    invite.add_argument("--expires", default="7d", help="like 7d, 12h, 30m (default 7d)")
    accept = actions.add_parser("accept", help="accept another registry's invitation")
    accept.add_argument("invitation", nargs="?")
    accept.add_argument("--domain", help="no invitation: ask a registry open to federation")
    listing = actions.add_parser("list", help="partners, their state and deliveries")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    for action, text in (
        ("suspend", "refuse a partner's requests until resumed"),
        ("resume", "accept a suspended partner's requests again"),
        ("revoke", "end a partnership and tell the partner"),
    ):
        actions.add_parser(action, help=text).add_argument("domain")
    peer.set_defaults(command=run)


def cmd_peer(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_peer(args, settings))


async def _peer(args: argparse.Namespace, settings: Settings) -> int:
    from federation.discovery import Discovery
    from federation.keys import SigningKeys
    from federation.safe_http import SafeHttpClient
    from registry.core.clock import SYSTEM_CLOCK
    from registry.runtime.db import create_engine
    from registry.runtime.federation_wiring import build_peering, discovery_config
    from registry.runtime.migrate import upgrade

    engine = create_engine(settings.database_url)
    config = discovery_config(settings)
    outbound, discovery = SafeHttpClient(config), Discovery(config)
    keys = SigningKeys.load_or_create(settings.data_dir / "federation-keys")
    peering = build_peering(settings, engine, outbound, discovery, keys, SYSTEM_CLOCK)
    try:
        await upgrade(engine)  # a no-op on a database `spacereg serve` has migrated
        return await _action(args, peering)
    except ApiError as exc:
        print(f"spacereg peer {args.action}: {exc.message} [{exc.code}]", file=sys.stderr)
        return 1
    finally:
        await discovery.aclose()
        await outbound.aclose()
        await engine.dispose()


async def _action(args: argparse.Namespace, peering: Any) -> int:
    from registry.peers.routes import parse_duration

    if args.action == "invite":
        issued = await peering.invite(f"cli:{getpass.getuser()}", parse_duration(args.expires))
        when = issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"invitation to peer with {peering.domain}, single use, expires {when}:")
        print(issued.invitation)
    elif args.action == "accept":
        if (args.invitation is None) == (args.domain is None):
            print("spacereg peer accept: give an INVITATION or --domain", file=sys.stderr)
            return 2
        peer = await peering.accept(args.invitation, args.domain)
        print(f"peered with {peer.domain} ({peer.base_url}): {peer.state}")
    elif args.action == "list":
        peers = [peer.to_json() for peer in await peering.list()]
        print(json.dumps({"value": peers}, indent=2) if args.json else _table(peers))
    elif args.action == "revoke":
        peer = await peering.revoke(args.domain)
        print(f"{peer.domain}: revoked; a signed notice to the partner is queued")
    else:
        peer = await getattr(peering, args.action)(args.domain)
        print(f"{peer.domain}: {peer.state}")
    return 0


def _table(peers: list[dict[str, Any]]) -> str:
    rows = [("DOMAIN", "STATE", "LAST CONTACT", "QUEUED", "FAILURES", "CIRCUIT", "NEXT TRY")]
    rows += [
        (
            p["domain"],
            p["state"] if p["partnerState"] == "active" else f"{p['state']}/suspended-by-it",
            p["lastContact"] or "-",
            str(p["queuedDeliveries"]),
            str(p["failures"]),
            "open" if p["circuitOpen"] else "closed",
            p["nextAttempt"] or "-",
        )
        for p in peers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
