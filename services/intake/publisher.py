"""Kafka adapter of the intake: publishes events and reports when Kafka has them all."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared import topics
from shared.events import Event, encode_event

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge every event in time; nothing may be acknowledged upstream."""


def record_headers(event: Event, intake_time_ms: int) -> list[tuple[str, bytes]]:
    """The headers of an event's record: CloudEvents structured mode, its attributes, the intake time."""
    attributes = {name: str(getattr(event, name)) for name in topics.CLOUDEVENTS_HEADER_ATTRIBUTES}
    return [
        (topics.CONTENT_TYPE_HEADER, topics.STRUCTURED_CONTENT_TYPE.encode()),
        *((topics.CLOUDEVENTS_HEADER_PREFIX + name, value.encode()) for name, value in attributes.items()),
        (topics.INTAKE_TIME_HEADER, str(intake_time_ms).encode()),
    ]


class EventPublisher:
    def __init__(self, bootstrap_servers: str, topic: str, timeout_seconds: float) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._timeout = timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def _ready_producer(self) -> AIOKafkaProducer:
        """The started producer; started lazily so the intake runs (and answers 503) without Kafka."""
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    enable_idempotence=True,  # implies acks=all
                    request_timeout_ms=int(self._timeout * 1000),
                    linger_ms=2,  # gathers a request's events into few produce requests
                )
                try:
                    await producer.start()
                except KafkaError:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, events: Sequence[Event]) -> None:
        try:
            await asyncio.wait_for(self._publish(events), timeout=self._timeout)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc

    async def _publish(self, events: Sequence[Event]) -> None:
        producer = await self._ready_producer()
        intake_time_ms = time.time_ns() // 1_000_000
        futures = [
            await producer.send(
                self._topic,
                value=encode_event(event),
                key=event.subject.encode(),
                headers=record_headers(event, intake_time_ms),
            )
            for event in events
        ]
        await asyncio.gather(*futures)

    async def is_reachable(self) -> bool:
        try:
            producer = await asyncio.wait_for(self._ready_producer(), timeout=3)
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=3)
        except (KafkaError, TimeoutError, OSError):
            return False
        return True

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
