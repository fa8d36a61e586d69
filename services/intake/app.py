"""HTTP entrypoint and composition root of the intake (contract §3)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from services.intake import telemetry
from services.intake.config import IntakeSettings
from services.intake.dvcqg_route import dvcqg_router
from services.intake.handling import IntakeContext, authorize, publish, read_limited, require_grant
from services.intake.publisher import EventPublisher
from services.intake.validation import check_media_type, parse_events
from shared.http_problems import Problem, ProblemError, install_problem_handlers
from shared.kafka_admin import ensure_topics
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
        415: "Unsupported content type",
        422: "Invalid events: nothing was published; `errors` names each problem",
        503: "Kafka cannot take the events now; nothing acknowledged (see Retry-After)",
    }.items()
}

_EXAMPLE_EVENT = {
    "specversion": "1.0",
    "id": "a1b2c3",
    "source": "urn:vn:hungyen:motcua",
    "type": "vn.gov.tthc.dossier.received",
    "time": "2023-03-01T08:15:00+07:00",
    "subject": "000.00.21.H31-230301-0001",
    "data": {
        "dossier_id": "000.00.21.H31-230301-0001",
        "unit": "my-hao.minh-duc",
        "procedure_code": "1.001612",
        "channel": "online",
        "received_at": "2023-03-01T08:15:00+07:00",
        "due_at": "2023-03-06T17:00:00+07:00",
        "fee_required": True,
        "digitization_required": True,
    },
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

    app = FastAPI(
        title="tthc-pulse intake",
        version="1.0",
        description="Receives CloudEvents from one-stop and document-management systems and publishes "
        "them to Kafka. A 202 is sent only once Kafka has every event of the request.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses=_ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/cloudevents+json": {"example": _EXAMPLE_EVENT},
                    "application/cloudevents-batch+json": {"example": [_EXAMPLE_EVENT]},
                    "application/json": {"example": _EXAMPLE_EVENT},
                },
            }
        },
    )
    async def post_events(request: Request, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        """Accept one CloudEvent or a JSON array of at most 1,000 (1 MiB per request)."""
        try:
            accepted = await _accept(request, authorization)
        except ProblemError as exc:
            telemetry.REQUESTS.labels(status=str(exc.problem.status)).inc()
            raise
        telemetry.REQUESTS.labels(status="202").inc()
        telemetry.EVENTS_ACCEPTED.inc(accepted)
        return JSONResponse({"accepted": accepted}, status_code=202)

    async def _accept(request: Request, authorization: str | None) -> int:
        grant = require_grant(tokens, authorization)
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

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
