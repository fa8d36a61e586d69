"""Prometheus metrics of the reporting service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STREAMS = Gauge("reporting_sse_streams", "Open Server-Sent Events streams")
SNAPSHOTS = Counter("reporting_snapshot_responses_total", "Snapshot answers, by kind", ["kind"])
