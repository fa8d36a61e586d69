"""The intake's OpenAPI description and its documentation page.

The request body schemas are generated from the one event model (shared.events), so the
description cannot drift from what the intake accepts. The examples are made up so that they cannot
count as real data: the year 2000 and a unit, `example-unit`, that no registry has (the intake answers
422 for them, so "try it out" publishes nothing).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from services.infra.security_headers import script_hash
from shared.events import event_adapter

SCHEMA_REF = "#/components/schemas/{model}"
EVENT_REF = {"$ref": "#/components/schemas/Event"}
BATCH_REF = {"$ref": "#/components/schemas/EventBatch"}
EXAMPLE_UNIT = "example-unit"

EXAMPLE_EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "example-0001",
    "source": "urn:example:tthc-pulse:docs",
    "type": "vn.gov.tthc.dossier.received",
    "time": "2000-01-03T08:15:00+07:00",
    "subject": "EXAMPLE-2000-0001",
    "datacontenttype": "application/json",
    "data": {
        "dossier_id": "EXAMPLE-2000-0001",
        "unit": EXAMPLE_UNIT,
        "procedure_code": "example-procedure",
        "channel": "online",
        "received_at": "2000-01-03T08:15:00+07:00",
        "due_at": "2000-01-07T17:00:00+07:00",
        "fee_required": True,
        "digitization_required": True,
    },
}


def event_schemas(max_events: int) -> dict[str, Any]:
    """OpenAPI component schemas of one event (a union on `type`) and of a batch, from shared.events."""
    event = event_adapter.json_schema(ref_template=SCHEMA_REF)
    definitions: dict[str, Any] = event.pop("$defs")
    event["description"] = "One CloudEvent of the contract (structured mode), chosen by `type`."
    batch = {
        "type": "array",
        "items": EVENT_REF,
        "minItems": 1,
        "maxItems": max_events,
        "description": f"A batch of at most {max_events} CloudEvents (and 1 MiB).",
    }
    return {**definitions, "Event": event, "EventBatch": batch}


def events_request_body(max_events: int) -> dict[str, Any]:
    note = (
        "Structured content mode only: a request with CloudEvents binary-mode headers (ce-specversion) "
        "is answered 415. The examples name a unit no registry has and are refused (422)."
    )
    return {
        "required": True,
        "description": note,
        "content": {
            "application/cloudevents+json": {"schema": EVENT_REF, "example": EXAMPLE_EVENT},
            "application/cloudevents-batch+json": {"schema": BATCH_REF, "example": [EXAMPLE_EVENT]},
            "application/json": {"schema": {"anyOf": [EVENT_REF, BATCH_REF]}, "example": EXAMPLE_EVENT},
        },
    }


def install_openapi(app: FastAPI, max_events: int) -> None:
    """Generate the OpenAPI once, with the event schemas among its components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(event_schemas(max_events))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _inline_scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)


def docs_page(openapi_url: str, title: str) -> HTMLResponse:
    """Swagger UI, with a policy that allows its CDN files and exactly its one inline script."""
    page = get_swagger_ui_html(openapi_url=openapi_url, title=title, swagger_favicon_url="data:,")
    html = bytes(page.body).decode()
    hashes = " ".join(script_hash(script) for script in _inline_scripts(html))
    cdn = "https://cdn.jsdelivr.net"
    policy = (
        f"default-src 'none'; script-src {cdn} {hashes}; "
        # Swagger UI sets style attributes from its script.
        f"style-src {cdn} 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})
