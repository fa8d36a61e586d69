"""HTTP entrypoint and composition root of the reporting service (contract §4)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.reporting.config import ReportingSettings
from services.reporting.indicators import Window, resolve_window
from services.reporting.queries import IndicatorQueries
from services.reporting.service import ReportingService, Scope, UnknownUnit
from shared.http_problems import Problem, ProblemError, install_problem_handlers
from shared.tokens import DEV_READ_TOKEN, TokenRegistry

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in {
        401: "Missing or unknown token",
        404: "Unknown unit",
        422: "Malformed date, or `from` after `to`",
        503: "Database unavailable",
    }.items()
}

UnitParam = Annotated[str, Query(description="Unit code, e.g. my-hao", examples=["my-hao"])]
FromParam = Annotated[date | None, Query(alias="from", description="First day (default: 1 January this year)")]
ToParam = Annotated[date | None, Query(alias="to", description="Last day (default: today, Asia/Ho_Chi_Minh)")]


def reporting_service(request: Request) -> ReportingService:
    svc: ReportingService = request.app.state.service
    return svc


Service = Annotated[ReportingService, Depends(reporting_service)]


def now_utc() -> datetime:
    return datetime.now(UTC)


def window_of(start: date | None, end: date | None) -> Window:
    try:
        return resolve_window(start, end, now_utc())
    except ValueError as exc:
        raise ProblemError(422, "Invalid period", str(exc)) from exc


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    tree = settings.unit_tree()
    tokens = TokenRegistry.load(
        settings.read_tokens_file,
        development_token=DEV_READ_TOKEN if settings.environment == "development" else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            settings.database_url.get_secret_value(),
            min_size=1,
            max_size=settings.db_pool_size,
            server_settings={"search_path": settings.database_schema},
        )
        app.state.queries = IndicatorQueries(pool)
        app.state.service = ReportingService(tree, app.state.queries)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="tthc-pulse reporting",
        version="1.0",
        description="Indicators of administrative procedures and e-documents, for IOC screens and officers.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    def require_reader(authorization: Annotated[str | None, Header()] = None) -> None:
        if tokens.authenticate(authorization) is None:
            raise ProblemError(
                401, "Unauthorized", "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_reader)], responses=_ERRORS)

    @v1.get("/units")
    async def units() -> list[dict[str, str | None]]:
        """The unit tree: code, Vietnamese name and parent code of every unit."""
        return tree.as_list()

    @v1.get("/indicators")
    async def indicators(
        svc: Service, unit: UnitParam, start: FromParam = None, end: ToParam = None, scope: Scope = "subtree"
    ) -> dict[str, Any]:
        """Every figure and rate of contract §5 for the unit, its scope and the days [from, to]."""
        try:
            return await svc.indicators(unit, scope, window_of(start, end))
        except UnknownUnit as exc:
            raise _unknown(unit) from exc

    @v1.get("/indicators/breakdown")
    async def breakdown(svc: Service, unit: UnitParam, start: FromParam = None, end: ToParam = None) -> dict[str, Any]:
        """One row per direct child (its subtree), plus the unit itself (scope=self)."""
        try:
            return await svc.breakdown(unit, window_of(start, end))
        except UnknownUnit as exc:
            raise _unknown(unit) from exc

    @v1.get("/snapshot", responses={304: {"description": "Not modified (If-None-Match matched)"}})
    async def snapshot(
        svc: Service, unit: UnitParam, response: Response, if_none_match: Annotated[str | None, Header()] = None
    ) -> Any:
        """Year-to-date indicators with an ETag that changes whenever a figure changes."""
        try:
            snap = await svc.snapshot(unit, now_utc())
        except UnknownUnit as exc:
            raise _unknown(unit) from exc
        headers = {"ETag": snap.etag, "Cache-Control": "no-cache"}
        if if_none_match is not None and snap.etag in [tag.strip() for tag in if_none_match.split(",")]:
            return Response(status_code=304, headers=headers)
        response.headers.update(headers)
        return snap.body

    app.include_router(v1)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": Problem}})
    async def readyz(request: Request) -> dict[str, str]:
        """PostgreSQL is reachable and the schema exists."""
        try:
            await request.app.state.queries.ping()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise ProblemError(503, "Not ready", f"database not reachable: {exc}") from exc
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _unknown(unit: str) -> ProblemError:
    return ProblemError(404, "Unknown unit", f"no unit with code {unit!r}")
