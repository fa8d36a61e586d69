"""Kafka topic names and record conventions, in one place for every service."""

from __future__ import annotations

EVENTS_TOPIC = "tthc.events.v1"
DEAD_LETTER_TOPIC = "tthc.events.dlq.v1"

# Default partition count of the events topic: enough for a dozen aggregator instances.
EVENTS_PARTITIONS = 12

# Header on dead-letter records: why the record could not be applied.
DEAD_LETTER_REASON_HEADER = "tthc-dlq-reason"
DEAD_LETTER_ORIGIN_HEADER = "tthc-dlq-origin"

# Headers of every record the intake writes: the CloudEvents Kafka protocol binding in structured mode
# (the value is the whole event as JSON; the ce_ headers repeat its required attributes for routing
# and inspection without decoding the value), and the intake's publish time.
CONTENT_TYPE_HEADER = "content-type"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
CLOUDEVENTS_HEADER_PREFIX = "ce_"
CLOUDEVENTS_HEADER_ATTRIBUTES = ("specversion", "id", "source", "type")
# Integer milliseconds since the epoch (ASCII) at which the intake published the record; the
# aggregator measures freshness from it (the Kafka record timestamp when absent).
INTAKE_TIME_HEADER = "tthc-intake-time"
