"""Run the intake: `python -m services.intake`."""

from __future__ import annotations

import logging

import uvicorn

from services.infra.http_metrics import prepare_multiprocess_dir
from services.infra.http_timeouts import PROTOCOL
from services.intake.app import create_app
from services.intake.config import IntakeSettings


def main() -> None:
    settings = IntakeSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One process: multiprocess mode is only needed if PROMETHEUS_MULTIPROC_DIR is set; then start clean.
    prepare_multiprocess_dir()
    uvicorn.run(create_app(settings), host=settings.bind_host, port=settings.port, log_level="warning", http=PROTOCOL)


if __name__ == "__main__":
    main()
