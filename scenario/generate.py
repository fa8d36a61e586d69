"""The Mỹ Hào 2023 event stream (pure, deterministic for a seed).

`generate_events(scenario, seed)` turns the plan of `scenario.plan` into the CloudEvents the
one-stop software (dossiers, procedure catalogue) and the document-management software would
have sent during 2023: dossiers received on working days in office hours, deadlines of a
procedure-dependent number of working days, resolutions, digitization, payments, ratings,
supplement requests; documents registered and signed; the catalogue published, raised and
abolished. The window's figures equal the plan exactly; December 2023 adds activity that
lies outside the window.

The facts of contract v2 that only the Decision 766 index reads (dossiers synchronised to DVCQG,
supplement requests and their completion, reused components and components from the applicant's
personal store, fee-bearing procedures) are drawn from a generator of their own, so the v1 stream
of a seed is the same with or without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from random import Random
from typing import Any, Literal

from scenario.plan import DocumentPlan, DossierPlan, ProcedurePlan, ScenarioPlan, UnitPlan, build_plan
from scenario.workdays import (
    LAST_WORKING_DAY,
    WORKING_DAYS,
    YEAR_END,
    add_working_days,
    closing,
    moment_between,
    office_moment,
    working_day_index,
    working_days_between,
)
from shared.events import (
    DOCUMENT_REGISTERED,
    DOCUMENT_SIGNED,
    DOSSIER_COMPONENTS_DIGITIZED,
    DOSSIER_DUE_CHANGED,
    DOSSIER_PAID,
    DOSSIER_RATED,
    DOSSIER_RECEIVED,
    DOSSIER_RESOLVED,
    DOSSIER_RESULT_DIGITIZED,
    DOSSIER_SUPPLEMENT_COMPLETED,
    DOSSIER_SUPPLEMENT_REQUESTED,
    DOSSIER_SYNCED,
    DOSSIER_WITHDRAWN,
    PROCEDURE_PUBLISHED,
    PROCEDURE_UNPUBLISHED,
)

MOTCUA = "urn:vn:hungyen:motcua"
QLVB = "urn:vn:hungyen:qlvb"

Level = Literal["info", "partial_online", "full_online"]
Fate = Literal["on_time", "due_changed", "late", "withdrawn", "overdue", "open"]

# Version 4 and RFC 4122 variant bits of a UUID.
UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
UUID_V4 = (0x4000 << 64) | (0x8000 << 48)

LONGEST_DEADLINE = 15
DEADLINE_DAYS = (1, 2, 3, 5, 7, 10, 12, 15)
DEADLINE_WEIGHTS = (6, 8, 12, 14, 10, 8, 3, 4)
FEES_VND = (10_000, 15_000, 20_000, 30_000, 50_000, 100_000, 200_000, 500_000)
FEE_SHARE = 0.35  # procedures with a fee
REJECTED_SHARE = 0.02
OFFLINE_PAYMENT_SHARE = 0.9  # of the fee-required dossiers not paid online
DECEMBER_RESOLVED_SHARE = 0.8
DECEMBER_RATED_SHARE = 0.2
VERY_SATISFIED_SHARE = 0.6
RESULT_REQUIRED_SHARE = 0.75
RESULT_DIGITIZED_SHARE = 0.8
# v2 facts (Decision 766): of the dossiers, those synchronised to DVCQG; of the digitized ones, those
# that reused data or took a component from the personal store; of the deadline extensions, those
# whose dossier was asked for a second supplement (late for index 2.1).
SYNCED_SHARE = 0.96
REUSED_SHARE = 0.3
PERSONAL_STORE_SHARE = 0.12
SECOND_SUPPLEMENT_SHARE = 0.1


def generate_events(scenario: Mapping[str, Any], seed: int = 2023) -> list[dict[str, Any]]:
    """Every event of the scenario as JSON-ready CloudEvent dicts, in time order."""
    rng = Random(seed)
    plan = build_plan(scenario, rng)
    emitter = _Emitter(rng, Random(f"{seed}:v2"))
    for unit_plan in plan.units.values():
        catalogue = _catalogue(emitter, unit_plan.unit, unit_plan.procedures, plan)
        _DossierWriter(emitter, unit_plan, catalogue, plan).write()
        _documents(emitter, unit_plan, plan)
    return emitter.stream()


def plan_for(scenario: Mapping[str, Any], seed: int = 2023) -> ScenarioPlan:
    """The plan `generate_events` follows for this seed (drawn first from the same generator)."""
    return build_plan(scenario, Random(seed))


# --- envelope -----------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class _Emitter:
    """Collects events; ids are random UUIDs drawn from the scenario's generator (from the v2
    generator for the v2 facts)."""

    def __init__(self, rng: Random, v2_rng: Random) -> None:
        self.rng = rng
        self.v2_rng = v2_rng
        self.events: list[dict[str, Any]] = []

    def emit(
        self, source: str, kind: str, subject: str, moment: datetime, data: dict[str, Any], *, v2: bool = False
    ) -> None:
        self.events.append(
            {
                "specversion": "1.0",
                "id": self._uuid4(self.v2_rng if v2 else self.rng),
                "source": source,
                "type": kind,
                "time": _iso(moment),
                "subject": subject,
                "datacontenttype": "application/json",
                "data": data,
            }
        )

    @staticmethod
    def _uuid4(rng: Random) -> str:
        """A random (version 4) UUID drawn from the generator."""
        bits = (rng.getrandbits(128) & UUID_CLEAR) | UUID_V4
        text = f"{bits:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def stream(self) -> list[dict[str, Any]]:
        return sorted(self.events, key=lambda event: (event["time"], event["id"]))


# --- calendar of the plan -----------------------------------------------------------------------


def _window_days(plan: ScenarioPlan) -> tuple[date, ...]:
    return working_days_between(plan.start, plan.end)


def _later_days(plan: ScenarioPlan) -> tuple[date, ...]:
    """Working days after the window, until the year's end."""
    return working_days_between(plan.end + timedelta(days=1), LAST_WORKING_DAY)


def _later_share(plan: ScenarioPlan) -> float:
    """December's activity relative to the window's: working days after / in the window."""
    return len(_later_days(plan)) / len(_window_days(plan))


def _sample(rng: Random, population: Sequence[int], count: int) -> set[int]:
    return set(rng.sample(population, count))


# --- procedure catalogue ------------------------------------------------------------------------


@dataclass(frozen=True)
class Procedure:
    code: str
    level: Level
    deadline_days: int
    fee_vnd: int  # 0: no fee


def _procedure_codes(rng: Random, count: int) -> list[str]:
    """Codes shaped like the national catalogue's ("1.004227", "2.001980")."""
    return [f"{1 + number // 12_000}.{number % 12_000 + 1_000:06d}" for number in rng.sample(range(24_000), count)]


def _new_procedure(rng: Random, code: str, level: Level) -> Procedure:
    deadline = rng.choices(DEADLINE_DAYS, DEADLINE_WEIGHTS)[0]
    fee = rng.choice(FEES_VND) if rng.random() < FEE_SHARE else 0
    return Procedure(code, level, deadline, fee)


def _catalogue(emitter: _Emitter, unit: str, plan: ProcedurePlan, scenario: ScenarioPlan) -> list[Procedure]:
    """Publishes the unit's catalogue; returns the procedures in force at as_of."""
    rng = emitter.rng
    counts: tuple[tuple[Level, int], ...] = (
        ("info", plan.info),
        ("partial_online", plan.partial_online),
        ("full_online", plan.full_online),
    )
    levels = [level for level, count in counts for _ in range(count)]
    codes = _procedure_codes(rng, len(levels) + plan.unpublished + plan.published_later)
    procedures = [_new_procedure(rng, code, level) for code, level in zip(codes, levels, strict=False)]
    online = [index for index, procedure in enumerate(procedures) if procedure.level != "info"]
    # Every kind of dossier must find a procedure, even one still in progress at as_of.
    procedures[online[0]] = Procedure(procedures[online[0]].code, procedures[online[0]].level, LONGEST_DEADLINE, 0)
    fee = rng.choice(FEES_VND)
    procedures[online[1]] = Procedure(procedures[online[1]].code, procedures[online[1]].level, LONGEST_DEADLINE, fee)
    upgraded = _sample(rng, online, plan.upgraded)
    window_days = _window_days(scenario)
    for index, procedure in enumerate(procedures):
        published_at = office_moment(rng, rng.choice(window_days[:3]))
        if index in upgraded:
            lower: Level = "info" if procedure.level == "partial_online" else "partial_online"
            _publish(emitter, unit, procedure.code, lower, published_at, procedure.fee_vnd > 0)
            raised_at = office_moment(rng, rng.choice(window_days[40:200]))
            _publish(emitter, unit, procedure.code, procedure.level, raised_at, procedure.fee_vnd > 0)
        else:
            _publish(emitter, unit, procedure.code, procedure.level, published_at, procedure.fee_vnd > 0)
    extra = codes[len(levels) :]
    for code in extra[: plan.unpublished]:
        _publish(emitter, unit, code, rng.choice(("info", "partial_online")), office_moment(rng, window_days[0]))
        unpublished_at = office_moment(rng, rng.choice(window_days[60:200]))
        data = {"procedure_code": code, "unit": unit, "unpublished_at": _iso(unpublished_at)}
        emitter.emit(MOTCUA, PROCEDURE_UNPUBLISHED, code, unpublished_at, data)
    for code in extra[plan.unpublished :]:
        level: Level = rng.choice(("partial_online", "full_online"))
        _publish(emitter, unit, code, level, office_moment(rng, rng.choice(_later_days(scenario))))
    return procedures


def _publish(
    emitter: _Emitter, unit: str, code: str, level: Level, published_at: datetime, fee_bearing: bool = False
) -> None:
    data = {
        "procedure_code": code,
        "unit": unit,
        "service_level": level,
        "published_at": _iso(published_at),
        "fee_bearing": fee_bearing,
    }
    emitter.emit(MOTCUA, PROCEDURE_PUBLISHED, code, published_at, data)


# --- dossiers -----------------------------------------------------------------------------------


@dataclass
class _Dossier:
    """The facts of one dossier, filled in step by step, then written as events."""

    ident: str
    unit: str
    received_at: datetime
    fate: Fate | None = None  # None: received after the window
    channel: Literal["online", "direct", "postal"] = "direct"
    fee_required: bool = False
    paid_online: bool = False
    digitization_required: bool = False
    components_digitized: bool = False
    result_digitization_required: bool = False
    result_digitized: bool = False
    rated: bool = False
    satisfied: bool = False
    procedure: Procedure | None = None
    due_at: datetime | None = None
    due_changed: tuple[datetime, datetime] | None = None  # (requested at, new deadline)
    resolved_at: datetime | None = None
    withdrawn_at: datetime | None = None
    rated_by: datetime = YEAR_END  # a rating of the window is given by the window's end


class _DossierWriter:
    """Writes one unit's dossiers: those of the window follow the plan exactly, December's are free."""

    def __init__(self, emitter: _Emitter, unit_plan: UnitPlan, catalogue: list[Procedure], plan: ScenarioPlan) -> None:
        self.emitter = emitter
        self.rng = emitter.rng
        self.unit = unit_plan.unit
        self.counts: DossierPlan = unit_plan.dossiers
        self.plan = plan
        self.as_of = plan.as_of
        self.by_kind = {
            (online, fee): [
                procedure
                for procedure in catalogue
                if (not online or procedure.level != "info") and (procedure.fee_vnd > 0) == fee
            ]
            for online in (False, True)
            for fee in (False, True)
        }
        self.sequence = 0

    def write(self) -> None:
        dossiers = self._window_dossiers() + self._later_dossiers()
        for dossier in dossiers:
            _emit_dossier(self.emitter, dossier, self.rng)

    # -- the window --

    def _window_dossiers(self) -> list[_Dossier]:
        days = _window_days(self.plan)
        moments = sorted(office_moment(self.rng, self.rng.choice(days)) for _ in range(self.counts.received))
        dossiers = [self._new(moment) for moment in moments]
        self._assign_fates(dossiers)
        self._assign_channels(dossiers)
        self._assign_flags(dossiers)
        for dossier in dossiers:
            self._schedule(dossier)
        return dossiers

    def _new(self, received_at: datetime) -> _Dossier:
        self.sequence += 1
        ident = f"{self.unit}-{received_at:%y%m%d}-{self.sequence:04d}"
        return _Dossier(ident, self.unit, received_at)

    def _assign_fates(self, dossiers: list[_Dossier]) -> None:
        """In progress at as_of and not overdue: the latest received; the other fates: early ones."""
        counts = self.counts
        open_count = counts.in_progress - counts.in_progress_overdue
        total = len(dossiers)
        for dossier in dossiers[total - open_count :]:
            dossier.fate = "open"
        # Received early enough that even the longest deadline falls before the window's last day.
        cutoff = WORKING_DAYS[working_day_index(_window_days(self.plan)[-1]) - LONGEST_DEADLINE - 1]
        early = [index for index in range(total - open_count) if dossiers[index].received_at.date() <= cutoff]
        needed = counts.in_progress_overdue + counts.resolved_late + counts.withdrawn + counts.due_changed
        if len(early) < needed:
            raise ValueError(f"{self.unit}: too few early dossiers for the planned late ones")
        recent = early[-max(3 * counts.in_progress_overdue, 30) :]
        overdue = _sample(self.rng, recent, counts.in_progress_overdue)
        rest = [index for index in early if index not in overdue]
        chosen = self.rng.sample(rest, counts.resolved_late + counts.withdrawn + counts.due_changed)
        late = chosen[: counts.resolved_late]
        withdrawn = chosen[counts.resolved_late : counts.resolved_late + counts.withdrawn]
        due_changed = chosen[counts.resolved_late + counts.withdrawn :]
        for indices, fate in (
            (overdue, "overdue"),
            (late, "late"),
            (withdrawn, "withdrawn"),
            (due_changed, "due_changed"),
        ):
            for index in indices:
                dossiers[index].fate = fate  # type: ignore[assignment]
        for dossier in dossiers:
            dossier.fate = dossier.fate or "on_time"

    def _assign_channels(self, dossiers: list[_Dossier]) -> None:
        indices = list(range(len(dossiers)))
        online = _sample(self.rng, indices, self.counts.received_online)
        postal = _sample(self.rng, [index for index in indices if index not in online], self.counts.received_postal)
        for index, dossier in enumerate(dossiers):
            dossier.channel = "online" if index in online else "postal" if index in postal else "direct"

    def _assign_flags(self, dossiers: list[_Dossier]) -> None:
        rng, counts = self.rng, self.counts
        everyone = list(range(len(dossiers)))
        required = sorted(_sample(rng, everyone, counts.digitization_required))
        digitized = _sample(rng, required, counts.components_digitized)
        payable = [index for index in everyone if dossiers[index].fate != "withdrawn"]
        payable_online = [index for index in payable if dossiers[index].channel == "online"]
        paid_pool = payable_online if len(payable_online) >= counts.paid_online else payable
        paid = _sample(rng, paid_pool, counts.paid_online)
        unpaid = [index for index in everyone if index not in paid]
        fee = paid | _sample(rng, unpaid, counts.fee_required - counts.paid_online)
        resolved = [index for index in everyone if dossiers[index].fate in ("on_time", "due_changed", "late")]
        results = sorted(_sample(rng, resolved, counts.result_digitization_required))
        results_digitized = _sample(rng, results, counts.results_digitized)
        rated = sorted(_sample(rng, resolved, counts.ratings))
        satisfied = _sample(rng, rated, counts.ratings_satisfied)
        results_set, rated_set, required_set = set(results), set(rated), set(required)
        for index, dossier in enumerate(dossiers):
            dossier.digitization_required = index in required_set
            dossier.components_digitized = index in digitized
            dossier.fee_required = index in fee
            dossier.paid_online = index in paid
            dossier.result_digitization_required = index in results_set
            dossier.result_digitized = index in results_digitized
            dossier.rated = index in rated_set
            dossier.satisfied = index in satisfied

    def _schedule(self, dossier: _Dossier) -> None:
        """Procedure, deadline and the moments of resolution, withdrawal or supplement request."""
        rng, as_of = self.rng, self.as_of
        received_day = dossier.received_at.date()
        min_days = 0
        if dossier.fate == "open":  # the deadline must fall after as_of
            first_after = WORKING_DAYS[working_day_index(_window_days(self.plan)[-1]) + 1]
            min_days = working_day_index(first_after) - working_day_index(received_day)
        procedure = self._pick_procedure(dossier, min_days)
        dossier.procedure = procedure
        due = closing(add_working_days(received_day, procedure.deadline_days))
        dossier.due_at = due
        if dossier.fate in ("on_time", "due_changed", "late"):
            dossier.rated_by = as_of
        match dossier.fate:
            case "on_time":
                dossier.resolved_at = moment_between(rng, dossier.received_at, min(due, as_of), skew=1.6)
            case "due_changed":
                requested_at = moment_between(rng, dossier.received_at, due, skew=1.5)
                new_due = closing(add_working_days(due.date(), rng.randint(3, 10)))
                dossier.due_changed = (requested_at, new_due)
                dossier.resolved_at = moment_between(rng, due, min(new_due, as_of), skew=1.3)
            case "late":
                overrun = closing(add_working_days(due.date(), rng.randint(1, 10)))
                dossier.resolved_at = moment_between(rng, due, min(overrun, as_of), skew=1.5)
            case "withdrawn":
                dossier.withdrawn_at = moment_between(rng, dossier.received_at, min(due, as_of))
            case "overdue":
                if rng.random() < DECEMBER_RESOLVED_SHARE:
                    dossier.resolved_at = moment_between(rng, as_of, closing(LAST_WORKING_DAY))
                    self._december_result(dossier)
            case "open":
                dossier.resolved_at = moment_between(rng, as_of, due, skew=1.3)
                self._december_result(dossier)

    def _december_result(self, dossier: _Dossier) -> None:
        """Result flags of a dossier resolved after the window (they count in no window figure)."""
        rng = self.rng
        dossier.result_digitization_required = rng.random() < RESULT_REQUIRED_SHARE
        dossier.result_digitized = dossier.result_digitization_required and rng.random() < RESULT_DIGITIZED_SHARE
        dossier.rated = rng.random() < DECEMBER_RATED_SHARE
        dossier.satisfied = rng.random() < 0.9

    def _pick_procedure(self, dossier: _Dossier, min_days: int) -> Procedure:
        """A procedure matching the dossier's channel and fee, with a deadline of at least `min_days`."""
        candidates = self.by_kind[(dossier.channel == "online", dossier.fee_required)]
        if min_days:
            candidates = [procedure for procedure in candidates if procedure.deadline_days >= min_days]
        if not candidates:
            raise ValueError(f"{self.unit}: no procedure fits dossier {dossier.ident}")
        return self.rng.choice(candidates)

    # -- after the window --

    def _later_dossiers(self) -> list[_Dossier]:
        """December's dossiers: received after as_of, so no window figure sees them."""
        rng, counts = self.rng, self.counts
        days = _later_days(self.plan)
        count = round(counts.received * _later_share(self.plan))
        moments = sorted(office_moment(rng, rng.choice(days)) for _ in range(count))
        dossiers = [self._new(moment) for moment in moments]
        for dossier in dossiers:
            dossier.channel = "online" if rng.random() < counts.received_online / counts.received else "direct"
            dossier.fee_required = rng.random() < counts.fee_required / counts.received
            dossier.paid_online = dossier.fee_required and rng.random() < 0.3
            dossier.digitization_required = rng.random() < 0.95
            dossier.components_digitized = dossier.digitization_required and rng.random() < 0.8
            procedure = self._pick_procedure(dossier, 0)
            dossier.procedure = procedure
            received_day = dossier.received_at.date()
            dossier.due_at = max(closing(add_working_days(received_day, procedure.deadline_days)), dossier.received_at)
            if dossier.due_at > dossier.received_at and rng.random() < DECEMBER_RESOLVED_SHARE:
                dossier.resolved_at = moment_between(rng, dossier.received_at, dossier.due_at, skew=1.6)
                self._december_result(dossier)
        return dossiers


def _emit_dossier(emitter: _Emitter, dossier: _Dossier, rng: Random) -> None:
    assert dossier.procedure is not None and dossier.due_at is not None
    ident, received_at = dossier.ident, dossier.received_at
    received = {
        "dossier_id": ident,
        "unit": dossier.unit,
        "procedure_code": dossier.procedure.code,
        "channel": dossier.channel,
        "received_at": _iso(received_at),
        "due_at": _iso(dossier.due_at),
        "fee_required": dossier.fee_required,
        "digitization_required": dossier.digitization_required,
    }
    emitter.emit(MOTCUA, DOSSIER_RECEIVED, ident, received_at, received)
    v2 = emitter.v2_rng
    if v2.random() < SYNCED_SHARE:
        synced_at = min(received_at + timedelta(minutes=v2.randint(2, 30)), YEAR_END)
        emitter.emit(
            MOTCUA, DOSSIER_SYNCED, ident, synced_at, {"dossier_id": ident, "synced_at": _iso(synced_at)}, v2=True
        )
    if dossier.components_digitized:
        digitized_at = moment_between(rng, received_at, min(received_at + timedelta(days=1), YEAR_END), skew=3)
        data = {
            "dossier_id": ident,
            "digitized_at": _iso(digitized_at),
            "reused": v2.random() < REUSED_SHARE,
            "from_personal_store": v2.random() < PERSONAL_STORE_SHARE,
        }
        emitter.emit(MOTCUA, DOSSIER_COMPONENTS_DIGITIZED, ident, digitized_at, data)
    if dossier.due_changed is not None:
        requested_at, new_due = dossier.due_changed
        emitter.emit(MOTCUA, DOSSIER_DUE_CHANGED, ident, requested_at, {"dossier_id": ident, "due_at": _iso(new_due)})
        _emit_supplements(emitter, dossier, requested_at)
    _emit_payment(emitter, dossier, rng)
    if dossier.withdrawn_at is not None:
        data = {"dossier_id": ident, "withdrawn_at": _iso(dossier.withdrawn_at)}
        emitter.emit(MOTCUA, DOSSIER_WITHDRAWN, ident, dossier.withdrawn_at, data)
    if dossier.resolved_at is not None:
        _emit_resolution(emitter, dossier, dossier.resolved_at, rng)


def _emit_supplements(emitter: _Emitter, dossier: _Dossier, requested_at: datetime) -> None:
    """The supplement request behind a deadline extension, its completion before the resolution,
    and for some dossiers a second request (completed too)."""
    v2, ident = emitter.v2_rng, dossier.ident
    end = min(dossier.resolved_at or YEAR_END, YEAR_END)
    requests = 2 if v2.random() < SECOND_SUPPLEMENT_SHARE else 1
    asked = requested_at
    for _ in range(requests):
        if end <= asked + timedelta(seconds=2):
            return
        data = {"dossier_id": ident, "requested_at": _iso(asked)}
        emitter.emit(MOTCUA, DOSSIER_SUPPLEMENT_REQUESTED, ident, asked, data, v2=True)
        completed = moment_between(v2, asked, min(asked + timedelta(days=2), end - timedelta(seconds=1)))
        data = {"dossier_id": ident, "completed_at": _iso(completed)}
        emitter.emit(MOTCUA, DOSSIER_SUPPLEMENT_COMPLETED, ident, completed, data, v2=True)
        asked = completed + timedelta(minutes=30)


def _emit_payment(emitter: _Emitter, dossier: _Dossier, rng: Random) -> None:
    """Online payments follow the receipt; offline ones happen at the desk (receipt or result)."""
    received_at = dossier.received_at
    if dossier.paid_online:
        method, paid_at = "online", moment_between(rng, received_at, min(received_at + timedelta(days=1), YEAR_END), 3)
    elif dossier.fee_required and dossier.withdrawn_at is None and rng.random() < OFFLINE_PAYMENT_SHARE:
        at_desk = dossier.channel == "direct" or dossier.resolved_at is None
        start = received_at if at_desk else dossier.resolved_at
        assert start is not None
        method, paid_at = "offline", moment_between(rng, start, min(start + timedelta(hours=1), YEAR_END))
    else:
        return
    assert dossier.procedure is not None
    data = {
        "dossier_id": dossier.ident,
        "paid_at": _iso(paid_at),
        "method": method,
        "amount_vnd": dossier.procedure.fee_vnd,
    }
    emitter.emit(MOTCUA, DOSSIER_PAID, dossier.ident, paid_at, data)


def _emit_resolution(emitter: _Emitter, dossier: _Dossier, resolved_at: datetime, rng: Random) -> None:
    ident = dossier.ident
    resolved = {
        "dossier_id": ident,
        "resolved_at": _iso(resolved_at),
        "outcome": "rejected" if rng.random() < REJECTED_SHARE else "approved",
        "result_digitization_required": dossier.result_digitization_required,
    }
    emitter.emit(MOTCUA, DOSSIER_RESOLVED, ident, resolved_at, resolved)
    if dossier.result_digitized:
        digitized_at = moment_between(rng, resolved_at, min(resolved_at + timedelta(days=1), YEAR_END), skew=3)
        data = {"dossier_id": ident, "digitized_at": _iso(digitized_at)}
        emitter.emit(MOTCUA, DOSSIER_RESULT_DIGITIZED, ident, digitized_at, data)
    if dossier.rated:
        limit = min(resolved_at + timedelta(days=3), dossier.rated_by)
        rated_at = moment_between(rng, resolved_at, limit, skew=2)
        data = {"dossier_id": ident, "rated_at": _iso(rated_at), "rating": _rating(rng, dossier.satisfied)}
        emitter.emit(MOTCUA, DOSSIER_RATED, ident, rated_at, data)


def _rating(rng: Random, satisfied: bool) -> str:
    if not satisfied:
        return "dissatisfied"
    return "very_satisfied" if rng.random() < VERY_SATISFIED_SHARE else "satisfied"


# --- documents ----------------------------------------------------------------------------------


@dataclass
class _Document:
    registered_at: datetime
    direction: Literal["incoming", "outgoing"]
    electronic: bool
    confidential: bool = False
    signed_by_organization: bool = False
    signed_by_leader: bool = False


def _documents(emitter: _Emitter, unit_plan: UnitPlan, plan: ScenarioPlan) -> None:
    """Registers the unit's documents, numbered per direction in order of registration."""
    rng = emitter.rng
    documents = _window_documents(rng, unit_plan.documents, _window_days(plan))
    documents += _later_documents(rng, unit_plan.documents, plan)
    documents.sort(key=lambda document: document.registered_at)
    numbers = {"incoming": 0, "outgoing": 0}
    for document in documents:
        numbers[document.direction] += 1
        book = "vbden" if document.direction == "incoming" else "vbdi"
        _emit_document(emitter, f"{unit_plan.unit}-{book}-{numbers[document.direction]:05d}", unit_plan.unit, document)


def _window_documents(rng: Random, counts: DocumentPlan, days: Sequence[date]) -> list[_Document]:
    """The window's documents, exactly as planned, and the confidential ones (which count nowhere)."""
    total = counts.incoming + counts.outgoing
    electronic = _sample(rng, range(total), counts.electronic)
    organization = sorted(_sample(rng, range(counts.incoming, total), counts.signed_by_organization))
    leader = _sample(rng, organization, counts.signed_by_leader)
    signed = set(organization)
    documents = [
        _Document(
            registered_at=office_moment(rng, rng.choice(days)),
            direction="incoming" if index < counts.incoming else "outgoing",
            electronic=index in electronic,
            signed_by_organization=index in signed,
            signed_by_leader=index in leader,
        )
        for index in range(total)
    ]
    for _ in range(counts.confidential):
        outgoing = rng.random() < 0.5
        documents.append(
            _Document(
                registered_at=office_moment(rng, rng.choice(days)),
                direction="outgoing" if outgoing else "incoming",
                electronic=False,
                confidential=True,
                signed_by_organization=outgoing,
                signed_by_leader=outgoing,
            )
        )
    return documents


def _later_documents(rng: Random, counts: DocumentPlan, plan: ScenarioPlan) -> list[_Document]:
    """December's documents, in the window's proportions."""
    share, days = _later_share(plan), _later_days(plan)
    total = counts.incoming + counts.outgoing
    electronic_share = counts.electronic / total if total else 1.0
    organization_share = counts.signed_by_organization / counts.outgoing if counts.outgoing else 0.0
    leader_share = counts.signed_by_leader / counts.signed_by_organization if counts.signed_by_organization else 0.0
    documents: list[_Document] = []
    for direction, count in (("incoming", counts.incoming), ("outgoing", counts.outgoing)):
        for _ in range(round(count * share)):
            organization = direction == "outgoing" and rng.random() < organization_share
            document = _Document(
                registered_at=office_moment(rng, rng.choice(days)),
                direction=direction,  # type: ignore[arg-type]
                electronic=rng.random() < electronic_share,
                signed_by_organization=organization,
                signed_by_leader=organization and rng.random() < leader_share,
            )
            documents.append(document)
    return documents


def _emit_document(emitter: _Emitter, ident: str, unit: str, document: _Document) -> None:
    """The registration, preceded on the same day by the signatures of an outgoing document."""
    registered_at = document.registered_at
    if document.signed_by_organization or document.signed_by_leader:
        _emit_signatures(emitter, ident, document)
    registered = {
        "document_id": ident,
        "unit": unit,
        "direction": document.direction,
        "registered_at": _iso(registered_at),
        "electronic": document.electronic,
        "confidential": document.confidential,
    }
    emitter.emit(QLVB, DOCUMENT_REGISTERED, ident, registered_at, registered)


def _emit_signatures(emitter: _Emitter, ident: str, document: _Document) -> None:
    """The leader signs first, the organization's signature follows, the same day before registration."""
    rng, registered_at = emitter.rng, document.registered_at
    opens = registered_at.replace(hour=7, minute=30, second=0)
    organization_at = max(opens, registered_at - timedelta(minutes=rng.randint(1, 15)))
    leader_at = max(opens, organization_at - timedelta(minutes=rng.randint(5, 120)))
    if document.signed_by_leader:
        data = {"document_id": ident, "signed_at": _iso(leader_at), "signer": "leader"}
        emitter.emit(QLVB, DOCUMENT_SIGNED, ident, leader_at, data)
    if document.signed_by_organization:
        data = {"document_id": ident, "signed_at": _iso(organization_at), "signer": "organization"}
        emitter.emit(QLVB, DOCUMENT_SIGNED, ident, organization_at, data)
