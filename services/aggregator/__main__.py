"""Run the aggregator: `python -m services.aggregator`."""

from __future__ import annotations

import logging

import uvicorn

from services.aggregator.app import create_app
from services.aggregator.config import AggregatorSettings


def main() -> None:
    settings = AggregatorSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.bind_host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
