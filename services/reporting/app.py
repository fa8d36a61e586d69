"""Composition root of the reporting service (contract §4): settings, the pool and the use cases
built in the lifespan, middleware, the mapping of the service's errors to problems, the routers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from services.infra.http_metrics import HttpMetricsMiddleware, add_metrics_route
from services.infra.http_problems import Problem, install_problem_handlers, problem_response
from services.infra.security_headers import SecurityHeadersMiddleware
from services.reporting.api_docs import problem_only_openapi
from services.reporting.config import ReportingSettings
from services.reporting.errors import DatabaseUnavailable, InvalidPeriod, UnknownUnit
from services.reporting.queries import IndicatorQueries
from services.reporting.routes import dashboard, health, index766, indicators, reports, snapshots, units
from services.reporting.routes.health import STATIC_DIR
from services.reporting.service import ReportingService, now_utc
from services.reporting.snapshots import SnapshotCache
from services.reporting.stream import StreamHub, StreamSettings, TooManyStreams
from shared.tokens import DEV_READ_TOKEN, TokenRegistry

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Indicators of administrative procedures (TTHC) and e-documents for IOC screens and officers "
    "(contract §4 and §5). Every /v1 read needs `Authorization: Bearer <token>` (development: "
    "`dev-read-token`); /v1/stream also accepts `?access_token=`. Errors are RFC 9457 "
    "`application/problem+json`."
)


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    app = FastAPI(
        title="tthc-pulse reporting",
        version="1.0",
        description=DESCRIPTION,
        lifespan=_lifespan(settings),
        docs_url=None,  # /docs is the offline page (routes/health.py)
        redoc_url=None,
    )
    development = settings.environment == "development"
    app.state.registry = settings.unit_registry()
    app.state.tokens = TokenRegistry.load(
        settings.read_tokens_file, development_token=DEV_READ_TOKEN if development else None
    )
    # The dashboard embeds the well-known development token in development only.
    app.state.page_token = DEV_READ_TOKEN if development else None
    install_problem_handlers(app)
    _map_errors(app, settings)
    app.openapi = problem_only_openapi(app)  # type: ignore[method-assign]
    # The middleware added last is the outermost: security headers go on every answer, timed or not.
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)

    for resource in (units, indicators, index766, snapshots, reports, dashboard):
        app.include_router(resource.router)
    app.mount("/assets", StaticFiles(directory=STATIC_DIR), name="assets")
    app.include_router(health.router)
    add_metrics_route(app)
    return app


def _lifespan(settings: ReportingSettings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Opens the pool and builds the use cases and the stream hub at start-up; closes them at the end."""
    stream_settings = StreamSettings(
        max_streams=settings.max_streams,
        poll_seconds=settings.stream_poll_seconds,
        min_interval_seconds=settings.stream_min_interval_seconds,
        heartbeat_seconds=settings.stream_heartbeat_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings)
        queries = IndicatorQueries(pool)
        cache = SnapshotCache(app.state.registry, queries, now_utc)
        hub = StreamHub(cache, stream_settings)
        app.state.service = ReportingService(queries, cache, hub, now_utc)
        app.state.hub = hub  # __main__ ends the streams on SIGTERM through it
        hub.start()
        # What start-up built lives as long as the process: keep the garbage collector from
        # scanning it again in every full collection (pauses show in the tail latency).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await hub.stop()
            await pool.close()

    return lifespan


async def open_pool(settings: ReportingSettings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=settings.db_pool_size,
        server_settings={
            **settings.session_settings(),
            # asyncpg prepares and caches every statement, and from the sixth execution on
            # PostgreSQL may keep a generic plan until the table's statistics change. On a
            # fresh stack the first reads (the stream poller, the screens) run on empty, never
            # analyzed tables: a plan made for those would serve a whole burst. The reads are
            # small statements with a few parameters, planned each time at a cost not measured
            # separately (docs/operations.md, "Fresh stack").
            "plan_cache_mode": "force_custom_plan",
        },
    )


def _map_errors(app: FastAPI, settings: ReportingSettings) -> None:
    """The service's errors as problem+json; anything else is a logged 500."""

    @app.exception_handler(UnknownUnit)
    async def _unknown_unit(_: Request, exc: UnknownUnit) -> JSONResponse:
        return problem_response(Problem(title="Unknown unit", status=404, detail=f"no unit with code {exc.args[0]!r}"))

    @app.exception_handler(InvalidPeriod)
    async def _invalid_period(_: Request, exc: InvalidPeriod) -> JSONResponse:
        return problem_response(Problem(title="Invalid period", status=422, detail=str(exc)))

    @app.exception_handler(DatabaseUnavailable)
    async def _database_unavailable(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("%s", exc)
        problem = Problem(title="Service unavailable", status=503, detail="database not reachable; retry later")
        return problem_response(problem, {"Retry-After": "2"})

    @app.exception_handler(TooManyStreams)
    async def _too_many_streams(_: Request, exc: TooManyStreams) -> JSONResponse:
        detail = f"this process already serves its maximum of {settings.max_streams} streams; retry later"
        return problem_response(Problem(title="Too many streams", status=503, detail=detail), {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(Problem(title="Internal error", status=500, detail="unexpected error, logged"))
