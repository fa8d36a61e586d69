"""Settings of the intake service, from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from shared.settings import BaseServiceSettings, KafkaSettingsMixin


class IntakeSettings(BaseServiceSettings, KafkaSettingsMixin):
    port: int = Field(default=8001, validation_alias="INTAKE_PORT")
    bind_host: str = "127.0.0.1"
    # JSON list of {name, sha256, sources, units}; see docs/configuration.md.
    tokens_file: Path | None = None
    max_events_per_request: int = 1000
    max_request_bytes: int = 1024 * 1024
    # How long a request waits for Kafka's acknowledgement before answering 503.
    publish_timeout_seconds: float = Field(default=10.0, gt=0)
    retry_after_seconds: int = 5

    @model_validator(mode="after")
    def _production_needs_tokens(self) -> IntakeSettings:
        if self.environment == "production" and self.tokens_file is None:
            raise ValueError("TOKENS_FILE is required in production: there is no default token")
        return self
