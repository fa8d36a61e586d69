"""Where the aggregator stores an event's counts: the registry entry of its unit code on its fact day.

`registry_placement(registry)` is the `UnitResolver` the core is given (contract §1.1): the stored
key of the entry with that code valid on the local day, and the instant that entry ends (procedures
of an ended unit stop counting then). A v1 registry (no dates) stores plain codes and nothing ends,
exactly as `units_valid_forever`.

A code with no entry valid on the day cannot come from the intake (it answers 422 `data.unit`); it
can only be an event accepted under an earlier registry. It keeps its plain code as stored key, so
it is never lost from the tables, and counts in no unit of any tree (a tree maps only the keys of
its registry), until the registry names the code again.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from services.aggregator.domain import UnitPlacement, UnitResolver, unit_end, units_valid_forever
from shared.units import UnitRegistry

# Distinct (code, day) pairs a running aggregator sees: units × days with events, a few hundred
# thousand in a province-decade; the cache keeps the per-event lookup a dict hit.
_CACHE_SIZE = 1 << 18


def registry_placement(registry: UnitRegistry) -> UnitResolver:
    """The resolver of the core for this registry (the plain-code resolver for a v1 registry)."""
    if not registry.dated:
        return units_valid_forever

    @lru_cache(maxsize=_CACHE_SIZE)
    def placement(code: str, day: date) -> UnitPlacement:
        entry = registry.resolve(code, day)
        if entry is None:
            return UnitPlacement(code, None)
        return UnitPlacement(entry.key, unit_end(entry.valid_to))

    return placement
