"""Benchmark of signed server-to-server requests (`federation/signing.py`, `verification.py`).

Prints, in one run, the requests/s of a small POST to an endpoint that verifies its RFC 9421
signature against the same POST sent unsigned to the same endpoint (which then answers without
a signer; target ratio >= 0.7), per wall-clock second and per second of the server's CPU (which
other load on the machine does not skew), as medians of paired rounds, over plain HTTP (no TLS
cost to hide the signature's) and over HTTPS (as peers talk); then the in-process cost of
signing and of verifying one request (µs, p50 and p99) and of the Ed25519 verification alone,
which bounds the ratio whatever the code around it does.

The server is its own process (uvicorn on 127.0.0.1). Signed requests are signed before each
round, each once (the replay check refuses a second use), and sent by the keep-alive generator
of `bench/common/load.py`.

    .venv/bin/python bench/signatures.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.load import HOST, install_uvloop, load, pct
from bench.discovery import cpu_seconds, wait_for_port
from federation.incoming import IncomingRequest
from federation.keys import SigningKeys
from federation.peer_keys import StaticKeys, public_keys_from_jwks
from federation.replay import MemoryReplayCache
from federation.signing import sign_request
from federation.verification import RequestVerifier
from registry.runtime.demo_ca import CertFiles, make_certs
from tests.federation.tls_servers import TEST_NAMES
from tests.servers import free_port

PATH = "/ocm/notifications"
BODY = b'{"notificationType":"SHARE_ACCEPTED","resourceType":"file","providerId":"7c08"}'
CONNECTIONS = 8
Tls = tuple[ssl.SSLContext, str] | None


def serve_forever(port: int, keys_dir: str, certs: CertFiles | None) -> None:
    """Child process: the endpoint, verifying with the sender's published keys."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from federation.errors import SignatureError, SignatureMissing

    jwks = SigningKeys.load_or_create(Path(keys_dir)).jwks()
    keys = StaticKeys(public_keys_from_jwks(jwks, "bench", peer="sender").values())
    verifier = RequestVerifier(MemoryReplayCache())
    base_url = f"{'https' if certs else 'http'}://{HOST}:{port}"

    async def notifications(request: Request) -> Response:
        incoming = IncomingRequest.from_scope(request.scope, base_url, await request.body())
        try:
            signer = (await verifier.verify(incoming, keys)).peer
        except SignatureMissing:
            signer = None
        except SignatureError as exc:
            return JSONResponse({"error": exc.code}, status_code=401)
        return JSONResponse({"signer": signer})

    app = Starlette(routes=[Route(PATH, notifications, methods=["POST"])])
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        log_level="error",
        access_log=False,
        lifespan="off",
        ssl_certfile=certs.cert_file if certs else None,
        ssl_keyfile=certs.key_file if certs else None,
    )


def build(port: int, scheme: str = "http") -> httpx2.Request:
    headers = {"Content-Type": "application/json"}
    url = f"{scheme}://{HOST}:{port}{PATH}"
    return httpx2.Request("POST", url, headers=headers, content=BODY)


def wire(request: httpx2.Request) -> bytes:
    """The HTTP/1.1 bytes of a built request."""
    lines = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.multi_items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.content


def presigned(port: int, scheme: str, keys: SigningKeys, count: int) -> Callable[[], bytes]:
    requests = []
    for _ in range(count):
        request = build(port, scheme)
        sign_request(request, keys)
        requests.append(wire(request))
    return iter(requests).__next__


async def round_of(
    port: int, pid: int, request: bytes | Callable[[], bytes], count: int, tls: Tls
) -> tuple[float, float]:
    """(requests per wall-clock second, per second of server CPU)."""
    cpu_before = cpu_seconds(pid)
    result = await load(port, request, CONNECTIONS, 600.0, count, tls)
    if result.errors:
        raise RuntimeError(f"{result.errors} requests were refused")
    cpu = cpu_seconds(pid) - cpu_before
    return result.rps, len(result.latencies_ms) / max(cpu, 1e-9)


async def throughput(
    port: int, pid: int, keys: SigningKeys, count: int, rounds: int, tls: Tls
) -> float:
    """Prints the figures; returns the unsigned request's server CPU time (µs)."""
    scheme = "https" if tls else "http"
    verify: ssl.SSLContext | bool = tls[0] if tls else False
    async with httpx2.AsyncClient(verify=verify, trust_env=False) as client:  # it does verify
        request = build(port, scheme)
        sign_request(request, keys)
        assert (await client.send(request)).json() == {"signer": "sender"}
        assert (await client.send(build(port, scheme))).json() == {"signer": None}
    unsigned = wire(build(port, scheme))
    await round_of(port, pid, unsigned, 500, tls)  # warm up
    await round_of(port, pid, presigned(port, scheme, keys, 500), 500, tls)
    plain, signed = [], []
    for _ in range(rounds):  # paired and alternating, so other load hits both alike
        plain.append(await round_of(port, pid, unsigned, count, tls))
        signed.append(await round_of(port, pid, presigned(port, scheme, keys, count), count, tls))
    print(f"over {'HTTPS' if tls else 'plain HTTP'}:")
    for name, runs in (("unsigned", plain), ("signed", signed)):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(
            f"  {name:<9}: {wall:7.0f} requests/s wall clock, {cpu:7.0f} per server CPU second "
            f"({1e6 / cpu:4.0f} µs of server CPU a request)"
        )
    wall_ratio = statistics.median(s[0] / p[0] for s, p in zip(signed, plain, strict=True))
    cpu_ratio = statistics.median(s[1] / p[1] for s, p in zip(signed, plain, strict=True))
    print(
        f"  ratio signed/unsigned: {wall_ratio:.2f} wall clock, {cpu_ratio:.2f} per server CPU "
        f"second (medians of {rounds} paired rounds of {count}; target >= 0.7)"
    )
    return 1e6 / statistics.median(r[1] for r in plain)


async def costs(keys: SigningKeys, count: int, unsigned_us: float) -> None:
    """Sign and verify in this process, timing each."""
    published = StaticKeys(public_keys_from_jwks(keys.jwks(), "bench").values())
    verifier = RequestVerifier(MemoryReplayCache())
    sign_us, verify_us = [], []
    for _ in range(count):
        request = build(8000)
        started = time.perf_counter()
        sign_request(request, keys)
        signed = time.perf_counter()
        incoming = IncomingRequest(
            "POST", str(request.url), tuple(request.headers.multi_items()), request.content
        )
        await verifier.verify(incoming, published)
        sign_us.append((signed - started) * 1e6)
        verify_us.append((time.perf_counter() - signed) * 1e6)
    both = [s + v for s, v in zip(sign_us, verify_us, strict=True)]
    print("in process:")
    for name, values in (("sign", sign_us), ("verify", verify_us), ("sign+verify", both)):
        print(f"  {name:<12}: p50 {pct(values, 50):6.0f} µs, p99 {pct(values, 99):6.0f} µs")
    public = keys.active.private_key.public_key()
    signature = keys.active.private_key.sign(BODY)
    started_cpu = time.process_time()  # CPU time, as the server's figures: load skews less
    for _ in range(count):
        public.verify(signature, BODY)
    ed25519_us = (time.process_time() - started_cpu) / count * 1e6
    print(
        f"  Ed25519 verification alone: {ed25519_us:.0f} µs of CPU; with nothing else added to "
        f"the unsigned request's {unsigned_us:.0f} µs of server CPU (plain HTTP), the ratio per "
        f"server CPU second could be at most {unsigned_us / (unsigned_us + ed25519_us):.2f}"
    )


async def measured(
    keys_dir: str, keys: SigningKeys, certs: CertFiles | None, count: int, rounds: int
) -> float:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=serve_forever, args=(port, keys_dir, certs)
    )
    server.start()
    try:
        wait_for_port(port)
        assert server.pid is not None  # set by start()
        tls = (ssl.create_default_context(cafile=certs.ca_file), HOST) if certs else None
        return await throughput(port, server.pid, keys, count, rounds, tls)
    finally:
        server.terminate()
        server.join()


async def main(count: int, rounds: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="spacereg-bench-signatures-"))
    keys = SigningKeys.load_or_create(workdir / "keys")
    unsigned_us = await measured(str(workdir / "keys"), keys, None, count, rounds)
    await measured(str(workdir / "keys"), keys, make_certs(workdir, TEST_NAMES), count, rounds)
    await costs(keys, 3000, unsigned_us)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds")
    args = parser.parse_args()
    install_uvloop()
    asyncio.run(main(args.requests, args.rounds))
