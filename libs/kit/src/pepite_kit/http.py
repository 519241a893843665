"""HTTP pieces shared by the API and the workers' health/metrics endpoints."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping

import uvicorn
from prometheus_client import CollectorRegistry, make_asgi_app, multiprocess
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pepite_kit.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

HealthCheck = Callable[[], Awaitable[bool]]


class MetricsMiddleware:
    """Count requests and time them by route template (never by raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self._app = app
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(self._service, method, template, str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(self._service, method, template).observe(
                time.perf_counter() - started
            )


async def run_checks(checks: Mapping[str, HealthCheck]) -> tuple[bool, dict[str, str]]:
    """Run named checks; a check that raises counts as failed."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            ok = await check()
        except Exception:
            ok = False
        results[name] = "ok" if ok else "failing"
    return all(value == "ok" for value in results.values()), results


#: Set for processes that serve one port together (several workers of one server):
#: each writes its metrics to files there, and any of them serves the sum of all.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_app() -> ASGIApp:
    """The ``/metrics`` endpoint: this process's metrics, or its sibling workers' too."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return make_asgi_app(registry)
    return make_asgi_app()


def health_app(
    *,
    service: str,
    liveness: Mapping[str, HealthCheck],
    readiness: Mapping[str, HealthCheck],
) -> Starlette:
    """The small app every worker serves: ``/healthz``, ``/readyz`` and ``/metrics``."""

    async def healthz(_: Request) -> JSONResponse:
        ok, checks = await run_checks(liveness)
        body = {"status": "ok" if ok else "failing", "service": service, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def readyz(_: Request) -> JSONResponse:
        ok, checks = await run_checks(readiness)
        body = {"status": "ready" if ok else "not ready", "service": service, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Mount("/metrics", app=metrics_app()),
        ]
    )
    app.add_middleware(MetricsMiddleware, service=service)
    return app


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the service runner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def embedded_server(app: ASGIApp, *, host: str, port: int) -> EmbeddedServer:
    """Serve ``app`` inside the service's own event loop."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    return EmbeddedServer(config)
