"""`spacereg discover`: human and JSON output, exit codes (called as the CLI calls it)."""

from __future__ import annotations

import dataclasses
import io
import json

from federation.config import DiscoveryConfig
from federation.discover_cli import run_discover
from tests.federation.conftest import Site


async def test_human_output_says_what_was_found_and_how(
    config: DiscoveryConfig, paris: Site
) -> None:
    out = io.StringIO()
    assert await run_discover("marie@paris.test", config, False, out) == 0
    text = out.getvalue()
    assert f"registry host   {paris.origin}  (found by DNS SRV (_spacereg._tcp.paris.test" in text
    assert f"issuer          {paris.origin}/idp  (OpenID configuration checked)" in text
    assert f"    drives            {paris.origin}/graph/v1.0/me/drives" in text


async def test_json_output_for_scripts(config: DiscoveryConfig, sites: dict[str, Site]) -> None:
    out = io.StringIO()
    assert await run_discover("einstein@zurich.test", config, True, out) == 0
    doc = json.loads(out.getvalue())
    assert doc["registry"]["found_by"] == "dns-txt"
    assert doc["metadata"]["base_url"] == sites["zurich"].origin
    assert doc["issuer"]["url"] == sites["zurich"].origin + "/idp"


async def test_failure_exits_non_zero_with_the_reason(config: DiscoveryConfig) -> None:
    out, err = io.StringIO(), io.StringIO()
    strict = dataclasses.replace(config, allow_private_networks=())
    assert await run_discover("marie@paris.test", strict, False, out, err=err) == 1
    assert "cannot discover marie@paris.test" in err.getvalue()
    assert "[blocked_address]" in err.getvalue()
    assert out.getvalue() == ""


async def test_failure_in_json_mode(config: DiscoveryConfig) -> None:
    out = io.StringIO()
    assert await run_discover("not-an-address", config, True, out) == 2
    assert json.loads(out.getvalue())["error"]["code"] == "invalid_address"
