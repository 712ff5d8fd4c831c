"""Schemathesis against a real `spacereg serve`, as an administrator and as a member: every
answer to a generated request, valid or not, is documented in registry/openapi.yaml (status,
media type, headers, body) and is no server error; a wrong method gets 405 with `Allow`; and
every request the document allows is accepted, or refused only for what the registry holds
(401, 403, 404, 409, 410), never as malformed.

The document cannot say which users exist, what time it is or which callback confirms, so
valid requests are pointed at the registry's real users, drives and a confirming webhook
receiver before they are sent (`_point_at_what_exists`); the rest of each request is as
generated. Left out: the web UI's pages (they need a browser session; tests/web), the IdP's
HTML login form and its token endpoint (OAuth, not the JSON API; tests/test_idp.py), the
endless event stream (tests/test_changes_api.py checks its events against the document),
operations documented only as refusals (405, the OCM API's 501), and WebDAV (not in the
document)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.processes import RegistryProcess
from tests.receivers import running_receiver
from tests.schema import OPENAPI_FILE
from tests.servers import free_port

CALLERS = ("admin", "einstein")
EXAMPLES_PER_OPERATION = 30
CASES_AT_LEAST = 2000
USERS = ("einstein", "marie", "richard")
FUTURE_LEAP_YEAR = "2996"  # an expiry must lie ahead; a leap year keeps 29 February valid
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    unsupported_method,
    allow_header_conformance,
]


def _only_refuses(ctx: Any) -> bool:
    """Operations documented with no success at all (the federation's 405s, OCM's 501)."""
    responses = ctx.operation.definition.raw.get("responses", {})
    return not any(str(status).startswith("2") for status in responses)


schema = (
    schemathesis.openapi.from_path(OPENAPI_FILE)
    .exclude(_only_refuses)
    .exclude(path_regex="^/idp/(authorize|token)$")
    .exclude(path="/api/v1/events", method="GET")
    # Accepting an invitation, and what partners send us, succeed only with a live partner
    # registry whose published key signs; tests/federation/test_peering.py runs them against
    # one (refusals included). Here every schema-valid call would be refused for lack of one.
    .exclude(path="/api/v1/peers", method="POST")
    .exclude(path_regex="^/api/v1/peering/")
    # The web UI's pages need a browser's session cookie and its CSRF token, which the fuzzer
    # cannot hold (without them every page is a redirect to the login); tests/web runs them,
    # refusals included.
    .exclude(tag="web")
    # The same for shares: the OCM endpoints partners call (signed), and accepting a partner's
    # invitation (tests/federation/test_ocm_receive.py, test_shares.py, test_ocm_invites.py).
    .exclude(path_regex="^/ocm/")
    .exclude(path="/api/v1/ocm/invitations/accept", method="POST")
)
# 501 is documented for well-formed OData the registry does not implement (only invalid
# requests get it); 410 for a cursor the change log no longer (or not yet) holds.
schema.config.checks.not_a_server_error.expected_statuses = ["2xx", "3xx", "4xx", "501"]
schema.config.checks.positive_data_acceptance.expected_statuses = [
    "2xx",
    "401",
    "403",
    "404",
    "409",
    "410",
]


@dataclass
class Known:
    """What exists on the registry under test, for valid requests to point at."""

    drive_ids: list[str] = field(default_factory=list)
    doomed_ids: list[str] = field(default_factory=list)  # for DELETE, which may purge them
    callback_url: str = ""
    sent: dict[str, int] = field(default_factory=dict)


KNOWN = Known()


@dataclass
class Target:
    url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path) -> Iterator[Target]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "var"
    loopback = {"SPACEREG_ALLOW_HTTP": "true", "SPACEREG_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8"}
    with running_receiver() as receiver:
        server = RegistryProcess(data_dir, free_port(), idp_key_dir, **loopback)
        server.start()
        try:
            tokens = {who: server.token(who) for who in CALLERS}
            KNOWN.drive_ids, KNOWN.doomed_ids = _seed(server.url, tokens)
            KNOWN.callback_url = receiver.url
            yield Target(server.url, tokens)
        finally:
            server.stop()
    print(f"\nschemathesis sent {sum(KNOWN.sent.values())} requests: {KNOWN.sent}")


def _seed(url: str, tokens: dict[str, str]) -> tuple[list[str], list[str]]:
    """Drives Einstein manages, views, and may not see, and his personal one; and the same
    again for DELETE to disable and purge."""
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    einstein = {"Authorization": f"Bearer {tokens['einstein']}"}
    kept, doomed = [], []
    with httpx2.Client(base_url=url, timeout=10) as client:
        for ids in (kept, doomed):
            for name, role in (("Managed", "manager"), ("Viewed", "viewer"), ("Hidden", None)):
                made = client.post("/graph/v1.0/drives", json={"name": name}, headers=admin)
                ids.append(made.raise_for_status().json()["id"])
                if role is not None:
                    invite = {"recipients": [{"objectId": "einstein"}], "roles": [role]}
                    path = f"/graph/v1beta1/drives/{ids[-1]}/root/invite"
                    client.post(path, json=invite, headers=admin).raise_for_status()
        kept.append(client.get("/graph/v1.0/me/drive", headers=einstein).json()["id"])
    return kept, doomed


def _pick(value: Any, choices: tuple[str, ...] | list[str]) -> str:
    digest = hashlib.sha256(repr(value).encode()).digest()
    return choices[digest[0] % len(choices)]


# How a message is framed is the HTTP layer's, not the API's: a generated `content-length:
# Scunthorpe` is refused by the server's parser (400, text/plain) before the registry sees it.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "host", "connection"})


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: Any) -> None:
    operation = f"{case.method} {case.path}"
    KNOWN.sent[operation] = KNOWN.sent.get(operation, 0) + 1
    for name in [name for name in case.headers or {} if name.lower() in FRAMING_HEADERS]:
        del case.headers[name]
    if case.meta is not None and case.meta.generation.mode.is_positive:
        _point_at_what_exists(case)


def _point_at_what_exists(case: Any) -> None:
    """Half of the drive ids become real ones (DELETE's its own, which it may purge); users
    named, expiries and callbacks become ones that exist, lie ahead and confirm (the document
    cannot say which do)."""
    params = case.path_parameters or {}
    if "id" in params and "/drives/" in case.path and _pick(params["id"], "ab") == "a":
        real = KNOWN.doomed_ids if case.method == "DELETE" else KNOWN.drive_ids
        params["id"] = _pick(params["id"], real)
    body = case.body
    if not isinstance(body, dict):
        return
    for recipient in body.get("recipients") or []:
        if isinstance(recipient, dict) and recipient.get("@libre.graph.recipient.type") != "group":
            recipient["objectId"] = _pick(recipient.get("objectId"), USERS)
    expiry = body.get("expirationDateTime")
    if isinstance(expiry, str) and expiry[:4] < FUTURE_LEAP_YEAR:
        body["expirationDateTime"] = FUTURE_LEAP_YEAR + expiry[4:]
    if isinstance(body.get("callbackUrl"), str):
        body["callbackUrl"] = KNOWN.callback_url
    if isinstance(body.get("drives"), list):
        body["drives"] = [_pick(d, [d, *KNOWN.drive_ids]) for d in body["drives"]]


@pytest.mark.parametrize("caller", CALLERS)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_registry_keeps_its_contract(case: Any, caller: str, target: Target) -> None:
    bearer = {"Authorization": f"Bearer {target.tokens[caller]}"}
    case.call_and_validate(base_url=target.url, headers=bearer, checks=CHECKS, timeout=30)


def test_the_fuzzer_sent_enough_requests(target: Target, request: pytest.FixtureRequest) -> None:
    fuzzed = [item for item in request.session.items if "keeps_its_contract" in item.name]
    if len(fuzzed) < 2 * len(list(schema.get_all_operations())):
        pytest.skip("only some operations were fuzzed in this run")
    assert sum(KNOWN.sent.values()) >= CASES_AT_LEAST, KNOWN.sent
