"""`python -m scenario --scenario hung-yen-2024-2026`: the Mỹ Hào area across the 1 July 2025 reform.

Posts the events of `scenario.reform` (old units from January 2024 to June 2025, the new wards from
July 2025 to November 2026) to an intake that serves the Hưng Yên registry
(`UNITS_FILE=shared/data/units-hung-yen.json`), then polls the reporting API until it shows the
generator's own tally for:
- Phường Mỹ Hào (12103, today's tree) in 2024 (its four predecessors), 2025 (the predecessors until
  30 June, the ward from 1 July) and 2026;
- Phường Bần Yên Nhân (12103 too, in the tree of 31 December 2024) in 2024.
It prints those figures in Vietnamese. The expected figures are the tally's (the store must hold no
other events of these units, or the same run before: duplicates change nothing). Exit 1 if the
figures do not show before the timeout, 2 if the intake refuses the events.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from scenario import reform
from scenario.client import IntakeError, post_events
from shared.vietnamese import format_count

POLL_INTERVAL = 0.2
# The tally's figures and where the indicators body has them.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("received", "dossiers", "received"),
    ("received_online", "dossiers", "received_online"),
    ("resolved", "dossiers", "resolved"),
    ("withdrawn", "dossiers", "withdrawn"),
    ("synced", "dossiers", "synced"),
    ("incoming", "documents", "incoming"),
    ("outgoing", "documents", "outgoing"),
)
HEADERS = ("Tiếp nhận", "Trực tuyến", "Đã giải quyết", "Rút hồ sơ", "Đồng bộ DVCQG", "VB đến", "VB đi")
WARD = "12103"
WARD_TREE = reform.NEW_END  # today's tree has the same units (the registry's last period)
OLD_TREE = date(2024, 12, 31)


@dataclass(frozen=True)
class Check:
    """One figure set the run expects from the API: a unit of a tree over a year."""

    label: str
    unit: str
    tree: date
    year: int
    units: tuple[str, ...]  # the codes of the tally that make it
    era: str | None  # the tally's era (None: both)

    def params(self) -> dict[str, str]:
        last = min(date(self.year, 12, 31), reform.NEW_END)
        return {
            "unit": self.unit,
            "scope": "self",
            "tree": self.tree.isoformat(),
            "from": date(self.year, 1, 1).isoformat(),
            "to": last.isoformat(),
        }

    def expected(self, tally: reform.Tally) -> dict[str, int]:
        counts = tally.total(self.units, self.era, self.year)
        return {name: counts[name] for name, _, _ in FIGURES}


def checks() -> list[Check]:
    predecessors = reform.NEW_WARDS[WARD]
    return [
        Check("Phường Mỹ Hào 2024 (4 đơn vị tiền thân)", WARD, WARD_TREE, 2024, predecessors, "old"),
        Check("Phường Mỹ Hào 2025 (tiền thân đến 30/6, phường từ 1/7)", WARD, WARD_TREE, 2025, predecessors, None),
        Check("Phường Mỹ Hào 2026 (đến 30/11)", WARD, WARD_TREE, 2026, (WARD,), "new"),
        Check("Phường Bần Yên Nhân 2024 (cây đơn vị 31/12/2024)", WARD, OLD_TREE, 2024, (WARD,), "old"),
    ]


def shown_figures(body: Mapping[str, Any]) -> dict[str, int]:
    return {name: body[group][field] for name, group, field in FIGURES}


def run(intake: str, reporting: str, read_token: str, seed: int, batch_size: int, timeout: float) -> int:
    events, tally = reform.generate(seed)
    print(f"Generated {len(events):,} events of the {reform.NAME} scenario (seed {seed}).")
    try:
        stats = post_events(events, intake, batch_size=batch_size)
    except (IntakeError, httpx.HTTPError) as exc:
        print(f"The intake did not accept the events: {exc}", file=sys.stderr)
        print("  (It must serve the Hưng Yên registry: UNITS_FILE=shared/data/units-hung-yen.json.)", file=sys.stderr)
        return 2
    print(f"Posted {stats.events:,} events in {stats.seconds:.2f} s ({stats.events_per_second:,.0f} events/s).")
    wanted = {check: check.expected(tally) for check in checks()}
    shown: dict[Check, dict[str, int]] = {}
    problems: dict[Check, str] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10.0, headers={"Authorization": f"Bearer {read_token}"}) as http:
        while True:
            for check in wanted:
                response = http.get(f"{reporting}/v1/indicators", params=check.params())
                if response.status_code != 200:
                    problems[check] = f"HTTP {response.status_code}: {response.text}"
                    continue
                shown[check] = shown_figures(response.json())
                if shown[check] == wanted[check]:
                    problems.pop(check, None)
                else:
                    problems[check] = f"shows {shown[check]}, the scenario made {wanted[check]}"
            if not problems and len(shown) == len(wanted):
                break
            if time.monotonic() >= deadline:
                print(f"\nThe figures did not match within {timeout:.0f} s:", file=sys.stderr)
                for check, problem in problems.items():
                    print(f"  {check.label}: {problem}", file=sys.stderr)
                return 1
            time.sleep(POLL_INTERVAL)
    _print_table(shown)
    print("\nXem số liệu:")
    print(f"  Danh sách đơn vị (cây 2024):  {reporting}/v1/units?tree={OLD_TREE}")
    print(f"  Phường Mỹ Hào theo năm 2024:  {reporting}/v1/indicators?unit={WARD}&from=2024-01-01&to=2024-12-31")
    print(f"  Tỉnh Hưng Yên, chi tiết:      {reporting}/v1/indicators/breakdown?unit={reform.PROVINCE}")
    return 0


def _print_table(shown: Mapping[Check, Mapping[str, int]]) -> None:
    rows = [(check.label, *(format_count(figures[name]) for name, _, _ in FIGURES)) for check, figures in shown.items()]
    header = ("Đơn vị, năm", *HEADERS)
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    print("\nChỉ số TTHC và văn bản qua sắp xếp đơn vị hành chính 1/7/2025 (đọc lại từ API báo cáo):")
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  " + "  ".join(cells))
