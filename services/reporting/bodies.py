"""The JSON bodies of the API (contract §4) from computed figures (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.reporting.indicators import Window, figure_groups
from shared.units import Scope


def freshness(last_applied_at: datetime | None) -> dict[str, str | None]:
    """When the aggregator last applied a batch (figures are at least that fresh)."""
    return {"last_applied_at": last_applied_at.isoformat() if last_applied_at else None}


def period(unit: str, window: Window) -> dict[str, Any]:
    """The unit and window that head every body."""
    return {
        "unit": unit,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "as_of": window.as_of.isoformat(),
    }


def indicators_body(
    unit: str, scope: Scope, window: Window, counts: Mapping[str, int], last_applied_at: datetime | None
) -> dict[str, Any]:
    """The body of GET /v1/indicators (contract §4); the snapshot's too."""
    return {
        "unit": unit,
        "scope": scope,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "as_of": window.as_of.isoformat(),
        **figure_groups(counts),
        "freshness": freshness(last_applied_at),
    }
