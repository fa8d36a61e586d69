"""The dated unit registry: validation, resolution by day, organs and the roll-up of each tree (pure)."""

from __future__ import annotations

import json
import random
import unicodedata
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.units import UnitRegistry, UnitRegistryError, UnitTree, UnitTreeError, normalize_organ

REFORM = date(2025, 7, 1)
BEFORE = REFORM - timedelta(days=1)


def unit(
    code: str,
    parent: str | None = None,
    valid_from: date | None = None,
    valid_to: date | None = None,
    successors: dict[str, bool] | None = None,
    organs: list[str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "code": code,
        "name": name or f"Đơn vị {code}",
        "parent": parent,
        "valid_from": valid_from and valid_from.isoformat(),
        "valid_to": valid_to and valid_to.isoformat(),
        "successors": [{"code": c, "whole": w} for c, w in (successors or {}).items()],
        "organs": organs or [],
    }


def registry(*entries: dict[str, Any]) -> UnitRegistry:
    return UnitRegistry.from_json(json.dumps(list(entries)))


def refused(*entries: dict[str, Any]) -> str:
    with pytest.raises(UnitRegistryError) as caught:
        registry(*entries)
    return str(caught.value)


def check_partitions(reg: UnitRegistry, day: date) -> None:
    """Every breakdown adds up: self + children + extra rows split each subtree without overlap, and
    the roots hold every entry that has a place in the tree."""
    tree = reg.tree(day)
    for code in tree.units:
        parts = [*tree.stored_keys(code, "self")]
        for child in tree.children[code]:
            parts.extend(tree.stored_keys(child))
        for row in tree.extra_rows(code):
            parts.extend(row.keys)
        assert sorted(parts) == list(tree.stored_keys(code)), code
    at_roots = [key for root in tree.roots for key in tree.stored_keys(root)]
    assert sorted(at_roots + list(tree.unplaced)) == sorted(e.key for e in reg.entries)


# -- validation


def test_v1_file_means_units_valid_forever() -> None:
    reg = UnitRegistry.load(None)
    assert not reg.dated
    assert all(e.key == e.code for e in reg.entries)
    tree = reg.tree(date(1990, 1, 1))
    assert tree is reg.tree(date(2999, 12, 31))
    assert tree.stored_keys("my-hao", "self") == ("my-hao",)
    assert tree.stored_keys("hung-yen") == tuple(sorted(tree.subtree("hung-yen")))
    assert tree.extra_rows("hung-yen") == () and tree.predecessors("my-hao") == ()
    assert reg.resolve("my-hao.minh-duc", REFORM) is tree.units["my-hao.minh-duc"]
    assert UnitTree.load(None).as_list() == tree.as_list()
    check_partitions(reg, REFORM)


def test_overlapping_codes_are_refused_naming_both_entries() -> None:
    message = refused(
        unit("p"),
        unit("a", "p", valid_to=REFORM),
        unit("a", "p", valid_from=date(2025, 6, 1)),
    )
    assert (
        "entry 2 (code 'a', valid_from 2025-06-01, valid_to null): overlaps"
        " entry 1 (code 'a', valid_from null, valid_to 2025-07-01)"
    ) in message


def test_the_same_code_twice_in_a_v1_file_is_refused() -> None:
    with pytest.raises(UnitTreeError, match=r"entry 1 .*overlaps entry 0"):
        UnitTree.from_json(json.dumps([{"code": "a", "name": "A", "parent": None}] * 2))


def test_a_successor_that_does_not_exist_is_refused() -> None:
    message = refused(unit("p"), unit("a", "p", valid_to=REFORM, successors={"b": True}))
    assert "entry 1 (code 'a', valid_from null, valid_to 2025-07-01): names an unknown successor 'b'" in message


def test_a_successor_must_exist_on_the_day_the_unit_ends() -> None:
    message = refused(
        unit("p"),
        unit("a", "p", valid_to=REFORM, successors={"b": True}),
        unit("b", "p", valid_from=REFORM + timedelta(days=1)),
    )
    assert (
        "entry 1 (code 'a', valid_from null, valid_to 2025-07-01): successor 'b' is not valid on 2025-07-01" in message
    )


def test_successors_cannot_loop() -> None:
    # b would have to be valid on a's last day + 1 and a on b's: one of them always ends first.
    message = refused(
        unit("a", valid_to=REFORM, successors={"b": True}),
        unit("b", valid_to=REFORM, successors={"a": True}),
    )
    assert "entry 0 (code 'a', valid_from null, valid_to 2025-07-01): successor 'b' is not valid" in message
    assert "entry 1 (code 'b', valid_from null, valid_to 2025-07-01): successor 'a' is not valid" in message


def test_a_parent_cycle_is_refused() -> None:
    message = refused(unit("a", "b"), unit("b", "a"))
    assert "entry 0 (code 'a', valid_from null, valid_to null): is its own ancestor" in message


def label(index: int, entry: dict[str, Any]) -> str:
    start, end = entry["valid_from"] or "null", entry["valid_to"] or "null"
    return f"entry {index} (code {entry['code']!r}, valid_from {start}, valid_to {end})"


BROKEN = {
    "empty period": ([unit("a", valid_from=REFORM, valid_to=REFORM)], "valid_from must be before valid_to"),
    "successors of an open unit": ([unit("b"), unit("a", successors={"b": True})], "has successors but never ends"),
    "one partial successor": (
        [unit("b", valid_from=REFORM), unit("a", valid_to=REFORM, successors={"b": False})],
        "successors must be one whole successor or several partial ones",
    ),
    "whole and partial": (
        [
            unit("b", valid_from=REFORM),
            unit("c", valid_from=REFORM),
            unit("a", valid_to=REFORM, successors={"b": True, "c": False}),
        ],
        "successors must be one whole successor or several partial ones",
    ),
    "unknown parent": ([unit("a", "p")], "names an unknown parent 'p'"),
    "parent ends first": (
        [unit("p", valid_to=REFORM), unit("a", "p")],
        "parent 'p' is not one unit valid on every day this unit is",
    ),
    # the child outlives the first entry of its parent's code: a unit whose parent changes is two entries
    "parent changes": (
        [unit("p", valid_to=REFORM, successors={"p": True}), unit("p", valid_from=REFORM), unit("a", "p")],
        "parent 'p' is not one unit valid on every day this unit is",
    ),
    "empty organ": ([unit("a", organs=["  "])], "has an empty organ"),
}


@pytest.mark.parametrize(("entries", "problem"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_rules_are_refused_naming_the_entry(entries: list[dict[str, Any]], problem: str) -> None:
    assert f"{label(len(entries) - 1, entries[-1])}: {problem}" in refused(*entries)


def test_malformed_fields_name_the_entry_and_the_field() -> None:
    raw = json.dumps([unit("p"), {**unit("a", "p"), "valid_from": "2025-7-1"}])
    with pytest.raises(UnitRegistryError, match=r"entry 1 \(code 'a'\): valid_from: Input should be a valid date"):
        UnitRegistry.from_json(raw)


def test_a_unit_whose_parent_changes_is_two_entries() -> None:
    reg = registry(
        unit("p"),
        unit("d", "p", valid_to=REFORM, successors={"x": False, "y": False}),
        unit("a", "d", valid_to=REFORM, successors={"a": True}),
        unit("a", "p", valid_from=REFORM),
        unit("x", "p", valid_from=REFORM),
        unit("y", "p", valid_from=REFORM),
    )
    assert reg.tree(BEFORE).units["a"].parent == "d"
    assert reg.tree(REFORM).units["a"].parent == "p"
    assert reg.tree(REFORM).stored_keys("a", "self") == ("a", "a@2025-07-01")


# -- resolution and code reuse

CODE_REUSE = (
    unit("33", name="Tỉnh Hưng Yên"),
    unit("328", "33", valid_to=REFORM, successors={"12103": True}, name="Thị xã Mỹ Hào"),
    unit("12103", "328", valid_to=REFORM, successors={"12103": True}, name="Phường Bần Yên Nhân"),
    unit("12106", "328", valid_to=REFORM, successors={"12103": True}, name="Phường Phan Đình Phùng"),
    unit("12103", "33", valid_from=REFORM, name="Phường Mỹ Hào"),
)


def test_a_reused_code_names_a_different_unit_on_each_side_of_the_reform() -> None:
    reg = registry(*CODE_REUSE)
    old, new = reg.resolve("12103", BEFORE), reg.resolve("12103", REFORM)
    assert old is not None and old.name == "Phường Bần Yên Nhân" and old.key == "12103"
    assert new is not None and new.name == "Phường Mỹ Hào" and new.key == "12103@2025-07-01"
    assert reg.entry("12103@2025-07-01") is new and reg.entry("12103") is old
    assert reg.resolve("12106", REFORM) is None and reg.resolve("nowhere", REFORM) is None
    tree = reg.tree(REFORM)
    assert tree.stored_keys("12103", "self") == ("12103", "12103@2025-07-01", "12106", "328")
    assert [(p.entry.name, p.whole) for p in tree.predecessors("12103")] == [
        ("Phường Bần Yên Nhân", True),
        ("Phường Phan Đình Phùng", True),
        ("Thị xã Mỹ Hào", True),
    ]
    ended = {"valid_from": None, "valid_to": "2025-07-01", "whole": True}
    assert tree.listing()[1] == {
        "code": "12103",
        "name": "Phường Mỹ Hào",
        "parent": "33",
        "valid_from": "2025-07-01",
        "valid_to": None,
        "predecessors": [
            {"code": "12103", "name": "Phường Bần Yên Nhân", **ended},
            {"code": "12106", "name": "Phường Phan Đình Phùng", **ended},
            {"code": "328", "name": "Thị xã Mỹ Hào", **ended},
        ],
    }


def test_trees_are_built_once_per_period() -> None:
    reg = registry(*CODE_REUSE)
    assert reg.boundaries == (REFORM,)
    assert reg.tree(date(2000, 1, 1)) is reg.tree(BEFORE)
    assert reg.tree(REFORM) is reg.tree(date(2999, 12, 31))
    assert (reg.tree(BEFORE).valid_from, reg.tree(BEFORE).valid_to) == (None, REFORM)
    assert (reg.tree(REFORM).valid_from, reg.tree(REFORM).valid_to) == (REFORM, None)


# -- roll-up


def test_whole_merges_count_in_the_successor_and_later_units_map_backward() -> None:
    reg = registry(
        unit("p"),
        unit("a", "p", valid_to=REFORM, successors={"c": True}),
        unit("b", "p", valid_to=REFORM, successors={"c": True}),
        unit("c", "p", valid_from=REFORM),
    )
    after = reg.tree(REFORM)
    assert after.stored_keys("c", "self") == ("a", "b", "c@2025-07-01")
    assert after.stored_keys("p") == ("a", "b", "c@2025-07-01", "p")
    assert after.extra_rows("p") == ()
    before = reg.tree(BEFORE)  # c took a and b, which have no common unit but p
    assert [(r.entry.key, r.kind, r.split, r.keys) for r in before.extra_rows("p")] == [
        ("c@2025-07-01", "successor", False, ("c@2025-07-01",))
    ]
    assert before.stored_keys("a") == ("a",) and before.home("c@2025-07-01") == "p"
    for day in (BEFORE, REFORM):
        check_partitions(reg, day)


def test_a_split_unit_counts_where_all_its_successors_are() -> None:
    reg = registry(
        unit("p"),
        unit("d", "p"),
        unit("a", "d", valid_to=REFORM, successors={"x": False, "y": False}),
        unit("x", "d", valid_from=REFORM),
        unit("y", "d", valid_from=REFORM),
        unit("z", "p", valid_from=REFORM),
    )
    after = reg.tree(REFORM)
    [row] = after.extra_rows("d")
    assert (row.entry.code, row.split, row.keys) == ("a", True, ("a",))
    assert after.stored_keys("x") == ("x@2025-07-01",) and after.stored_keys("d", "self") == ("d",)
    assert after.stored_keys("d") == ("a", "d", "x@2025-07-01", "y@2025-07-01")
    assert [(p.entry.code, p.whole) for p in after.predecessors("d")] == [("a", False)]
    assert after.predecessors("p") == () and after.extra_rows("p") == ()
    before = reg.tree(BEFORE)  # x and y were made of a alone; z of nothing: it goes to its parent
    assert before.stored_keys("a") == ("a", "x@2025-07-01", "y@2025-07-01")
    assert [(r.entry.code, r.kind) for r in before.extra_rows("a")] == [("x", "successor"), ("y", "successor")]
    assert [(r.entry.code, r.kind) for r in before.extra_rows("p")] == [("z", "successor")]
    for day in (BEFORE, REFORM):
        check_partitions(reg, day)


def test_splits_across_districts_count_in_the_province() -> None:
    reg = registry(
        unit("p"),
        unit("d1", "p", valid_to=REFORM, successors={"x": False, "y": False}),
        unit("d2", "p", valid_to=REFORM, successors={"y": True}),
        unit("a", "d1", valid_to=REFORM, successors={"x": False, "y": False}),
        unit("b", "d1", valid_to=REFORM, successors={"x": True}),
        unit("c", "d2", valid_to=REFORM, successors={"y": True}),
        unit("x", "p", valid_from=REFORM),
        unit("y", "p", valid_from=REFORM),
    )
    after = reg.tree(REFORM)
    assert [(r.entry.code, r.split, r.keys) for r in after.extra_rows("p")] == [
        ("a", True, ("a",)),
        ("d1", True, ("d1",)),
    ]
    assert after.stored_keys("y", "self") == ("c", "d2", "y@2025-07-01")
    assert [(p.entry.code, p.whole) for p in after.predecessors("p")] == [("a", False), ("d1", False)]
    before = reg.tree(BEFORE)  # y was made of part of a (in d1) and of c (in d2): the province
    assert [(r.entry.code, r.kind) for r in before.extra_rows("p")] == [("y", "successor")]
    assert [(r.entry.code, r.kind) for r in before.extra_rows("d1")] == [("x", "successor")]
    for day in (BEFORE, REFORM):
        check_partitions(reg, day)


def test_whole_merges_are_transitive() -> None:
    y1, y2 = date(2024, 1, 1), date(2025, 1, 1)
    reg = registry(
        unit("p"),
        unit("a", "p", valid_to=y1, successors={"b": True}),
        unit("b", "p", valid_from=y1, valid_to=y2, successors={"c": True}),
        unit("c", "p", valid_from=y2),
    )
    assert reg.tree(y2).stored_keys("c", "self") == ("a", "b@2024-01-01", "c@2025-01-01")
    assert [(p.entry.key, p.whole) for p in reg.tree(y2).predecessors("c")] == [("a", True), ("b@2024-01-01", True)]
    assert reg.tree(y1).stored_keys("b", "self") == ("a", "b@2024-01-01")
    assert [r.entry.key for r in reg.tree(y1).extra_rows("b")] == ["c@2025-01-01"]
    first = reg.tree(y1 - timedelta(days=1))
    assert [r.entry.key for r in first.extra_rows("a")] == ["b@2024-01-01", "c@2025-01-01"]
    for day in (y1 - timedelta(days=1), y1, y2):
        check_partitions(reg, day)


def test_units_merged_whole_into_a_split_unit_share_its_row() -> None:
    y1 = date(2024, 1, 1)
    reg = registry(
        unit("p"),
        unit("a", "p", valid_to=y1, successors={"b": True}),
        unit("b", "p", valid_to=REFORM, successors={"x": False, "y": False}),
        unit("x", "p", valid_from=REFORM),
        unit("y", "p", valid_from=REFORM),
    )
    tree = reg.tree(REFORM)
    [row] = tree.extra_rows("p")
    assert (row.entry.code, row.split, row.keys) == ("b", True, ("a", "b"))
    assert [(p.entry.code, p.whole) for p in tree.predecessors("p")] == [("a", False), ("b", False)]
    check_partitions(reg, REFORM)


def test_dissolved_units_count_in_their_parent_and_ended_roots_in_no_unit() -> None:
    reg = registry(
        unit("p"),
        unit("a", "p", valid_to=REFORM),
        unit("q", valid_to=REFORM),
        unit("b", "q", valid_to=REFORM),
    )
    tree = reg.tree(REFORM)
    [row] = tree.extra_rows("p")
    assert (row.entry.code, row.kind, row.split) == ("a", "dissolved", False)
    assert [(p.entry.code, p.whole) for p in tree.predecessors("p")] == [("a", False)]
    assert tree.unplaced == ("b", "q") and tree.home("q") is None
    check_partitions(reg, REFORM)


def test_a_province_merged_whole_keeps_its_communes_figures_in_the_new_province() -> None:
    reg = registry(
        unit("33"),
        unit("34", valid_to=REFORM, successors={"33": True}),
        unit("340", "34", valid_to=REFORM, successors={"n1": False, "n2": False}),
        unit("c1", "340", valid_to=REFORM, successors={"n1": True}),
        unit("c2", "340", valid_to=REFORM, successors={"n2": True}),
        unit("n1", "33", valid_from=REFORM),
        unit("n2", "33", valid_from=REFORM),
    )
    after = reg.tree(REFORM)
    assert after.roots == ("33",) and after.stored_keys("33", "self") == ("33", "34")
    assert after.stored_keys("n1", "self") == ("c1", "n1@2025-07-01")
    before = reg.tree(BEFORE)
    assert before.roots == ("33", "34")
    assert [r.entry.code for r in before.extra_rows("340")] == ["n1", "n2"]
    assert before.stored_keys("34") == ("34", "340", "c1", "c2", "n1@2025-07-01", "n2@2025-07-01")
    for day in (BEFORE, REFORM):
        check_partitions(reg, day)


def random_registry(rng: random.Random) -> UnitRegistry:
    """A province with districts and communes, then a few reorganizations: whole merges, splits,
    dissolutions, codes reused, a district abolished with its communes moved under the province."""
    entries: dict[str, dict[str, Any]] = {}  # stored key -> entry
    current: dict[str, str] = {}  # code of a unit open now -> its stored key
    serial = iter(range(10_000))

    def add(code: str, parent: str | None, since: date | None) -> None:
        entry = unit(code, parent, since)
        key = code if since is None else f"{code}@{since.isoformat()}"
        entries[key] = entry
        current[code] = key

    def end(code: str, day: date, successors: dict[str, bool]) -> None:
        entries[current.pop(code)].update(
            valid_to=day.isoformat(), successors=[{"code": c, "whole": w} for c, w in successors.items()]
        )

    add("p", None, None)
    for d in range(rng.randint(1, 3)):
        add(f"d{d}", "p", None)
        for _ in range(rng.randint(1, 4)):
            add(f"c{next(serial)}", f"d{d}", None)
    for year in range(2020, 2020 + rng.randint(1, 4)):
        day = date(year, 1, 1)
        communes = [c for c in current if c.startswith("c")]
        action = rng.choice(["merge", "split", "dissolve", "abolish"])
        if action == "merge" and communes:
            group = rng.sample(communes, rng.randint(1, min(3, len(communes))))
            parent = entries[current[group[0]]]["parent"]
            code = rng.choice([*group, f"c{next(serial)}"])  # the new unit often takes an old code
            for old in group:
                end(old, day, {code: True})
            add(code, parent, day)
        elif action == "split" and communes:
            old = rng.choice(communes)
            parent = entries[current[old]]["parent"]
            parts = [rng.choice([old, f"c{next(serial)}"]), f"c{next(serial)}", f"c{next(serial)}"][: rng.randint(2, 3)]
            end(old, day, dict.fromkeys(parts, False))
            for code in parts:
                add(code, parent, day)
        elif action == "dissolve" and communes:
            end(rng.choice(communes), day, {})
        elif action == "abolish":
            districts = [d for d in current if d.startswith("d")]
            if not districts:
                continue
            district = rng.choice(districts)
            members = [c for c in communes if entries[current[c]]["parent"] == district]
            takers = {c: f"c{next(serial)}" for c in members}
            end(district, day, {t: len(takers) == 1 for t in takers.values()})
            for old, new in takers.items():
                end(old, day, {new: True})
                add(new, "p", day)
    return UnitRegistry.from_json(json.dumps(list(entries.values())))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_every_breakdown_of_every_tree_adds_up(seed: int) -> None:
    reg = random_registry(random.Random(seed))
    for day in (date(2019, 6, 1), *reg.boundaries):
        check_partitions(reg, day)
        assert reg.tree(day).unplaced == ()


# -- organs


def test_organs_are_matched_normalized_and_by_day() -> None:
    name = "UBND phường Mỹ Hào"
    reg = registry(
        unit("33", organs=["000.00.00.H31", "UBND tỉnh Hưng Yên"]),
        unit("12103", "33", valid_to=REFORM, successors={"12103": True}, organs=["UBND phường Bần Yên Nhân"]),
        unit("12103", "33", valid_from=REFORM, organs=["001.00.00.H31", name, "Bộ phận Một cửa phường Mỹ Hào"]),
        unit("328", "33", valid_to=REFORM, organs=["UBND thị xã Mỹ Hào"]),
    )
    decomposed = unicodedata.normalize("NFD", "  ubnd   PHƯỜNG\tmỹ  hào ")
    assert decomposed != name.lower()
    found = reg.resolve_organ(decomposed, REFORM)
    assert found is not None and found.key == "12103@2025-07-01"
    assert reg.resolve_organ(name, BEFORE) is None
    old = reg.resolve_organ("ubnd phường bần yên nhân", BEFORE)
    assert old is not None and old.key == "12103"
    assert reg.resolve_organ("UBND phường Bần Yên Nhân", REFORM) is None
    assert reg.resolve_organ("000.00.00.h31", REFORM) == reg.entry("33")
    assert reg.resolve_organ("UBND thị xã Mỹ Hào", BEFORE) == reg.entry("328")
    assert normalize_organ(" Bộ  phận\u00a0Một cửa ") == "bộ phận một cửa"


def test_one_organ_may_name_units_on_different_days_only() -> None:
    accepted = registry(
        unit("a", valid_to=REFORM, successors={"b": True}, organs=["UBND xã Lạc Đạo"]),
        unit("b", valid_from=REFORM, organs=["ubnd xã lạc đạo"]),
    )
    assert accepted.resolve_organ("UBND xã Lạc Đạo", REFORM) == accepted.entry("b@2025-07-01")
    message = refused(unit("a", organs=["UBND xã Tân Tiến"]), unit("b", organs=["UBND  xã tân tiến"]))
    assert (
        "entry 1 (code 'b', valid_from null, valid_to null): organ 'ubnd xã tân tiến' also names"
        " entry 0 (code 'a', valid_from null, valid_to null) on the same days"
    ) in message
