"""HTTP entrypoint and composition root of the reporting service (contract §4)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import Field
from starlette.requests import HTTPConnection

from services.infra.http_metrics import HttpMetricsMiddleware, add_metrics_route
from services.infra.http_problems import Problem, ProblemError, install_problem_handlers, problem_response
from services.infra.security_headers import SecurityHeadersMiddleware, script_hash
from services.reporting import telemetry
from services.reporting.api_docs import (
    REPORT_EXCERPT,
    breakdown_example,
    errors,
    index766_example,
    monthly_example,
    ok,
    problem_example,
    problem_only_openapi,
)
from services.reporting.config import ReportingSettings
from services.reporting.dashboard import render_dashboard
from services.reporting.indicators import year_window
from services.reporting.queries import IndicatorQueries
from services.reporting.report import HTML_STYLE, to_html, to_markdown
from services.reporting.report_docx import DOCX_MEDIA_TYPE, to_docx
from services.reporting.schemas import (
    MY_HAO_EXAMPLE,
    Breakdown,
    Index766Body,
    Indicators,
    Monthly,
    UnitOut,
)
from services.reporting.service import InvalidPeriod, ReportingService, UnknownUnit, current_year, now_utc
from services.reporting.service import Scope as UnitScope
from services.reporting.sse import EventStreamResponse
from services.reporting.stream import StreamHub, StreamSettings, TooManyStreams
from services.reporting.versioning import if_none_match_matches
from shared.events import EARLIEST_INSTANT, LATEST_INSTANT
from shared.tokens import DEV_READ_TOKEN, TokenRegistry

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# The HTML report: a document of its own, with nothing to run and its one inline style allowed by
# hash (a hash source serves a <style> as it serves a <script>). The dashboard and /docs load
# everything from /assets and get the middleware's HTML policy.
REPORT_HTML_POLICY = (
    f"default-src 'none'; style-src {script_hash(HTML_STYLE)}; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_STRING = {"schema": {"type": "string"}}


UnitParam = Annotated[str, Query(description="Unit code", examples=["my-hao"])]
# Contract §4: days outside 1970-01-01..2999-12-31 are 422 naming the parameter. No fact lies
# outside them (the intake refuses such timestamps), and every window inside them can be computed
# (the end of 9999-12-31 could not: the next day does not exist).
EARLIEST_DAY, LATEST_DAY = EARLIEST_INSTANT.date(), LATEST_INSTANT.date()  # in Vietnam's time
Day = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]
FromParam = Annotated[
    Day | None, Query(alias="from", description="First day, 1970-01-01..2999-12-31 (default: 1 January this year)")
]
ToParam = Annotated[
    Day | None, Query(alias="to", description="Last day, 1970-01-01..2999-12-31 (default: today, Asia/Ho_Chi_Minh)")
]
YearParam = Annotated[
    int | None,
    Query(
        ge=EARLIEST_DAY.year,
        le=LATEST_DAY.year,
        description="Calendar year, 1970..2999 (default: the current year)",
        examples=[2023],
    ),
]
ScopeParam = Annotated[
    UnitScope, Query(description="`subtree`: the unit and all its descendants; `self`: the unit only")
]

_bearer = HTTPBearer(auto_error=False, description="Reader token: `Authorization: Bearer <token>`")
_query_token = APIKeyQuery(
    name="access_token",
    auto_error=False,
    description="Reader token in the query, for EventSource (which cannot set headers); /v1/stream only",
)


# Dependencies are coroutines: FastAPI runs plain functions in a thread pool, a thread hop per
# dependency and request that costs more than the snapshot itself.
async def reporting_service(request: Request) -> ReportingService:
    svc: ReportingService = request.app.state.service
    return svc


async def stream_hub(request: Request) -> StreamHub:
    hub: StreamHub = request.app.state.hub
    return hub


Service = Annotated[ReportingService, Depends(reporting_service)]
Hub = Annotated[StreamHub, Depends(stream_hub)]


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    tree = settings.unit_tree()
    development = settings.environment == "development"
    tokens = TokenRegistry.load(settings.read_tokens_file, development_token=DEV_READ_TOKEN if development else None)
    stream_settings = StreamSettings(
        max_streams=settings.max_streams,
        poll_seconds=settings.stream_poll_seconds,
        min_interval_seconds=settings.stream_min_interval_seconds,
        heartbeat_seconds=settings.stream_heartbeat_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
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
        app.state.queries = IndicatorQueries(pool)
        app.state.service = ReportingService(tree, app.state.queries)
        app.state.hub = StreamHub(app.state.service.snapshots, stream_settings)
        app.state.hub.start()
        # What start-up built lives as long as the process: keep the garbage collector from
        # scanning it again in every full collection (pauses show in the tail latency).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.hub.stop()
            await pool.close()

    app = FastAPI(
        title="tthc-pulse reporting",
        version="1.0",
        description=(
            "Indicators of administrative procedures (TTHC) and e-documents for IOC screens and officers "
            "(contract §4 and §5). Every /v1 read needs `Authorization: Bearer <token>` (development: "
            "`dev-read-token`); /v1/stream also accepts `?access_token=`. Errors are RFC 9457 "
            "`application/problem+json`."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.openapi = problem_only_openapi(app)  # type: ignore[method-assign]
    # The middleware added last is the outermost: security headers go on every answer, timed or not.
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)

    @app.exception_handler(UnknownUnit)
    async def _unknown_unit(_: Request, exc: UnknownUnit) -> JSONResponse:
        return problem_response(Problem(title="Unknown unit", status=404, detail=f"no unit with code {exc.args[0]!r}"))

    @app.exception_handler(InvalidPeriod)
    async def _invalid_period(_: Request, exc: InvalidPeriod) -> JSONResponse:
        return problem_response(Problem(title="Invalid period", status=422, detail=str(exc)))

    @app.exception_handler(OSError)
    @app.exception_handler(TimeoutError)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.CannotConnectNowError)
    @app.exception_handler(asyncpg.UndefinedTableError)
    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        problem = Problem(title="Service unavailable", status=503, detail="database not reachable; retry later")
        return problem_response(problem, {"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(Problem(title="Internal error", status=500, detail="unexpected error, logged"))

    @app.exception_handler(TooManyStreams)
    async def _too_many_streams(_: Request, exc: TooManyStreams) -> JSONResponse:
        detail = f"this process already serves its maximum of {settings.max_streams} streams; retry later"
        return problem_response(Problem(title="Too many streams", status=503, detail=detail), {"Retry-After": "5"})

    def authenticate(authorization: str | None) -> None:
        if tokens.authenticate(authorization) is None:
            raise ProblemError(
                401, "Unauthorized", "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    class ReaderToken(HTTPBearer):
        """The bearer scheme (documented in OpenAPI) that also checks the token: one dependency level."""

        async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
            authenticate(request.headers.get("authorization"))
            return None

    require_reader = ReaderToken(auto_error=False, scheme_name="HTTPBearer", description=_bearer.model.description)

    async def require_stream_reader(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        access_token: Annotated[str | None, Depends(_query_token)],
    ) -> None:
        token = credentials.credentials if credentials else access_token
        authenticate(f"Bearer {token}" if token else None)

    v1 = APIRouter(prefix="/v1", responses=errors(401, 503))
    reader = [Depends(require_reader)]

    @v1.get("/units", dependencies=reader, response_model=list[UnitOut], summary="The unit tree")
    async def units() -> list[dict[str, str | None]]:
        """Code, Vietnamese name and parent code of every unit (the tree configured by UNITS_FILE)."""
        return tree.as_list()

    @v1.get(
        "/indicators",
        dependencies=reader,
        response_model=None,
        summary="Indicators of a unit over a window",
        responses={**ok(Indicators, MY_HAO_EXAMPLE), **errors(404, 422)},
    )
    async def indicators(
        svc: Service, unit: UnitParam, start: FromParam = None, end: ToParam = None, scope: ScopeParam = "subtree"
    ) -> dict[str, Any]:
        """Every figure and rate of contract §5 for the unit, its scope and the days [from, to].

        `as_of` is the end of day `to`, or now if that is earlier; in-progress and procedure figures
        are "at as_of", the others count facts whose day lies in the window.
        """
        return await svc.indicators(unit, scope, svc.window(start, end))

    @v1.get(
        "/indicators/breakdown",
        dependencies=reader,
        response_model=None,
        summary="Indicators by direct child unit",
        responses={**ok(Breakdown, breakdown_example()), **errors(404, 422)},
    )
    async def breakdown(svc: Service, unit: UnitParam, start: FromParam = None, end: ToParam = None) -> dict[str, Any]:
        """One row per direct child (its whole subtree), plus a row for the unit itself (scope=self)."""
        return await svc.breakdown(unit, svc.window(start, end))

    @v1.get(
        "/index766",
        dependencies=reader,
        response_model=None,
        summary="The Decision 766 index of a unit over a window",
        responses={**ok(Index766Body, index766_example()), **errors(404, 422)},
    )
    async def index766(svc: Service, unit: UnitParam, start: FromParam = None, end: ToParam = None) -> dict[str, Any]:
        """The components of Decision 766/QĐ-TTg with their numerators and denominators (contract §5.1).

        Over the unit's subtree, for the days [from, to] and `as_of` as for /v1/indicators. Components
        without an input have `computed: false`; `score` sums the computed ones and
        `computable_points` their points; `ranking` orders the unit's direct children by score.
        """
        return await svc.index766(unit, svc.window(start, end))

    @v1.get(
        "/indicators/monthly",
        dependencies=reader,
        response_model=None,
        summary="Monthly trend of a year",
        responses={**ok(Monthly, monthly_example()), **errors(404, 422)},
    )
    async def monthly(
        svc: Service, unit: UnitParam, year: YearParam = None, scope: ScopeParam = "subtree"
    ) -> dict[str, Any]:
        """Window figures (received, resolved, …, documents) of each month of the year, from the daily counts.

        Months after today have null figures. Point-in-time figures (in progress, procedures) are
        not monthly figures and are absent.
        """
        return await svc.monthly(unit, scope, year or current_year())

    @v1.get(
        "/snapshot",
        dependencies=reader,
        response_model=None,
        summary="Year-to-date indicators with a strong ETag",
        responses={
            **ok(
                Indicators,
                {**MY_HAO_EXAMPLE, "scope": "subtree", "to": "2023-12-31", "as_of": "2023-12-31T23:59:59.999999+07:00"},
                headers={
                    "ETag": {"description": "Strong validator of the period and figures", **_STRING},
                    "Cache-Control": {"description": "`private, no-cache`: revalidate every time", **_STRING},
                },
            ),
            304: {"description": "Not modified: `If-None-Match` holds the current ETag (no body)"},
            **errors(404, 422),
        },
    )
    async def snapshot(
        svc: Service,
        unit: UnitParam,
        year: YearParam = None,
        if_none_match: Annotated[str | None, Header(description="ETag(s) the client holds")] = None,
    ) -> Response:
        """The indicators of the unit's subtree from 1 January of `year` to today (or 31 December).

        The ETag changes exactly when a figure or the period changes, including when time alone
        turns an in-progress dossier overdue; `as_of` and `freshness` say when the figures were
        computed and are not covered by it (one ETag, one body). Send `If-None-Match` for a `304`.
        """
        snap = await svc.snapshot(unit, year)
        headers = {"ETag": snap.etag, "Cache-Control": "private, no-cache"}
        if if_none_match_matches(if_none_match, snap.etag):
            telemetry.SNAPSHOTS.labels("not_modified").inc()
            return Response(status_code=304, headers=headers)
        telemetry.SNAPSHOTS.labels("full").inc()
        return Response(content=snap.json, media_type="application/json", headers=headers)

    @v1.get(
        "/stream",
        dependencies=[Depends(require_stream_reader)],
        response_model=None,
        response_class=EventStreamResponse,
        status_code=200,
        summary="Live snapshots (Server-Sent Events)",
        responses={
            200: {
                "description": "An endless `text/event-stream`",
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        "example": 'retry: 2000\n\nid: 3f1c…\nevent: snapshot\ndata: {"unit":"my-hao",…}\n\n'
                        ": keep-alive\n\n",
                    }
                },
            },
            **errors(404, 422),
            503: {
                "model": Problem,
                "description": "Too many open streams on this process (see Retry-After), or database unavailable",
                "content": {
                    "application/problem+json": {
                        "example": problem_example(
                            503, "Too many streams", "this process already serves its maximum of 2000 streams"
                        )
                    }
                },
            },
        },
    )
    async def stream(
        svc: Service,
        hub: Hub,
        unit: UnitParam,
        year: YearParam = None,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", description="Sent by EventSource when it reconnects")
        ] = None,
    ) -> EventStreamResponse:
        """`event: snapshot` messages carrying the body of GET /v1/snapshot, whenever it changes.

        The `id` of a message is its snapshot's ETag without quotes. The current snapshot is sent at
        once, unless `Last-Event-ID` equals it: then the next message comes with the next change.
        Changes are pushed at most once a second per unit, within a second of being applied.
        Comment lines (`: keep-alive`) come every 15 s. The token may be given as `?access_token=`
        because EventSource cannot set headers.
        """
        snap = await svc.snapshot(unit, year)
        hub.acquire()
        return EventStreamResponse(hub.subscribe(snap, last_event_id), hub.release)

    @v1.get(
        "/reports/annual",
        dependencies=reader,
        response_model=None,
        summary="The annual report sections in Vietnamese",
        responses={
            200: {
                "description": "Sections 4.1, 4.4 and 9 of the annual report",
                "content": {
                    "text/markdown": {"schema": {"type": "string"}, "example": REPORT_EXCERPT},
                    "text/html": {"schema": {"type": "string"}},
                    DOCX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                },
            },
            **errors(404, 422),
        },
    )
    async def annual_report(
        svc: Service,
        unit: UnitParam,
        year: YearParam = None,
        end: Annotated[
            Day | None, Query(alias="to", description="Last day, in `year` (default: 31 December or today)")
        ] = None,
        format: Annotated[Literal["md", "html", "docx"], Query(description="Output format")] = "md",
        scope: Annotated[
            UnitScope, Query(description="Scope of sections 4.1 and 4.4 (default `self`, like the town's own figures)")
        ] = "self",
    ) -> Response:
        """E-documents (4.1), procedures and dossiers (4.4) and the table by child unit (9), in Vietnamese.

        Figures in Vietnamese format (1.763; 81,1%), from the same queries as /v1/indicators and
        /v1/indicators/breakdown. `docx` comes as an attachment.
        """
        report = await svc.annual_report(unit, year or current_year(), end, scope)
        if format == "docx":
            return Response(
                to_docx(report),
                media_type=DOCX_MEDIA_TYPE,
                headers={"Content-Disposition": f'attachment; filename="{report.filename_stem}.docx"'},
            )
        if format == "html":
            return HTMLResponse(to_html(report), headers={"Content-Security-Policy": REPORT_HTML_POLICY})
        return Response(to_markdown(report), media_type="text/markdown; charset=utf-8")

    app.include_router(v1)

    @app.get(
        "/dashboard",
        response_class=HTMLResponse,
        summary="The IOC screen (Vietnamese), live",
        responses={
            200: {"description": "The page; its figures come from /v1 with the reader token"},
            **errors(404, 422),
        },
    )
    async def dashboard(svc: Service, unit: UnitParam, year: YearParam = None) -> HTMLResponse:
        """The IOC page for a unit and year: headline figures, table and charts by child unit, monthly trend.

        It updates itself from /v1/stream. The page holds no figures, so it is public; it reads the
        API with `?access_token=` from its own URL or, in development, with the development token.
        Every asset is served by this service (no external network).
        """
        year = year or current_year()
        svc.snapshots.check(unit, year)
        page = render_dashboard(
            unit=unit,
            unit_name=tree.units[unit].name,
            year=year,
            current_year=current_year(),
            window=year_window(year, now_utc()),
            token=DEV_READ_TOKEN if development else None,
        )
        # Everything from this origin only (the middleware's policy): the page works without any
        # external network.
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    app.mount("/assets", StaticFiles(directory=STATIC_DIR), name="assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", summary="PostgreSQL is reachable", responses=errors(503))
    async def readyz(request: Request) -> dict[str, str]:
        """PostgreSQL is reachable and the schema exists."""
        try:
            await request.app.state.queries.ping()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise ProblemError(503, "Not ready", f"database not reachable: {exc}") from exc
        return {"status": "ready"}

    add_metrics_route(app)

    return app
