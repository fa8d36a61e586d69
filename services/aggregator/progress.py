"""How far behind each partition is: lag, age of the oldest unapplied event, and stalls (pure).

The consumer tells a `PartitionProgress` what it fetched and what it applied; the metrics and
`/readyz` ask it at any moment, so a consumer blocked inside a batch (a lock, a database that
does not answer) is still seen as blocked while it waits.

- **Lag** is the partition's high watermark (the end offset the broker last reported with a
  fetch) minus the next offset to apply.
- **Oldest unapplied age**: the intake time of the first record not yet applied when it is in
  hand; after a batch that left records behind, the intake time of the batch's last record (the
  next record is newer, so the age shown is an upper bound until it is fetched).
- **Stalled**: records are waiting and the position has not moved for `stall_after` seconds,
  counted from the later of the last advance and the moment records started waiting.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Partition:
    position: int | None = None  # next offset to apply; None: nothing applied yet
    highwater: int | None = None
    waiting_since: float | None = None  # intake time (epoch seconds) bounding the oldest unapplied record
    moved_at: float = 0.0  # monotonic: last advance, assignment, or start of waiting


@dataclass(frozen=True)
class PartitionStatus:
    partition: int
    lag: int
    oldest_unapplied_age: float
    stalled: bool


class PartitionProgress:
    def __init__(self, stall_after: float) -> None:
        self._stall_after = stall_after
        self._partitions: dict[int, _Partition] = {}

    def assigned(self, partition: int, position: int | None, now: float) -> None:
        self._partitions[partition] = _Partition(position=position, moved_at=now)

    def revoked(self, partition: int) -> None:
        self._partitions.pop(partition, None)

    def fetched(
        self, partition: int, first_offset: int, first_intake_time: float, highwater: int | None, now: float
    ) -> None:
        """A poll brought records of the partition, the first unapplied one at `first_offset`."""
        state = self._partitions.get(partition)
        if state is None:
            return
        if highwater is not None:
            state.highwater = max(highwater, state.highwater or 0)
        if state.waiting_since is None and (state.position is None or first_offset >= state.position):
            state.waiting_since = first_intake_time
            state.moved_at = max(state.moved_at, now)

    def applied(self, partition: int, next_offset: int, last_intake_time: float, now: float) -> None:
        """A batch committed the partition's records up to `next_offset` (exclusive)."""
        state = self._partitions.get(partition)
        if state is None:
            return
        state.position = next_offset
        state.moved_at = now
        state.highwater = max(state.highwater or 0, next_offset)
        state.waiting_since = last_intake_time if state.highwater > next_offset else None

    def statuses(self, now_epoch: float, now: float) -> list[PartitionStatus]:
        out = []
        for partition, state in sorted(self._partitions.items()):
            lag = max(0, (state.highwater or 0) - (state.position or 0)) if state.highwater is not None else 0
            age = max(0.0, now_epoch - state.waiting_since) if lag and state.waiting_since is not None else 0.0
            stalled = lag > 0 and now - state.moved_at > self._stall_after
            out.append(PartitionStatus(partition, lag, age, stalled))
        return out
