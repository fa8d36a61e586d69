"""Creates the Kafka topics the services need, explicitly and idempotently."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code
_KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}


async def ensure_topics(
    bootstrap_servers: str,
    partitions_by_topic: Mapping[str, int],
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> None:
    """Create the topics that do not exist yet, with that many replicas, of which `min_insync_replicas`
    must have a write before it is acknowledged to an acks=all producer. Existing topics are left as they are.

    Retention is unlimited: the events topic is the system of record that replays rebuild from.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic,
                num_partitions=count,
                replication_factor=replication_factor,
                topic_configs={**_KEEP_FOREVER, "min.insync.replicas": str(min_insync_replicas)},
            )
            for topic, count in partitions_by_topic.items()
            if topic not in existing
        ]
        if not missing:
            return
        response = await admin.create_topics(missing)
        for topic, code, *_ in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"could not create Kafka topic {topic!r}: error code {code}")
        log.info("created Kafka topics %s", [t.name for t in missing])
    finally:
        await admin.close()


async def topic_partitions(bootstrap_servers: str, topic: str) -> list[int]:
    """The partition numbers of a topic (a consumer without subscription has no metadata for it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description["error_code"] or not description["partitions"]:
        raise LookupError(f"topic {topic!r} does not exist (error code {description['error_code']})")
    return sorted(p["partition"] for p in description["partitions"])
