"""Request metrics by route template, and one merged view across worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client import REGISTRY

from services.infra.http_metrics import HttpMetricsMiddleware, add_metrics_route, prepare_multiprocess_dir

REPO = Path(__file__).resolve().parents[2]


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware)

    @app.get("/t/units/{code}")
    async def unit(code: str) -> dict[str, str]:
        return {"code": code}

    @app.get("/t/fails")
    async def fails() -> None:
        raise RuntimeError("boom")

    @app.get("/t/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> object:
            yield b"x"

        return StreamingResponse(chunks(), media_type="text/event-stream")  # type: ignore[arg-type]

    add_metrics_route(app)
    return app


def _count(route: str, method: str, status: str) -> float:
    value = REGISTRY.get_sample_value("tthc_http_requests_total", {"route": route, "method": method, "status": status})
    return value or 0.0


def _observations(route: str, method: str) -> float:
    value = REGISTRY.get_sample_value("tthc_http_request_duration_seconds_count", {"route": route, "method": method})
    return value or 0.0


async def test_requests_are_labelled_by_route_template_not_by_path() -> None:
    before = _count("/t/units/{code}", "GET", "200")
    observed = _observations("/t/units/{code}", "GET")
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for code in ("a", "b", "c"):
            assert (await client.get(f"/t/units/{code}")).status_code == 200
    assert _count("/t/units/{code}", "GET", "200") == before + 3
    assert _observations("/t/units/{code}", "GET") == observed + 3
    samples = [s for m in REGISTRY.collect() for s in m.samples if s.name == "tthc_http_requests_total"]
    assert not [s for s in samples if s.labels["route"].startswith("/t/units/") and "{" not in s.labels["route"]]


async def test_unknown_paths_and_methods_share_bounded_labels() -> None:
    unmatched = _count("(unmatched)", "GET", "404")
    other = _count("(unmatched)", "OTHER", "404")
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for n in range(5):
            assert (await client.get(f"/scan/{n}")).status_code == 404
        assert (await client.request("BREW", "/scan/pot")).status_code == 404
        assert (await client.post("/t/units/a")).status_code == 405
    assert _count("(unmatched)", "GET", "404") == unmatched + 5
    assert _count("(unmatched)", "OTHER", "404") == other + 1
    assert _count("/t/units/{code}", "POST", "405") >= 1


async def test_a_failing_route_counts_as_500_and_a_stream_is_timed_to_its_start() -> None:
    failed = _count("/t/fails", "GET", "500")
    streams = _observations("/t/stream", "GET")
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/t/fails")).status_code == 500
        assert (await client.get("/t/stream")).status_code == 200
        metrics = await client.get("/metrics")
        openapi = _count("/openapi.json", "GET", "200")
        assert (await client.get("/openapi.json")).status_code == 200
    assert _count("/openapi.json", "GET", "200") == openapi + 1
    assert _count("/t/fails", "GET", "500") == failed + 1
    assert _observations("/t/stream", "GET") == streams + 1
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "tthc_http_requests_total{" in metrics.text


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    import httpx
    from fastapi import FastAPI
    from services.infra.http_metrics import HttpMetricsMiddleware

    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware)

    @app.get("/w/{n}")
    async def answer(n: int) -> dict[str, int]:
        return {"n": n}

    async def main(count: int) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
            for n in range(count):
                await client.get(f"/w/{n}")

    asyncio.run(main(int(sys.argv[1])))
    """
)
READER = "import sys; from services.infra.http_metrics import metrics_text; sys.stdout.write(metrics_text().decode())"


def _run(code: str, *args: str, directory: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_several_workers_give_one_view_and_old_runs_are_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999999.db").write_bytes(b"stale file of an earlier run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    assert prepare_multiprocess_dir() == directory
    assert not (directory / "counter_999999999.db").exists()

    _run(WORKER, "3", directory=directory)
    _run(WORKER, "4", directory=directory)
    exposition = _run(READER, directory=directory)
    line = 'tthc_http_requests_total{method="GET",route="/w/{n}",status="200"} 7.0'
    assert line in exposition, exposition
    assert 'tthc_http_request_duration_seconds_count{method="GET",route="/w/{n}"} 7.0' in exposition


GAUGE_WORKER = textwrap.dedent(
    """
    import sys
    from prometheus_client import Gauge

    Gauge("tthc_test_open", "open things", multiprocess_mode="livesum").inc(int(sys.argv[1]))
    """
)


def test_the_live_gauges_of_a_worker_that_is_gone_leave_the_sum(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    _run(GAUGE_WORKER, "5", directory=directory)  # ended: its open things went with it
    _run(WORKER, "2", directory=directory)  # ended too: its counts stay
    alive = subprocess.Popen(
        [
            sys.executable,
            "-c",
            GAUGE_WORKER + "\nprint('ready', flush=True)\nsys.stdin.read()  # until the test is done",
            "3",
        ],
        cwd=REPO,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert alive.stdout is not None and alive.stdout.readline() == "ready\n"
        exposition = _run(READER, directory=directory)
    finally:
        alive.communicate(timeout=30)
    assert "tthc_test_open 3.0" in exposition, exposition
    assert 'tthc_http_requests_total{method="GET",route="/w/{n}",status="200"} 2.0' in exposition
    assert len(list(directory.glob("gauge_livesum_*.db"))) == 1
