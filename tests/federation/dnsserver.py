"""The DNS server of the tests (federation/dnsserver.py) and helpers around it."""

from __future__ import annotations

import socket
from collections.abc import Callable

from federation.dnsserver import DnsServer

__all__ = ["DnsServer", "bind", "sequence"]


def sequence(*answers: list[str]) -> Callable[[], list[str]]:
    """Answer the first query with answers[0], the next with answers[1], ... then the last."""
    remaining = list(answers)

    def next_answer() -> list[str]:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return next_answer


def bind(host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
