"""HTTP entrypoint and composition root of the intake (contract §3)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from services.infra.http_metrics import HttpMetricsMiddleware, add_metrics_route
from services.infra.security_headers import SecurityHeadersMiddleware
from services.intake import telemetry
from services.intake.api_docs import docs_page, events_request_body, install_openapi
from services.intake.config import IntakeSettings
from services.intake.publisher import EventPublisher, KafkaUnavailable
from services.intake.validation import check_content_mode, check_media_type, parse_events
from shared.events import Event, unit_of
from shared.http_problems import Problem, ProblemError, install_problem_handlers
from shared.kafka_admin import ensure_topics
from shared.tokens import DEV_INTAKE_TOKEN, TokenGrant, TokenRegistry
from shared.units import UnitTree

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
    tree: UnitTree = settings.unit_tree()
    tokens = TokenRegistry.load(
        settings.tokens_file,
        development_token=DEV_INTAKE_TOKEN if settings.environment == "development" else None,
    )
    publisher = EventPublisher(
        settings.kafka_bootstrap_servers, settings.events_topic, settings.publish_timeout_seconds
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await ensure_topics(
                settings.kafka_bootstrap_servers,
                {settings.events_topic: settings.events_partitions, settings.dead_letter_topic: 1},
            )
        except Exception as exc:
            log.warning("could not ensure Kafka topics at start: %s", exc)
        try:
            yield
        finally:
            await publisher.close()

    app = FastAPI(
        title="tthc-pulse intake",
        version="1.0",
        description="Receives CloudEvents from one-stop and document-management systems and publishes "
        "them to Kafka. A 202 is sent only once Kafka has every event of the request.",
        lifespan=lifespan,
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
        grant = tokens.authenticate(authorization)
        if grant is None:
            raise ProblemError(
                401, "Unauthorized", "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        check_content_mode(request.headers)
        check_media_type(request.headers.get("content-type"))
        body = await _read_limited(request, settings.max_request_bytes)
        events = parse_events(
            body,
            request.headers.get("content-type"),
            tree,
            datetime.now(UTC),
            settings.max_events_per_request,
        )
        _authorize(grant, events, tree)
        started = time.perf_counter()
        try:
            await publisher.publish(events)
        except KafkaUnavailable as exc:
            log.warning("Kafka unavailable, %d events not acknowledged: %s", len(events), exc)
            raise ProblemError(
                503,
                "Kafka unavailable",
                "the events could not be stored; nothing was acknowledged, send them again later",
                headers={"Retry-After": str(settings.retry_after_seconds)},
            ) from exc
        telemetry.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        return len(events)

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

    return app


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ProblemError:
    return ProblemError(413, "Request too large", f"the body exceeds {limit} bytes")


def _authorize(grant: TokenGrant, events: list[Event], tree: UnitTree) -> None:
    for index, event in enumerate(events):
        if not grant.allows_source(event.source):
            detail = f"event {index}: token {grant.name!r} may not send for source {event.source!r}"
            raise ProblemError(403, "Forbidden", detail)
        unit = unit_of(event)
        if unit is not None and not grant.allows_unit(unit, tree):
            raise ProblemError(403, "Forbidden", f"event {index}: token {grant.name!r} may not send for unit {unit!r}")
