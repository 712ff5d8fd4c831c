"""Quota states as LibreGraph clients expect them."""

import pytest

from registry.spaces.drive_json import quota


@pytest.mark.parametrize(
    ("used", "state"),
    [
        (0, "normal"),
        (750, "normal"),
        (751, "nearing"),
        (900, "nearing"),
        (901, "critical"),
        (990, "critical"),
        (991, "exceeded"),
        (1000, "exceeded"),
        (1500, "exceeded"),
    ],
)
def test_quota_state_thresholds(used, state):
    assert quota(1000, used)["state"] == state


def test_remaining_never_goes_below_zero():
    assert quota(1000, 1500)["remaining"] == 0


def test_unlimited_quota_reports_only_usage():
    assert quota(None, 42) == {"used": 42, "state": "normal"}
