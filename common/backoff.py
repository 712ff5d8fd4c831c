"""The pause before trying again after failures in a row: doubling from `first_s`, capped at
`max_s`, optionally stretched by up to `jitter` (0.2: 20%) so that what failed together does
not retry together. For retries whose state outlives a loop (persisted, or a supervisor's);
a plain retry loop uses `stamina`."""

from __future__ import annotations

import random


def crashes_in_a_row(crashes: int, ran_s: float, stable_after_s: float) -> int:
    """The crashes in a row after one more that ended a run of `ran_s`: a run that lasted
    `stable_after_s` ended the streak before it."""
    return 1 if ran_s >= stable_after_s else crashes + 1


def backoff_s(failures: int, first_s: float, max_s: float, jitter: float = 0.0) -> float:
    doublings = min(max(failures - 1, 0), 60)  # a float of 2**1024 would overflow
    base = min(first_s * 2.0**doublings, max_s)
    return base * (1 + jitter * random.random()) if jitter else base
