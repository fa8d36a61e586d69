"""Run the reporting service: `python -m services.reporting`."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from types import FrameType

import uvicorn
from fastapi import FastAPI

from services.infra.http_metrics import MULTIPROC_DIR_VARIABLE, multiprocess_dir, prepare_multiprocess_dir
from services.infra.http_timeouts import PROTOCOL

# The app's metrics open their files in the multiprocess folder while the app is imported: the
# folder must exist by then (deploy/services.sh names one under .local/run that may not yet).
if (_metrics_dir := multiprocess_dir()) is not None:
    _metrics_dir.mkdir(parents=True, exist_ok=True)

from services.reporting.app import create_app
from services.reporting.config import ReportingSettings

log = logging.getLogger(__name__)

# Open SSE streams would otherwise keep uvicorn waiting for ever; the hub ends them at once on
# SIGTERM, this bounds whatever else is still in flight.
GRACEFUL_SHUTDOWN_SECONDS = 5


class ReportingServer(uvicorn.Server):
    """Ends the live streams as soon as a stop signal arrives, so shutdown does not wait on them."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        hub = getattr(self._app.state, "hub", None)
        if hub is not None:
            hub.close_threadsafe()
        super().handle_exit(sig, frame)


def run_workers(settings: ReportingSettings) -> None:
    """Several worker processes behind one port, with one view of their metrics.

    Each worker is a fresh interpreter (uvicorn spawns them) that reads PROMETHEUS_MULTIPROC_DIR
    when it imports prometheus-client, so the folder is chosen here, before they start. Without
    it every scrape would see the counters of whichever worker answered: counts would jump back
    and forth. If the deployment names no folder, a private one lives as long as this supervisor.
    """
    private = None
    if multiprocess_dir() is None:
        private = tempfile.mkdtemp(prefix="tthc-reporting-metrics-")
        os.environ[MULTIPROC_DIR_VARIABLE] = private
        log.info("metrics of the %d workers merged in %s", settings.workers, private)
    prepare_multiprocess_dir()
    try:
        # uvicorn's supervisor imports the factory in each worker; streams then end within the
        # graceful shutdown bound rather than at once.
        uvicorn.run(
            "services.reporting.app:create_app",
            factory=True,
            workers=settings.workers,
            host=settings.bind_host,
            port=settings.port,
            log_level="warning",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            http=PROTOCOL,
        )
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def main() -> None:
    settings = ReportingSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.workers > 1:
        run_workers(settings)
        return
    # One process: multiprocess mode only if PROMETHEUS_MULTIPROC_DIR is set; then start clean.
    prepare_multiprocess_dir()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.bind_host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        http=PROTOCOL,
    )
    ReportingServer(config, app).run()


if __name__ == "__main__":
    main()
