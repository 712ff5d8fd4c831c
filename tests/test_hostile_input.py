"""Input that used to answer 500, or was taken leniently: races for one name, numbers past
int64, endless filters, control characters, digits of other scripts, junk flags and repeated
query parameters. Each is a 4xx with the error body now (racing creators each get an alias).

The checks are functions of a `Registry`, so tests/test_postgres_api.py runs them on
PostgreSQL too."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx2
import pytest

from tests.conftest import Registry
from tests.test_drives_api import assert_error, create_project

DRIVES = "/graph/v1.0/drives"
ME_DRIVES = "/graph/v1.0/me/drives"
CONCURRENT_CREATORS = 8
INT64_MAX = 2**63 - 1
# Control characters (C0, DEL, C1) and bidirectional controls.
UNSAFE = ["\u0000", "\u0007", "\u001b", "\u007f", "\u0085", "\u202e", "\u2066", "\u200f"]
OTHER_DIGITS = ["\u0663", "\u00b2", "\uff11", "\u07c1"]  # Arabic-Indic 3, ², fullwidth 1, NKo 1


def skiptoken(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def creators_racing_for_one_name_each_get_an_alias(registry: Registry) -> None:
    limits = httpx2.Limits(max_connections=CONCURRENT_CREATORS)
    async with registry.client("admin", limits=limits) as admin:
        answers = await asyncio.gather(
            *(admin.post(DRIVES, json={"name": "Race"}) for _ in range(CONCURRENT_CREATORS))
        )
    assert [a.status_code for a in answers] == [201] * CONCURRENT_CREATORS, [
        a.text for a in answers
    ]
    suffixes = [f"project/race-{n}" for n in range(2, CONCURRENT_CREATORS + 1)]
    assert sorted(a.json()["driveAlias"] for a in answers) == sorted(["project/race", *suffixes])


async def quotas_past_int64_are_refused(registry: Registry) -> None:
    async with registry.client("admin") as admin:
        largest = await create_project(admin, "Largest", quota={"total": INT64_MAX})
        assert largest["quota"]["total"] == INT64_MAX
        url = f"{DRIVES}/{largest['id']}"
        for total in (2**63, 2**64, 10**30):
            response = await admin.post(DRIVES, json={"name": "Huge", "quota": {"total": total}})
            assert_error(response, 400, "invalidRequest")
            response = await admin.patch(url, json={"quota": {"total": total}})
            assert_error(response, 400, "invalidRequest")
        assert (await admin.get(url)).json()["quota"]["total"] == INT64_MAX


async def skiptokens_past_int64_are_refused(registry: Registry) -> None:
    async with registry.client("einstein") as einstein:
        for offset in (str(2**63), "9" * 30, "-1", "1e3", " 1", *OTHER_DIGITS):
            response = await einstein.get(ME_DRIVES, params={"$skiptoken": skiptoken(offset)})
            assert_error(response, 400, "invalidRequest")
        for offset in (2**31, 2**40, INT64_MAX):  # far past the end: an empty page
            response = await einstein.get(ME_DRIVES, params={"$skiptoken": skiptoken(str(offset))})
            assert response.status_code == 200, response.text
            assert response.json()["value"] == []


async def filters_of_a_thousand_conditions_are_refused(registry: Registry) -> None:
    async with registry.client("einstein") as einstein:
        for joiner in (" or ", " and "):
            text = joiner.join(["id eq 'x'"] * 1000)
            response = await einstein.get(ME_DRIVES, params={"$filter": text})
            assert_error(response, 400, "invalidRequest")
            assert "more than 100 conditions" in response.json()["error"]["message"]
        hundred = " or ".join(["driveType eq 'personal'"] * 100)
        response = await einstein.get(ME_DRIVES, params={"$filter": hundred})
        assert response.status_code == 200, response.text
        assert len(response.json()["value"]) == 1


async def text_with_control_characters_is_refused(registry: Registry) -> None:
    """Also what PostgreSQL cannot hold (NUL): ids in paths, filter values, recipients."""
    async with registry.client("admin") as admin:
        project = await create_project(admin, "Plain")
        url = f"{DRIVES}/{project['id']}"
        invite_path = f"/graph/v1beta1/drives/{project['id']}/root/invite"
        for character in UNSAFE:
            for body in ({"name": f"a{character}b"}, {"name": "ok", "description": character}):
                assert_error(await admin.post(DRIVES, json=body), 400, "invalidRequest")
                assert_error(await admin.patch(url, json=body), 400, "invalidRequest")
            value = f"id eq 'a{character}b'"
            response = await admin.get(DRIVES, params={"$filter": value})
            assert_error(response, 400, "invalidRequest")
            invite = {"recipients": [{"objectId": f"x{character}"}], "roles": ["viewer"]}
            response = await admin.post(invite_path, json=invite)
            assert_error(response, 400, "invalidRequest")
        for path in (f"{DRIVES}/a%00b", "/api/v1/subscriptions/a%00b"):
            assert_error(await admin.get(path), 404, "itemNotFound")
        assert (await admin.get(url)).json()["name"] == "Plain"


async def test_creators_racing_for_one_name_each_get_an_alias(registry: Registry) -> None:
    await creators_racing_for_one_name_each_get_an_alias(registry)


async def test_quotas_past_int64_are_refused(registry: Registry) -> None:
    await quotas_past_int64_are_refused(registry)


async def test_skiptokens_past_int64_are_refused(registry: Registry) -> None:
    await skiptokens_past_int64_are_refused(registry)


async def test_filters_of_a_thousand_conditions_are_refused(registry: Registry) -> None:
    await filters_of_a_thousand_conditions_are_refused(registry)


async def test_text_with_control_characters_is_refused(registry: Registry) -> None:
    await text_with_control_characters_is_refused(registry)


async def test_descriptions_keep_their_lines_and_names_their_letters(admin: Any) -> None:
    made = await create_project(admin, "Física \u2014 Ω", description="line 1\r\nline 2\ttab")
    assert made["name"] == "Física \u2014 Ω"
    assert made["description"] == "line 1\r\nline 2\ttab"


async def test_expiries_past_the_last_representable_moment_are_refused(admin: Any) -> None:
    project = await create_project(admin, "Far future")
    for moment in ("9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59.999999-00:01"):
        body = {
            "recipients": [{"objectId": "einstein"}],
            "roles": ["viewer"],
            "expirationDateTime": moment,
        }
        path = f"/graph/v1beta1/drives/{project['id']}/root/invite"
        assert_error(await admin.post(path, json=body), 400, "invalidRequest")


@pytest.mark.parametrize("digits", OTHER_DIGITS)
async def test_cursors_and_limits_in_other_digits_are_refused(einstein: Any, digits: str) -> None:
    response = await einstein.get("/api/v1/changes", params={"since": digits})
    assert_error(response, 400, "invalidCursor")
    response = await einstein.get("/api/v1/changes", params={"since": "0", "limit": digits})
    assert_error(response, 400, "invalidRequest")
    async with einstein.stream("GET", "/api/v1/events", params={"since": digits}) as stream:
        await stream.aread()
        assert_error(stream, 400, "invalidCursor")


@pytest.mark.parametrize("value", ["t", "f", "yes", "true", "1", "T,T", ""])
async def test_purge_and_restore_take_t_or_f_only(admin: Any, value: str) -> None:
    project = await create_project(admin, "Flagged")
    url = f"{DRIVES}/{project['id']}"
    response = await admin.patch(url, json={"name": "Renamed"}, headers={"Restore": value})
    assert_error(response, 400, "invalidRequest")
    assert_error(await admin.delete(url, headers={"Purge": value}), 400, "invalidRequest")
    assert (await admin.delete(url, headers={"Purge": "F"})).status_code == 204
    assert_error(await admin.delete(url, headers={"Purge": value}), 400, "invalidRequest")
    drive = (await admin.get(url)).json()
    assert (drive["name"], drive["root"]["deleted"]) == ("Flagged", {"state": "trashed"})


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [
        (ME_DRIVES, "$filter", "driveType eq 'personal'"),
        (ME_DRIVES, "$orderby", "name"),
        (ME_DRIVES, "$skiptoken", skiptoken("0")),
        (ME_DRIVES, "$select", "id"),
        ("/api/v1/changes", "since", "0"),
        ("/api/v1/changes", "limit", "5"),
        ("/api/v1/events", "since", "0"),
    ],
)
async def test_repeated_query_parameters_are_refused(
    einstein: Any, path: str, name: str, value: str
) -> None:
    async with einstein.stream("GET", path, params=[(name, value), (name, value)]) as response:
        await response.aread()
        assert_error(response, 400, "invalidRequest")
        assert f"{name} is given more than once" in response.json()["error"]["message"]


async def test_a_repeated_authorization_parameter_is_refused(registry: Registry) -> None:
    params = [
        ("response_type", "code"),
        ("client_id", "test-client"),
        ("redirect_uri", "http://127.0.0.1:9/callback"),
        ("code_challenge", "c" * 43),
        ("code_challenge_method", "S256"),
        ("state", "one"),
    ]
    async with registry.client() as browser:
        assert (await browser.get("/idp/authorize", params=params)).status_code == 200
        response = await browser.get("/idp/authorize", params=[*params, ("state", "two")])
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "state is given more than once" in response.text
