"""The Decision 766 index (contract §5.1): the formula as data, and pure scoring of counted inputs.

The formula is a versioned JSON file (`formulas/766-2025.1.json`): groups with their maxima, and
components with their points, scoring rule (`linear`, or `threshold` with T), zero-denominator rule
and the input counters that make each ratio. A province changes points or thresholds by editing
the file; `load_formula` validates it at start-up and names the component at fault.

`score(formula, inputs)` turns the unit's counted inputs (the names of `INPUTS`, totals over the
unit's subtree for window W and `as_of`) into an `Index766`; `render_index` gives the body part of
`GET /v1/index766`; `rank_children` orders the children. No I/O beyond reading the formula file.

Ratios, in the file, are expressions of parts, each part a numerator and a denominator (sums of
inputs):
- `ratio`: one part;
- `product_of_ratios`: the product of the parts (3.3: online share × the synchronisation ratio);
- `one_minus_sum_of_ratios`: 1 − the sum of the parts, at least 0 (5.4).
A part whose denominator is 0 takes its `if_zero` value (3.3's "1 when nothing was received");
without one, the whole component has a zero denominator and scores by its `zero_denominator` rule
(`full_points`: nothing was due; `no_points`: 5.4), with a null ratio. 5.4 has no `if_zero` on
either part: a zero in either of its denominators scores 0.

What the body shows, so that a reader can check it:
- `numerator`/`denominator` of a composite are those of its first part (3.3: received_online and
  received; 5.4: resolved_late + in_progress_overdue and resolved + in_progress); `ratio` is the
  composite's value; composites add `parts`, each with its numerator, denominator and the ratio
  the formula used (its `if_zero` value when its denominator is 0, null when the component rule
  applied).
- Scores are computed from exact fractions; `ratio` is then rounded to 4 decimals and component
  `score` to 2, half away from zero (0.125 -> 0.13).
- A group's `score` and the total `score` are sums of the *rounded* component scores, so adding
  the numbers of the body gives exactly its totals. A group with no computed component has a null
  score. `computable_points` sums the points of the computed components.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_FORMULA = "766-2025.1"
TOTAL_POINTS = Decimal(100)

# The counters the read side provides for a unit's subtree, window W and as_of (contract §5, §5.1).
INPUTS: tuple[str, ...] = (
    "received",
    "received_online",
    "resolved",
    "resolved_late",
    "in_progress",
    "in_progress_overdue",
    "fee_required",
    "paid_online",
    "result_digitization_required",
    "results_digitized",
    "ratings_dissatisfied",  # winning rating dissatisfied, rated_at in W
    "synced",  # received in W with a synced event
    "components_reused",  # received in W, reused
    "components_from_personal_store",  # received in W, from the personal data store
    "digitized_complete",  # 4.2 numerator
    "handled",  # 2.1 denominator
    "handled_on_time",  # 2.1 numerator
    "procedures",  # at as_of
    "procedures_online",  # at as_of, partial_online or full_online
    "procedures_online_used",  # 3.2 numerator
    "procedures_fee_bearing",  # at as_of
    "procedures_fee_bearing_with_fee_data",  # 3.5a numerator
    "procedures_fee_bearing_paid_online",  # 3.5b numerator
)
_KNOWN_INPUTS = frozenset(INPUTS)

RATIO_DECIMALS = 4
SCORE_DECIMALS = 2


class FormulaError(ValueError):
    """The formula file is unreadable or breaks a rule; the message names the component or group."""


class ScoringInputError(ValueError):
    """The inputs given to `score` lack a counter the formula uses, or hold a value that is not a count."""


# --- the formula file -----------------------------------------------------------------------------

_FILE_MODEL = ConfigDict(frozen=True, extra="forbid")
Points = Annotated[Decimal, Field(ge=0)]


class Part(BaseModel):
    """One ratio: the sum of the numerator inputs over the sum of the denominator inputs."""

    model_config = _FILE_MODEL
    numerator: tuple[str, ...] = Field(min_length=1)
    denominator: tuple[str, ...] = Field(min_length=1)
    # The part's value when its denominator is 0; null: the component's zero_denominator rule applies.
    if_zero: Annotated[Decimal, Field(ge=0, le=1)] | None = None

    @field_validator("numerator", "denominator")
    @classmethod
    def _known_inputs(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in _KNOWN_INPUTS]
        if unknown:
            raise ValueError(f"unknown input {', '.join(map(repr, unknown))} (known: {', '.join(INPUTS)})")
        return names


class RatioExpression(BaseModel):
    model_config = _FILE_MODEL
    kind: Literal["ratio", "product_of_ratios", "one_minus_sum_of_ratios"]
    parts: tuple[Part, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> RatioExpression:
        if self.kind == "ratio":
            if len(self.parts) != 1:
                raise ValueError(f"a ratio has exactly one part, not {len(self.parts)}")
            if self.parts[0].if_zero is not None:
                raise ValueError("a ratio's zero denominator is the component's zero_denominator rule, not if_zero")
        elif len(self.parts) < 2:
            raise ValueError(f"{self.kind} needs at least two parts")
        return self


class ComponentSpec(BaseModel):
    model_config = _FILE_MODEL
    code: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+[a-z]?$")]
    group: str
    name: Annotated[str, Field(min_length=1)]
    points: Points
    computed: bool = True
    definition: str | None = None  # documentation only
    scoring: Literal["linear", "threshold"] | None = None
    threshold: Annotated[Decimal, Field(gt=0, le=1)] | None = None
    zero_denominator: Literal["full_points", "no_points"] | None = None
    ratio: RatioExpression | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ComponentSpec:
        if not self.computed:
            present = [name for name in ("scoring", "threshold", "zero_denominator", "ratio") if getattr(self, name)]
            if present:
                raise ValueError(f"a component with computed: false has no {', '.join(present)}")
            return self
        missing = [name for name in ("scoring", "zero_denominator", "ratio") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a computed component needs {', '.join(missing)}")
        if self.scoring == "threshold" and self.threshold is None:
            raise ValueError("threshold scoring needs a threshold in (0, 1]")
        if self.scoring == "linear" and self.threshold is not None:
            raise ValueError("linear scoring has no threshold")
        return self

    @cached_property
    def inputs(self) -> frozenset[str]:
        if self.ratio is None:
            return frozenset()
        return frozenset(name for part in self.ratio.parts for name in (*part.numerator, *part.denominator))


class GroupSpec(BaseModel):
    model_config = _FILE_MODEL
    code: Annotated[str, Field(pattern=r"^[A-Z]+$")]
    name: Annotated[str, Field(min_length=1)]
    max_points: Points


class Formula(BaseModel):
    model_config = _FILE_MODEL
    formula: Annotated[str, Field(min_length=1)]
    name: str | None = None
    groups: tuple[GroupSpec, ...] = Field(min_length=1)
    components: tuple[ComponentSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _totals(self) -> Formula:
        _no_repeats("group", [group.code for group in self.groups])
        _no_repeats("component", [component.code for component in self.components])
        known = {group.code for group in self.groups}
        for component in self.components:
            if component.group not in known:
                raise ValueError(f"component {component.code}: unknown group {component.group!r}")
        for group in self.groups:
            points = sum((c.points for c in self.components if c.group == group.code), Decimal(0))
            if points != group.max_points:
                raise ValueError(
                    f"group {group.code}: its components' points sum to {points}, not its max_points {group.max_points}"
                )
        maxima = sum((group.max_points for group in self.groups), Decimal(0))
        if maxima != TOTAL_POINTS:
            raise ValueError(f"the groups' max_points sum to {maxima}, not {TOTAL_POINTS}")
        return self

    @cached_property
    def inputs(self) -> frozenset[str]:
        """The input counters the computed components read."""
        return frozenset().union(*(component.inputs for component in self.components))


def _no_repeats(kind: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise ValueError(f"{kind} {code}: code used more than once")
        seen.add(code)


def formula_from_dict(raw: Mapping[str, Any], origin: str = "formula") -> Formula:
    """Validates a formula already parsed from JSON; errors name the component (by code) or group."""
    try:
        return Formula.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(_describe(item, raw) for item in error.errors())
        raise FormulaError(f"{origin}: {problems}") from None


def load_formula(path: str | os.PathLike[str] | None = None) -> Formula:
    """Reads and validates a formula file; None: the shipped `766-2025.1`."""
    if path is None:
        source = resources.files("services.reporting.formulas").joinpath(f"{DEFAULT_FORMULA}.json")
        origin, text = f"{DEFAULT_FORMULA}.json", source.read_text(encoding="utf-8")
    else:
        origin = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError as error:
            raise FormulaError(f"{origin}: cannot read ({error.strerror})") from None
    try:
        # Decimals, so thresholds like 0.8 stay exact (4/5) in the scoring.
        raw = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise FormulaError(f"{origin}: not JSON ({error})") from None
    if not isinstance(raw, dict):
        raise FormulaError(f"{origin}: a formula is a JSON object")
    return formula_from_dict(raw, origin)


def _describe(item: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    """`component 3.3: ratio.parts.0.numerator: unknown input 'x'` from a pydantic error."""
    location = list(item["loc"])
    subject = ""
    if len(location) >= 2 and location[0] in ("components", "groups") and isinstance(location[1], int):
        index = location[1]
        entries = raw.get(location[0])
        entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
        code = entry.get("code") if isinstance(entry, dict) else None
        kind = "component" if location[0] == "components" else "group"
        subject = f"{kind} {code}" if isinstance(code, str) else f"{location[0]}[{index}]"
        location = location[2:]
    message = str(item["msg"]).removeprefix("Value error, ")
    path = ".".join(str(step) for step in location)
    return ": ".join(piece for piece in (subject, path, message) if piece)


# --- scoring --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartValue:
    numerator: int
    denominator: int
    ratio: Fraction | None  # the value used: exact, if_zero on a zero denominator, None if the rule applied


@dataclass(frozen=True)
class ComponentScore:
    code: str
    name: str
    group: str
    max_points: Decimal
    computed: bool
    composite: bool = False
    numerator: int | None = None
    denominator: int | None = None
    ratio: Fraction | None = None  # exact; None when not computed or on a zero denominator
    exact_score: Fraction | None = None  # None when not computed
    parts: tuple[PartValue, ...] = ()

    @cached_property
    def score(self) -> Decimal | None:
        return None if self.exact_score is None else round_half_up(self.exact_score, SCORE_DECIMALS)

    @cached_property
    def rounded_ratio(self) -> Decimal | None:
        return None if self.ratio is None else round_half_up(self.ratio, RATIO_DECIMALS)


@dataclass(frozen=True)
class GroupScore:
    code: str
    name: str
    max_points: Decimal
    components: tuple[ComponentScore, ...]

    @cached_property
    def score(self) -> Decimal | None:
        """The sum of the rounded scores of the computed components; None if none is computed."""
        scores = [component.score for component in self.components if component.score is not None]
        return sum(scores, Decimal(0)).quantize(_QUANTUM[SCORE_DECIMALS]) if scores else None

    @cached_property
    def computable_points(self) -> Decimal:
        return sum((c.max_points for c in self.components if c.computed), Decimal(0))


@dataclass(frozen=True)
class Index766:
    formula: str
    groups: tuple[GroupScore, ...]

    @cached_property
    def score(self) -> Decimal:
        """The sum of the rounded scores of every computed component (= the sum of the group scores)."""
        total = sum((group.score for group in self.groups if group.score is not None), Decimal(0))
        return total.quantize(_QUANTUM[SCORE_DECIMALS])

    @cached_property
    def computable_points(self) -> Decimal:
        return sum((group.computable_points for group in self.groups), Decimal(0))

    @property
    def components(self) -> tuple[ComponentScore, ...]:
        return tuple(component for group in self.groups for component in group.components)

    def component(self, code: str) -> ComponentScore:
        for component in self.components:
            if component.code == code:
                return component
        raise KeyError(code)


_QUANTUM = {places: Decimal(1).scaleb(-places) for places in (RATIO_DECIMALS, SCORE_DECIMALS)}


def round_half_up(value: Fraction, places: int) -> Decimal:
    """An exact fraction rounded to `places` decimals, halves away from zero."""
    scaled = abs(value) * 10**places
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    result = Decimal(whole).scaleb(-places)
    return (-result if value < 0 else result).quantize(Decimal(1).scaleb(-places))


def score(formula: Formula, inputs: Mapping[str, int]) -> Index766:
    """Scores every component from the counted inputs (other keys of `inputs` are ignored)."""
    _check_inputs(formula, inputs)
    groups = tuple(
        GroupScore(
            group.code,
            group.name,
            group.max_points,
            tuple(_score_component(c, inputs) for c in formula.components if c.group == group.code),
        )
        for group in formula.groups
    )
    return Index766(formula.formula, groups)


def _check_inputs(formula: Formula, inputs: Mapping[str, int]) -> None:
    missing = sorted(formula.inputs - inputs.keys())
    if missing:
        raise ScoringInputError(f"missing inputs: {', '.join(missing)}")
    for name in sorted(formula.inputs):
        value = inputs[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ScoringInputError(f"input {name} must be a count (integer >= 0), not {value!r}")


def _score_component(spec: ComponentSpec, inputs: Mapping[str, int]) -> ComponentScore:
    if not spec.computed or spec.ratio is None or spec.scoring is None:
        return ComponentScore(spec.code, spec.name, spec.group, spec.points, computed=False)
    parts = tuple(_part_value(part, inputs) for part in spec.ratio.parts)
    ratio = _combine(spec.ratio.kind, parts)
    points = Fraction(spec.points)
    if ratio is None:
        exact = points if spec.zero_denominator == "full_points" else Fraction(0)
    elif spec.scoring == "linear":
        exact = points * ratio
    else:
        assert spec.threshold is not None
        threshold = Fraction(spec.threshold)
        exact = points if ratio >= threshold else points * ratio / threshold
    first = parts[0]
    return ComponentScore(
        spec.code,
        spec.name,
        spec.group,
        spec.points,
        computed=True,
        composite=spec.ratio.kind != "ratio",
        numerator=first.numerator,
        denominator=first.denominator,
        ratio=ratio,
        exact_score=exact,
        parts=parts,
    )


def _part_value(part: Part, inputs: Mapping[str, int]) -> PartValue:
    numerator = sum(inputs[name] for name in part.numerator)
    denominator = sum(inputs[name] for name in part.denominator)
    if denominator:
        ratio: Fraction | None = Fraction(numerator, denominator)
    else:
        ratio = None if part.if_zero is None else Fraction(part.if_zero)
    return PartValue(numerator, denominator, ratio)


def _combine(kind: str, parts: tuple[PartValue, ...]) -> Fraction | None:
    """The component's exact ratio; None when a part's zero denominator hands over to the component rule."""
    values = [part.ratio for part in parts]
    if any(value is None for value in values):
        return None
    known = [value for value in values if value is not None]
    if kind == "ratio":
        return known[0]
    if kind == "product_of_ratios":
        product = Fraction(1)
        for value in known:
            product *= value
        return product
    return max(Fraction(0), 1 - sum(known, Fraction(0)))


# --- the body -------------------------------------------------------------------------------------


def _points(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _ratio(value: Fraction | None) -> float | None:
    return None if value is None else float(round_half_up(value, RATIO_DECIMALS))


def render_index(index: Index766) -> dict[str, Any]:
    """The `formula`, `score`, `computable_points` and `groups` of the `GET /v1/index766` body."""
    return {
        "formula": index.formula,
        "score": float(index.score),
        "computable_points": _points(index.computable_points),
        "groups": [
            {
                "code": group.code,
                "name": group.name,
                "max_points": _points(group.max_points),
                "score": _decimal(group.score),
                "components": [_render_component(component) for component in group.components],
            }
            for group in index.groups
        ],
    }


def _render_component(component: ComponentScore) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": component.code,
        "name": component.name,
        "max_points": _points(component.max_points),
        "numerator": component.numerator,
        "denominator": component.denominator,
        "ratio": _ratio(component.ratio),
        "score": _decimal(component.score),
        "computed": component.computed,
    }
    if component.composite:
        body["parts"] = [
            {"numerator": part.numerator, "denominator": part.denominator, "ratio": _ratio(part.ratio)}
            for part in component.parts
        ]
    return body


def rank_children(children: Iterable[tuple[str, str, Index766]]) -> list[dict[str, Any]]:
    """The `ranking` of the body: children by score (the body's rounded total), highest first.

    Equal scores are ordered by unit code (codes are unique in a tree), so the order is deterministic.
    """
    ordered = sorted(children, key=lambda child: (-child[2].score, child[0]))
    return [{"unit": unit, "name": name, "score": float(index.score)} for unit, name, index in ordered]
