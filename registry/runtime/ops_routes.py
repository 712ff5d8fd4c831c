"""What operators and their tools call: liveness, readiness, and the Prometheus metrics."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import Metric
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from registry.access.principal import Authenticate
from registry.core.errors import Forbidden, Unavailable
from registry.core.responses import JSONResponse
from registry.core.routing import Resource
from registry.runtime.gauges import ReplicaState, read_gauges
from registry.runtime.metrics import Metrics
from registry.runtime.probes import bus_problem, database_problem, provider_problems
from registry.runtime.wiring import Services


class _Scrape:
    """One scrape's metrics, as a collector to render."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


class OpsRoutes:
    def __init__(
        self, services: Services, authenticate: Authenticate, metrics: Metrics, scrape_token: str
    ) -> None:
        self._services = services
        self._authenticate = authenticate
        self._metrics = metrics
        self._scrape_token = scrape_token.encode()

    def routes(self) -> list[BaseRoute]:
        return [
            Resource("/healthz", {"GET": self.healthz}),
            Resource("/readyz", {"GET": self.readyz}),
            Resource("/metrics", {"GET": self.metrics}),
        ]

    async def healthz(self, request: Request) -> Response:
        """Liveness: the process answers; nothing else is checked (a restart would not help)."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Readiness: the database, the bus and every storage provider answer now."""
        services = self._services
        problems = [
            await database_problem(services.engine),
            bus_problem(services.bus),
            *(await provider_problems(services.providers)).values(),
        ]
        found = [problem for problem in problems if problem]
        if found:
            raise Unavailable("not ready: " + "; ".join(found), code="notReady")
        return JSONResponse({"status": "ready"})

    async def metrics(self, request: Request) -> Response:
        await self._admit_scraper(request)
        services = self._services
        instruments, position = self._metrics.scrape(services.hub)
        replica = ReplicaState(position, await provider_problems(services.providers))
        async with services.engine.connect() as conn:
            gauges = await read_gauges(conn, replica, services.clock.now())
        body = generate_latest(_Scrape([*instruments, *gauges]))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def _admit_scraper(self, request: Request) -> None:
        """The scrape token from the settings (compared in constant time), or an admin's."""
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if (
            self._scrape_token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(credential.strip().encode(), self._scrape_token)
        ):
            return
        principal = await self._authenticate(request)
        if not principal.is_admin:
            raise Forbidden("only an administrator or the scrape token reads metrics")
