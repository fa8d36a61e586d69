"""Builders of contract events as JSON-ready dicts, for tests."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)
SOURCE = "urn:vn:test:motcua"


def envelope(
    type_: str, subject: str, time: str, data: dict[str, Any], *, id_: str | None = None, source: str = SOURCE
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id_ or f"evt-{next(_ids)}",
        "source": source,
        "type": type_,
        "time": time,
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }


def received(
    dossier_id: str,
    *,
    unit: str = "my-hao.minh-duc",
    at: str = "2023-03-01T08:00:00+07:00",
    due_at: str | None = "2023-03-08T17:00:00+07:00",
    channel: str = "online",
    fee_required: bool = True,
    **kw: Any,
) -> dict[str, Any]:
    data = {
        "dossier_id": dossier_id,
        "unit": unit,
        "procedure_code": "1.001612",
        "channel": channel,
        "received_at": at,
        "due_at": due_at,
        "fee_required": fee_required,
    }
    return envelope("vn.gov.tthc.dossier.received", dossier_id, at, data, **kw)


def resolved(dossier_id: str, *, at: str = "2023-03-05T10:00:00+07:00", **kw: Any) -> dict[str, Any]:
    data = {"dossier_id": dossier_id, "resolved_at": at, "outcome": "approved"}
    return envelope("vn.gov.tthc.dossier.resolved", dossier_id, at, data, **kw)
