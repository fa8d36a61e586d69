"""A DVCQG record -> the CloudEvents of contract §2 it implies (pure; contract §3.1).

A `DongBoHoSoMC` record is a *snapshot*: the dossier as it stands when the one-stop system sends
it, on every change. The adapter keeps no state: each snapshot is turned into events on its own,
and the core's rule for corrections (contract §2: the latest `time` wins, then the greater `id`)
decides between snapshots. Ids and times are derived from the record's content only, so that:

- an unchanged record sent again yields byte-identical events (duplicates: no effect, no dead
  letter), and an id is never reused for other content (the id ends with a hash of the event's
  type, subject, time and data);
- of two snapshots of one dossier that disagree on a fact, **the one further along the dossier's
  life wins**, whatever their order of arrival: the one with the later *progress stamp* (the latest
  timestamp of a fact it records: `NgayTiepNhan`, `NgayKetThucXuLy`, `NgayTra`, the supplements'
  `NgayBoSung` and `NgayTiepNhanBoSung`; due dates excluded), and on equal stamps the one with the
  greater status code. Snapshots equal on both are ordered by their content hash: deterministic,
  but no better than a coin, so a correction should come with a new fact or status.

How: the events that set a fact (`received`, with the due date; `resolved`; `withdrawn`) carry
`time` = the progress stamp and `id` = `dvcqg:<MaHoSo>:<kind>:<status:02d>:<hash>`: for one dossier
and kind the ids share their prefix up to the status, so on equal times the greater status wins.
Facts that are true if any event says so, or that are sets, do not compete, and are dated by a
fact that does not move between snapshots, so that each snapshot repeats the same event instead of
adding one: `synced`, `components_digitized` and `paid` at `NgayTiepNhan`; each supplement request
at its `NgayBoSung` and each completion at its `NgayTiepNhanBoSung` (one event per distinct date);
`result_digitized` at the end of processing. Their ids are `dvcqg:<MaHoSo>:<kind>:<hash>`.

A fact only an earlier snapshot carried stays: events are never retracted (a dossier reported as
resolved stays resolved until a snapshot further along corrects the resolution).

Statuses (`TrangThaiHoSo`): 1 (submitted, not accepted) and 3 (refused at reception) imply no
event; 2, 4, 5, 6 a received dossier in progress; 7 received + withdrawn; 8 received + resolved
`rejected`; 9, 10 received + resolved `approved`. The end of processing (resolution, withdrawal)
is `NgayKetThucXuLy`, else `NgayTra`, else the progress stamp (a reduced record has no end date;
the stamp is the latest moment the record proves, and keeps the event deterministic).

The due date: the latest `NgayHenTraMoi` of the supplements (the new legal due date after a
request for supplements) when one is given, else `NgayHenTra`; it goes in the `received` event
(`due_changed` would compete with it on `time`). A later `NgayHenTra` is not preferred to it: a new
appointment given with an apology does not move the legal due date (contract §2).

`CapNhatTienDoHoSoMC` steps (`MaHoSo`, `TrangThai`, `ThoiDiemXuLy`) carry no reception data, so
they never imply a received dossier; dated by `ThoiDiemXuLy` (`time` and fact), `TrangThai` 5
implies a supplement request, 7 a withdrawal, 8 a rejection, 9 an approval. 10 (result handed
over) implies nothing: the step is dated at the hand-over, not at the resolution, and would
otherwise move the resolution past it. A step without `TrangThai` or `ThoiDiemXuLy` implies nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from services.intake.dvcqg_model import DossierRecord, ProgressStep
from shared.events import FUTURE_TOLERANCE, MAX_AMOUNT_VND

# (organ code or name, local day) -> the code of the unit valid that day whose `organs` hold it.
OrganResolver = Callable[[str, date], str | None]

NOT_RECEIVED = frozenset({1, 3})
WITHDRAWN = 7
OUTCOMES: dict[int, Literal["approved", "rejected"]] = {8: "rejected", 9: "approved", 10: "approved"}
STEP_SUPPLEMENT_REQUESTED = 5
STEP_OUTCOMES: dict[int, Literal["approved", "rejected"]] = {8: "rejected", 9: "approved"}

_TYPE_PREFIX = "vn.gov.tthc.dossier."
_ID_PREFIX = "dvcqg"
# 128 bits of SHA-256: ample against collisions; with the longest MaHoSo (64) and kind (20) the id
# stays within the contract's 128 characters.
_HASH_CHARS = 32


@dataclass
class Mapped:
    """The events one record implies, or the problems (dotted source field, message) that stop it."""

    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def dossier_events(
    record: DossierRecord, *, source: str, organ_code: str | None, resolve_organ: OrganResolver, now: datetime
) -> Mapped:
    """The events of one `DongBoHoSoMC` snapshot (see the module docstring for the rules).

    One function on purpose: the checks and the events derive from the same values of the record
    (reception, due date, fee total, unit, the end and stamp dates), and read as the module
    docstring lists the rules, refusals first, then one event per fact.
    """
    result = Mapped()
    if record.status in NOT_RECEIVED:
        return result
    received_at = record.received_at
    if record.procedure_code is None:
        result.problems.append(("MaTTHC", "is required for a received dossier (status 2, 4-10)"))
    if received_at is None:
        result.problems.append(("NgayTiepNhan", "is required for a received dossier (status 2, 4-10)"))
        return result
    dates = fact_dates(record)
    limit = now + FUTURE_TOLERANCE
    result.problems += [(path, "lies more than 5 minutes in the future") for path, at in dates if at > limit]
    due_field, due_at = due_date(record)
    if due_at is not None and due_at < received_at:
        result.problems.append((due_field, "must not be before NgayTiepNhan"))
    fee_total = sum((line.amount for line in record.fee_lines), Decimal(0))
    amount_vnd = int(fee_total.to_integral_value(rounding=ROUND_HALF_UP))
    if record.paid_online and amount_vnd > MAX_AMOUNT_VND:
        result.problems.append(("DanhSachLePhi", "the fees add up to more than 10^15 VND"))
    unit, unit_problem = _unit(record, received_at.date(), organ_code, resolve_organ)
    if unit_problem is not None:
        result.problems.append(unit_problem)
    if result.problems or unit is None or record.procedure_code is None:
        return result

    stamp = max(at for _, at in dates)
    ended_at = record.processing_ended_at or record.returned_at or stamp
    dossier = record.dossier_id
    live_files = [item for item in record.submitted_files if not item.deleted]
    event = _EventMaker(source, dossier)

    out = result.events
    out.append(
        event.make(
            "received",
            stamp,
            record.status,
            unit=unit,
            procedure_code=record.procedure_code,
            channel=record.channel,
            received_at=received_at,
            due_at=due_at,
            fee_required=any(line.amount > 0 for line in record.fee_lines),
        )
    )
    out.append(event.make("synced", received_at, synced_at=received_at))
    if record.has_digitized_components or any(item.digitized for item in live_files):
        out.append(
            event.make(
                "components_digitized",
                received_at,
                digitized_at=received_at,
                reused=any(item.reused for item in live_files),
                from_personal_store=any(item.from_personal_store for item in live_files),
            )
        )
    if record.paid_online:
        # The contract reads the flag as "paid online"; some senders set it for cash as well, which
        # the adapter cannot tell. The record has no payment time: reception dates it, stably.
        out.append(event.make("paid", received_at, paid_at=received_at, method="online", amount_vnd=amount_vnd))
    for requested_at in _distinct(item.requested_at for item in record.supplements):
        out.append(event.make("supplement_requested", requested_at, requested_at=requested_at))
    for completed_at in _distinct(item.completed_at for item in record.supplements):
        out.append(event.make("supplement_completed", completed_at, completed_at=completed_at))
    if record.status == WITHDRAWN:
        out.append(event.make("withdrawn", stamp, record.status, withdrawn_at=ended_at))
    outcome = OUTCOMES.get(record.status)
    if outcome is not None:
        out.append(event.make("resolved", stamp, record.status, resolved_at=ended_at, outcome=outcome))
    if any(item.has_file for item in record.result_files):
        out.append(event.make("result_digitized", ended_at, digitized_at=ended_at))
    return result


def step_events(step: ProgressStep, *, source: str, now: datetime) -> Mapped:
    """The events of one `CapNhatTienDoHoSoMC` step (see the module docstring)."""
    result = Mapped()
    status, at = step.status, step.at
    if status is None or at is None:
        return result
    implies = status in (STEP_SUPPLEMENT_REQUESTED, WITHDRAWN) or status in STEP_OUTCOMES
    if not implies:
        return result
    if at > now + FUTURE_TOLERANCE:
        result.problems.append(("ThoiDiemXuLy", "lies more than 5 minutes in the future"))
        return result
    event = _EventMaker(source, step.dossier_id)
    if status == STEP_SUPPLEMENT_REQUESTED:
        result.events.append(event.make("supplement_requested", at, requested_at=at))
    elif status == WITHDRAWN:
        result.events.append(event.make("withdrawn", at, status, withdrawn_at=at))
    else:
        result.events.append(event.make("resolved", at, status, resolved_at=at, outcome=STEP_OUTCOMES[status]))
    return result


def fact_dates(record: DossierRecord) -> list[tuple[str, datetime]]:
    """The record's timestamps that record a fact (due dates excluded), by source field path."""
    dates: list[tuple[str, datetime | None]] = [
        ("NgayTiepNhan", record.received_at),
        ("NgayKetThucXuLy", record.processing_ended_at),
        ("NgayTra", record.returned_at),
    ]
    for index, item in enumerate(record.supplements):
        dates.append((f"DanhSachHoSoBoSung.{index}.NgayBoSung", item.requested_at))
        dates.append((f"DanhSachHoSoBoSung.{index}.NgayTiepNhanBoSung", item.completed_at))
    return [(path, at) for path, at in dates if at is not None]


def progress_stamp(record: DossierRecord) -> datetime | None:
    """The latest timestamp of a fact the record records: how far along the dossier's life it is."""
    dates = fact_dates(record)
    return max(at for _, at in dates) if dates else None


def due_date(record: DossierRecord) -> tuple[str, datetime | None]:
    """The legal due date and the field it comes from: the latest new due date of a supplement, else NgayHenTra."""
    new_dates = [
        (f"DanhSachHoSoBoSung.{index}.NgayHenTraMoi", item.new_due_at)
        for index, item in enumerate(record.supplements)
        if item.new_due_at is not None
    ]
    if new_dates:
        return max(new_dates, key=lambda pair: pair[1])
    return ("NgayHenTra", record.due_at)


def _unit(
    record: DossierRecord, day: date, organ_code: str | None, resolve_organ: OrganResolver
) -> tuple[str | None, tuple[str, str] | None]:
    """The unit valid on `day` whose organs hold `DonViXuLy`, else the query's `MaDinhDanhDV`."""
    if record.organ is not None:
        unit = resolve_organ(record.organ, day)
        if unit is not None:
            return unit, None
    if organ_code:
        unit = resolve_organ(organ_code, day)
        if unit is not None:
            return unit, None
    if record.organ is not None:
        message = "names no unit valid on the day of NgayTiepNhan"
        if organ_code:
            message += ", nor does the query's MaDinhDanhDV"
    elif organ_code:
        message = "is absent, and the query's MaDinhDanhDV names no unit valid on the day of NgayTiepNhan"
    else:
        message = "is absent, and the query has no MaDinhDanhDV: the dossier's unit is unknown"
    return None, ("DonViXuLy", message)


def _distinct(values: Iterable[datetime | None]) -> list[datetime]:
    return sorted({value for value in values if value is not None})


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class _EventMaker:
    source: str
    dossier_id: str

    def make(self, kind: str, time: datetime, rank: int | None = None, **data: Any) -> dict[str, Any]:
        """A dossier event as a JSON-ready CloudEvent; `rank` (a status code) orders ids of a fact."""
        event_type = _TYPE_PREFIX + kind
        content = {
            "type": event_type,
            "subject": self.dossier_id,
            "time": time.isoformat(),
            "data": {"dossier_id": self.dossier_id, **{name: _json_value(value) for name, value in data.items()}},
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_CHARS]
        parts = [_ID_PREFIX, self.dossier_id, kind, *([f"{rank:02d}"] if rank is not None else []), digest]
        return {
            "specversion": "1.0",
            "id": ":".join(parts),
            "source": self.source,
            "type": event_type,
            "time": content["time"],
            "subject": self.dossier_id,
            "datacontenttype": "application/json",
            "data": content["data"],
        }
