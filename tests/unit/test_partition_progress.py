"""Lag, oldest unapplied age and stalls of the aggregator's partitions (pure, with a given clock)."""

from __future__ import annotations

from services.aggregator.progress import PartitionProgress


def test_lag_rises_with_fetched_records_and_falls_to_zero_once_applied() -> None:
    progress = PartitionProgress(stall_after=30)
    progress.assigned(0, None, now=0)
    assert progress.statuses(1000, 0)[0].lag == 0
    progress.fetched(0, first_offset=0, first_intake_time=990, highwater=100, now=1)
    status = progress.statuses(1000, 1)[0]
    assert (status.lag, status.oldest_unapplied_age, status.stalled) == (100, 10, False)
    progress.applied(0, next_offset=60, last_intake_time=995, now=2)
    status = progress.statuses(1000, 2)[0]
    assert (status.lag, status.oldest_unapplied_age) == (40, 5)  # bounded by the last applied record
    progress.applied(0, next_offset=100, last_intake_time=999, now=3)
    status = progress.statuses(1000, 3)[0]
    assert (status.lag, status.oldest_unapplied_age, status.stalled) == (0, 0, False)


def test_a_partition_is_stalled_only_while_records_wait_without_progress() -> None:
    progress = PartitionProgress(stall_after=30)
    progress.assigned(3, 50, now=0)
    assert not progress.statuses(0, 1000)[0].stalled  # idle for long, nothing waiting
    progress.fetched(3, first_offset=50, first_intake_time=0, highwater=51, now=1000)
    assert not progress.statuses(0, 1029)[0].stalled  # waiting since 1000, not for 30 s yet
    assert progress.statuses(0, 1031)[0].stalled
    progress.applied(3, next_offset=51, last_intake_time=0, now=1032)
    assert not progress.statuses(0, 1100)[0].stalled


def test_records_before_the_position_do_not_start_a_wait_and_revoked_partitions_are_gone() -> None:
    progress = PartitionProgress(stall_after=30)
    progress.assigned(1, 10, now=0)
    progress.fetched(1, first_offset=5, first_intake_time=0, highwater=10, now=1)
    assert progress.statuses(100, 100)[0].lag == 0
    progress.revoked(1)
    assert progress.statuses(100, 100) == []


def test_the_batch_histogram_counts_values_into_cumulative_buckets_as_prometheus_does() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from services.aggregator import telemetry

    registry = CollectorRegistry()
    histogram = telemetry.BatchHistogram("t_seconds", "test", buckets=(0.1, 1), registry=registry)
    histogram.observe_many([0.05, 0.1, 0.5, 3.0])
    lines = [line for line in generate_latest(registry).decode().splitlines() if not line.startswith("#")]
    assert lines == [
        't_seconds_bucket{le="0.1"} 2.0',  # le: a value equal to the bound is in its bucket
        't_seconds_bucket{le="1.0"} 3.0',
        't_seconds_bucket{le="+Inf"} 4.0',
        "t_seconds_count 4.0",
        "t_seconds_sum 3.65",
    ]
