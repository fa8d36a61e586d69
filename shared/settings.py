"""Settings pieces that several services share; each service composes its own frozen Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import topics
from shared.units import UnitRegistry, UnitTree

Environment = Literal["development", "production"]


class BaseServiceSettings(BaseSettings):
    """Environment-driven settings common to every service."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    environment: Environment = "development"
    units_file: Path | None = None
    log_level: str = "INFO"

    def unit_registry(self) -> UnitRegistry:
        return UnitRegistry.load(self.units_file)

    def unit_tree(self) -> UnitTree:
        """Today's tree of the registry."""
        return self.unit_registry().today()


class KafkaSettingsMixin(BaseSettings):
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    events_topic: str = topics.EVENTS_TOPIC
    dead_letter_topic: str = topics.DEAD_LETTER_TOPIC
    events_partitions: int = Field(default=topics.EVENTS_PARTITIONS, ge=1)
    # Of the topics the services create. One broker: 1 and 1. A cluster (deploy/kafka-cluster.sh):
    # 3 and 2, so a write acknowledged with acks=all is on two brokers and survives losing one.
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _min_insync_within_replicas(self) -> KafkaSettingsMixin:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                f"KAFKA_MIN_INSYNC_REPLICAS={self.kafka_min_insync_replicas} exceeds "
                f"KAFKA_REPLICATION_FACTOR={self.kafka_replication_factor}: no write could ever be acknowledged"
            )
        return self


class DatabaseSettingsMixin(BaseSettings):
    database_url: SecretStr = SecretStr("postgresql://tthc:tthc@127.0.0.1:5433/tthc")
    # Every table lives in this schema, so tests and replays can use their own.
    database_schema: str = Field(default="tthc", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    def session_settings(self) -> dict[str, str]:
        """PostgreSQL settings of every connection a service's pool opens on the schema."""
        return {"search_path": self.database_schema}
