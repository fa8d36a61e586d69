"""A reference of the Decision 766 index, written from the words of contract §5.1 (with §2 and §5) alone.

It shares no code with the product (`services/reporting/index766.py`, its formula file, the
aggregator): it takes the whole set of events at once, picks each fact's winning event as §2 says,
counts every numerator and denominator of §5.1 directly per dossier and per procedure for a window
[start, end], an `as_of` and a set of units, and scores them with the points and thresholds of the
§5.1 table written out below. Tests compare the product with it. Slow and plain on purpose.

Units are plain codes: the events of the given units count (roll-up through a tree, §1.1, is the
caller's business, as in `tests/reference_model.py`).

Where the words leave something open, the choice is marked CHOICE below; the product makes the same:
- 2.1 "ended" is the earlier of `resolved_at` and `withdrawn_at`, taken as written (even before
  `received_at`); a dossier counts as ended only when that instant is at or before `as_of` (one
  ending after `as_of` is "not ended at `as_of`"). One that ended at or before `as_of` but after the
  last day of W is in the denominator only (never the case with §4's `as_of`, which is at most the
  end of day `to`).
- 2.1 "more than one supplement request": every distinct `supplement_requested` event known counts,
  whatever its `requested_at` ("as currently known", §5); supplement completions play no part (the
  time not charged shows in `due_changed`).
- 4.2 "no result digitized": no `result_digitized` event at all, whatever its `digitized_at`;
  "components digitized": any `components_digitized` event, whether or not `digitization_required`.
- 3.2, 3.5: a dossier matches a procedure when its winning `received` names the procedure's unit and
  `procedure_code`; 3.5a's "synchronised" is "has a `synced` event"; 3.5b asks for "paid online"
  only (not `fee_required`). `fee_bearing` and `service_level` are those of the winning `published`.
- Zero denominators: 3.3 with nothing received scores full points (ratio null); 5.4 scores 0 when
  either of its denominators (resolved + in_progress, received) is 0 (ratio null).
- The body of a composite (3.3, 5.4) shows the numerator and denominator of its first ratio.
- Ratios are rounded to 4 decimals and scores to 2, halves up; the total adds the rounded scores.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any

VIETNAM = timezone(timedelta(hours=7))  # days are calendar days at UTC+07:00 (§1)
DEFAULT_SOURCE = "urn:vn:test:reference766"

_PREFIX = {"dossier": "vn.gov.tthc.dossier.", "procedure": "vn.gov.tthc.procedure."}
_SUBJECT_FIELD = {"dossier": "dossier_id", "procedure": "procedure_code"}
# The data timestamp that records each event's fact: the default envelope `time`.
_FACT_FIELD: dict[str, str | None] = {
    "dossier.received": "received_at",
    "dossier.due_changed": None,
    "dossier.components_digitized": "digitized_at",
    "dossier.resolved": "resolved_at",
    "dossier.result_digitized": "digitized_at",
    "dossier.paid": "paid_at",
    "dossier.withdrawn": "withdrawn_at",
    "dossier.rated": "rated_at",
    "dossier.supplement_requested": "requested_at",
    "dossier.supplement_completed": "completed_at",
    "dossier.synced": "synced_at",
    "procedure.published": "published_at",
    "procedure.unpublished": "unpublished_at",
}

# §5.1's table: code -> (points, scoring threshold or None for linear). Codes without input: points.
SCORED: dict[str, tuple[int, Fraction | None]] = {
    "1.4": (6, None),
    "2.1": (20, None),
    "3.1": (2, Fraction(8, 10)),
    "3.2": (4, None),
    "3.3": (6, Fraction(5, 10)),
    "3.5a": (2, Fraction(8, 10)),
    "3.5b": (2, Fraction(8, 10)),
    "3.6": (6, None),
    "4.1": (6, None),
    "4.2": (4, None),
    "4.3": (2, Fraction(8, 10)),
    "4.4": (4, None),
    "5.4": (6, Fraction(9, 10)),
}
NOT_COMPUTED: dict[str, int] = {"1.1": 6, "1.2": 4, "1.3": 2, "4.5": 4, "4.6": 2, "5.1": 0, "5.2": 6, "5.3": 6}


# --- building events ------------------------------------------------------------------------------


def event(
    kind: str,
    subject: str,
    *,
    id: str,
    time: datetime | None = None,
    source: str = DEFAULT_SOURCE,
    **data: Any,
) -> dict[str, Any]:
    """A contract event as a JSON-ready dict: `kind` like "dossier.synced", `subject` its identifier.

    `time` defaults to the event's fact timestamp (e.g. `synced_at`); `due_changed` needs it.
    """
    family, name = kind.split(".", 1)
    if time is None:
        fact = _FACT_FIELD[kind]
        if fact is None:
            raise ValueError(f"{kind} needs an explicit time")
        time = data[fact]
    assert time is not None
    body = {_SUBJECT_FIELD[family]: subject}
    body.update({key: value.isoformat() if isinstance(value, datetime) else value for key, value in data.items()})
    return {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": _PREFIX[family] + name,
        "time": time.isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": body,
    }


# --- reading events -------------------------------------------------------------------------------


def _instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return moment


@dataclass(frozen=True)
class _Event:
    family: str  # "dossier", "procedure" or "document"
    kind: str  # e.g. "received", "published"
    source: str
    id: str
    time: datetime
    data: Mapping[str, Any]

    def version(self) -> tuple[datetime, str, str]:
        # §2: the latest `time` wins, then the greater `id`; the source only breaks what is left.
        return (self.time, self.id, self.source)

    def at(self, name: str) -> datetime | None:
        value = self.data.get(name)
        return None if value is None else _instant(value)


def _read(events: Iterable[Any]) -> list[_Event]:
    """The distinct events by identity (source, id): a repeated identity counts once."""
    seen: dict[tuple[str, str], _Event] = {}
    for item in events:
        raw = json.loads(item) if isinstance(item, bytes | str) else dict(item)
        key = (raw["source"], raw["id"])
        if key not in seen:
            family = next((name for name, prefix in _PREFIX.items() if raw["type"].startswith(prefix)), "document")
            kind = raw["type"].rsplit(".", 1)[1]
            seen[key] = _Event(family, kind, raw["source"], raw["id"], _instant(raw["time"]), raw["data"])
    return list(seen.values())


def _latest(items: Iterable[_Event]) -> _Event | None:
    return max(items, key=_Event.version, default=None)


def _kinds(items: Iterable[_Event], *kinds: str) -> list[_Event]:
    return [item for item in items if item.kind in kinds]


# --- facts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dossier:
    unit: str
    procedure_code: str
    channel: str
    received_at: datetime
    fee_required: bool
    due_at: datetime | None
    resolved_at: datetime | None
    result_digitization_required: bool
    withdrawn_at: datetime | None
    rated_at: datetime | None
    rating: str | None
    components_digitized: bool
    reused: bool
    from_personal_store: bool
    result_digitized: bool
    paid_online: bool
    synced: bool
    supplement_requests: int


def _dossier(items: list[_Event]) -> Dossier | None:
    received = _latest(_kinds(items, "received"))
    if received is None:
        return None  # until its `received` arrives, a dossier counts nowhere
    due = _latest(_kinds(items, "received", "due_changed"))
    resolved = _latest(_kinds(items, "resolved"))
    withdrawn = _latest(_kinds(items, "withdrawn"))
    rated = _latest(_kinds(items, "rated"))
    digitized = _kinds(items, "components_digitized")
    received_at = received.at("received_at")
    assert received_at is not None and due is not None
    return Dossier(
        unit=received.data["unit"],
        procedure_code=received.data["procedure_code"],
        channel=received.data["channel"],
        received_at=received_at,
        fee_required=bool(received.data["fee_required"]),
        due_at=due.at("due_at"),
        resolved_at=resolved.at("resolved_at") if resolved else None,
        result_digitization_required=bool(resolved.data.get("result_digitization_required", True))
        if resolved
        else False,
        withdrawn_at=withdrawn.at("withdrawn_at") if withdrawn else None,
        rated_at=rated.at("rated_at") if rated else None,
        rating=rated.data["rating"] if rated else None,
        components_digitized=bool(digitized),
        reused=any(item.data.get("reused", False) for item in digitized),
        from_personal_store=any(item.data.get("from_personal_store", False) for item in digitized),
        result_digitized=bool(_kinds(items, "result_digitized")),
        paid_online=any(item.data["method"] == "online" for item in _kinds(items, "paid")),
        synced=bool(_kinds(items, "synced")),
        # CHOICE: every distinct request known counts, whatever its requested_at.
        supplement_requests=len(_kinds(items, "supplement_requested")),
    )


@dataclass(frozen=True)
class Procedure:
    unit: str
    code: str
    service_level: str
    fee_bearing: bool


def _procedure(items: list[_Event], as_of: datetime) -> Procedure | None:
    """The procedure if published at `as_of`: its winning event among those in force then is a `published`."""

    def effective(item: _Event) -> datetime:
        moment = item.at("published_at" if item.kind == "published" else "unpublished_at")
        assert moment is not None
        return moment

    winner = _latest(item for item in items if effective(item) <= as_of)
    if winner is None or winner.kind != "published":
        return None
    return Procedure(
        winner.data["unit"],
        winner.data["procedure_code"],
        winner.data["service_level"],
        bool(winner.data.get("fee_bearing", False)),
    )


InWindow = Callable[[datetime | None], bool]

# --- counting -------------------------------------------------------------------------------------


@dataclass
class Counts:
    """Every numerator and denominator of §5.1, by the names the product reads them under."""

    received: int = 0
    received_online: int = 0
    synced: int = 0
    components_reused: int = 0
    components_from_personal_store: int = 0
    digitized_complete: int = 0
    resolved: int = 0
    resolved_late: int = 0
    result_digitization_required: int = 0
    results_digitized: int = 0
    fee_required: int = 0
    paid_online: int = 0
    in_progress: int = 0
    in_progress_overdue: int = 0
    ratings_dissatisfied: int = 0
    handled: int = 0
    handled_on_time: int = 0
    procedures: int = 0
    procedures_online: int = 0
    procedures_online_used: int = 0
    procedures_fee_bearing: int = 0
    procedures_fee_bearing_with_fee_data: int = 0
    procedures_fee_bearing_paid_online: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


def count(events: Iterable[Any], start: date, end: date, as_of: datetime, units: Iterable[str]) -> Counts:
    """Every numerator and denominator of §5.1 for window [start, end], `as_of` and the given units."""
    chosen = set(units)
    by_dossier: dict[str, list[_Event]] = defaultdict(list)
    by_procedure: dict[tuple[str, str], list[_Event]] = defaultdict(list)
    for item in _read(events):
        if item.family == "procedure":  # a procedure is (unit, procedure_code)
            by_procedure[(item.data["unit"], item.data["procedure_code"])].append(item)
        elif item.family == "dossier":
            by_dossier[item.data["dossier_id"]].append(item)  # documents play no part in §5.1

    def in_w(moment: datetime | None) -> bool:
        return moment is not None and start <= moment.astimezone(VIETNAM).date() <= end

    dossiers = [d for d in map(_dossier, by_dossier.values()) if d is not None and d.unit in chosen]
    out = Counts()
    for d in dossiers:
        _count_dossier(d, in_w, start, as_of, out)

    for (unit, _code), items in by_procedure.items():
        if unit not in chosen:
            continue
        procedure = _procedure(items, as_of)
        if procedure is None:
            continue
        # CHOICE: its dossiers are those whose winning `received` names its unit and procedure_code.
        own = [
            d
            for d in dossiers
            if d.unit == procedure.unit and d.procedure_code == procedure.code and in_w(d.received_at)
        ]
        out.procedures += 1
        if procedure.service_level in ("partial_online", "full_online"):
            out.procedures_online += 1
            out.procedures_online_used += any(d.channel == "online" for d in own)
        if procedure.fee_bearing:
            out.procedures_fee_bearing += 1
            out.procedures_fee_bearing_with_fee_data += any(d.synced and d.fee_required for d in own)
            # CHOICE: "paid online" alone, as §5.1 says (not also fee_required).
            out.procedures_fee_bearing_paid_online += any(d.paid_online for d in own)
    return out


def _count_dossier(d: Dossier, in_w: InWindow, start: date, as_of: datetime, out: Counts) -> None:
    resolved_by_as_of = d.resolved_at is not None and d.resolved_at <= as_of
    if in_w(d.received_at):
        out.received += 1
        out.received_online += d.channel == "online"
        out.synced += d.synced
        out.components_reused += d.reused
        out.components_from_personal_store += d.from_personal_store
        out.fee_required += d.fee_required
        out.paid_online += d.fee_required and d.paid_online
        # 4.2: digitized, and not (resolved by as_of with a result to digitize and none digitized).
        # CHOICE: digitized whether or not required; "none digitized": no result_digitized event at all.
        result_missing = resolved_by_as_of and d.result_digitization_required and not d.result_digitized
        out.digitized_complete += d.components_digitized and not result_missing
    if in_w(d.resolved_at):
        assert d.resolved_at is not None
        out.resolved += 1
        out.resolved_late += d.due_at is not None and d.resolved_at > d.due_at
        out.result_digitization_required += d.result_digitization_required
        out.results_digitized += d.result_digitization_required and d.result_digitized
    withdrawn_by_as_of = d.withdrawn_at is not None and d.withdrawn_at <= as_of
    if d.received_at <= as_of and not resolved_by_as_of and not withdrawn_by_as_of:
        out.in_progress += 1
        out.in_progress_overdue += d.due_at is not None and d.due_at < as_of
    if in_w(d.rated_at) and d.rating == "dissatisfied":
        out.ratings_dissatisfied += 1
    _count_handled(d, in_w, start, as_of, out)


def _count_handled(d: Dossier, in_w: InWindow, start: date, as_of: datetime, out: Counts) -> None:
    """2.1, for one dossier."""
    if d.received_at > as_of:
        return
    ends = [moment for moment in (d.resolved_at, d.withdrawn_at) if moment is not None]
    ended_at = min(ends) if ends else None
    # CHOICE: the earlier of resolved_at and withdrawn_at, as written (even if before received_at).
    if ended_at is not None and ended_at.astimezone(VIETNAM).date() < start:
        return  # ended before the first day of W
    out.handled += 1
    if d.supplement_requests > 1:
        return  # more than one supplement request: late
    if ended_at is not None and ended_at <= as_of:  # CHOICE: ended means ended at or before as_of
        out.handled_on_time += in_w(ended_at) and (d.due_at is None or ended_at <= d.due_at)
    else:  # not ended at as_of: on time unless overdue at as_of (§5: due_at < as_of)
        out.handled_on_time += d.due_at is None or d.due_at >= as_of


# --- scoring --------------------------------------------------------------------------------------


def _round(value: Fraction, places: int) -> Decimal:
    with localcontext() as context:
        context.prec = 60
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal(10) ** -places, rounding=ROUND_HALF_UP)


def _fraction(numerator: int, denominator: int) -> Fraction | None:
    return None if denominator == 0 else Fraction(numerator, denominator)


@dataclass(frozen=True)
class Component:
    code: str
    points: int
    numerator: int
    denominator: int
    ratio: Fraction | None
    exact_score: Fraction
    parts: tuple[tuple[int, int], ...] = field(default=())  # (numerator, denominator) of each ratio

    @property
    def shown_ratio(self) -> float | None:
        return None if self.ratio is None else float(_round(self.ratio, 4))

    @property
    def score(self) -> Decimal:
        return _round(self.exact_score, 2)


@dataclass(frozen=True)
class Reference766:
    counts: Counts
    components: dict[str, Component]

    @property
    def score(self) -> Decimal:
        return sum((component.score for component in self.components.values()), Decimal("0.00"))

    @property
    def computable_points(self) -> int:
        return sum(component.points for component in self.components.values())

    def rows(self) -> dict[str, tuple[int, int, float | None, float]]:
        """code -> (numerator, denominator, ratio, score) as the body shows them."""
        return {
            code: (c.numerator, c.denominator, c.shown_ratio, float(c.score)) for code, c in self.components.items()
        }


def _scored(code: str, numerator: int, denominator: int, ratio: Fraction | None, zero_score: str) -> Component:
    points, threshold = SCORED[code]
    if ratio is None:  # a zero denominator: nothing was due (full points), except 5.4 (0)
        exact = Fraction(points) if zero_score == "full" else Fraction(0)
    elif threshold is None:
        exact = points * ratio
    else:
        exact = Fraction(points) if ratio >= threshold else points * ratio / threshold
    return Component(code, points, numerator, denominator, ratio, exact)


def scores(c: Counts) -> Reference766:
    """The §5.1 table applied to the counts."""
    simple = {
        "1.4": (c.synced, c.received),
        "2.1": (c.handled_on_time, c.handled),
        "3.1": (c.procedures_online, c.procedures),
        "3.2": (c.procedures_online_used, c.procedures_online),
        "3.5a": (c.procedures_fee_bearing_with_fee_data, c.procedures_fee_bearing),
        "3.5b": (c.procedures_fee_bearing_paid_online, c.procedures_fee_bearing),
        "3.6": (c.paid_online, c.fee_required),
        "4.1": (c.results_digitized, c.result_digitization_required),
        "4.2": (c.digitized_complete, c.received),
        "4.3": (c.components_reused, c.received),
        "4.4": (c.components_from_personal_store, c.received),
    }
    components = {code: _scored(code, num, den, _fraction(num, den), "full") for code, (num, den) in simple.items()}

    # 3.3: (received_online ÷ received) × the ratio of 1.4, 1 when nothing was received.
    # CHOICE: nothing received scores full points (a zero denominator), with a null ratio.
    online, sync = _fraction(c.received_online, c.received), _fraction(c.synced, c.received)
    share = None if online is None else online * (Fraction(1) if sync is None else sync)
    components["3.3"] = _with_parts(
        _scored("3.3", c.received_online, c.received, share, "full"),
        ((c.received_online, c.received), (c.synced, c.received)),
    )

    # 5.4: 1 − (late rate + dissatisfied rate), at least 0.
    # CHOICE: a zero in either denominator scores 0, with a null ratio.
    late_num, late_den = c.resolved_late + c.in_progress_overdue, c.resolved + c.in_progress
    late, dissatisfied = _fraction(late_num, late_den), _fraction(c.ratings_dissatisfied, c.received)
    satisfaction = None if late is None or dissatisfied is None else max(Fraction(0), 1 - late - dissatisfied)
    components["5.4"] = _with_parts(
        _scored("5.4", late_num, late_den, satisfaction, "zero"),
        ((late_num, late_den), (c.ratings_dissatisfied, c.received)),
    )
    order = ("1.4", "2.1", "3.1", "3.2", "3.3", "3.5a", "3.5b", "3.6", "4.1", "4.2", "4.3", "4.4", "5.4")
    return Reference766(c, {code: components[code] for code in order})


def _with_parts(component: Component, parts: tuple[tuple[int, int], ...]) -> Component:
    return Component(
        component.code,
        component.points,
        component.numerator,
        component.denominator,
        component.ratio,
        component.exact_score,
        parts,
    )


def index766(events: Iterable[Any], start: date, end: date, as_of: datetime, units: Iterable[str]) -> Reference766:
    """The Decision 766 index of the given units for window [start, end] and `as_of`."""
    return scores(count(events, start, end, as_of, units))
