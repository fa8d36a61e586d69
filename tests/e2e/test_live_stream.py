"""Snapshot and stream against the services as processes: ETag/304, changes by events and by time
alone, SSE delivery within a second, Last-Event-ID, heartbeats, token in the query, the stream cap."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import eventually
from tests.reporting_stack import READ, SSEReader, in_2023, now, open_stream, post, received, running_services
from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

SNAPSHOT_2023 = {"unit": "my-hao", "year": "2023"}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    # A short heartbeat so a test can see one; everything else as deployed.
    with running_services(Path(tmp_path_factory.mktemp("live")), STREAM_HEARTBEAT_SECONDS="1") as stack:
        yield stack


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=30.0)) as http:
        yield http


async def snapshot(
    client: httpx.AsyncClient, services: ServiceSet, params: dict[str, str], etag: str | None = None
) -> httpx.Response:
    headers = {**READ, **({"If-None-Match": etag} if etag else {})}
    return await client.get(f"{services.url('reporting')}/v1/snapshot", params=params, headers=headers)


def stream_url(services: ServiceSet, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"unit": "my-hao", "year": "2023", **params}.items())
    return f"{services.url('reporting')}/v1/stream?{query}"


async def test_unchanged_snapshot_is_304_and_one_event_changes_the_etag(
    client: httpx.AsyncClient, services: ServiceSet
) -> None:
    untouched = {"unit": "my-hao.hung-long", "year": "2023"}
    untouched_etag = (await snapshot(client, services, untouched)).headers["etag"]
    first = await snapshot(client, services, SNAPSHOT_2023)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"'), "a strong ETag"
    assert "no-cache" in first.headers["cache-control"]
    before = first.json()["dossiers"]["received"]

    unchanged = await snapshot(client, services, SNAPSHOT_2023, etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag

    await post(client, services.url("intake"), [received("my-hao.minh-duc", in_2023())])

    async def changed() -> httpx.Response | None:
        response = await snapshot(client, services, SNAPSHOT_2023, etag)
        return response if response.status_code == 200 else None

    fresh = await eventually(changed, timeout=15, what="a new snapshot version")
    assert fresh.headers["etag"] != etag
    assert fresh.json()["dossiers"]["received"] == before + 1
    assert (await snapshot(client, services, SNAPSHOT_2023, fresh.headers["etag"])).status_code == 304
    # If-None-Match uses the weak comparison and may list several tags.
    listed = f'W/{fresh.headers["etag"]}, "other"'
    assert (await snapshot(client, services, SNAPSHOT_2023, listed)).status_code == 304
    # The event changed no figure of another unit: its version stands.
    assert (await snapshot(client, services, untouched, untouched_etag)).status_code == 304


async def test_the_passing_of_time_alone_turns_a_dossier_overdue_and_changes_the_etag(
    client: httpx.AsyncClient, services: ServiceSet
) -> None:
    unit = {"unit": "my-hao.xuan-duc"}  # this year's snapshot: as_of is now
    start = now()
    due = start + timedelta(seconds=4)
    await post(client, services.url("intake"), [received(unit["unit"], start - timedelta(minutes=1), due_at=due)])

    async def in_progress() -> httpx.Response | None:
        response = await snapshot(client, services, unit)
        return response if response.json()["dossiers"]["in_progress"] == 1 else None

    before = await eventually(in_progress, timeout=15, what="the dossier in progress")
    assert before.json()["dossiers"]["in_progress_overdue"] == 0 or now() >= due

    async def overdue() -> httpx.Response | None:
        response = await snapshot(client, services, unit, before.headers["etag"])
        return response if response.status_code == 200 else None

    after = await eventually(overdue, timeout=20, what="a new version once the deadline passed")
    assert now() >= due
    assert after.json()["dossiers"]["in_progress_overdue"] == 1
    assert after.headers["etag"] != before.headers["etag"]


async def test_stream_pushes_a_change_within_a_second_and_resumes_with_last_event_id(
    client: httpx.AsyncClient, services: ServiceSet
) -> None:
    intake = services.url("intake")
    async with open_stream(client, stream_url(services), READ) as reader:
        first = await reader.next(timeout=10)
        assert first.event == "snapshot"
        current = (await snapshot(client, services, SNAPSHOT_2023)).headers["etag"]
        assert first.id == current.strip('"'), "the id of a message is its snapshot's ETag"
        received_before = json.loads(first.data)["dossiers"]["received"]

        accepted = await post(client, intake, [received("my-hao.minh-duc", in_2023(2))])
        update = await reader.next(timeout=5)
        assert update.received_at - accepted < 1.0, f"delivered {update.received_at - accepted:.3f}s after the 202"
        assert update.id != first.id
        assert json.loads(update.data)["dossiers"]["received"] == received_before + 1
        await eventually(_heartbeat_seen(reader), timeout=10, what="a heartbeat comment")
        assert reader.retry is not None

    # Reconnecting with the current version: nothing until the next change.
    async with open_stream(client, stream_url(services), {**READ, "Last-Event-ID": update.id or ""}) as reader:
        accepted = await post(client, intake, [received("my-hao.minh-duc", in_2023(3))])
        resumed = await reader.next(timeout=5)
        assert json.loads(resumed.data)["dossiers"]["received"] == received_before + 2, "the known version was resent"
        assert resumed.received_at - accepted < 1.0

    # Reconnecting with an older version: the current one at once.
    async with open_stream(client, stream_url(services), {**READ, "Last-Event-ID": first.id or ""}) as reader:
        caught_up = await reader.next(timeout=5)
        assert caught_up.id == resumed.id


def _heartbeat_seen(reader: SSEReader) -> Any:
    async def check() -> bool:
        return reader.comments > 0

    return check


async def test_stream_takes_the_token_from_the_query_and_refuses_without(
    client: httpx.AsyncClient, services: ServiceSet
) -> None:
    refused = await client.get(stream_url(services))
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 401
    async with open_stream(client, stream_url(services, access_token="dev-read-token")) as reader:
        assert (await reader.next(timeout=10)).event == "snapshot"
    unknown = await client.get(f"{services.url('reporting')}/v1/stream?unit=nowhere", headers=READ)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def test_stream_cap_answers_503_problem(client: httpx.AsyncClient, services: ServiceSet) -> None:
    services.start("capped", "reporting", MAX_STREAMS="2")
    try:
        url = f"{services.url('capped')}/v1/stream?unit=my-hao&year=2023"
        async with open_stream(client, url, READ) as one, open_stream(client, url, READ) as two:
            await one.next(timeout=10)
            await two.next(timeout=10)
            refused = await client.get(url, headers=READ)
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"]
            problem = refused.json()
            assert problem["title"] == "Too many streams" and "2 streams" in problem["detail"]

        async def slot_free() -> bool:
            async with client.stream("GET", url, headers=READ) as response:
                return response.status_code == 200

        assert await eventually(slot_free, timeout=10, what="a slot given back after the clients left")
    finally:
        services.stop("capped")


async def test_unknown_unit_and_year_not_begun_are_problems(client: httpx.AsyncClient, services: ServiceSet) -> None:
    missing = await snapshot(client, services, {"unit": "nowhere"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    future = await snapshot(client, services, {"unit": "my-hao", "year": str(now().year + 1)})
    assert future.status_code == 422
    assert future.json()["title"] == "Invalid period"
