"""Where the aggregator stores a fact: the registry entry of its unit code valid on its day (pure)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from services.aggregator.domain import UnitPlacement, units_valid_forever
from services.aggregator.unit_placement import registry_placement
from shared.units import HUNG_YEN_UNITS_RESOURCE, UnitRegistry

VIETNAM = timezone(timedelta(hours=7))


def test_a_registry_without_dates_stores_plain_codes() -> None:
    assert registry_placement(UnitRegistry.load(None)) is units_valid_forever


def test_a_reused_code_is_stored_under_the_unit_of_the_day() -> None:
    placement = registry_placement(UnitRegistry.load_shipped(HUNG_YEN_UNITS_RESOURCE))
    # 12103 is Phường Bần Yên Nhân until 30 June 2025 (it ends on 1 July), Phường Mỹ Hào after.
    assert placement("12103", date(2025, 6, 30)) == UnitPlacement("12103", datetime(2025, 7, 1, tzinfo=VIETNAM))
    assert placement("12103", date(2025, 7, 1)) == UnitPlacement("12103@2025-07-01", None)
    assert placement("33", date(2023, 5, 1)) == UnitPlacement("33", None)  # the province goes on


def test_a_code_the_registry_does_not_know_on_that_day_keeps_its_plain_code() -> None:
    placement = registry_placement(UnitRegistry.load_shipped(HUNG_YEN_UNITS_RESOURCE))
    assert placement("12106", date(2026, 1, 5)) == UnitPlacement("12106", None)  # Phan Đình Phùng had ended
    assert placement("nowhere", date(2026, 1, 5)) == UnitPlacement("nowhere", None)
