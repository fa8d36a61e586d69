"""GET /v1/snapshot (the year to date with a strong ETag) and GET /v1/stream (its live versions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Response

from services.infra.http_problems import Problem
from services.reporting import telemetry
from services.reporting.api_docs import errors, ok, problem_example
from services.reporting.etags import if_none_match_matches
from services.reporting.routes.dependencies import READER, Service, Tree, require_stream_reader, v1_router
from services.reporting.routes.params import UnitParam, YearParam
from services.reporting.schemas import MY_HAO_EXAMPLE, Indicators
from services.reporting.sse import EventStreamResponse

router = v1_router()

_STRING = {"schema": {"type": "string"}}


@router.get(
    "/snapshot",
    dependencies=READER,
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
    tree: Tree,
    unit: UnitParam,
    year: YearParam = None,
    if_none_match: Annotated[str | None, Header(description="ETag(s) the client holds")] = None,
) -> Response:
    """The indicators of the unit's subtree from 1 January of `year` to today (or 31 December).

    The ETag changes exactly when a figure or the period changes, including when time alone
    turns an in-progress dossier overdue; `as_of` and `freshness` say when the figures were
    computed and are not covered by it (one ETag, one body). Send `If-None-Match` for a `304`.
    """
    snap = await svc.snapshot(tree, unit, year)
    headers = {"ETag": snap.etag, "Cache-Control": "private, no-cache"}
    if if_none_match_matches(if_none_match, snap.etag):
        telemetry.SNAPSHOTS.labels("not_modified").inc()
        return Response(status_code=304, headers=headers)
    telemetry.SNAPSHOTS.labels("full").inc()
    return Response(content=snap.json, media_type="application/json", headers=headers)


@router.get(
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
    tree: Tree,
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
    subscription = await svc.stream(tree, unit, year, last_event_id)
    return EventStreamResponse(subscription.chunks, subscription.release)
