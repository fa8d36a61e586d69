"""HTTP entrypoint of the DVCQG synchronisation adapter: `POST /v1/adapters/dvcqg` (contract §3.1).

A one-stop system that already sends `DongBoHoSoMC` / `CapNhatTienDoHoSoMC` to the National
Public Service Portal posts a copy of the same request here. The route only authenticates, reads
the body, calls the pure adapter (`services.intake.dvcqg`) and publishes what it derives like any
other batch. The body is personal data: it is never logged, and errors name records and fields,
never values.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.infra.http_problems import FieldError, Problem, ProblemError
from services.intake import telemetry
from services.intake.dvcqg import MalformedRequest, RecordError, TooManyRecords, events_from_request
from services.intake.handling import IntakeContext, authorize, publish, read_limited, require_grant
from services.intake.validation import media_type
from shared.events import Event, event_adapter


class AcceptedRecords(BaseModel):
    accepted: int  # records of the request
    events: int  # events derived from them and published


_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in {
        400: "Not a DVCQG request (malformed JSON, or neither a record list nor {service, data})",
        401: "Missing or unknown token",
        403: "Token not allowed for `source` or a dossier's unit",
        413: "More than 1,000 records or 1 MiB",
        415: "Unsupported content type (application/json only)",
        422: "Invalid records: nothing was published; `errors` names each record (`index`) and field",
        503: "Kafka cannot take the events now; nothing acknowledged (see Retry-After)",
    }.items()
}


def dvcqg_router(context: IntakeContext) -> APIRouter:
    router = APIRouter()
    registry = context.registry

    def resolve_organ(organ: str, day: date) -> str | None:
        entry = registry.resolve_organ(organ, day)
        return None if entry is None else entry.code

    @router.post(
        "/v1/adapters/dvcqg",
        status_code=202,
        response_model=AcceptedRecords,
        responses=_ERRORS,
        summary="A copy of a DVCQG synchronisation request (DongBoHoSoMC, CapNhatTienDoHoSoMC)",
    )
    async def post_dvcqg(
        request: Request,
        source: Annotated[str, Query(description="URI-reference naming the sending system; the events' source")],
        organ_code: Annotated[
            str | None,
            Query(alias="MaDinhDanhDV", description="The sending organ (QCVN 102) when DonViXuLy names none"),
        ] = None,
        is_updating: Annotated[str | None, Query(alias="isUpdating", description="Accepted and ignored")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """`{"service", "isUpdating", "data": [records]}` or the bare array of records, at most 1,000 and 1 MiB.

        Each record becomes the events of contract §2 it implies, with ids and times derived from
        its content (a record sent again changes nothing). `202 {"accepted": records, "events": n}`
        once Kafka has every event.
        """
        grant = require_grant(context.tokens, authorization)
        if media_type(request.headers.get("content-type")) != "application/json":
            raise ProblemError(415, "Unsupported media type", "send the DVCQG request as application/json")
        if not grant.allows_source(source):
            raise ProblemError(403, "Forbidden", f"token {grant.name!r} may not send for source {source!r}")
        body = await read_limited(request, context.settings.max_request_bytes)
        try:
            derived = events_from_request(
                body, source=source, organ_code=organ_code, resolve_organ=resolve_organ, now=datetime.now(UTC)
            )
        except MalformedRequest as exc:
            raise ProblemError(400, "Malformed request", str(exc)) from None
        except TooManyRecords as exc:
            raise ProblemError(413, "Too many records", str(exc)) from None
        if derived.errors:
            raise _invalid(derived.errors)
        events: list[Event] = [event_adapter.validate_python(raw, strict=False) for raw in derived.events]
        authorize(grant, events, registry)
        await publish(context, events)
        telemetry.DVCQG_RECORDS.inc(derived.records)
        telemetry.EVENTS_ACCEPTED.inc(len(events))
        return JSONResponse({"accepted": derived.records, "events": len(events)}, status_code=202)

    return router


def _invalid(errors: list[RecordError]) -> ProblemError:
    fields = [FieldError(index=e.index, field=e.field, message=e.message) for e in errors]
    shown = "; ".join(f"[{e.index}] {e.field or 'record'}: {e.message}" for e in fields[:10])
    more = f" (and {len(fields) - 10} more)" if len(fields) > 10 else ""
    return ProblemError(422, "Invalid records", f"{len(fields)} problem(s): {shown}{more}", errors=fields)
