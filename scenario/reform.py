"""The Hưng Yên 2024–2026 scenario: the Mỹ Hào area across the 1 July 2025 reorganization (pure).

Thị xã Mỹ Hào (328) and its 13 wards and communes work from January 2024 to June 2025; on 1 July
2025 they become three wards directly under the province: Phường Mỹ Hào (12103: Bần Yên Nhân, the
code reused, Phan Đình Phùng, Cẩm Xá, Nhân Hòa), Phường Đường Hào (12133) and Phường Thượng Hồng
(12127), which work until the end of November 2026. Xã Đình Dù (12004, Văn Lâm), split on that day
between Xã Đại Đồng (11995) and Xã Như Quỳnh (which took code 12004), shows a split unit. Unit codes
are those of the Hưng Yên registry (`shared/data/units-hung-yen.json`), which the services must load.

Dossiers are received on weekdays in office hours (a new ward as many as its predecessors together);
most are resolved within a few weeks, so those
received in the last weeks of June 2025 by the old units are resolved in July, after the reform;
some stay open at the end. Documents are registered and signed every month; each unit publishes its
catalogue when it starts. Most dossiers are synchronised to DVCQG, some get supplement requests and
reused components, some procedures bear a fee: the v2 facts of the Decision 766 index.

`generate(seed)` returns the events and the plan's own tally of what it generated (`Tally`): the
expected figures come from that bookkeeping, not from the services' code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from random import Random
from typing import Any

NAME = "hung-yen-2024-2026"
DEFAULT_SEED = 2026
LOCAL = timezone(timedelta(hours=7))
REFORM = date(2025, 7, 1)
OLD_START, OLD_END = date(2024, 1, 1), date(2025, 6, 30)
NEW_START, NEW_END = REFORM, date(2026, 11, 30)
MOTCUA = "urn:vn:hungyen:motcua"
QLVB = "urn:vn:hungyen:qlvb"

TOWN = "328"  # Thị xã Mỹ Hào until 30 June 2025 (its own one-stop desk receives dossiers too)
PROVINCE = "33"
# The new wards and the old units merged whole into each of them.
NEW_WARDS: dict[str, tuple[str, ...]] = {
    "12103": ("12103", "12106", "12109", "12118"),  # Phường Mỹ Hào
    "12133": ("12121", "12130", "12133", "12136", "12139"),  # Phường Đường Hào
    "12127": ("12112", "12115", "12124", "12127"),  # Phường Thượng Hồng
}
SPLIT_OLD = "12004"  # Xã Đình Dù until 30 June 2025
SPLIT_NEW = ("11995", "12004")  # Xã Đại Đồng, Xã Như Quỳnh (the code reused) from 1 July 2025

OLD_UNITS: tuple[str, ...] = (TOWN, *(old for olds in NEW_WARDS.values() for old in olds), SPLIT_OLD)
NEW_UNITS: tuple[str, ...] = (*NEW_WARDS, *SPLIT_NEW)

DOSSIERS_PER_MONTH = (12, 30)  # per old commune or ward, uniform in this range
DOCUMENTS_PER_MONTH = (8, 20)


def workload(unit: str, day: date) -> int:
    """How many old units' work a unit does: a new ward serves the area of all its predecessors."""
    return len(NEW_WARDS[unit]) if day >= REFORM and unit in NEW_WARDS else 1


PROCEDURES_PER_UNIT = 24
ONLINE_SHARE = 0.75
RESOLVED_SHARE = 0.9  # of the dossiers received more than a month before the end
LATE_SHARE = 0.08
WITHDRAWN_SHARE = 0.02
SYNCED_SHARE = 0.92
SUPPLEMENT_SHARE = 0.1
DIGITIZED_SHARE = 0.8
REUSED_SHARE = 0.25
PERSONAL_STORE_SHARE = 0.1
RESULT_DIGITIZED_SHARE = 0.75
PAID_ONLINE_SHARE = 0.45
FEE_BEARING_SHARE = 0.3


def unit_periods() -> list[tuple[str, date, date]]:
    """(unit code, first day, last day) of every unit that receives events."""
    return [(unit, OLD_START, OLD_END) for unit in OLD_UNITS] + [(unit, NEW_START, NEW_END) for unit in NEW_UNITS]


def era_of(unit: str, day: date) -> str:
    """The era a dossier of `unit` received on `day` belongs to: old units before the reform, new ones after."""
    return "old" if day < REFORM else "new"


@dataclass
class Tally:
    """What the generator made, counted as it made it: (unit code, era, year) -> figure -> count.

    Window figures only (received, received_online, resolved, withdrawn, synced, documents), the
    ones whose yearly totals are plain sums; the tests' reference model checks everything else.
    """

    counts: dict[tuple[str, str, int], Counter[str]] = field(default_factory=dict)

    def add(self, unit: str, era: str, day: date, figure: str) -> None:
        self.counts.setdefault((unit, era, day.year), Counter())[figure] += 1

    def total(self, units: tuple[str, ...] | list[str], era: str | None, year: int) -> Counter[str]:
        result: Counter[str] = Counter()
        for (unit, unit_era, counted_year), counts in self.counts.items():
            if unit in units and counted_year == year and (era is None or unit_era == era):
                result.update(counts)
        return result


def generate(seed: int = DEFAULT_SEED) -> tuple[list[dict[str, Any]], Tally]:
    """Every event of the scenario (JSON-ready CloudEvents, in time order) and the generator's tally."""
    rng = Random(seed)
    writer = _Writer(rng)
    for unit, first, last in unit_periods():
        catalogue = writer.catalogue(unit, first)
        month = date(first.year, first.month, 1)
        while month <= last:
            days = [d for d in _days_of(month) if first <= d <= last and d.weekday() < 5]
            for _ in range(sum(rng.randint(*DOSSIERS_PER_MONTH) for _ in range(workload(unit, first)))):
                writer.dossier(unit, rng.choice(days), rng.choice(catalogue))
            for _ in range(sum(rng.randint(*DOCUMENTS_PER_MONTH) for _ in range(workload(unit, first)))):
                writer.document(unit, rng.choice(days))
            month = _next_month(month)
        # The last days before the reform: dossiers received then, resolved after it.
        if last == OLD_END and unit != TOWN:
            for _ in range(rng.randint(2, 5)):
                day = date(2025, 6, rng.randint(23, 27))
                writer.dossier(unit, day, rng.choice(catalogue), resolve_after_reform=True)
    return sorted(writer.events, key=lambda e: (e["time"], e["id"])), writer.tally


def _days_of(month: date) -> list[date]:
    following = _next_month(month)
    return [month + timedelta(days=n) for n in range((following - month).days)]


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _at(day: date, rng: Random) -> datetime:
    return datetime.combine(day, time(7, 30), LOCAL) + timedelta(minutes=rng.randrange(9 * 60))


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class _Writer:
    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.events: list[dict[str, Any]] = []
        self.tally = Tally()
        self._serial = 0

    def _next(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self._serial:07d}"

    def emit(self, source: str, kind: str, subject: str, moment: datetime, data: dict[str, Any]) -> None:
        self.events.append(
            {
                "specversion": "1.0",
                "id": self._next("hy"),
                "source": source,
                "type": kind,
                "time": _iso(moment),
                "subject": subject,
                "datacontenttype": "application/json",
                "data": data,
            }
        )

    def catalogue(self, unit: str, first: date) -> list[str]:
        """The unit publishes its procedures on its first day; an old unit's stop counting when it ends."""
        codes = [f"1.{self.rng.randrange(10**6):06d}" for _ in range(PROCEDURES_PER_UNIT)]
        published_at = datetime.combine(first, time(8, 0), LOCAL)
        for code in codes:
            level = self.rng.choices(["info", "partial_online", "full_online"], weights=(1, 3, 6))[0]
            data = {
                "procedure_code": code,
                "unit": unit,
                "service_level": level,
                "published_at": _iso(published_at),
                "fee_bearing": self.rng.random() < FEE_BEARING_SHARE,
            }
            self.emit(MOTCUA, "vn.gov.tthc.procedure.published", code, published_at, data)
        return codes

    def dossier(self, unit: str, day: date, procedure: str, *, resolve_after_reform: bool = False) -> None:
        rng = self.rng
        era = era_of(unit, day)
        dossier_id = self._next(f"000.00.{unit}.H31")
        received_at = _at(day, rng)
        online = rng.random() < ONLINE_SHARE
        fee = rng.random() < 0.35
        due_at = datetime.combine(day + timedelta(days=rng.choice((3, 5, 7, 10, 15))), time(17, 0), LOCAL)
        data = {
            "dossier_id": dossier_id,
            "unit": unit,
            "procedure_code": procedure,
            "channel": "online" if online else "direct",
            "received_at": _iso(received_at),
            "due_at": _iso(due_at),
            "fee_required": fee,
        }
        self.emit(MOTCUA, "vn.gov.tthc.dossier.received", dossier_id, received_at, data)
        self.tally.add(unit, era, day, "received")
        if online:
            self.tally.add(unit, era, day, "received_online")
        if rng.random() < SYNCED_SHARE:
            self._fact(dossier_id, "synced", received_at + timedelta(minutes=5), "synced_at")
            self.tally.add(unit, era, day, "synced")
        if rng.random() < DIGITIZED_SHARE:
            stamp = received_at + timedelta(minutes=20)
            reused, personal = rng.random() < REUSED_SHARE, rng.random() < PERSONAL_STORE_SHARE
            extra = {"reused": reused, "from_personal_store": personal}
            self._fact(dossier_id, "components_digitized", stamp, "digitized_at", extra)
        if rng.random() < SUPPLEMENT_SHARE:
            asked = received_at + timedelta(days=1)
            self._fact(dossier_id, "supplement_requested", asked, "requested_at")
            self._fact(dossier_id, "supplement_completed", asked + timedelta(days=2), "completed_at")
            due_at = due_at + timedelta(days=3)
            changed = {"dossier_id": dossier_id, "due_at": _iso(due_at)}
            self.emit(MOTCUA, "vn.gov.tthc.dossier.due_changed", dossier_id, asked, changed)
        if resolve_after_reform:
            ended_at = datetime.combine(REFORM + timedelta(days=rng.randint(0, 20)), time(9, 0), LOCAL)
        else:
            late = rng.random() < LATE_SHARE
            if late:
                ended_at = due_at + timedelta(days=rng.randint(1, 10))
            else:
                ended_at = max(due_at - timedelta(hours=rng.randint(1, 72)), received_at + timedelta(hours=1))
        if ended_at.date() > NEW_END or rng.random() > RESOLVED_SHARE:
            return  # still in progress at the end
        if rng.random() < WITHDRAWN_SHARE:
            self._fact(dossier_id, "withdrawn", ended_at, "withdrawn_at")
            self.tally.add(unit, era, ended_at.date(), "withdrawn")
            return
        resolved = {"dossier_id": dossier_id, "resolved_at": _iso(ended_at), "outcome": "approved"}
        self.emit(MOTCUA, "vn.gov.tthc.dossier.resolved", dossier_id, ended_at, resolved)
        self.tally.add(unit, era, ended_at.date(), "resolved")
        if rng.random() < RESULT_DIGITIZED_SHARE:
            self._fact(dossier_id, "result_digitized", ended_at + timedelta(minutes=30), "digitized_at")
        if fee and rng.random() < PAID_ONLINE_SHARE:
            paid = {"method": "online", "amount_vnd": rng.choice((10_000, 20_000, 50_000, 100_000))}
            self._fact(dossier_id, "paid", received_at + timedelta(hours=2), "paid_at", paid)

    def _fact(
        self, dossier_id: str, kind: str, moment: datetime, field_name: str, extra: dict[str, Any] | None = None
    ) -> None:
        data = {"dossier_id": dossier_id, field_name: _iso(moment), **(extra or {})}
        self.emit(MOTCUA, f"vn.gov.tthc.dossier.{kind}", dossier_id, moment, data)

    def document(self, unit: str, day: date) -> None:
        rng = self.rng
        document_id = self._next(f"vb-{unit}")
        registered_at = _at(day, rng)
        direction = rng.choice(("incoming", "outgoing"))
        data = {
            "document_id": document_id,
            "unit": unit,
            "direction": direction,
            "registered_at": _iso(registered_at),
            "electronic": rng.random() < 0.95,
            "confidential": rng.random() < 0.02,
        }
        self.emit(QLVB, "vn.gov.qlvb.document.registered", document_id, registered_at, data)
        if not data["confidential"]:
            self.tally.add(unit, era_of(unit, day), day, direction)
        if direction == "outgoing" and rng.random() < 0.6:
            for signer in ("organization", "leader") if rng.random() < 0.5 else ("organization",):
                signed_at = registered_at + timedelta(minutes=10)
                signed = {"document_id": document_id, "signed_at": _iso(signed_at), "signer": signer}
                self.emit(QLVB, "vn.gov.qlvb.document.signed", document_id, signed_at, signed)
