"""Prometheus metrics of the aggregator."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPLIED = Counter("tthc_aggregator_events_applied_total", "Distinct events applied")
DUPLICATES = Counter("tthc_aggregator_duplicates_total", "Events skipped as repeats of an applied event")
DEAD_LETTERS = Counter("tthc_aggregator_dead_letters_total", "Records sent to the dead-letter topic")
BATCHES = Counter("tthc_aggregator_batches_total", "Batches (one transaction each) by outcome", ["outcome"])
BATCH_SECONDS = Histogram(
    "tthc_aggregator_batch_seconds",
    "Time to decode, plan and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAST_APPLIED = Gauge("tthc_aggregator_last_applied_timestamp_seconds", "When the last batch committed")
