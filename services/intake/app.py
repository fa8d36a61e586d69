"""HTTP entrypoint and composition root of the intake (contract §3)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from services.infra.http_metrics import HttpMetricsMiddleware, add_metrics_route
from services.infra.http_problems import Problem, ProblemError, install_problem_handlers
from services.infra.kafka_admin import ensure_topics
from services.infra.security_headers import SecurityHeadersMiddleware
from services.intake import telemetry
from services.intake.api_docs import docs_page, events_request_body, install_openapi
from services.intake.config import IntakeSettings
from services.intake.dvcqg_route import dvcqg_router
from services.intake.handling import IntakeContext, authorize, publish, read_limited, require_grant
from services.intake.publisher import EventPublisher
from services.intake.validation import check_content_mode, check_media_type, parse_events
from shared.tokens import DEV_INTAKE_TOKEN, TokenRegistry
from shared.units import UnitRegistry

log = logging.getLogger(__name__)


class Accepted(BaseModel):
    accepted: int


_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in {
        400: "Malformed JSON",
        401: "Missing or unknown token",
        403: "Token not allowed for an event's source or unit",
        413: "More than 1,000 events or 1 MiB",
        415: "Unsupported content type, or CloudEvents binary content mode (structured mode only)",
        422: "Invalid events: nothing was published; `errors` names each problem",
        503: "Kafka cannot take the events now; nothing acknowledged (see Retry-After)",
    }.items()
}


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    registry: UnitRegistry = settings.unit_registry()
    tokens = TokenRegistry.load(
        settings.tokens_file,
        development_token=DEV_INTAKE_TOKEN if settings.environment == "development" else None,
    )
    publisher = EventPublisher(
        settings.kafka_bootstrap_servers, settings.events_topic, settings.publish_timeout_seconds
    )
    context = IntakeContext(settings, registry, tokens, publisher)

    app = FastAPI(
        title="tthc-pulse intake",
        version="1.0",
        description="Receives CloudEvents from one-stop and document-management systems and publishes "
        "them to Kafka. A 202 is sent only once Kafka has every event of the request.",
        lifespan=_lifespan(settings, publisher),
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    install_openapi(app, settings.max_events_per_request)
    # The middleware added last is the outermost: security headers go on every answer, timed or not.
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses=_ERRORS,
        openapi_extra={"requestBody": events_request_body(settings.max_events_per_request)},
    )
    async def post_events(request: Request, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        """Accept one CloudEvent or a JSON array of at most 1,000 (1 MiB per request)."""
        accepted = await _accept(request, authorization)
        telemetry.EVENTS_ACCEPTED.inc(accepted)
        return JSONResponse({"accepted": accepted}, status_code=202)

    async def _accept(request: Request, authorization: str | None) -> int:
        grant = require_grant(tokens, authorization)
        check_content_mode(request.headers)
        check_media_type(request.headers.get("content-type"))
        body = await read_limited(request, settings.max_request_bytes)
        events = parse_events(
            body,
            request.headers.get("content-type"),
            registry,
            datetime.now(UTC),
            settings.max_events_per_request,
        )
        authorize(grant, events, registry)
        await publish(context, events)
        return len(events)

    app.include_router(dvcqg_router(context))
    _add_operational_routes(app, settings, publisher)
    return app


def _lifespan(
    settings: IntakeSettings, publisher: EventPublisher
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start: the topics, if Kafka answers (else only logged: `/readyz` tells). Stop: the publisher."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await ensure_topics(
                settings.kafka_bootstrap_servers,
                {settings.events_topic: settings.events_partitions, settings.dead_letter_topic: 1},
                replication_factor=settings.kafka_replication_factor,
                min_insync_replicas=settings.kafka_min_insync_replicas,
            )
        except Exception as exc:
            log.warning("could not ensure Kafka topics at start: %s", exc)
        try:
            yield
        finally:
            await publisher.close()

    return lifespan


def _add_operational_routes(app: FastAPI, settings: IntakeSettings, publisher: EventPublisher) -> None:
    """Health, readiness, metrics and the API documentation page."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": Problem}})
    async def readyz() -> dict[str, str]:
        """Kafka is reachable."""
        if not await publisher.is_reachable():
            raise ProblemError(
                503,
                "Not ready",
                "Kafka is not reachable",
                headers={"Retry-After": str(settings.retry_after_seconds)},
            )
        return {"status": "ready"}

    add_metrics_route(app)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return docs_page(app.openapi_url or "/openapi.json", f"{app.title}: API")
