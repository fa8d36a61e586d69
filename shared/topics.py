"""Kafka topic names and record conventions, in one place for every service."""

from __future__ import annotations

EVENTS_TOPIC = "tthc.events.v1"
DEAD_LETTER_TOPIC = "tthc.events.dlq.v1"

# Default partition count of the events topic: enough for a dozen aggregator instances.
EVENTS_PARTITIONS = 12

# Header on dead-letter records: why the record could not be applied.
DEAD_LETTER_REASON_HEADER = "tthc-dlq-reason"
DEAD_LETTER_ORIGIN_HEADER = "tthc-dlq-origin"
