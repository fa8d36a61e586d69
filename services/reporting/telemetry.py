"""Prometheus metrics of the reporting service (requests by route and status: services.infra.http_metrics).

Several workers share one view through prometheus-client's multiprocess mode (see
services/reporting/__main__.py): counters add up across workers, and the open-streams gauge is the
sum over the workers that are alive (`livesum`), so a worker that ended takes its streams with it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OPEN_STREAMS = Gauge(
    "tthc_reporting_open_streams", "Open Server-Sent Events streams (GET /v1/stream)", multiprocess_mode="livesum"
)
SNAPSHOTS = Counter(
    "tthc_reporting_snapshot_responses_total", "Snapshot answers, by kind (full or not_modified)", ["kind"]
)
# Both kinds exist from the start at 0, so rate() also counts a kind's first answer.
for _kind in ("full", "not_modified"):
    SNAPSHOTS.labels(_kind)
