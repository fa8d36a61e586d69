"""Losing a broker loses nothing. On a three-node KRaft cluster (replication factor 3,
min.insync.replicas=2) the intake and the aggregator run as processes under a steady stream of
events from upstream systems. One broker is killed with SIGKILL and restarted, then another: the
cluster goes on taking events. Then two brokers are killed at once: the cluster cannot take events,
and every answer the intake gives meanwhile is 503, never 202. Upstream sends every refused batch
again until it is answered 202, as the contract asks. At the end every event answered 202 is in the
topic and counted exactly once.

Runs its own cluster on ports 29192-29197 (deploy/kafka-cluster.sh), so the shared broker stays up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from tests.conftest import DATABASE_URL, eventually
from tests.in_process import end_offsets, positions_caught_up, read_topic
from tests.infra import PrivateServer, private_kafka_cluster
from tests.reference_model import VIETNAM, event, figures
from tests.subprocesses import ServiceSet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLUSTER_PORT = 29192  # node N: client port 29192 + 2(N-1), controller port that + 1
NODES = (1, 2, 3)
HEADERS = {"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"}
UNITS = ("my-hao.minh-duc", "my-hao.ban-yen-nhan", "my-hao.nhan-hoa", "my-hao.di-su")
MARCH = (date(2023, 3, 1), date(2023, 3, 31))
# Two upstream systems, each posting a batch of 10 events every 0.2 s: a steady 100 events/s at most
# (the machine that runs the tests also runs the three brokers).
SENDERS = 2
BATCH = 10
PACE_SECONDS = 0.2
# Accepted events that show the stream flows: at the start, with a broker down, after each step.
PROGRESS = 300
_TOPIC_CONFIG = 1  # DescribeConfigs config_source: set on the topic itself
FLOW_FIGURES = ("received", "received_online", "received_direct", "resolved", "resolved_on_time", "resolved_late")


@dataclass(frozen=True)
class Answer:
    sent_at: float  # time.monotonic()
    answered_at: float
    status: int
    events: int


@dataclass
class Upstream:
    """Upstream systems as the contract wants them: every batch is sent again until it is answered 202."""

    client: httpx.AsyncClient
    answers: list[Answer] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, batch: list[dict[str, Any]]) -> None:
        body = json.dumps(batch)
        while True:
            sent_at = time.monotonic()
            response = await self.client.post("/v1/events", content=body, headers=HEADERS)
            self.answers.append(Answer(sent_at, time.monotonic(), response.status_code, len(batch)))
            # 503 is the only refusal a valid batch may get: Kafka did not take it.
            assert response.status_code in (202, 503), response.text
            if response.status_code == 202:
                self.accepted.extend(batch)
                return

    async def run(self, sender: int) -> None:
        """Post new dossiers and resolve earlier ones until told to stop; a batch in hand is finished."""
        received: list[tuple[str, datetime]] = []
        n = 0
        while not self.stop.is_set():
            batch: list[dict[str, Any]] = []
            while len(batch) < BATCH:
                if len(received) > 5 and n % 3 == 0:
                    dossier, at = received.pop(0)
                    batch.append(resolved(dossier, at, n))
                else:
                    dossier = f"S{sender}-{n}"
                    # Received in March 1-26, resolved by March 31: every fact inside the window compared.
                    at = datetime(2023, 3, 1, 8, tzinfo=VIETNAM) + timedelta(minutes=(37 * n + sender) % (25 * 24 * 60))
                    batch.append(received_event(dossier, at, UNITS[n % len(UNITS)], n))
                    received.append((dossier, at))
                n += 1
            await self.send(batch)
            # A rate, not a synchronisation: woken at once by the stop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=PACE_SECONDS)

    def refused(self, since: float) -> int:
        return sum(1 for a in self.answers if a.status == 503 and a.answered_at >= since)


def received_event(dossier: str, at: datetime, unit: str, n: int) -> dict[str, Any]:
    return event(
        "dossier.received",
        dossier,
        id=f"{dossier}-r",
        unit=unit,
        procedure_code="1.001612",
        channel="online" if n % 2 else "direct",
        received_at=at,
        due_at=at + timedelta(days=3),
        fee_required=False,
    )


def resolved(dossier: str, received_at: datetime, n: int) -> dict[str, Any]:
    # Alternately before and after the due date (three days after reception).
    return event(
        "dossier.resolved",
        dossier,
        id=f"{dossier}-s",
        resolved_at=received_at + timedelta(days=2 if n % 2 else 5),
        outcome="approved",
    )


@dataclass
class Cluster:
    server: PrivateServer
    bootstrap: str

    # In a thread: the upstream systems run in this event loop and must go on sending meanwhile.
    async def kill(self, node: int) -> None:
        await asyncio.to_thread(self.server.run, "kill", str(node))

    async def restart(self, node: int) -> None:
        await asyncio.to_thread(self.server.run, "start-node", str(node))

    async def coordinator(self, group: str) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            node: int = await admin.find_coordinator(group)
            return node
        finally:
            await admin.close()

    async def partitions(self, topics: list[str]) -> list[dict[str, Any]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        return [p for topic in described for p in topic["partitions"]]

    async def min_insync_replicas(self, topic: str) -> tuple[str, bool]:
        """The topic's min.insync.replicas, and whether the topic itself sets it (not a broker default)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            wanted = ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})
            (response,) = await admin.describe_configs([wanted])
        finally:
            await admin.close()
        (entry,) = response.to_object()["resources"][0]["config_entries"]
        return entry["config_value"], entry["config_source"] == _TOPIC_CONFIG

    async def in_sync(self, topics: list[str]) -> bool:
        """Every partition has its three replicas in sync (restarted brokers have caught up)."""
        try:
            partitions = await self.partitions(topics)
        except KafkaError:
            return False
        return bool(partitions) and all(
            len(p["replicas"]) == 3 and set(p["isr"]) == set(p["replicas"]) for p in partitions
        )


@dataclass
class Drill:
    """The stream, the cluster and the record of what was done to it."""

    cluster: Cluster
    services: ServiceSet
    upstream: Upstream
    senders: list[asyncio.Task[None]]
    started: float = field(default_factory=time.monotonic)
    steps: list[tuple[float, str]] = field(default_factory=list)  # seconds since the stream started
    kills: list[dict[str, Any]] = field(default_factory=list)

    def step(self, what: str) -> float:
        now = time.monotonic()
        self.steps.append((round(now - self.started, 1), what))
        return now

    async def accepted_at_least(self, count: int) -> bool:
        for task in self.senders:
            if task.done():
                task.result()  # a sender that failed fails the test with its own error
        return len(self.upstream.accepted) >= count

    async def flows(self, what: str) -> None:
        """PROGRESS more events are accepted."""
        target = len(self.upstream.accepted) + PROGRESS
        await eventually(lambda: self.accepted_at_least(target), timeout=60, what=what)

    async def back_in_sync(self, nodes: tuple[int, ...]) -> None:
        topics = [self.services.topic, self.services.dead_letter_topic, "__consumer_offsets"]
        await eventually(lambda: self.cluster.in_sync(topics), timeout=90, interval=0.5, what=f"{nodes} in sync")

    async def kill_one(self, victim: int) -> None:
        """SIGKILL one broker; the two others go on taking events; restart it and wait until it caught up."""
        accepted, refused_from = len(self.upstream.accepted), time.monotonic()
        killed_at = self.step(f"kill {victim}")
        await self.cluster.kill(victim)
        await self.flows(f"events accepted with broker {victim} dead")  # min.insync.replicas=2 still met
        down = self.step(f"restart {victim}") - killed_at
        await self.cluster.restart(victim)
        await self.back_in_sync((victim,))
        self.kills.append(
            {
                "nodes": [victim],
                "down_seconds": round(down, 1),
                "kill_to_in_sync_seconds": round(self.step(f"{victim} in sync") - killed_at, 1),
                "accepted_meanwhile": len(self.upstream.accepted) - accepted,
                "refused_503": self.upstream.refused(refused_from),
            }
        )

    async def kill_two(self, victims: tuple[int, int]) -> None:
        """SIGKILL two brokers: one replica left, fewer than min.insync.replicas, and no controller
        quorum. Every request sent once they are dead and answered before they restart must be a 503."""
        accepted, refused_from = len(self.upstream.accepted), time.monotonic()
        started = self.step(f"kill {victims[0]} and {victims[1]}")
        await asyncio.gather(*(self.cluster.kill(n) for n in victims))
        dead_at = self.step("both dead")
        # Until each sender has had an answer to a request sent once both were dead (the intake
        # answers when its publish timeout ends).
        await eventually(
            lambda: self._answered_after(dead_at, SENDERS), timeout=60, what="answers while two brokers are dead"
        )
        restart_at = self.step(f"restart {victims[0]} and {victims[1]}")
        during = [a for a in self.upstream.answers if a.sent_at >= dead_at and a.answered_at < restart_at]
        assert during, "no request was answered while two brokers were dead"
        assert {a.status for a in during} == {503}, [a for a in during if a.status != 503]
        await asyncio.gather(*(self.cluster.restart(n) for n in victims))
        await self.back_in_sync(victims)
        self.kills.append(
            {
                "nodes": list(victims),
                "down_seconds": round(restart_at - started, 1),
                "kill_to_in_sync_seconds": round(self.step(f"{victims} in sync") - started, 1),
                "answered_while_down": len(during),
                "accepted_meanwhile": len(self.upstream.accepted) - accepted,
                "refused_503": self.upstream.refused(refused_from),
            }
        )

    async def _answered_after(self, sent_from: float, count: int) -> bool:
        await self.accepted_at_least(0)  # surfaces a failed sender
        return sum(1 for a in self.upstream.answers if a.sent_at >= sent_from) >= count

    async def pick_victim(self, killed: list[int]) -> int:
        """First the aggregator group's coordinator; then the broker leading most partitions of the topic."""
        if not killed:
            return await self.cluster.coordinator(self.services.group)
        leaders = Counter(p["leader"] for p in await self.cluster.partitions([self.services.topic]))
        return max((node for node in NODES if node not in killed), key=lambda node: leaders[node])


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    server, bootstrap = private_kafka_cluster(CLUSTER_PORT)
    try:
        yield Cluster(server, bootstrap)
    finally:
        server.remove()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ServiceSet]:
    stack = ServiceSet(log_dir=tmp_path)
    try:
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
async def pool(services: ServiceSet) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(
        DATABASE_URL, min_size=1, max_size=2, server_settings={"search_path": services.schema}
    )
    yield pool
    await pool.close()


async def test_killed_brokers_lose_nothing_and_count_nothing_twice(
    cluster: Cluster, services: ServiceSet, pool: asyncpg.Pool
) -> None:
    test_started = time.monotonic()
    on_cluster = {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
        "KAFKA_REPLICATION_FACTOR": "3",
        "KAFKA_MIN_INSYNC_REPLICAS": "2",
    }
    services.start("aggregator", "aggregator", **on_cluster)
    services.start("intake", "intake", **on_cluster)
    # The services created their topics as the cluster replicates: 3 replicas, 2 must have a write.
    for p in await cluster.partitions([services.topic, services.dead_letter_topic]):
        assert len(p["replicas"]) == 3, p
    for topic in (services.topic, services.dead_letter_topic):
        assert await cluster.min_insync_replicas(topic) == ("2", True)

    async with httpx.AsyncClient(base_url=services.url("intake"), timeout=60) as client:
        upstream = Upstream(client)
        drill = Drill(cluster, services, upstream, [asyncio.create_task(upstream.run(n)) for n in range(SENDERS)])
        try:
            await drill.flows("the stream to flow")
            killed: list[int] = []
            for _ in range(2):
                killed.append(await drill.pick_victim(killed))
                await drill.kill_one(killed[-1])
            await drill.kill_two((killed[0], killed[1]))
            await drill.flows("the stream after the drill")
        finally:
            upstream.stop.set()
            await asyncio.gather(*drill.senders, return_exceptions=True)
            streamed = drill.step("stream stopped") - drill.started
        for task in drill.senders:
            task.result()

    ends = await end_offsets(cluster.bootstrap, services.topic)
    await eventually(
        lambda: positions_caught_up(pool, services.topic, ends), timeout=90, interval=0.2, what="aggregator catch-up"
    )

    accepted_ids = [e["id"] for e in upstream.accepted]
    assert len(accepted_ids) == len(set(accepted_ids))  # each event answered 202 exactly once
    in_topic = [json.loads(value)["id"] for value in await read_topic(cluster.bootstrap, services.topic)]
    # Every 202 survived the kills; nothing is in the topic that upstream was not told was taken.
    assert set(in_topic) == set(accepted_ids)

    async with pool.acquire() as conn:
        identities = await conn.fetchval("SELECT count(*) FROM event_identities")
        rows = await conn.fetch(
            f"SELECT unit, {', '.join(f'sum({name})::int AS {name}' for name in FLOW_FIGURES)} "
            "FROM daily_counts WHERE day BETWEEN $1 AND $2 GROUP BY unit",
            *MARCH,
        )
    assert identities == len(accepted_ids)
    stored = {row["unit"]: {name: row[name] for name in FLOW_FIGURES} for row in rows}
    assert stored == expected_figures(upstream.accepted)
    assert services.processes["aggregator"].poll() is None, services.log("aggregator")[-3000:]

    statuses = Counter(a.status for a in upstream.answers)
    summary = {
        "events_accepted": len(accepted_ids),
        "events_sent_with_resends": sum(a.events for a in upstream.answers),
        "answers": {str(status): count for status, count in sorted(statuses.items())},
        "records_in_topic": len(in_topic),
        "duplicates_in_topic": len(in_topic) - len(set(in_topic)),
        "kills": drill.kills,
        "slowest_answer_seconds": round(max(a.answered_at - a.sent_at for a in upstream.answers), 1),
        "steps": drill.steps,
        "streamed_seconds": round(streamed, 1),
        "test_seconds": round(time.monotonic() - test_started, 1),
    }
    print("kafka cluster drill:", json.dumps(summary))  # noqa: T201 - the drill's numbers, shown with -s


def expected_figures(accepted: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """The March figures of each unit, counted by the reference model from the accepted events."""
    as_of = datetime(2023, 4, 1, tzinfo=VIETNAM)
    expected = {}
    for unit in UNITS:
        dossiers = figures(accepted, *MARCH, as_of, [unit])["dossiers"]
        expected[unit] = {name: dossiers[name] for name in FLOW_FIGURES}
    return expected
