"""A small authoritative DNS server (UDP and TCP) on loopback, built on dnspython.

Real DNS on the wire, so that discovery runs its production resolver against it: `spacereg
demo` answers for `*.test` with it, and the tests set records (which may change between
queries, to test DNS rebinding).
"""

from __future__ import annotations

import socketserver
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Answer = list[str] | Callable[[], list[str]]


class DnsServer:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], tuple[int, Answer]] = {}
        self.queries: Counter[tuple[str, str]] = Counter()
        self.port = 0
        self._lock = threading.Lock()

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, name: str, rdtype: str, answer: Answer, ttl: int = 300) -> None:
        with self._lock:
            self.records[(name.lower().rstrip("."), rdtype.upper())] = (ttl, answer)

    def remove(self, name: str, rdtype: str) -> None:
        with self._lock:
            self.records.pop((name.lower().rstrip("."), rdtype.upper()), None)

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries[(name, rdtype)] += 1
            found = self.records.get((name, rdtype))
            name_exists = any(known == name for known, _ in self.records)
        if found is not None:
            ttl, answer = found
            values = answer() if callable(answer) else answer
            if values:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, ttl, "IN", rdtype, values)
                )
        elif not name_exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    @contextmanager
    def running(self, port: int = 0) -> Iterator[DnsServer]:
        """Serve until the block ends, on `port` (UDP and TCP), or on a free one if 0."""
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(server.answer(data), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                (length,) = struct.unpack("!H", self.rfile.read(2))
                reply = server.answer(self.rfile.read(length))
                self.wfile.write(struct.pack("!H", len(reply)) + reply)

        for _attempt in range(1 if port else 50):  # one port number for both UDP and TCP
            tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)
            self.port = tcp.server_address[1]
            try:
                udp = socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp)
                break
            except OSError:
                tcp.server_close()
        else:
            raise OSError(f"DNS: port {port or 'free'} not available for both UDP and TCP")
        threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (udp, tcp)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            for srv in (udp, tcp):
                srv.shutdown()
                srv.server_close()
