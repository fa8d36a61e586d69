"""Run the reporting service: `python -m services.reporting`."""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn
from fastapi import FastAPI

from services.infra.http_timeouts import PROTOCOL
from services.reporting.app import create_app
from services.reporting.config import ReportingSettings

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


def main() -> None:
    settings = ReportingSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.workers > 1:
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
        return
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
