"""The schema helpers accept what the registry sends and reject what it must not send."""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx2
import pytest

from tests.schema import (
    assert_libregraph_drive,
    assert_libregraph_drive_list,
    assert_matches_openapi,
)

DRIVE: dict[str, Any] = {
    "id": "5f1e0c2a9b8d4e7f",
    "name": "Physics Lab",
    "driveType": "project",
    "driveAlias": "project/physics-lab",
    "description": "",
    "createdDateTime": "2026-11-21T11:13:20.196758Z",
    "lastModifiedDateTime": "2026-11-21T11:13:20.196758Z",
    "quota": {"total": 1000, "used": 10, "remaining": 990, "state": "normal"},
    "root": {
        "id": "5f1e0c2a9b8d4e7f!root",
        "eTag": '"abc"',
        "webDavUrl": "http://127.0.0.1:8080/dav/spaces/5f1e0c2a9b8d4e7f",
        "permissions": [
            {
                "id": "p1",
                "roles": ["312c0871-5ef7-4b3a-85b6-0e4074c64049"],
                "grantedToV2": {"user": {"id": "u1", "displayName": "Administrator"}},
                "createdDateTime": "2026-11-21T11:13:20.196758Z",
            }
        ],
    },
    "webUrl": "http://127.0.0.1:8080/#/spaces/5f1e0c2a9b8d4e7f",
}


def drive_with(path: str, value: Any) -> dict[str, Any]:
    drive = copy.deepcopy(DRIVE)
    *parents, last = path.split(".")
    target = drive
    for key in parents:
        target = target[key]
    target[last] = value
    return drive


def json_response(status: int, body: Any, method: str, url: str, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=headers, request=httpx2.Request(method, url))


def test_a_well_formed_drive_passes_both_schemas() -> None:
    assert_libregraph_drive(DRIVE)
    assert_libregraph_drive_list({"value": [DRIVE]})
    response = json_response(200, DRIVE, "GET", "http://registry.test/graph/v1.0/drives/x")
    assert_matches_openapi(response, "/graph/v1.0/drives/{id}", "get")


def test_libregraph_drive_with_quota_used_as_a_string_fails() -> None:
    with pytest.raises(AssertionError, match="quota/used"):
        assert_libregraph_drive(drive_with("quota.used", "10"))


def test_libregraph_drive_without_a_name_fails() -> None:
    drive = copy.deepcopy(DRIVE)
    del drive["name"]
    with pytest.raises(AssertionError, match="'name' is a required property"):
        assert_libregraph_drive(drive)


def test_libregraph_drive_with_a_malformed_date_fails() -> None:
    with pytest.raises(AssertionError, match="createdDateTime"):
        assert_libregraph_drive(drive_with("createdDateTime", "yesterday"))


def test_libregraph_drive_permission_without_display_name_fails() -> None:
    drive = copy.deepcopy(DRIVE)
    del drive["root"]["permissions"][0]["grantedToV2"]["user"]["displayName"]
    with pytest.raises(AssertionError, match="displayName"):
        assert_libregraph_drive(drive)


def test_libregraph_collection_without_value_fails() -> None:
    with pytest.raises(AssertionError, match="'value' is a required property"):
        assert_libregraph_drive_list({"drives": [DRIVE]})


def test_libregraph_collection_with_a_bad_drive_fails() -> None:
    with pytest.raises(AssertionError, match="value/0/quota/used"):
        assert_libregraph_drive_list({"value": [drive_with("quota.used", "10")]})


def test_openapi_check_rejects_a_drive_without_its_root() -> None:
    drive = copy.deepcopy(DRIVE)
    del drive["root"]
    response = json_response(200, drive, "GET", "http://registry.test/graph/v1.0/drives/x")
    with pytest.raises(AssertionError, match="'root' is a required property"):
        assert_matches_openapi(response, "/graph/v1.0/drives/{id}", "get")


def test_openapi_check_rejects_an_undocumented_status() -> None:
    response = json_response(418, {}, "GET", "http://registry.test/graph/v1.0/me/drives")
    with pytest.raises(AssertionError, match="418 is not documented"):
        assert_matches_openapi(response, "/graph/v1.0/me/drives", "get")


def test_openapi_check_rejects_an_error_without_request_id() -> None:
    body = {"error": {"code": "itemNotFound", "message": "no", "innererror": {"date": "x"}}}
    response = json_response(404, body, "GET", "http://registry.test/graph/v1.0/drives/x")
    with pytest.raises(AssertionError, match="request-id"):
        assert_matches_openapi(response, "/graph/v1.0/drives/{id}", "get")


def test_openapi_check_rejects_a_collection_without_value() -> None:
    response = json_response(200, {}, "GET", "http://registry.test/graph/v1.0/me/drives")
    with pytest.raises(AssertionError, match="'value' is a required property"):
        assert_matches_openapi(response, "/graph/v1.0/me/drives", "get")


def test_openapi_check_rejects_a_body_where_none_is_documented() -> None:
    response = json_response(
        204, {"ok": True}, "DELETE", "http://registry.test/graph/v1.0/drives/x"
    )
    with pytest.raises(AssertionError, match="without a body"):
        assert_matches_openapi(response, "/graph/v1.0/drives/{id}", "delete")


def test_openapi_check_rejects_a_created_drive_without_location() -> None:
    response = json_response(201, DRIVE, "POST", "http://registry.test/graph/v1.0/drives")
    with pytest.raises(AssertionError, match="Location"):
        assert_matches_openapi(response, "/graph/v1.0/drives", "post")


def test_openapi_check_rejects_an_undocumented_operation() -> None:
    response = json_response(200, {}, "PUT", "http://registry.test/graph/v1.0/me/drives")
    with pytest.raises(AssertionError, match=re.escape("is not in openapi.yaml")):
        assert_matches_openapi(response, "/graph/v1.0/me/drives", "put")


def test_openapi_check_rejects_a_response_for_another_path() -> None:
    response = json_response(200, {"value": []}, "GET", "http://registry.test/graph/v1.0/drives")
    with pytest.raises(AssertionError, match=re.escape("not /graph/v1.0/me/drives")):
        assert_matches_openapi(response, "/graph/v1.0/me/drives", "get")
