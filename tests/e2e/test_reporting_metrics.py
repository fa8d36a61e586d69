"""The metrics of reporting with two worker processes, as deployed: whichever worker answers a scrape,
`/metrics` is one view of both. Counters are the sums of the workers' own counts and never go back
from one scrape to the next, also when a worker is killed; the open-streams gauge is the streams of
the workers alive.

The per-worker counts are read from the workers' files in PROMETHEUS_MULTIPROC_DIR, to check that
both workers did answer requests (the kernel spreads new connections over them) and that the merged
figure is their sum. Without the merge, successive scrapes would show one worker's counts, then the
other's, and the checks below would fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import eventually
from tests.reporting_stack import READ, open_stream
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

SNAPSHOT = {"unit": "my-hao", "year": "2023"}
REQUESTS = ("tthc_http_requests_total", {"route": "/v1/snapshot", "method": "GET", "status": "200"})
FULL = ("tthc_reporting_snapshot_responses_total", {"kind": "full"})
OPEN = ("tthc_reporting_open_streams", {})
ROUNDS, PER_ROUND, STREAMS = 8, 6, 6

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("reporting-metrics"))


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, metrics_dir: Path) -> Iterator[ServiceSet]:
    stack = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("metrics")))
    try:
        stack.start("aggregator", "aggregator")  # creates the schema reporting reads
        stack.start("reporting", "reporting", REPORTING_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # One connection per request: a kept-alive connection would stay with one worker.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=30.0), limits=limits) as http:
        yield http


async def scrape(client: httpx.AsyncClient, services: ServiceSet) -> Samples:
    response = await client.get(f"{services.url('reporting')}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, metric: tuple[str, dict[str, str]]) -> float:
    name, labels = metric
    return samples.get((name, frozenset(labels.items())), 0.0)


def worker_pids(services: ServiceSet, metrics_dir: Path) -> set[int]:
    """The workers (not the supervisor) that have a live gauge file: the ones running."""
    supervisor = services.processes["reporting"].pid
    pids = {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("gauge_livesum_*.db")}
    return pids - {supervisor}


def snapshot_requests_by_pid(metrics_dir: Path) -> Counter[int]:
    """Each process's own count of GET /v1/snapshot answered 200, from its file."""
    counts: Counter[int] = Counter()
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for key, count, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if '"tthc_http_requests_total"' in key and '"/v1/snapshot"' in key and '"200"' in key:
                counts[pid] += int(count)
    return counts


async def read_snapshots(client: httpx.AsyncClient, services: ServiceSet, count: int) -> None:
    """`count` snapshot requests at once, each on a connection of its own: while one worker answers,
    the other accepts (one request after another could all go to the worker that is idle first)."""

    async def read() -> None:
        response = await client.get(f"{services.url('reporting')}/v1/snapshot", params=SNAPSHOT, headers=READ)
        assert response.status_code == 200, response.text

    await asyncio.gather(*(read() for _ in range(count)))


async def test_counters_are_summed_over_both_workers_and_never_go_back(
    client: httpx.AsyncClient, services: ServiceSet, metrics_dir: Path
) -> None:
    async def both_workers_answer() -> bool:
        # The second worker may still be starting when the stack reports ready (one answers /healthz).
        await read_snapshots(client, services, PER_ROUND)
        workers, by_pid = worker_pids(services, metrics_dir), snapshot_requests_by_pid(metrics_dir)
        return len(workers) == 2 and all(by_pid[pid] > 0 for pid in workers)

    await eventually(both_workers_answer, timeout=30, interval=0.2, what="both workers answering snapshots")
    first = await scrape(client, services)
    requests, full = value(first, REQUESTS), value(first, FULL)
    for round_ in range(1, ROUNDS + 1):
        await read_snapshots(client, services, PER_ROUND)
        samples = await scrape(client, services)
        # Counted before the answer is sent: exact at once, whichever worker answers the scrape.
        assert value(samples, FULL) == full + PER_ROUND, f"round {round_}"
        full = value(samples, FULL)
        # Counted once the answer is sent, so a scrape may come just before: never less than before.
        assert value(samples, REQUESTS) >= requests, f"round {round_}: went back"
        requests = value(samples, REQUESTS)

    expected = value(first, REQUESTS) + ROUNDS * PER_ROUND

    async def all_counted() -> bool:
        return value(await scrape(client, services), REQUESTS) == expected

    await eventually(all_counted, timeout=10, interval=0.1, what="every snapshot request counted")
    by_pid = snapshot_requests_by_pid(metrics_dir)
    workers = worker_pids(services, metrics_dir)
    assert len(workers) == 2, workers
    assert all(by_pid[pid] > 0 for pid in workers), f"both workers answered: {by_pid}"
    assert sum(by_pid.values()) == expected
    for _ in range(4):  # successive scrapes, answered by either worker, agree
        assert value(await scrape(client, services), REQUESTS) == expected


def open_streams_by_pid(metrics_dir: Path) -> Counter[int]:
    """Each process's own open streams, from its live gauge file."""
    counts: Counter[int] = Counter()
    for path in metrics_dir.glob("gauge_livesum_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for key, count, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if '"tthc_reporting_open_streams"' in key:
                counts[pid] += int(count)
    return counts


async def test_open_streams_are_summed_and_a_killed_worker_leaves_the_sum_not_the_counts(
    client: httpx.AsyncClient, services: ServiceSet, metrics_dir: Path
) -> None:
    url = f"{services.url('reporting')}/v1/stream?unit=my-hao&year=2023"

    async def open_streams_are(expected: float) -> bool:
        return value(await scrape(client, services), OPEN) == expected

    async with AsyncExitStack() as streams:
        for _ in range(STREAMS):
            # Each stream on a client of its own: its own connection, to either worker.
            own = await streams.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=60.0)))
            reader = await streams.enter_async_context(open_stream(own, url, READ))
            await reader.next(timeout=10)  # the first snapshot: the stream is served
        await eventually(lambda: open_streams_are(STREAMS), timeout=10, interval=0.1, what="every stream counted")
        for _ in range(4):  # successive scrapes, answered by either worker, agree
            assert value(await scrape(client, services), OPEN) == STREAMS
        by_pid = open_streams_by_pid(metrics_dir)
        assert sum(by_pid.values()) == STREAMS, by_pid

        await read_snapshots(client, services, PER_ROUND)
        before = await scrape(client, services)
        victim, held = by_pid.most_common(1)[0]
        os.kill(victim, signal.SIGKILL)
        # Its streams leave the sum at the next scrape; its counts stay.
        await eventually(
            lambda: open_streams_are(STREAMS - held), timeout=20, interval=0.2, what="the killed worker's streams gone"
        )
        after = await scrape(client, services)
        assert value(after, REQUESTS) >= value(before, REQUESTS), "the killed worker's counts stay"
        assert value(after, FULL) == value(before, FULL)

    await eventually(lambda: open_streams_are(0), timeout=15, interval=0.2, what="every stream closed")

    async def replaced() -> bool:
        await scrape(client, services)  # a scrape drops the files of workers that are gone
        workers = worker_pids(services, metrics_dir)
        return len(workers) == 2 and victim not in workers

    await eventually(replaced, timeout=30, interval=0.2, what="a new worker in place of the killed one")
    await read_snapshots(client, services, 1)
