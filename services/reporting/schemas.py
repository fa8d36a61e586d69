"""OpenAPI description of the reporting bodies (documentation models; routes return plain dicts).

The models forbid unknown keys, so a test that validates real answers with them keeps this
description accurate.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid", populate_by_name=True)


class DossierFigures(BaseModel):
    model_config = _STRICT
    received: int = Field(description="Dossiers with received_at in the window (withdrawn ones included)")
    received_online: int = Field(description="Received dossiers with channel online")
    received_direct: int = Field(description="Received dossiers with channel direct")
    received_postal: int = Field(description="Received dossiers with channel postal")
    resolved: int = Field(description="Dossiers with resolved_at in the window")
    resolved_on_time: int = Field(description="Resolved dossiers with no deadline or resolved_at <= due_at")
    resolved_late: int = Field(description="Resolved dossiers past their deadline")
    in_progress: int = Field(description="Dossiers received, not resolved and not withdrawn at as_of")
    in_progress_overdue: int = Field(description="In-progress dossiers with due_at < as_of")
    withdrawn: int = Field(description="Dossiers with withdrawn_at in the window")
    digitization_required: int = Field(description="Received dossiers whose components must be digitized")
    components_digitized: int = Field(description="Of those, dossiers with a components_digitized event")
    result_digitization_required: int = Field(description="Resolved dossiers whose result must be digitized")
    results_digitized: int = Field(description="Of those, dossiers with a result_digitized event")
    fee_required: int = Field(description="Received dossiers with a fee")
    paid_online: int = Field(description="Of those, dossiers paid online")
    ratings: int = Field(description="Dossiers whose winning rating has rated_at in the window")
    ratings_satisfied: int = Field(description="Of those, rated very_satisfied or satisfied")
    synced: int = Field(description="Received dossiers synchronised to the National Public Service Portal (v2)")
    supplement_requested: int = Field(description="Received dossiers with at least one supplement request (v2)")
    components_reused: int = Field(description="Received dossiers with components reused from digitized data (v2)")
    components_from_personal_store: int = Field(
        description="Received dossiers with components from the applicant's personal data store (v2)"
    )


class DocumentFigures(BaseModel):
    model_config = _STRICT
    incoming: int = Field(description="Non-confidential incoming documents registered in the window")
    outgoing: int = Field(description="Non-confidential outgoing documents registered in the window")
    electronic: int = Field(description="Of those, exchanged as e-documents")
    signed_by_organization: int = Field(description="Documents with an organization signature in the window")
    signed_by_leader: int = Field(description="Documents with a leader's personal signature in the window")


class ProcedureFigures(BaseModel):
    model_config = _STRICT
    total: int = Field(description="Procedures published at as_of")
    info: int = Field(description="Of those, at service level info")
    partial_online: int = Field(description="Of those, at service level partial_online")
    full_online: int = Field(description="Of those, at service level full_online")


class Rates(BaseModel):
    """Numerator/denominator rounded to 4 decimals; null when the denominator is 0."""

    model_config = _STRICT
    online: float | None = Field(description="received_online / received")
    resolved_on_time: float | None = Field(description="resolved_on_time / resolved")
    in_progress_overdue: float | None = Field(description="in_progress_overdue / in_progress")
    components_digitized: float | None = Field(description="components_digitized / digitization_required")
    results_digitized: float | None = Field(description="results_digitized / result_digitization_required")
    paid_online: float | None = Field(description="paid_online / fee_required")
    satisfaction: float | None = Field(description="ratings_satisfied / ratings")
    signed_by_leader: float | None = Field(description="signed_by_leader / signed_by_organization")


class MonthDossierFigures(BaseModel):
    """The window figures of a month (null for a month not begun)."""

    model_config = _STRICT
    received: int | None
    received_online: int | None
    received_direct: int | None
    received_postal: int | None
    resolved: int | None
    resolved_on_time: int | None
    resolved_late: int | None
    withdrawn: int | None
    digitization_required: int | None
    components_digitized: int | None
    result_digitization_required: int | None
    results_digitized: int | None
    fee_required: int | None
    paid_online: int | None
    ratings: int | None
    ratings_satisfied: int | None
    synced: int | None
    supplement_requested: int | None
    components_reused: int | None
    components_from_personal_store: int | None


class MonthDocumentFigures(BaseModel):
    model_config = _STRICT
    incoming: int | None
    outgoing: int | None
    electronic: int | None
    signed_by_organization: int | None
    signed_by_leader: int | None


class Freshness(BaseModel):
    model_config = _STRICT
    last_applied_at: datetime | None = Field(description="When the newest applied event was applied")


class PredecessorOut(BaseModel):
    model_config = _STRICT
    code: str = Field(examples=["12106"])
    name: str = Field(examples=["Phường Phan Đình Phùng"])
    valid_from: date | None
    valid_to: date | None = Field(examples=["2025-07-01"])
    whole: bool = Field(description="merged whole into this unit (false: split, counted here as its own row)")


class UnitOut(BaseModel):
    model_config = _STRICT
    code: str = Field(examples=["my-hao"])
    name: str = Field(examples=["Thị xã Mỹ Hào"])
    parent: str | None = Field(examples=["hung-yen"])
    valid_from: date | None = Field(description="first day of the unit (null: before the registry's history)")
    valid_to: date | None = Field(description="first day the unit no longer exists (null: open-ended)")
    predecessors: list[PredecessorOut] = Field(description="ended units whose events roll up into this one")


class _Figures(BaseModel):
    model_config = _STRICT
    dossiers: DossierFigures
    documents: DocumentFigures
    procedures: ProcedureFigures
    rates: Rates


class Indicators(_Figures):
    unit: str
    scope: Literal["subtree", "self"]
    from_: date = Field(alias="from")
    to: date
    as_of: datetime = Field(description="End of day `to`, or now if earlier (snapshot: when computed)")
    freshness: Freshness


class BreakdownRow(_Figures):
    unit: str
    name: str
    scope: Literal["subtree", "self"] = Field(description="self for the unit's own row, subtree for a child")
    split: bool = Field(
        description="a unit split among several successors (contract §1.1), counted here: rows after the children"
    )
    row: Literal["unit", "child", "split", "dissolved", "successor"] = Field(
        description="unit: its own row; child: a direct child's subtree; split, dissolved (ended without "
        "successors) or successor (created after the tree's day): a unit counted here that is not in the tree"
    )
    valid_from: date | None = Field(description="the row's unit's first day")
    valid_to: date | None = Field(description="the first day the row's unit no longer exists")


class Breakdown(BaseModel):
    model_config = _STRICT
    unit: str
    from_: date = Field(alias="from")
    to: date
    as_of: datetime
    rows: list[BreakdownRow]
    freshness: Freshness


class Index766Part(BaseModel):
    model_config = _STRICT
    numerator: int
    denominator: int
    ratio: float | None


class Index766Component(BaseModel):
    model_config = _STRICT
    code: str = Field(examples=["2.1"])
    name: str
    max_points: float
    numerator: int | None = Field(description="Null when the component has no input (`computed: false`)")
    denominator: int | None
    ratio: float | None = Field(description="Rounded to 4 decimals; null for a zero denominator or no input")
    score: float | None = Field(description="Rounded to 2 decimals, from the exact ratio; null if not computed")
    computed: bool
    parts: list[Index766Part] | None = Field(default=None, description="The ratios of a composite (3.3, 5.4)")


class Index766Group(BaseModel):
    model_config = _STRICT
    code: str = Field(examples=["TDGQ"])
    name: str
    max_points: float
    score: float | None = Field(description="Sum of the group's rounded computed component scores")
    components: list[Index766Component]


class Index766Rank(BaseModel):
    model_config = _STRICT
    unit: str
    name: str
    score: float


class Index766Body(BaseModel):
    model_config = _STRICT
    unit: str
    from_: date = Field(alias="from")
    to: date
    as_of: datetime
    formula: str = Field(examples=["766-2025.1"])
    score: float = Field(description="Sum of the computed components' rounded scores")
    computable_points: float = Field(description="Sum of the computed components' points")
    groups: list[Index766Group]
    ranking: list[Index766Rank] = Field(description="The unit's direct children, highest score first")
    freshness: Freshness


class MonthRow(BaseModel):
    model_config = _STRICT
    month: str = Field(pattern=r"^\d{4}-\d{2}$", examples=["2023-03"])
    from_: date = Field(alias="from")
    to: date
    dossiers: MonthDossierFigures
    documents: MonthDocumentFigures


class Monthly(BaseModel):
    model_config = _STRICT
    unit: str
    scope: Literal["subtree", "self"]
    year: int
    as_of: datetime
    months: list[MonthRow] = Field(description="January to December")
    freshness: Freshness


MY_HAO_EXAMPLE: dict[str, Any] = {
    "unit": "my-hao",
    "scope": "self",
    "from": "2023-01-01",
    "to": "2023-11-27",
    "as_of": "2023-11-27T23:59:59.999999+07:00",
    "dossiers": {
        "received": 1763, "received_online": 1704, "received_direct": 59, "received_postal": 0,
        "resolved": 1722, "resolved_on_time": 1722, "resolved_late": 0, "in_progress": 41,
        "in_progress_overdue": 0, "withdrawn": 0, "digitization_required": 1729, "components_digitized": 1402,
        "result_digitization_required": 1319, "results_digitized": 1089, "fee_required": 606,
        "paid_online": 158, "ratings": 0, "ratings_satisfied": 0,
        "synced": 0, "supplement_requested": 0, "components_reused": 0, "components_from_personal_store": 0,
    },
    "documents": {
        "incoming": 8623, "outgoing": 13816, "electronic": 22439,
        "signed_by_organization": 8411, "signed_by_leader": 4223,
    },
    "procedures": {"total": 226, "info": 20, "partial_online": 76, "full_online": 130},
    "rates": {
        "online": 0.9665, "resolved_on_time": 1.0, "in_progress_overdue": 0.0, "components_digitized": 0.8109,
        "results_digitized": 0.8256, "paid_online": 0.2607, "satisfaction": None, "signed_by_leader": 0.5021,
    },
    "freshness": {"last_applied_at": "2023-11-27T16:02:11.512+00:00"},
}  # fmt: skip
