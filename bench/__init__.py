"""Benchmarks. They print figures and PASS/MISS against targets; they do not fail.

.venv/bin/python bench/drives.py        `GET /graph/v1.0/me/drives` at growing sizes
.venv/bin/python bench/discovery.py     federation discovery, serving and client
.venv/bin/python -m bench.notify        change notifications: SSE, fan-out, outbox
.venv/bin/python bench/shares.py        cross-domain shares: share to pending, gateway reads
"""
