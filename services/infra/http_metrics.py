"""Request metrics of the HTTP services, and their `/metrics` answer.

`HttpMetricsMiddleware` counts every HTTP request by route template (`/v1/indicators`, never the raw
path, so the label set stays bounded whatever clients send), method and status, and observes its
latency. The metrics are plain prometheus-client objects, so they work unchanged in
prometheus-client's multiprocess mode.

Multiprocess mode (a service with several worker processes, e.g. reporting with
`REPORTING_WORKERS=2`): set `PROMETHEUS_MULTIPROC_DIR` in the environment *before* the process starts
(prometheus-client reads it when it is imported), call `prepare_multiprocess_dir()` in the
supervisor process before the workers start (it creates the folder and removes the files of earlier
runs, which would otherwise add old counts to the new ones), and answer `/metrics` with
`metrics_response()`, which then merges every worker's files into one view. Gauges need a
`multiprocess_mode` (for instance `livesum`), and `Gauge.set_function` does not work there. The
`live*` gauges of a worker that is gone (killed, crashed and restarted by the supervisor) are
dropped at the next scrape, so its last value does not stay in the sum; its counters stay, so
totals never go back.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# The label of requests that matched no route (scanners, typos): one series, whatever the path.
UNMATCHED_ROUTE = "(unmatched)"
# Methods outside this set share one label value, so a client cannot invent label values.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"

REQUESTS = Counter(
    "tthc_http_requests_total",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
)
# From 1 ms (a cached snapshot) to 10 s (a request waiting for Kafka's acknowledgement times out there).
REQUEST_SECONDS = Histogram(
    "tthc_http_request_duration_seconds",
    "Time from the request to the start of its response (the headers), by route template and method",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled the request.

    Starlette's router records it in the scope for most routes; for plain Starlette routes under a
    FastAPI router (such as /openapi.json) it does not, so the application's routes are matched again.
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    for route in getattr(scope.get("app"), "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(route.path)
    return UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request, streaming ones included.

    The latency ends when the response starts (status and headers sent), so a Server-Sent Events
    stream is timed by how long it took to open, not by how long it stayed open.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before starting a response
        elapsed: float | None = None

        async def timed_send(message: Message) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                elapsed = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            method = scope.get("method", "")
            method = method if method in KNOWN_METHODS else OTHER_METHOD
            route = route_template(scope)
            REQUESTS.labels(route=route, method=method, status=str(status)).inc()
            REQUEST_SECONDS.labels(route=route, method=method).observe(
                elapsed if elapsed is not None else time.perf_counter() - started
            )


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_DIR_VARIABLE)
    return Path(value) if value else None


def prepare_multiprocess_dir() -> Path | None:
    """Create the multiprocess folder and remove the metric files of earlier runs.

    Called once by a service's supervisor before its workers start. The files of this very process
    (metrics created while its modules were imported) are kept: they are open and current.
    """
    directory = multiprocess_dir()
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for path in directory.glob("*.db"):
        if not path.name.endswith(own):
            path.unlink(missing_ok=True)
    return directory


_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def forget_dead_processes(directory: Path) -> None:
    """Remove the `live*` gauge files of processes that no longer run (multiprocess mode)."""
    pids = {
        int(match.group(1))
        for path in directory.glob("gauge_live*.db")
        if (match := _LIVE_GAUGE_FILE.fullmatch(path.name))
    }
    for pid in pids:
        if not _alive(pid):
            prometheus_multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def metrics_text() -> bytes:
    """The exposition text: every worker's metrics merged in multiprocess mode, else this process's."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    forget_dead_processes(directory)
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def metrics_response() -> Response:
    """The answer of a `/metrics` route."""
    return Response(metrics_text(), media_type=CONTENT_TYPE_LATEST)


def add_metrics_route(app: FastAPI, path: str = "/metrics") -> None:
    """A `/metrics` route answering the exposition text, described as such in the OpenAPI."""

    @app.get(
        path,
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        """Prometheus metrics in the text exposition format (one consistent view across workers)."""
        return metrics_response()
