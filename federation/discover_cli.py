"""`spacereg discover ADDRESS`: what discovery finds, and how, for humans or (--json) scripts.

Exit codes: 0 found; 1 discovery failed (the reason is printed); 2 the address is invalid.
"""

from __future__ import annotations

import sys
from typing import TextIO

import orjson

from federation.config import DiscoveryConfig
from federation.discovery import DiscoveredRegistry, Discovery
from federation.errors import DiscoveryError, InvalidAddress

__all__ = ["EXIT_FAILED", "EXIT_INVALID_ADDRESS", "EXIT_OK", "format_human", "run_discover"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID_ADDRESS = 0, 1, 2


async def run_discover(
    address: str,
    config: DiscoveryConfig,
    as_json: bool,
    out: TextIO,
    *,
    err: TextIO | None = None,
) -> int:
    """Discover `address`; human errors go to `err` (default stderr), JSON errors to `out`."""
    err = err or sys.stderr
    try:
        async with Discovery(config) as discovery:
            found = await discovery.discover(address)
    except DiscoveryError as exc:
        if as_json:
            error = {"error": {"code": exc.code, "message": str(exc)}, "address": address}
            out.write(orjson.dumps(error, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            err.write(f"spacereg discover: cannot discover {address}: {exc} [{exc.code}]\n")
        return EXIT_INVALID_ADDRESS if isinstance(exc, InvalidAddress) else EXIT_FAILED
    if as_json:
        out.write(orjson.dumps(found.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(format_human(found))
    return EXIT_OK


def format_human(found: DiscoveredRegistry) -> str:
    location = found.location
    how = {
        "dns-srv": f"DNS SRV ({location.record})",
        "dns-txt": f"DNS TXT ({location.record})",
        "domain": "the domain itself (no SRV or TXT record published)",
        "address": "the host and port in the address",
    }[location.how]
    meta = found.metadata
    software = " ".join(filter(None, [meta.software.get("name"), meta.software.get("version")]))
    lines = [
        f"{found.address}",
        f"  registry host   {location.origin}  (found by {how})",
        f"  webfinger       {found.webfinger.subject}",
        f"  registry        {meta.base_url}  (domain {meta.domain}, metadata "
        f"{meta.metadata_version}, {software or 'unknown software'})",
    ]
    lines += [f"    {name:<17} {url}" for name, url in sorted(meta.endpoints.items())]
    lines += [
        f"  keys (JWKS)     {meta.jwks_uri}  ({len(found.registry_keys)} key(s))",
        f"  issuer          {found.issuer}  (OpenID configuration checked)",
        f"    jwks_uri      {found.openid.jwks_uri}",
        f"  capabilities    {', '.join(meta.capabilities) or '-'}",
        "  steps           " + ", ".join(f"{step.name} {step.source}" for step in found.steps),
    ]
    if found.stale:
        lines.append("  warning         some answers are stale: the remote could not be refreshed")
    return "\n".join(lines) + "\n"
