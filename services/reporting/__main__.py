"""Run the reporting service: `python -m services.reporting`."""

from __future__ import annotations

import logging

import uvicorn

from services.reporting.app import create_app
from services.reporting.config import ReportingSettings


def main() -> None:
    settings = ReportingSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.bind_host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
