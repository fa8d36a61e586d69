"""Plans the effects of one batch of events (pure): new states and the counter deltas."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.aggregator.domain import (
    AggregateKey,
    Contributions,
    State,
    UnitResolver,
    apply,
    initial_state,
    units_valid_forever,
)
from shared.events import Event


@dataclass(frozen=True)
class BatchPlan:
    states: dict[AggregateKey, State]  # only the states that changed
    delta: Contributions


def plan_keyed_batch(
    events: Iterable[tuple[AggregateKey, Event]],
    prior: Mapping[AggregateKey, State],
    units: UnitResolver = units_valid_forever,
) -> BatchPlan:
    """The new states of a batch of events with their aggregate keys, on the `prior` states, and
    the counter delta they make: the contributions of each changed state minus its prior's."""
    current: dict[AggregateKey, State] = {}
    for key, event in events:
        state = current.get(key) or prior.get(key) or initial_state(key)
        current[key] = apply(state, event)
    changed: dict[AggregateKey, State] = {}
    delta = Contributions.empty(units)
    for key, new in current.items():
        old = prior.get(key)
        if new is old or new == old:
            continue
        changed[key] = new
        delta.add_state(new)
        if old is not None:
            delta.add_state(old, sign=-1)
    delta.drop_zeros()
    return BatchPlan(changed, delta)
