"""With Kafka stopped the intake answers 503 and acknowledges nothing; once Kafka is back the same
events are accepted and counted once. Runs its own broker so the shared one stays up."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import DATABASE_URL, eventually, unique
from tests.factories import received
from tests.in_process import end_offsets, intake_client, positions_caught_up, running_aggregator
from tests.infra import PrivateServer, private_kafka

pytestmark = pytest.mark.integration

HEADERS = {"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"}


@pytest.fixture
def broker() -> Iterator[tuple[PrivateServer, str]]:
    server, bootstrap = private_kafka(19192)
    try:
        yield server, bootstrap
    finally:
        server.remove()


async def test_outage_gives_503_then_the_same_events_count_once(
    broker: tuple[PrivateServer, str], db_schema: str
) -> None:
    server, bootstrap = broker
    topic, dlq = unique("events"), unique("dlq")
    first, retried = [received(unique("a"))], [received(unique("b")), received(unique("c"))]
    settings = {
        "kafka_bootstrap_servers": bootstrap,
        "events_topic": topic,
        "dead_letter_topic": dlq,
        "events_partitions": 2,
        "publish_timeout_seconds": 3.0,
    }
    async with intake_client(**settings) as client:
        response = await client.post("/v1/events", content=json.dumps(first), headers=HEADERS)
        assert response.status_code == 202, response.text

        server.stop()
        response = await client.post("/v1/events", content=json.dumps(retried), headers=HEADERS)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
        assert (await client.get("/readyz")).status_code == 503

        server.start()

        async def accepted() -> bool:
            again = await client.post("/v1/events", content=json.dumps(retried), headers=HEADERS)
            assert again.status_code in (202, 503), again.text
            return again.status_code == 202

        await eventually(accepted, timeout=60, interval=0.5, what="the intake to accept after Kafka is back")

    ends = await end_offsets(bootstrap, topic)
    async with running_aggregator(
        kafka_bootstrap_servers=bootstrap,
        events_topic=topic,
        dead_letter_topic=dlq,
        consumer_group=unique("g"),
        database_url=DATABASE_URL,
        database_schema=db_schema,
        events_partitions=2,
    ) as (_, pool):
        await eventually(lambda: positions_caught_up(pool, topic, ends), timeout=60, what="aggregator catch-up")
        async with pool.acquire() as conn:
            received_total = await conn.fetchval("SELECT sum(received) FROM daily_counts")
            identities = await conn.fetchval("SELECT count(*) FROM event_identities")
    assert received_total == 3
    assert identities == 3
