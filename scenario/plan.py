"""The numeric plan of the scenario: which figures every unit must show for the window.

The town's and the pilot communes' figures come from the scenario JSON (the report's own counts);
the figures the report does not give are chosen here, in one place (`TOWN_CHOICES`,
`PILOT_CHOICES`), and the nine other communes get modest figures drawn from the seed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from pathlib import Path
from random import Random
from typing import Any, TypeVar

from scenario.workdays import LOCAL

SCENARIO_RESOURCE = "my_hao_2023.json"
TOWN = "my-hao"
PILOTS: tuple[str, ...] = ("my-hao.minh-duc", "my-hao.xuan-duc", "my-hao.hung-long", "my-hao.ban-yen-nhan")

# --- figures the report does not give, chosen plausibly ------------------------------------------
# Given figures (scenario JSON `targets`) take precedence; the derived ones (resolved, received_direct,
# resolved_on_time, procedures total) are checked against the given ones.

TOWN_CHOICES: dict[str, dict[str, int]] = {
    "dossiers": {"withdrawn": 0, "ratings": 389, "ratings_satisfied": 371, "due_changed": 14},
    "documents": {"confidential": 46},  # electronic: every non-confidential document (the report: 100%)
    "procedures": {"upgraded": 12, "unpublished": 5, "published_later": 3},
}

PILOT_CHOICES: dict[str, dict[str, dict[str, int]]] = {
    "my-hao.minh-duc": {
        "dossiers": {
            "received_postal": 0, "in_progress": 9, "in_progress_overdue": 2, "withdrawn": 2, "resolved_late": 6,
            "digitization_required": 441, "components_digitized": 352, "due_changed": 3,
        },
        "documents": {
            "incoming": 712, "outgoing": 565, "electronic": 1262, "signed_by_organization": 393,
            "signed_by_leader": 241, "confidential": 3,
        },
        "procedures": {"info": 8, "partial_online": 41, "full_online": 72, "upgraded": 4, "unpublished": 1,
                       "published_later": 1},
    },
    "my-hao.xuan-duc": {
        "dossiers": {
            "received_postal": 0, "in_progress": 7, "in_progress_overdue": 1, "withdrawn": 1, "resolved_late": 4,
            "digitization_required": 384, "components_digitized": 291, "due_changed": 2,
        },
        "documents": {
            "incoming": 542, "outgoing": 430, "electronic": 953, "signed_by_organization": 299,
            "signed_by_leader": 172, "confidential": 2,
        },
        "procedures": {"info": 11, "partial_online": 44, "full_online": 63, "upgraded": 3, "unpublished": 2,
                       "published_later": 0},
    },
    "my-hao.hung-long": {
        "dossiers": {
            "received_postal": 1, "in_progress": 5, "in_progress_overdue": 2, "withdrawn": 1, "resolved_late": 5,
            "digitization_required": 205, "components_digitized": 148, "due_changed": 2,
        },
        "documents": {
            "incoming": 458, "outgoing": 353, "electronic": 785, "signed_by_organization": 241,
            "signed_by_leader": 139, "confidential": 1,
        },
        "procedures": {"info": 13, "partial_online": 47, "full_online": 58, "upgraded": 2, "unpublished": 1,
                       "published_later": 1},
    },
    "my-hao.ban-yen-nhan": {
        "dossiers": {
            "received_postal": 0, "in_progress": 4, "in_progress_overdue": 1, "withdrawn": 0, "resolved_late": 3,
            "digitization_required": 196, "components_digitized": 163, "due_changed": 1,
        },
        "documents": {
            "incoming": 619, "outgoing": 517, "electronic": 1123, "signed_by_organization": 362,
            "signed_by_leader": 226, "confidential": 2,
        },
        "procedures": {"info": 9, "partial_online": 39, "full_online": 74, "upgraded": 5, "unpublished": 0,
                       "published_later": 2},
    },
}  # fmt: skip


# --- plan types ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DossierPlan:
    """Dossier figures of one unit for the window; all received dossiers are received in the window."""

    received: int
    received_online: int
    received_postal: int
    resolved_late: int
    in_progress: int
    in_progress_overdue: int
    withdrawn: int
    digitization_required: int
    components_digitized: int
    result_digitization_required: int
    results_digitized: int
    fee_required: int
    paid_online: int
    ratings: int
    ratings_satisfied: int
    due_changed: int = 0  # supplement requests (deadline extended) among the on-time resolutions

    @property
    def received_direct(self) -> int:
        return self.received - self.received_online - self.received_postal

    @property
    def resolved(self) -> int:
        return self.received - self.in_progress - self.withdrawn

    @property
    def resolved_on_time(self) -> int:
        return self.resolved - self.resolved_late

    def figures(self) -> dict[str, int]:
        """The `dossiers` group of the indicators body."""
        return {
            "received": self.received,
            "received_online": self.received_online,
            "received_direct": self.received_direct,
            "received_postal": self.received_postal,
            "resolved": self.resolved,
            "resolved_on_time": self.resolved_on_time,
            "resolved_late": self.resolved_late,
            "in_progress": self.in_progress,
            "in_progress_overdue": self.in_progress_overdue,
            "withdrawn": self.withdrawn,
            "digitization_required": self.digitization_required,
            "components_digitized": self.components_digitized,
            "result_digitization_required": self.result_digitization_required,
            "results_digitized": self.results_digitized,
            "fee_required": self.fee_required,
            "paid_online": self.paid_online,
            "ratings": self.ratings,
            "ratings_satisfied": self.ratings_satisfied,
        }

    def check(self) -> None:
        _require_non_negative(self)
        _require(self.received_direct >= 0, "online + postal exceed received")
        _require(self.in_progress_overdue <= self.in_progress, "overdue exceeds in progress")
        _require(self.resolved >= 0 and self.resolved_on_time >= self.due_changed, "too few resolutions")
        _require(self.components_digitized <= self.digitization_required <= self.received, "digitization")
        _require(self.results_digitized <= self.result_digitization_required <= self.resolved, "results")
        _require(self.paid_online <= self.fee_required <= self.received, "fees")
        _require(self.paid_online <= self.received - self.withdrawn, "online payments of withdrawn dossiers")
        _require(self.ratings_satisfied <= self.ratings <= self.resolved, "ratings")


@dataclass(frozen=True)
class DocumentPlan:
    """Non-confidential documents registered (and signatures made) in the window, plus confidential ones."""

    incoming: int
    outgoing: int
    electronic: int
    signed_by_organization: int
    signed_by_leader: int
    confidential: int = 0

    def figures(self) -> dict[str, int]:
        """The `documents` group of the indicators body."""
        return {
            "incoming": self.incoming,
            "outgoing": self.outgoing,
            "electronic": self.electronic,
            "signed_by_organization": self.signed_by_organization,
            "signed_by_leader": self.signed_by_leader,
        }

    def check(self) -> None:
        _require_non_negative(self)
        _require(self.electronic <= self.incoming + self.outgoing, "electronic exceeds documents")
        # Outgoing documents carry the signatures; a leader's signature comes with the organization's.
        _require(self.signed_by_leader <= self.signed_by_organization <= self.outgoing, "signatures")


@dataclass(frozen=True)
class ProcedurePlan:
    """The catalogue in force at as_of, and the catalogue events that do not change it."""

    info: int
    partial_online: int
    full_online: int
    upgraded: int = 0  # published at a lower level first, raised during the year
    unpublished: int = 0  # published, then abolished before as_of
    published_later: int = 0  # published after as_of (December)

    def figures(self) -> dict[str, int]:
        """The `procedures` group of the indicators body."""
        levels = {"info": self.info, "partial_online": self.partial_online, "full_online": self.full_online}
        return {"total": sum(levels.values()), **levels}

    def check(self) -> None:
        _require_non_negative(self)
        online = self.partial_online + self.full_online
        _require(online >= 2, "dossiers need at least two procedures with online service")
        _require(self.upgraded <= online, "upgrades exceed online procedures")


@dataclass(frozen=True)
class UnitPlan:
    unit: str
    dossiers: DossierPlan
    documents: DocumentPlan
    procedures: ProcedurePlan

    def figures(self) -> dict[str, dict[str, int]]:
        """The count groups of the indicators body (scope self) this unit must show."""
        return {
            "dossiers": self.dossiers.figures(),
            "documents": self.documents.figures(),
            "procedures": self.procedures.figures(),
        }


@dataclass(frozen=True)
class ScenarioPlan:
    start: date
    end: date
    units: dict[str, UnitPlan]

    @property
    def as_of(self) -> datetime:
        """The end of the window's last day (local time)."""
        return datetime.combine(self.end, time.max, tzinfo=LOCAL)


P = TypeVar("P", DossierPlan, DocumentPlan, ProcedurePlan)


def load_scenario() -> dict[str, Any]:
    """The scenario shipped with the project (unit tree, window, target figures, notes)."""
    raw = Path(__file__).with_name(SCENARIO_RESOURCE).read_text(encoding="utf-8")
    scenario: dict[str, Any] = json.loads(raw)
    return scenario


# --- building the plan --------------------------------------------------------------------------


def build_plan(scenario: Mapping[str, Any], rng: Random) -> ScenarioPlan:
    """The plan of every unit below the town, the town itself and its communes (scenario order)."""
    targets: Mapping[str, Any] = scenario["targets"]
    window = scenario["window"]
    units: dict[str, UnitPlan] = {}
    for unit in scenario["units"]:
        code = unit["code"]
        if code == TOWN:
            units[code] = _town_plan(targets[TOWN])
        elif code in PILOTS:
            units[code] = _pilot_plan(code, targets[code])
        elif unit["parent"] == TOWN:
            units[code] = _random_commune_plan(code, rng)
    return ScenarioPlan(date.fromisoformat(window["from"]), date.fromisoformat(window["to"]), units)


def _town_plan(given: Mapping[str, Any]) -> UnitPlan:
    dossiers = {**TOWN_CHOICES["dossiers"], **given["dossiers"]}
    documents = {**TOWN_CHOICES["documents"], **given["documents"]}
    documents.setdefault("electronic", documents["incoming"] + documents["outgoing"])
    procedures = {**TOWN_CHOICES["procedures"], **given["procedures"]}
    plan = UnitPlan(
        TOWN,
        _build(DossierPlan, dossiers),
        _build(DocumentPlan, documents),
        _build(ProcedurePlan, procedures),
    )
    _check_given(plan, {**given["dossiers"]}, "dossiers")
    _check_given(plan, {**given["documents"]}, "documents")
    _check_given(plan, {**given["procedures"]}, "procedures")
    return plan


def _pilot_plan(code: str, given: Mapping[str, Any]) -> UnitPlan:
    choices = PILOT_CHOICES[code]
    counts = {name: value for name, value in given.items() if isinstance(value, int)}
    plan = UnitPlan(
        code,
        _build(DossierPlan, {**choices["dossiers"], **counts}),
        _build(DocumentPlan, choices["documents"]),
        _build(ProcedurePlan, choices["procedures"]),
    )
    _check_given(plan, counts, "dossiers")
    return plan


def _random_commune_plan(code: str, rng: Random) -> UnitPlan:
    """Modest, plausible activity for a commune the report gives no figures for."""
    received = rng.randint(180, 420)
    in_progress = rng.randint(2, 10)
    withdrawn = rng.randint(0, 3)
    resolved = received - in_progress - withdrawn
    digitization_required = received - rng.randint(0, 10)
    result_digitization_required = round(resolved * rng.uniform(0.3, 0.85))
    fee_required = round(received * rng.uniform(0.1, 0.3))
    ratings = round(resolved * rng.uniform(0.1, 0.4))
    dossiers = DossierPlan(
        received=received,
        received_online=round(received * rng.uniform(0.55, 0.95)),
        received_postal=rng.randint(0, 3),
        resolved_late=rng.randint(0, 6),
        in_progress=in_progress,
        in_progress_overdue=rng.randint(0, min(2, in_progress)),
        withdrawn=withdrawn,
        digitization_required=digitization_required,
        components_digitized=round(digitization_required * rng.uniform(0.5, 0.9)),
        result_digitization_required=result_digitization_required,
        results_digitized=round(result_digitization_required * rng.uniform(0.4, 0.9)),
        fee_required=fee_required,
        paid_online=round(fee_required * rng.uniform(0.05, 0.6)),
        ratings=ratings,
        ratings_satisfied=round(ratings * rng.uniform(0.7, 0.95)),
        due_changed=rng.randint(0, 3),
    )
    incoming, outgoing = rng.randint(300, 700), rng.randint(250, 550)
    organization = round(outgoing * rng.uniform(0.55, 0.8))
    documents = DocumentPlan(
        incoming=incoming,
        outgoing=outgoing,
        electronic=incoming + outgoing - rng.randint(0, 40),
        signed_by_organization=organization,
        signed_by_leader=round(organization * rng.uniform(0.4, 0.7)),
        confidential=rng.randint(0, 5),
    )
    procedures = ProcedurePlan(
        info=rng.randint(5, 15),
        partial_online=rng.randint(30, 50),
        full_online=rng.randint(50, 80),
        upgraded=rng.randint(0, 5),
        unpublished=rng.randint(0, 2),
        published_later=rng.randint(0, 2),
    )
    plan = UnitPlan(code, dossiers, documents, procedures)
    _check(plan)
    return plan


def _build(kind: type[P], values: Mapping[str, Any]) -> P:
    names = {field.name for field in fields(kind)}
    plan = kind(**{name: value for name, value in values.items() if name in names})
    plan.check()
    return plan


def _check(plan: UnitPlan) -> None:
    plan.dossiers.check()
    plan.documents.check()
    plan.procedures.check()


def _check_given(plan: UnitPlan, given: Mapping[str, Any], group: str) -> None:
    """Every figure given by the scenario must be the plan's figure (derived ones included)."""
    figures = plan.figures()[group]
    for name, value in given.items():
        if name in figures and figures[name] != value:
            raise ValueError(f"{plan.unit}: {group}.{name} is {figures[name]} in the plan, {value} in the scenario")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"inconsistent plan: {message}")


def _require_non_negative(plan: DossierPlan | DocumentPlan | ProcedurePlan) -> None:
    for item in fields(plan):
        _require(getattr(plan, item.name) >= 0, f"{item.name} is negative")
