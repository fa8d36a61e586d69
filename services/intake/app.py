"""HTTP entrypoint and composition root of the intake (contract §3)."""

from __future__ import annotations

import logging
import time
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
from services.intake.publisher import EventPublisher, KafkaUnavailable
from services.intake.validation import check_media_type, parse_events
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
        grant = tokens.authenticate(authorization)
        if grant is None:
            raise ProblemError(
                401, "Unauthorized", "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
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

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

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
