"""Benchmark change notifications: WebDAV PUT to SSE latency, SSE fan-out, memory per idle SSE
connection, and webhook outbox throughput, against the registry run as its own process.

Starts `python -m registry --data-dir <tmp> serve` on a free loopback port (SQLite, embedded
IdP), creates one project space as admin (its manager) and measures, in one run, one module
each:

1. put_sse.py, PUT->SSE: sequential WebDAV PUTs of a small file on one keep-alive connection;
   for each, the time from sending the PUT until an SSE client gets the `content` event naming
   its path.
2. fanout.py: N idle SSE subscribers (raw asyncio protocol clients, opened in batches), then
   one rename of the space; the time until every subscriber has the `renamed` event.
3. memory.py: the server's RSS (and PSS) before and after opening the largest N, divided by N;
   and a fresh registry's RSS per idle TCP connection that sent nothing, as a baseline.
4. outbox.py: a webhook receiver in this process (tests/receivers.py) subscribed to the space;
   K renames from several concurrent clients; deliveries/s, and the time from the last change
   to the last delivery; then the rate at which a held-up backlog drains.
5. health.py: `/healthz` requests/s, as a yardstick.

server.py runs the registry (tests.processes.RegistryProcess) and reads /proc about it,
report.py prints the figures. Run from the repository's root:

    .venv/bin/python -m bench.notify [--quick] [--writes 500] [--fanout 1000,10000]
                                     [--changes 2000] [--writers 8] [--health-s 3]

Prints figures and PASS/MISS against the targets; it does not fail.
"""
