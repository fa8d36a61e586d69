"""The tests' reference roll-up (written from contract §1.1) and the registry's stored keys agree on
the Hưng Yên registry, for every unit of trees on both sides of the 1 July 2025 reform, both scopes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from shared.data import __file__ as data_init
from shared.units import HUNG_YEN_UNITS_RESOURCE, UnitEntry, UnitRegistry
from tests.reference_units import ReferenceRegistry

PATH = Path(data_init).parent / HUNG_YEN_UNITS_RESOURCE
REGISTRY = UnitRegistry.load(PATH)
REFERENCE = ReferenceRegistry.load(PATH)
TREES = [date(2024, 12, 31), date(2025, 6, 30), date(2025, 7, 1), date(2026, 11, 30)]


def first_day(entry: UnitEntry) -> date:
    return entry.valid_from or date(1970, 1, 1)


@pytest.mark.parametrize("tree_day", TREES, ids=str)
@pytest.mark.parametrize("scope", ["self", "subtree"])
def test_every_unit_counts_the_entries_the_contract_says(tree_day: date, scope: str) -> None:
    tree = REGISTRY.tree(tree_day)
    assert sorted(REFERENCE.tree_units(tree_day)) == sorted(tree.units)
    for code in tree.units:
        counts = REFERENCE.counts_in(code, tree_day, scope)
        expected = sorted(e.key for e in REGISTRY.entries if counts(e.code, first_day(e)))
        assert list(tree.stored_keys(code, scope)) == expected, code  # type: ignore[arg-type]


def test_the_reference_sees_the_reform_as_the_contract_words_it() -> None:
    old, new = date(2024, 12, 31), date(2026, 11, 30)
    ward = REFERENCE.counts_in("12103", new, "self")  # Phường Mỹ Hào
    assert ward("12106", date(2024, 5, 1)) and ward("12103", date(2024, 5, 1)) and ward("12103", date(2026, 1, 5))
    assert not ward("12133", date(2026, 1, 5))
    ban_yen_nhan = REFERENCE.counts_in("12103", old, "self")
    assert ban_yen_nhan("12103", date(2024, 5, 1)) and not ban_yen_nhan("12103", date(2026, 1, 5))
    # Xã Đình Dù was split: in the new tree it counts in the province only, not in either successor.
    assert REFERENCE.counts_in("33", new, "subtree")("12004", date(2024, 5, 1))
    assert not REFERENCE.counts_in("12004", new, "subtree")("12004", date(2024, 5, 1))
    assert not REFERENCE.counts_in("11995", new, "subtree")("12004", date(2024, 5, 1))
    # The town's subtree in the old tree keeps the new wards' later events (they map backward).
    assert REFERENCE.counts_in("328", old, "subtree")("12133", date(2026, 1, 5))
