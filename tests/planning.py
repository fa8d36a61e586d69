"""Test helpers around the aggregator's core that production does not need.

`plan_batch` keys the events itself; `add_into` and `is_empty` sum and inspect counter deltas;
`dump_state` is one state's stored JSON, through the batch encoder the store writes with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from services.aggregator.domain import (
    AggregateKey,
    Contributions,
    State,
    UnitResolver,
    aggregate_key,
    units_valid_forever,
)
from services.aggregator.planner import BatchPlan, plan_keyed_batch
from services.aggregator.state_codec import dump_states
from shared.events import Event

K = TypeVar("K")


def plan_batch(
    events: Iterable[Event], prior: Mapping[AggregateKey, State], units: UnitResolver = units_valid_forever
) -> BatchPlan:
    return plan_keyed_batch(((aggregate_key(event), event) for event in events), prior, units)


def _accumulate(into: dict[K, int], delta: dict[K, int]) -> None:
    for key, value in delta.items():
        total = into.get(key, 0) + value
        if total:
            into[key] = total
        else:
            into.pop(key, None)


def add_into(total: Contributions, other: Contributions) -> None:
    """Accumulate `other` into `total` in place (zero entries dropped)."""
    for mine, theirs in zip(total.tables(), other.tables(), strict=True):
        _accumulate(mine, theirs)


def is_empty(delta: Contributions) -> bool:
    return not any(delta.tables())


def dump_state(state: State) -> str:
    """The JSON text the store writes for `state` (kind and key play no part in it)."""
    _kinds, _keys, (text,) = dump_states({("dossier", "-"): state})
    return text


def contributions_of(events: Iterable[Event]) -> Contributions:
    """The counter contributions of a set of events, by the aggregator's core."""
    return plan_batch(events, {}).delta
