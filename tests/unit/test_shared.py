"""Unit tree, tokens and Vietnamese number formats (pure)."""

from __future__ import annotations

import pytest

from shared.polling import PollTimeout, poll_until
from shared.tokens import DEV_INTAKE_TOKEN, TokenGrant, TokenRegistry, hash_token
from shared.units import UnitTree, UnitTreeError
from shared.vietnamese import format_count, format_percent

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
    assert grant.allows_unit("my-hao.minh-duc", TREE)
    assert not grant.allows_unit("hung-yen", TREE)


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
