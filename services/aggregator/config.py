"""Settings of the aggregator, from the environment."""

from __future__ import annotations

from pydantic import AliasChoices, AwareDatetime, Field

from shared.settings import BaseServiceSettings, DatabaseSettingsMixin, KafkaSettingsMixin


class AggregatorSettings(BaseServiceSettings, KafkaSettingsMixin, DatabaseSettingsMixin):
    consumer_group: str = "tthc-aggregator"
    port: int = Field(default=8003, validation_alias="AGGREGATOR_PORT")
    bind_host: str = "127.0.0.1"
    # Records per poll. Larger polls amortize the per-transaction cost and the wait for a poll's
    # slowest lane (benchmarks/aggregator_bench.py, 2 cores, 1M events: about 25k events/s at
    # 20,000, 28.6k at 50,000, peak RSS 340 MiB); getmany returns at once with fewer records when
    # fewer are waiting, so this only matters with a backlog.
    max_batch_records: int = Field(default=50_000, ge=1)
    # A poll's partitions are applied in this many concurrent transactions (lanes), so that one
    # lane's Python work overlaps another's wait for PostgreSQL.
    apply_lanes: int = Field(default=4, ge=1)
    poll_timeout_ms: int = Field(default=200, ge=1)
    # Short enough that a dead instance's partitions move within seconds.
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=2_000, ge=100)
    # Back-off after a retriable database failure, doubled up to the maximum.
    retry_initial_seconds: float = 0.2
    retry_max_seconds: float = 5.0
    db_pool_size: int = Field(default=6, ge=1)  # a connection per lane, and two for positions and readiness
    # PostgreSQL ends a transaction left idle this long (an instance paused mid-batch), releasing
    # its locks so the partition's new owner can go on; the paused instance's commit then fails.
    db_idle_in_transaction_timeout_ms: int = Field(default=10_000, ge=1000)
    # Level changes are stored exactly from the start of yesterday on (`pipeline.exact_levels_from`):
    # the API only asks figures at a day's end or now. Set, exact changes are kept from this instant
    # on as well, for figures at past instants (the in-process queries of tests and audits).
    exact_level_changes_since: AwareDatetime | None = None
    # /readyz fails, and tthc_aggregator_stalled_partitions counts a partition, while records wait
    # on it and its position has not moved for this long (a blocked lock, a database that hangs).
    stall_after_seconds: float = Field(
        default=60.0, gt=0, validation_alias=AliasChoices("aggregator_stall_after_seconds", "stall_after_seconds")
    )
