"""Benchmark of discovery serving and client, on loopback over TLS.

Prints WebFinger requests/s next to the same server's trivial JSON endpoint (target ratio >= 0.8),
cold discovery latency (DNS + WebFinger + metadata + OpenID configuration + JWKS over fresh TLS
connections; target < 50 ms) and warm (cached) discovery latency (target < 1 ms).

The server runs in its own process (uvicorn, TLS, test CA); the load generator is a small
keep-alive HTTP/1.1 client on raw asyncio streams so that it costs less than the server.
Run: .venv/bin/python bench/discovery.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from federation.config import DiscoveryConfig  # noqa: E402
from federation.discovery import Discovery  # noqa: E402
from registry.runtime.demo_ca import CertFiles, make_certs  # noqa: E402
from tests.federation.dnsserver import DnsServer  # noqa: E402
from tests.federation.tls_servers import TEST_NAMES  # noqa: E402
from tests.servers import free_port  # noqa: E402

HOST = "registry.paris.test"
ROUNDS = 7
WEBFINGER = "/.well-known/webfinger?resource=acct%3Amarie%40paris.test"


def serve_forever(certs: CertFiles, port: int, data_dir: str) -> None:
    """Child process: one registry's federation routes behind uvicorn with TLS."""
    import uvicorn

    from federation.instance import LocalInstance
    from federation.keys import SigningKeys
    from tests.federation.tls_servers import Directory, Knobs, build_app

    base = f"https://{HOST}:{port}"
    instance = LocalInstance("paris.test", base, (base + "/idp",), "bench")
    keys = SigningKeys.load_or_create(Path(data_dir))
    app = build_app(instance, Directory({"marie"}), keys, Knobs(), "paris")
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        access_log=False,
        lifespan="off",
        ssl_certfile=certs.cert_file,
        ssl_keyfile=certs.key_file,
    )


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("benchmark server did not start")


async def _worker(port: int, context: ssl.SSLContext, path: str, count: int) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=HOST
    )
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: */*\r\n\r\n".encode()
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected answer: {head[:40]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), immune to other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def requests_per_second(
    port: int, context: ssl.SSLContext, path: str, total: int, pid: int, connections: int = 8
) -> tuple[float, float]:
    """(requests per wall-clock second, requests per second of server CPU)."""
    per = total // connections
    cpu_before, started = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(_worker(port, context, path, per) for _ in range(connections)))
    wall, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    return per * connections / wall, per * connections / max(cpu, 1e-9)


async def main(total: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="spacereg-bench-"))
    certs = make_certs(workdir, TEST_NAMES)
    port = free_port()
    spawn = multiprocessing.get_context("spawn")
    server = spawn.Process(target=serve_forever, args=(certs, port, str(workdir / "keys")))
    server.start()
    try:
        wait_for_port(port)
        assert server.pid is not None  # set by start()
        with DnsServer().running() as dns:
            dns.add("_spacereg._tcp.paris.test", "SRV", [f"10 5 {port} {HOST}."])
            dns.add(HOST, "A", ["127.0.0.1"])
            await run(port, certs, dns, total, server.pid)
    finally:
        server.terminate()
        server.join()


async def run(port: int, certs: CertFiles, dns: DnsServer, total: int, pid: int) -> None:
    context = ssl.create_default_context(cafile=certs.ca_file)
    for path in ("/ping", WEBFINGER):  # warm up both paths
        await requests_per_second(port, context, path, 400, pid)
    trivial, webfinger = [], []
    for _ in range(ROUNDS):  # alternate, so load from elsewhere on the machine hits both alike
        trivial.append(await requests_per_second(port, context, "/ping", total, pid))
        webfinger.append(await requests_per_second(port, context, WEBFINGER, total, pid))
    for name, runs in (("trivial JSON endpoint", trivial), ("WebFinger", webfinger)):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{name:<22}: {wall:8.0f} requests/s wall clock, {cpu:8.0f} per server CPU second")
    wall_ratio = statistics.median(w[0] / t[0] for w, t in zip(webfinger, trivial, strict=True))
    cpu_ratio = statistics.median(w[1] / t[1] for w, t in zip(webfinger, trivial, strict=True))
    print(
        f"ratio WebFinger/trivial: {wall_ratio:.2f} wall clock, {cpu_ratio:.2f} per server CPU "
        f"second (medians of {ROUNDS} paired rounds; target >= 0.8)"
    )

    config = DiscoveryConfig(
        dns_nameservers=(dns.nameserver,),
        allow_private_networks=("127.0.0.1/32",),
        ca_file=certs.ca_file,
    )
    cold: list[float] = []
    for _ in range(30):
        async with Discovery(config) as client:
            started = time.perf_counter()
            await client.discover("marie@paris.test")
            cold.append(time.perf_counter() - started)
    async with Discovery(config) as client:
        await client.discover("marie@paris.test")
        warm: list[float] = []
        for _ in range(5000):
            started = time.perf_counter()
            await client.discover("marie@paris.test")
            warm.append(time.perf_counter() - started)
    cold_ms = [c * 1000 for c in cold]
    warm_ms = [w * 1000 for w in warm]
    print(
        f"cold discovery        : median {statistics.median(cold_ms):6.2f} ms, "
        f"p95 {sorted(cold_ms)[int(len(cold_ms) * 0.95)]:6.2f} ms  (target < 50 ms)"
    )
    print(
        f"warm discovery        : median {statistics.median(warm_ms):6.3f} ms, "
        f"p99 {sorted(warm_ms)[int(len(warm_ms) * 0.99)]:6.3f} ms  (target < 1 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000, help="requests per round")
    asyncio.run(main(parser.parse_args().requests))
