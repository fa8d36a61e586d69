"""Posts events to the intake API in batches and measures the throughput.

Each batch is one `POST /v1/events` (`application/cloudevents-batch+json`), or for the DVCQG
synchronisation requests one `POST /v1/adapters/dvcqg` (`application/json`). A 503 means Kafka could
not take the events and nothing was acknowledged: the batch is sent again after `Retry-After`
seconds, a bounded number of times. Any other answer than 202 stops the run with the problem body.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)

DEV_INTAKE_TOKEN = "dev-intake-token"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 1_000  # the intake's limit per request
DEFAULT_ATTEMPTS = 10
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 30.0


class IntakeError(RuntimeError):
    """The intake refused a batch (any answer but 202, or 503 too many times)."""

    def __init__(self, status: int, problem: str, batch_start: int) -> None:
        super().__init__(f"intake answered {status} for the batch starting at event {batch_start}: {problem}")
        self.status = status
        self.problem = problem
        self.batch_start = batch_start


@dataclass(frozen=True)
class PostStats:
    events: int
    requests: int
    retries: int
    seconds: float
    last_accepted_monotonic: float  # time.monotonic() of the last 202
    last_accepted_at: datetime  # wall clock (UTC) of the last 202
    records: int = 0  # DVCQG records sent (the adapter's `accepted`); 0 for CloudEvents

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def post_events(
    events: Sequence[Mapping[str, Any]],
    intake_url: str,
    *,
    token: str = DEV_INTAKE_TOKEN,
    batch_size: int = DEFAULT_BATCH_SIZE,
    attempts: int = DEFAULT_ATTEMPTS,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PostStats:
    """Sends every event, batch by batch, in order; returns what was sent and how fast."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size must be between 1 and {MAX_BATCH_SIZE}")
    own_client = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": BATCH_CONTENT_TYPE}
    url = intake_url.rstrip("/") + "/v1/events"
    started = time.monotonic()
    requests = retries = 0
    last_monotonic, last_wall = started, datetime.now(UTC)
    try:
        for start in range(0, len(events), batch_size):
            body = json.dumps(list(events[start : start + batch_size]), ensure_ascii=False).encode()
            sent, retried, _ = _post_batch(http, url, headers, body, start, attempts, sleep)
            requests += sent
            retries += retried
            last_monotonic, last_wall = time.monotonic(), datetime.now(UTC)
    finally:
        if own_client:
            http.close()
    return PostStats(len(events), requests, retries, last_monotonic - started, last_monotonic, last_wall)


class DvcqgRequest(Protocol):
    """A copy of a DVCQG synchronisation request (scenario.dvcqg.Request)."""

    @property
    def params(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def records(self) -> int: ...


def post_dvcqg(
    requests: Sequence[DvcqgRequest],
    intake_url: str,
    *,
    token: str = DEV_INTAKE_TOKEN,
    attempts: int = DEFAULT_ATTEMPTS,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PostStats:
    """Sends every request to `POST /v1/adapters/dvcqg`, in order; `events` counts what the adapter derived."""
    own_client = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = intake_url.rstrip("/") + "/v1/adapters/dvcqg"
    started = time.monotonic()
    sent = retries = events = records = 0
    last_monotonic, last_wall = started, datetime.now(UTC)
    try:
        for request in requests:
            made, retried, answer = _post_batch(
                http, url, headers, request.body, records, attempts, sleep, params=request.params
            )
            sent += made
            retries += retried
            events += int(answer.get("events", 0))
            records += request.records
            last_monotonic, last_wall = time.monotonic(), datetime.now(UTC)
    finally:
        if own_client:
            http.close()
    return PostStats(events, sent, retries, last_monotonic - started, last_monotonic, last_wall, records)


def _post_batch(
    http: httpx.Client,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    batch_start: int,
    attempts: int,
    sleep: Callable[[float], None],
    params: Mapping[str, str] | None = None,
) -> tuple[int, int, dict[str, Any]]:
    """Posts one batch until it is accepted; returns (requests made, retries, the 202's body)."""
    for attempt in range(1, attempts + 1):
        response = http.post(url, content=body, headers=dict(headers), params=dict(params or {}))
        if response.status_code == 202:
            answer: dict[str, Any] = response.json()
            return attempt, attempt - 1, answer
        if response.status_code != 503 or attempt == attempts:
            raise IntakeError(response.status_code, response.text, batch_start)
        delay = retry_after_seconds(response.headers.get("Retry-After"))
        log.warning("intake unavailable (503), retrying batch at %d in %.1f s", batch_start, delay)
        sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float:
    """`Retry-After` as seconds (delta-seconds or HTTP-date), bounded; a default when absent."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
