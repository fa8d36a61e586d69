"""Decision 766 index (contract §5.1): the shipped formula, the scoring rules and the loader's checks.

Expected values are worked out by hand from the words of §5.1, not from the code.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from services.reporting.index766 import (
    INPUTS,
    FormulaError,
    Index766,
    ScoringInputError,
    formula_from_dict,
    load_formula,
    rank_children,
    render_index,
    round_half_up,
    score,
)

FORMULA = load_formula()


def shipped() -> dict[str, Any]:
    text = resources.files("services.reporting.formulas").joinpath("766-2025.1.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def zeros(**counts: int) -> dict[str, int]:
    return {**dict.fromkeys(INPUTS, 0), **counts}


def component_entry(raw: dict[str, Any], code: str) -> dict[str, Any]:
    return next(entry for entry in raw["components"] if entry["code"] == code)


# --- the shipped formula --------------------------------------------------------------------------

GROUPS = [
    ("CKMB", "Công khai, minh bạch", 18),
    ("TDGQ", "Tiến độ giải quyết", 20),
    ("ONLINE", "Dịch vụ công trực tuyến", 12),
    ("TTTT", "Thanh toán trực tuyến", 10),
    ("MDSH", "Số hóa hồ sơ", 22),
    ("MDHL", "Mức độ hài lòng", 18),
]

# code, group, points, scoring, threshold; None scoring: computed: false (no input).
COMPONENTS = [
    ("1.1", "CKMB", 6, None, None),
    ("1.2", "CKMB", 4, None, None),
    ("1.3", "CKMB", 2, None, None),
    ("1.4", "CKMB", 6, "linear", None),
    ("2.1", "TDGQ", 20, "linear", None),
    ("3.1", "ONLINE", 2, "threshold", "0.8"),
    ("3.2", "ONLINE", 4, "linear", None),
    ("3.3", "ONLINE", 6, "threshold", "0.5"),
    ("3.5a", "TTTT", 2, "threshold", "0.8"),
    ("3.5b", "TTTT", 2, "threshold", "0.8"),
    ("3.6", "TTTT", 6, "linear", None),
    ("4.1", "MDSH", 6, "linear", None),
    ("4.2", "MDSH", 4, "linear", None),
    ("4.3", "MDSH", 2, "threshold", "0.8"),
    ("4.4", "MDSH", 4, "linear", None),
    ("4.5", "MDSH", 4, None, None),
    ("4.6", "MDSH", 2, None, None),
    ("5.1", "MDHL", 0, None, None),
    ("5.2", "MDHL", 6, None, None),
    ("5.3", "MDHL", 6, None, None),
    ("5.4", "MDHL", 6, "threshold", "0.9"),
]


def test_shipped_formula_has_the_six_groups_of_decision_766() -> None:
    assert FORMULA.formula == "766-2025.1"
    assert [(g.code, g.name, g.max_points) for g in FORMULA.groups] == [(c, n, Decimal(p)) for c, n, p in GROUPS]


def test_shipped_formula_has_every_component_of_section_5_1() -> None:
    found = [
        (c.code, c.group, c.points, c.scoring, None if c.threshold is None else str(c.threshold))
        for c in FORMULA.components
    ]
    assert found == [(code, group, Decimal(points), rule, t) for code, group, points, rule, t in COMPONENTS]
    assert all(c.computed == (c.scoring is not None) for c in FORMULA.components)
    assert all(c.name for c in FORMULA.components)


def test_shipped_formula_reads_every_input_of_the_vocabulary() -> None:
    assert FORMULA.inputs == set(INPUTS)


def test_zero_denominator_rule_is_full_points_except_5_4() -> None:
    rules = {c.code: c.zero_denominator for c in FORMULA.components if c.computed}
    assert rules.pop("5.4") == "no_points"
    assert set(rules.values()) == {"full_points"}


# --- numerators and denominators: which inputs make each ratio ------------------------------------

# Every input a distinct value, so a component reading the wrong counter shows it.
DISTINCT = {name: 1000 + 17 * index for index, name in enumerate(INPUTS)}

# The contract's numerator and denominator of each component, as sums of inputs; for a composite,
# those of its first part (what the body shows), then each part.
RATIO_INPUTS: list[tuple[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]] = [
    ("1.4", [(("synced",), ("received",))]),
    ("2.1", [(("handled_on_time",), ("handled",))]),
    ("3.1", [(("procedures_online",), ("procedures",))]),
    ("3.2", [(("procedures_online_used",), ("procedures_online",))]),
    ("3.3", [(("received_online",), ("received",)), (("synced",), ("received",))]),
    ("3.5a", [(("procedures_fee_bearing_with_fee_data",), ("procedures_fee_bearing",))]),
    ("3.5b", [(("procedures_fee_bearing_paid_online",), ("procedures_fee_bearing",))]),
    ("3.6", [(("paid_online",), ("fee_required",))]),
    ("4.1", [(("results_digitized",), ("result_digitization_required",))]),
    ("4.2", [(("digitized_complete",), ("received",))]),
    ("4.3", [(("components_reused",), ("received",))]),
    ("4.4", [(("components_from_personal_store",), ("received",))]),
    (
        "5.4",
        [
            (("resolved_late", "in_progress_overdue"), ("resolved", "in_progress")),
            (("ratings_dissatisfied",), ("received",)),
        ],
    ),
]


@pytest.mark.parametrize(("code", "parts"), RATIO_INPUTS, ids=[row[0] for row in RATIO_INPUTS])
def test_component_numerator_and_denominator(code: str, parts: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
    result = score(FORMULA, DISTINCT).component(code)
    expected = [(sum(DISTINCT[n] for n in num), sum(DISTINCT[n] for n in den)) for num, den in parts]
    assert (result.numerator, result.denominator) == expected[0]
    assert [(part.numerator, part.denominator) for part in result.parts] == expected
    assert result.composite == (len(parts) > 1)


def test_every_computed_component_has_a_row_above() -> None:
    assert {code for code, _ in RATIO_INPUTS} == {c.code for c in FORMULA.components if c.computed}


# --- scoring --------------------------------------------------------------------------------------

# code, inputs, expected ratio (4 decimals, None: zero denominator), expected score (2 decimals).
SCORING: list[tuple[str, str, dict[str, int], str | None, str]] = [
    # linear: points × ratio
    ("1.4", "linear", {"synced": 3, "received": 4}, "0.75", "4.50"),
    ("1.4", "zero denominator: full points", {}, None, "6.00"),
    ("2.1", "linear, rounded from the exact ratio", {"handled_on_time": 7, "handled": 9}, "0.7778", "15.56"),
    ("2.1", "all on time", {"handled_on_time": 9, "handled": 9}, "1", "20.00"),
    ("2.1", "zero denominator", {}, None, "20.00"),
    # threshold T: points if ratio ≥ T, else points × ratio / T
    ("3.1", "threshold, below T", {"procedures_online": 7, "procedures": 10}, "0.7", "1.75"),
    ("3.1", "threshold, at T", {"procedures_online": 8, "procedures": 10}, "0.8", "2.00"),
    ("3.1", "threshold, above T", {"procedures_online": 9, "procedures": 10}, "0.9", "2.00"),
    ("3.1", "threshold, none online", {"procedures": 10}, "0", "0.00"),
    ("3.1", "zero denominator", {}, None, "2.00"),
    ("3.2", "linear", {"procedures_online_used": 1, "procedures_online": 3}, "0.3333", "1.33"),
    ("3.2", "zero denominator", {"procedures": 5}, None, "4.00"),
    # 3.3: (received_online ÷ received) × (synced ÷ received), threshold 0.5
    ("3.3", "composite above T", {"received_online": 6, "synced": 10, "received": 10}, "0.6", "6.00"),
    ("3.3", "composite, sync pulls it below T", {"received_online": 6, "synced": 5, "received": 10}, "0.3", "3.60"),
    ("3.3", "composite, nothing synced", {"received_online": 6, "received": 10}, "0", "0.00"),
    ("3.3", "nothing received: full points", {}, None, "6.00"),
    (
        "3.5a",
        "threshold below T",
        {"procedures_fee_bearing_with_fee_data": 3, "procedures_fee_bearing": 5},
        "0.6",
        "1.50",
    ),
    ("3.5a", "threshold at T", {"procedures_fee_bearing_with_fee_data": 4, "procedures_fee_bearing": 5}, "0.8", "2.00"),
    ("3.5a", "zero denominator", {}, None, "2.00"),
    # 2 × 0.25 / 0.8 = 0.625 exactly: halves round away from zero
    (
        "3.5b",
        "threshold, half rounds up",
        {"procedures_fee_bearing_paid_online": 1, "procedures_fee_bearing": 4},
        "0.25",
        "0.63",
    ),
    ("3.5b", "threshold above T", {"procedures_fee_bearing_paid_online": 4, "procedures_fee_bearing": 4}, "1", "2.00"),
    ("3.5b", "zero denominator", {}, None, "2.00"),
    ("3.6", "linear", {"paid_online": 3, "fee_required": 7}, "0.4286", "2.57"),
    ("3.6", "ratio with a half at the 4th decimal", {"paid_online": 1, "fee_required": 8}, "0.125", "0.75"),
    ("3.6", "zero denominator", {"received": 5}, None, "6.00"),
    ("4.1", "linear", {"results_digitized": 5, "result_digitization_required": 6}, "0.8333", "5.00"),
    ("4.1", "zero denominator", {}, None, "6.00"),
    ("4.2", "linear", {"digitized_complete": 3, "received": 8}, "0.375", "1.50"),
    ("4.2", "zero denominator", {}, None, "4.00"),
    ("4.3", "threshold below T", {"components_reused": 1, "received": 2}, "0.5", "1.25"),
    ("4.3", "threshold above T", {"components_reused": 17, "received": 20}, "0.85", "2.00"),
    ("4.3", "zero denominator", {}, None, "2.00"),
    ("4.4", "linear", {"components_from_personal_store": 1, "received": 16}, "0.0625", "0.25"),
    ("4.4", "zero denominator", {}, None, "4.00"),
    # 5.4: 1 − (late rate + dissatisfied rate), at least 0, threshold 0.9; zero denominator: 0
    ("5.4", "nothing late, nobody dissatisfied", {"resolved": 10, "received": 10}, "1", "6.00"),
    (
        "5.4",
        "below T",
        {"resolved": 8, "resolved_late": 1, "in_progress": 2, "received": 20, "ratings_dissatisfied": 1},
        "0.85",
        "5.67",
    ),
    ("5.4", "at T", {"resolved": 8, "resolved_late": 1, "in_progress": 2, "received": 20}, "0.9", "6.00"),
    ("5.4", "above T", {"resolved": 10, "received": 20, "ratings_dissatisfied": 1}, "0.95", "6.00"),
    (
        "5.4",
        "overdue in progress count as late",
        {"resolved": 5, "in_progress": 5, "in_progress_overdue": 3, "received": 10},
        "0.7",
        "4.67",
    ),
    (
        "5.4",
        "clamped at 0",
        {"resolved": 10, "resolved_late": 6, "received": 20, "ratings_dissatisfied": 10},
        "0",
        "0.00",
    ),
    ("5.4", "nothing resolved or in progress: 0", {"received": 5}, None, "0.00"),
    ("5.4", "nothing received: 0", {"resolved": 5}, None, "0.00"),
    ("5.4", "nothing at all: 0", {}, None, "0.00"),
]


@pytest.mark.parametrize(
    ("code", "case", "counts", "ratio", "expected"), SCORING, ids=[f"{r[0]} {r[1]}" for r in SCORING]
)
def test_component_scoring(code: str, case: str, counts: dict[str, int], ratio: str | None, expected: str) -> None:
    result = score(FORMULA, zeros(**counts)).component(code)
    assert result.computed
    assert result.rounded_ratio == (None if ratio is None else Decimal(ratio))
    assert result.score == Decimal(expected)
    body = render_index(score(FORMULA, zeros(**counts)))
    shown = next(c for g in body["groups"] for c in g["components"] if c["code"] == code)
    assert shown["ratio"] == (None if ratio is None else float(ratio))
    assert shown["score"] == float(expected)


def test_score_comes_from_the_exact_ratio_not_the_rounded_one() -> None:
    # 2.1: 2/3 → ratio 0.6667 in the body, but 20 × 2/3 = 13.333… → 13.33 (not 20 × 0.6667 = 13.334).
    result = score(FORMULA, zeros(handled_on_time=2, handled=3)).component("2.1")
    assert result.ratio == Fraction(2, 3)
    assert result.exact_score == Fraction(40, 3)
    assert result.score == Decimal("13.33")


def test_composite_parts_in_the_body() -> None:
    body = render_index(score(FORMULA, zeros(received=10, received_online=6, synced=9)))
    online = next(c for g in body["groups"] for c in g["components"] if c["code"] == "3.3")
    assert online["numerator"] == 6 and online["denominator"] == 10
    assert online["ratio"] == 0.54
    assert online["parts"] == [
        {"numerator": 6, "denominator": 10, "ratio": 0.6},
        {"numerator": 9, "denominator": 10, "ratio": 0.9},
    ]
    single = next(c for g in body["groups"] for c in g["components"] if c["code"] == "1.4")
    assert "parts" not in single


def test_zero_parts_in_the_body_show_null_where_the_component_rule_applied() -> None:
    body = render_index(score(FORMULA, zeros(resolved=4)))
    satisfaction = next(c for g in body["groups"] for c in g["components"] if c["code"] == "5.4")
    assert satisfaction["parts"] == [
        {"numerator": 0, "denominator": 4, "ratio": 0.0},
        {"numerator": 0, "denominator": 0, "ratio": None},
    ]
    assert satisfaction["ratio"] is None and satisfaction["score"] == 0.0


def test_a_part_with_if_zero_uses_that_value() -> None:
    # 3.3's synchronisation ratio is "1 when nothing was received": with its own denominator made
    # different from the first part's (an edited formula), the online share alone scores.
    raw = shipped()
    component_entry(raw, "3.3")["ratio"]["parts"][1]["denominator"] = ["procedures"]
    result = score(formula_from_dict(raw), zeros(received=10, received_online=3))
    online = result.component("3.3")
    assert online.parts[1].ratio == 1
    assert online.ratio == Fraction(3, 10)
    assert online.score == Decimal("3.60")


@pytest.mark.parametrize("code", ["1.1", "1.2", "1.3", "4.5", "4.6", "5.1", "5.2", "5.3"])
def test_components_without_input_are_not_computed(code: str) -> None:
    body = render_index(score(FORMULA, DISTINCT))
    shown = next(c for g in body["groups"] for c in g["components"] if c["code"] == code)
    assert shown == {
        "code": code,
        "name": shown["name"],
        "max_points": shown["max_points"],
        "numerator": None,
        "denominator": None,
        "ratio": None,
        "score": None,
        "computed": False,
    }


# --- totals and the body --------------------------------------------------------------------------


def test_nothing_counted_scores_full_points_but_5_4() -> None:
    result = score(FORMULA, zeros())
    # computed: 1.4 6, 2.1 20, group 3 12, group 3.5/3.6 10, 4.1-4.4 16, 5.4 6 = 70 points
    assert result.computable_points == 70
    assert result.score == Decimal("64.00")


def test_group_and_total_scores_sum_the_rounded_component_scores() -> None:
    # 3.5a and 3.5b: 2 × 0.25 / 0.8 = 0.625 each, shown 0.63; 3.6: nothing due, 6.
    # TTTT shows 0.63 + 0.63 + 6 = 7.26 (the exact sum would round to 7.25).
    counts = zeros(
        procedures_fee_bearing=4,
        procedures_fee_bearing_with_fee_data=1,
        procedures_fee_bearing_paid_online=1,
    )
    result = score(FORMULA, counts)
    payment = next(group for group in result.groups if group.code == "TTTT")
    assert payment.score == Decimal("7.26")
    body = render_index(result)
    assert set(body) == {"formula", "score", "computable_points", "groups"}
    assert body["formula"] == "766-2025.1"
    assert body["score"] == 61.26  # 64 with TTTT full (10), here 7.26
    for group in body["groups"]:
        shown = [Decimal(str(c["score"])) for c in group["components"] if c["computed"]]
        assert Decimal(str(group["score"])) == sum(shown, Decimal(0))
    assert Decimal(str(body["score"])) == sum(Decimal(str(g["score"])) for g in body["groups"])


def test_body_shape() -> None:
    body = render_index(score(FORMULA, DISTINCT))
    assert body["computable_points"] == 70
    assert [(g["code"], g["name"], g["max_points"]) for g in body["groups"]] == GROUPS
    for group in body["groups"]:
        assert set(group) == {"code", "name", "max_points", "score", "components"}
        for component in group["components"]:
            assert set(component) - {"parts"} == {
                "code", "name", "max_points", "numerator", "denominator", "ratio", "score", "computed"
            }  # fmt: skip
    assert json.loads(json.dumps(body)) == body


def test_group_with_no_computed_component_has_a_null_score() -> None:
    raw = shipped()
    raw["groups"] = [g for g in raw["groups"] if g["code"] != "CKMB"] + [
        {"code": "CKMB", "name": "Công khai, minh bạch", "max_points": 18}
    ]
    entry = component_entry(raw, "1.4")
    for key in ("scoring", "zero_denominator", "ratio"):
        del entry[key]
    entry["computed"] = False
    result = score(formula_from_dict(raw), zeros())
    assert result.groups[-1].code == "CKMB" and result.groups[-1].score is None
    assert result.computable_points == 64
    assert render_index(result)["groups"][-1]["score"] is None


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Fraction(5, 8), 2, "0.63"),
        (Fraction(1, 8), 2, "0.13"),
        (Fraction(1, 3), 4, "0.3333"),
        (Fraction(2, 3), 4, "0.6667"),
        (Fraction(1, 20000), 4, "0.0001"),
        (Fraction(0), 2, "0.00"),
        (Fraction(-5, 8), 2, "-0.63"),
    ],
)
def test_round_half_up(value: Fraction, places: int, expected: str) -> None:
    assert str(round_half_up(value, places)) == expected


# --- edited formulas ------------------------------------------------------------------------------


def test_a_province_changes_points_and_thresholds_in_the_file(tmp_path: Path) -> None:
    raw = shipped()
    raw["formula"] = "766-2025.1-hy"
    component_entry(raw, "3.1")["points"] = 3
    component_entry(raw, "3.1")["threshold"] = 0.9
    component_entry(raw, "3.2")["points"] = 3
    path = tmp_path / "766-hy.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    formula = load_formula(path)
    result = score(formula, zeros(procedures=10, procedures_online=8, procedures_online_used=4))
    assert result.formula == "766-2025.1-hy"
    assert result.component("3.1").score == Decimal("2.67")  # 3 × 0.8 / 0.9
    assert result.component("3.2").score == Decimal("1.50")  # 3 × 0.5


# --- loader validation ----------------------------------------------------------------------------


def _edit_duplicate(raw: dict[str, Any]) -> None:
    raw["components"].append(copy.deepcopy(component_entry(raw, "1.4")))


def _edit_unknown_group(raw: dict[str, Any]) -> None:
    component_entry(raw, "1.4")["group"] = "CKMS"


def _edit_points(raw: dict[str, Any]) -> None:
    component_entry(raw, "1.4")["points"] = 5


def _edit_maxima(raw: dict[str, Any]) -> None:
    component_entry(raw, "1.4")["points"] = 7
    raw["groups"][0]["max_points"] = 19


def _edit(target: str, **changes: Any) -> Any:
    """An edit of component `target`: set each key, or remove it when the value is None."""

    def edit(raw: dict[str, Any]) -> None:
        entry = component_entry(raw, target)
        for key, value in changes.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value

    return edit


def _edit_input(raw: dict[str, Any]) -> None:
    component_entry(raw, "1.4")["ratio"]["parts"][0]["numerator"] = ["synched"]


def _edit_if_zero(raw: dict[str, Any]) -> None:
    component_entry(raw, "3.3")["ratio"]["parts"][1]["if_zero"] = 2


def _edit_ratio_if_zero(raw: dict[str, Any]) -> None:
    component_entry(raw, "1.4")["ratio"]["parts"][0]["if_zero"] = 1


def _edit_two_parts(raw: dict[str, Any]) -> None:
    ratio = component_entry(raw, "1.4")["ratio"]
    ratio["parts"].append(copy.deepcopy(ratio["parts"][0]))


def _edit_one_part(raw: dict[str, Any]) -> None:
    ratio = component_entry(raw, "5.4")["ratio"]
    ratio["parts"] = ratio["parts"][:1]


def _edit_duplicate_group(raw: dict[str, Any]) -> None:
    raw["groups"].append(copy.deepcopy(raw["groups"][0]))


LOADER_ERRORS = [
    ("duplicate code", _edit_duplicate, "component 1.4: code used more than once"),
    ("unknown group", _edit_unknown_group, "component 1.4: unknown group 'CKMS'"),
    ("points off the group maximum", _edit_points, "group CKMB: its components' points sum to 17"),
    ("maxima off 100", _edit_maxima, "the groups' max_points sum to 101, not 100"),
    ("threshold 0", _edit("3.1", threshold=0), "component 3.1: threshold: Input should be greater than 0"),
    ("threshold above 1", _edit("3.1", threshold=1.5), "component 3.1: threshold: Input should be less than"),
    ("threshold missing", _edit("3.1", threshold=None), "component 3.1: threshold scoring needs a threshold"),
    ("threshold on linear", _edit("1.4", threshold=0.5), "component 1.4: linear scoring has no threshold"),
    ("unknown rule", _edit("1.4", scoring="square"), "component 1.4: scoring: Input should be 'linear' or 'threshold'"),
    ("unknown input", _edit_input, "component 1.4: ratio.parts.0.numerator: unknown input 'synched'"),
    ("if_zero above 1", _edit_if_zero, "component 3.3: ratio.parts.1.if_zero: Input should be less than or equal to 1"),
    ("if_zero on a ratio", _edit_ratio_if_zero, "component 1.4: ratio: a ratio's zero denominator is the component's"),
    ("ratio of two parts", _edit_two_parts, "component 1.4: ratio: a ratio has exactly one part, not 2"),
    ("composite of one part", _edit_one_part, "component 5.4: ratio: one_minus_sum_of_ratios needs at least two parts"),
    ("unknown kind", _edit("1.4", ratio={"kind": "sum", "parts": []}), "component 1.4: ratio.kind: Input should be"),
    ("computed without ratio", _edit("1.4", ratio=None), "component 1.4: a computed component needs ratio"),
    ("not computed with a rule", _edit("1.1", scoring="linear"), "component 1.1: a component with computed: false has"),
    ("negative points", _edit("1.4", points=-6), "component 1.4: points: Input should be greater than or equal to 0"),
    ("misspelt key", _edit("3.1", treshold=0.8), "component 3.1: treshold: Extra inputs are not permitted"),
    ("bad code", _edit("1.4", code="1-4"), "component 1-4: code: String should match pattern"),
    ("duplicate group", _edit_duplicate_group, "group CKMB: code used more than once"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "edit", "message"), LOADER_ERRORS, ids=[row[0] for row in LOADER_ERRORS])
def test_loader_names_the_component_at_fault(case: str, edit: Any, message: str, tmp_path: Path) -> None:
    raw = shipped()
    edit(raw)
    path = tmp_path / "formula.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(FormulaError) as caught:
        load_formula(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_loader_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "formula.json"
    path.write_text('{"formula": ', encoding="utf-8")
    with pytest.raises(FormulaError, match="not JSON"):
        load_formula(path)


def test_loader_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormulaError, match="cannot read"):
        load_formula(tmp_path / "absent.json")


def test_loader_keeps_thresholds_exact(tmp_path: Path) -> None:
    path = tmp_path / "formula.json"
    path.write_text(json.dumps(shipped()), encoding="utf-8")
    assert Fraction(component_entry_threshold(load_formula(path), "5.4")) == Fraction(9, 10)


def component_entry_threshold(formula: Any, code: str) -> Decimal:
    threshold: Decimal = next(c for c in formula.components if c.code == code).threshold
    return threshold


# --- inputs ---------------------------------------------------------------------------------------


def test_missing_inputs_are_named() -> None:
    counts = zeros()
    del counts["handled"], counts["synced"]
    with pytest.raises(ScoringInputError, match="missing inputs: handled, synced"):
        score(FORMULA, counts)


@pytest.mark.parametrize("value", [-1, True, 1.5, "3"])
def test_inputs_must_be_counts(value: Any) -> None:
    with pytest.raises(ScoringInputError, match="input received must be a count"):
        score(FORMULA, {**zeros(), "received": value})


def test_other_inputs_are_ignored() -> None:
    assert score(FORMULA, {**zeros(), "withdrawn": 5}).score == Decimal("64.00")


# --- ranking --------------------------------------------------------------------------------------


def _index(**counts: int) -> Index766:
    return score(FORMULA, zeros(**counts))


def test_ranking_orders_children_by_score_then_code() -> None:
    low = _index(received=10)  # nothing synced, online, reused, digitized: 70 − 6 − 6 − 4 − 2 − 4 − 6 = 42
    high = _index()
    # Names in the other order than codes: ties follow the code.
    children = [("c-2", "Xã A", high), ("c-3", "Xã C", low), ("c-1", "Xã B", high)]
    assert rank_children(children) == [
        {"unit": "c-1", "name": "Xã B", "score": 64.0},
        {"unit": "c-2", "name": "Xã A", "score": 64.0},
        {"unit": "c-3", "name": "Xã C", "score": float(low.score)},
    ]
    assert low.score == Decimal("42.00")


def test_ranking_uses_the_shown_score() -> None:
    # Exact 2.1 scores differ (13 + 1/3 against 13.33), the shown ones are equal: order by code.
    a = _index(handled_on_time=2, handled=3)
    b = _index(handled_on_time=1333, handled=2000)
    assert a.score == b.score
    ranked = rank_children([("b", "A", a), ("a", "B", b)])
    assert [row["unit"] for row in ranked] == ["a", "b"]


def test_ranking_of_no_children_is_empty() -> None:
    assert rank_children([]) == []
