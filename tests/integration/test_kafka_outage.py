"""With Kafka stopped the intake answers 503 and acknowledges nothing; once Kafka is back the same
events are accepted and counted once. Runs its own broker so the shared one stays up."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATABASE_URL, eventually, unique
from tests.factories import received
from tests.running import end_offsets, intake_client, positions_caught_up, running_aggregator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KAFKA_PORT, CONTROLLER_PORT = 19192, 19193
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"
HEADERS = {"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"}


class Broker:
    def __init__(self, home: Path) -> None:
        self.env = {
            "KAFKA_HOME": str(home),
            "KAFKA_PORT": str(KAFKA_PORT),
            "KAFKA_CONTROLLER_PORT": str(CONTROLLER_PORT),
            "KAFKA_LIBS": str(REPO / ".local/kafka/libs"),
            "PATH": "/usr/bin:/bin",
        }

    def run(self, command: str) -> None:
        subprocess.run(
            [str(REPO / "deploy/kafka.sh"), command], env=self.env, check=True, capture_output=True, timeout=180
        )


@pytest.fixture
def broker() -> Iterator[Broker]:
    home = Path(tempfile.mkdtemp(prefix="tthc-kafka-"))
    own = Broker(home)
    own.run("start")
    try:
        yield own
    finally:
        own.run("stop")
        shutil.rmtree(home, ignore_errors=True)


async def test_outage_gives_503_then_the_same_events_count_once(broker: Broker, db_schema: str) -> None:
    topic, dlq = unique("events"), unique("dlq")
    first, retried = [received(unique("a"))], [received(unique("b")), received(unique("c"))]
    settings = {
        "kafka_bootstrap_servers": BOOTSTRAP,
        "events_topic": topic,
        "dead_letter_topic": dlq,
        "events_partitions": 2,
        "publish_timeout_seconds": 3.0,
    }
    async with intake_client(**settings) as client:
        response = await client.post("/v1/events", content=json.dumps(first), headers=HEADERS)
        assert response.status_code == 202, response.text

        broker.run("stop")
        response = await client.post("/v1/events", content=json.dumps(retried), headers=HEADERS)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
        assert (await client.get("/readyz")).status_code == 503

        broker.run("start")

        async def accepted() -> bool:
            again = await client.post("/v1/events", content=json.dumps(retried), headers=HEADERS)
            assert again.status_code in (202, 503), again.text
            return again.status_code == 202

        await eventually(accepted, timeout=60, interval=0.5, what="the intake to accept after Kafka is back")

    ends = await end_offsets(BOOTSTRAP, topic)
    async with running_aggregator(
        kafka_bootstrap_servers=BOOTSTRAP,
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
