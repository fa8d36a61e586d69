"""Prometheus metrics of the intake (requests by route and status: services.infra.http_metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_ACCEPTED = Counter("tthc_intake_events_accepted_total", "Events acknowledged with 202")
PUBLISH_SECONDS = Histogram(
    "tthc_intake_publish_seconds",
    "Time until Kafka acknowledged every event of a request",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DVCQG_RECORDS = Counter(
    "tthc_intake_dvcqg_records_total", "DVCQG records acknowledged with 202 through the DVCQG adapter"
)
