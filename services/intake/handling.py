"""What every write route of the intake does around its own parsing: token, body, rights, Kafka.

`POST /v1/events` and `POST /v1/adapters/dvcqg` differ only in how a body becomes events; both
authenticate the same way, read at most the same size, check the token's sources and units on the
events, and acknowledge only once Kafka has every event (503 otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from services.infra.http_problems import ProblemError
from services.intake import telemetry
from services.intake.config import IntakeSettings
from services.intake.publisher import EventPublisher, KafkaUnavailable
from shared.events import Event, unit_fact
from shared.timezone import local_day
from shared.tokens import TokenGrant, TokenRegistry
from shared.units import UnitRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeContext:
    """What the routes share: built once by the composition root."""

    settings: IntakeSettings
    registry: UnitRegistry
    tokens: TokenRegistry
    publisher: EventPublisher


def require_grant(tokens: TokenRegistry, authorization: str | None) -> TokenGrant:
    grant = tokens.authenticate(authorization)
    if grant is None:
        raise ProblemError(
            401, "Unauthorized", "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return grant


async def read_limited(request: Request, limit: int) -> bytes:
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


def authorize(grant: TokenGrant, events: Sequence[Event], registry: UnitRegistry) -> None:
    """403 unless the token may send for every event's source and unit (the unit as of its fact date)."""
    for index, event in enumerate(events):
        if not grant.allows_source(event.source):
            detail = f"event {index}: token {grant.name!r} may not send for source {event.source!r}"
            raise ProblemError(403, "Forbidden", detail)
        fact = unit_fact(event)
        if fact is None:
            continue
        unit, at = fact
        if not grant.allows_unit(unit, registry, local_day(at)):
            raise ProblemError(403, "Forbidden", f"event {index}: token {grant.name!r} may not send for unit {unit!r}")


async def publish(context: IntakeContext, events: Sequence[Event]) -> None:
    """Publish every event, or raise the 503 that acknowledges none of them."""
    started = time.perf_counter()
    try:
        await context.publisher.publish(events)
    except KafkaUnavailable as exc:
        log.warning("Kafka unavailable, %d events not acknowledged: %s", len(events), exc)
        raise ProblemError(
            503,
            "Kafka unavailable",
            "the events could not be stored; nothing was acknowledged, send them again later",
            headers={"Retry-After": str(context.settings.retry_after_seconds)},
        ) from exc
    telemetry.PUBLISH_SECONDS.observe(time.perf_counter() - started)
