"""Settings of the reporting service, from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from shared.settings import BaseServiceSettings, DatabaseSettingsMixin


class ReportingSettings(BaseServiceSettings, DatabaseSettingsMixin):
    port: int = Field(default=8002, validation_alias="REPORTING_PORT")
    bind_host: str = "127.0.0.1"
    # JSON list of {name, sha256, units} for readers; see docs/configuration.md.
    read_tokens_file: Path | None = None
    db_pool_size: int = Field(default=8, ge=1)
    # Server-Sent Events (GET /v1/stream): past this many open streams the service answers 503.
    # Open SSE streams per worker process.
    max_streams: int = Field(default=2000, ge=1)
    # Worker processes sharing the port. Each keeps its own exact snapshot cache and stream poller;
    # two workers on two cores about double the snapshot requests/s (docs/operations.md).
    workers: int = Field(default=1, ge=1, validation_alias="REPORTING_WORKERS")
    # The shared poller's period: well under the 1 s freshness target, one tiny query per tick.
    stream_poll_seconds: float = Field(default=0.2, gt=0)
    # Contract §4: at most one snapshot a second per unit.
    stream_min_interval_seconds: float = Field(default=1.0, ge=0)
    # Comment lines on idle streams, so proxies do not close them.
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _production_needs_tokens(self) -> ReportingSettings:
        if self.environment == "production" and self.read_tokens_file is None:
            raise ValueError("READ_TOKENS_FILE is required in production: there is no default token")
        return self
