"""Unit tree, tokens and Vietnamese number formats (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from services.infra.polling import PollTimeout, poll_until
from shared.tokens import DEV_INTAKE_TOKEN, TokenGrant, TokenRegistry, hash_token
from shared.units import HUNG_YEN_UNITS_RESOURCE, UnitRegistry, UnitTree, UnitTreeError
from shared.vietnamese import format_count, format_percent, format_points

TREE = UnitTree.load(None)


def test_shipped_tree_is_my_hao() -> None:
    assert TREE.units["my-hao"].name == "Thị xã Mỹ Hào"
    assert len(TREE.children["my-hao"]) == 13
    assert TREE.subtree("my-hao")[0] == "my-hao"
    assert len(TREE.subtree("hung-yen")) == 15
    assert TREE.subtree("my-hao.minh-duc") == ["my-hao.minh-duc"]


@pytest.mark.parametrize(
    "units",
    [
        [{"code": "a", "name": "A", "parent": None}, {"code": "a", "name": "A2", "parent": None}],
        [{"code": "a", "name": "A", "parent": "missing"}],
        [{"code": "a", "name": "A", "parent": "b"}, {"code": "b", "name": "B", "parent": "a"}],
    ],
    ids=["duplicate", "unknown parent", "cycle"],
)
def test_bad_trees_are_refused(units: list[dict[str, str | None]]) -> None:
    import json

    with pytest.raises(UnitTreeError):
        UnitTree.from_json(json.dumps(units))


def test_tokens_are_matched_by_hash_and_scoped() -> None:
    grant = TokenGrant(name="motcua", sha256=hash_token("s3cret"), sources=("urn:a",), units=("my-hao",))
    registry = TokenRegistry([grant])
    assert registry.authenticate("Bearer s3cret") == grant
    assert registry.authenticate("Bearer other") is None
    assert registry.authenticate(None) is None
    assert grant.allows_source("urn:a") and not grant.allows_source("urn:b")
    units = UnitRegistry.load(None)
    day = date(2023, 3, 1)
    assert grant.allows_unit("my-hao.minh-duc", units, day)
    assert not grant.allows_unit("hung-yen", units, day)


def test_token_subtrees_are_read_as_of_the_fact_date() -> None:
    """A token for the old town Thị xã Mỹ Hào (328) covers Bần Yên Nhân (12103) in 2024, not the new
    Phường Mỹ Hào that took code 12103 on 1 July 2025 (it sits directly under the province)."""
    units = UnitRegistry.load_shipped(HUNG_YEN_UNITS_RESOURCE)
    town = TokenGrant(name="town", sha256=hash_token("t"), units=("328",))
    assert town.allows_unit("12103", units, date(2024, 5, 2))
    assert not town.allows_unit("12103", units, date(2025, 7, 2))
    province = TokenGrant(name="province", sha256=hash_token("p"), units=("33",))
    assert province.allows_unit("12103", units, date(2024, 5, 2))
    assert province.allows_unit("12103", units, date(2025, 7, 2))


def test_development_token_only_when_asked() -> None:
    assert TokenRegistry.load(None, development_token=None).authenticate(f"Bearer {DEV_INTAKE_TOKEN}") is None
    assert TokenRegistry.load(None, development_token=DEV_INTAKE_TOKEN).authenticate(f"Bearer {DEV_INTAKE_TOKEN}")


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0"), (59, "59"), (1763, "1.763"), (13816, "13.816"), (1234567, "1.234.567")]
)
def test_counts_use_dots_for_thousands(value: int, text: str) -> None:
    assert format_count(value) == text


@pytest.mark.parametrize(
    ("ratio", "decimals", "text"),
    [
        (0.8109, 1, "81,1%"),
        (1.0, 1, "100%"),
        (0.5021, 2, "50,21%"),
        (0.2607, 1, "26,1%"),
        (None, 1, "–"),
        (0.75, 1, "75%"),
        (0.7792, 2, "77,92%"),
    ],
)
def test_percentages_use_a_decimal_comma(ratio: float | None, decimals: int, text: str) -> None:
    assert format_percent(ratio, decimals) == text


@pytest.mark.parametrize(
    ("value", "text"), [(6.25, "6,25"), (12.0, "12"), (0.5, "0,5"), (55.65, "55,65"), (19.445, "19,45"), (0.0, "0")]
)
def test_index_points_have_up_to_two_decimals_and_a_decimal_comma(value: float, text: str) -> None:
    assert format_points(value) == text


async def test_polling_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, "ready", "later"])
    calls: list[int] = []

    async def check() -> str | int | None:
        calls.append(1)
        return next(answers)

    assert await poll_until(check, within=5, interval=0) == "ready"
    assert len(calls) == 3


async def test_polling_gives_up_at_the_deadline_with_the_last_answer() -> None:
    async def check() -> int:
        return 0

    with pytest.raises(PollTimeout, match="waiting for nothing; last value: 0") as timed_out:
        await poll_until(check, within=0, interval=0, what="nothing")
    assert timed_out.value.last == 0
