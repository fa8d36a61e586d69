"""`python -m scenario`: replays the Mỹ Hào 2023 scenario through the intake API.

`--scenario hung-yen-2024-2026` runs the scenario across the 1 July 2025 reform instead
(`scenario.reform_run`; the services must serve the Hưng Yên registry).

Generates the events, computes the figures they imply with the aggregator's pure core, posts them
to the intake (`--via cloudevents`, the default: `POST /v1/events`; `--via dvcqg`: the dossiers as
the one-stop systems' DVCQG synchronisation requests to `POST /v1/adapters/dvcqg`, see
`scenario.dvcqg`, and as CloudEvents only what such a request cannot carry), then polls the
reporting API until it shows exactly those figures for the town and the four pilot communes.
Prints the town's figures and the pilot table in Vietnamese (for officers),
the URLs to look at, and the measured throughput and delay. Exits 1 if the figures do not show
before the timeout, 2 if the intake refuses the events.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scenario import reform, reform_run
from scenario.client import DEFAULT_BATCH_SIZE, IntakeError, PostStats, post_dvcqg, post_events
from scenario.dvcqg import CLOUDEVENT_FACTS, encode
from scenario.expected import COUNT_GROUPS, GROUPS, Window, combined, differences, expected_figures
from scenario.generate import generate_events
from scenario.plan import PILOTS, TOWN, load_scenario
from shared.units import UnitRegistry
from shared.vietnamese import format_count, format_points, format_share

DEV_READ_TOKEN = "dev-read-token"
MY_HAO = "my-hao-2023"
MY_HAO_SEED = 2023
POLL_INTERVAL = 0.1
UNITS = (TOWN, *PILOTS)

Figures = Mapping[str, Mapping[str, Any]]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.scenario == reform.NAME:
        seed = reform.DEFAULT_SEED if args.seed is None else args.seed
        return reform_run.run(args.intake, args.reporting, DEV_READ_TOKEN, seed, args.batch_size, args.timeout)
    args.seed = MY_HAO_SEED if args.seed is None else args.seed
    scenario = load_scenario()
    window = Window.of(scenario)
    started = time.perf_counter()
    events = generate_events(scenario, args.seed)
    generated_in = time.perf_counter() - started
    expected = expected_figures(scenario, args.seed, events)
    print(f"Generated {len(events):,} events in {generated_in:.2f} s (seed {args.seed}).")
    with httpx.Client(timeout=10.0, headers={"Authorization": f"Bearer {DEV_READ_TOKEN}"}) as reporting:
        before = {unit: _read(reporting, indicators_url(args.reporting, unit, window)) for unit in UNITS}
        targets = {unit: Targets.of(expected[unit], before[unit]) for unit in UNITS}
        try:
            stats = _post(events, args)
        except (IntakeError, httpx.HTTPError) as exc:
            print(f"The intake did not accept the events: {exc}", file=sys.stderr)
            return 2
        outcome = wait_for_figures(
            reporting, args.reporting, window, targets, stats.last_accepted_monotonic, args.timeout
        )
    if outcome.delay is None:
        _print_mismatch(outcome, args.timeout)
        return 1
    names = {unit["code"]: unit["name"] for unit in scenario["units"]}
    _print_summary(outcome.shown, names, window)
    with httpx.Client(timeout=10.0, headers={"Authorization": f"Bearer {DEV_READ_TOKEN}"}) as reporting:
        index = _read(reporting, index766_url(args.reporting, TOWN, window))
    if index is not None:
        _print_index766(index)
    _print_links(args.intake, args.reporting, window)
    if outcome.met - {ALONE}:
        print(f"\nNote: the figures match the scenario {' / '.join(sorted(outcome.met))}.")
    print(f"\nFigures showed {outcome.delay:.2f} s after the last 202 (polled every {POLL_INTERVAL:.1f} s).")
    return 0


def _post(events: list[dict[str, Any]], args: argparse.Namespace) -> PostStats:
    """Posts the scenario the chosen way; returns the stats of the last part posted."""
    if args.via == "cloudevents":
        stats = post_events(events, args.intake, batch_size=args.batch_size)
        _print_throughput(stats)
        return stats
    units_file = os.environ.get("UNITS_FILE")  # the intake's registry: its organs name the dossiers' units
    started = time.perf_counter()
    encoded = encode(events, UnitRegistry.load(Path(units_file) if units_file else None), args.seed)
    kept = sum(encoded.kept.values())
    print(
        f"Encoded {encoded.dossiers:,} dossiers as {encoded.records:,} DVCQG records in {len(encoded.requests):,} "
        f"requests ({time.perf_counter() - started:.2f} s); {len(encoded.cloudevents):,} events stay CloudEvents "
        f"({kept:,} dossiers never synchronised, {sum(encoded.overrides.values()):,} 'no digitization required')."
    )
    _print_throughput(post_events(encoded.cloudevents, args.intake, batch_size=args.batch_size))
    stats = post_dvcqg(encoded.requests, args.intake)
    print(
        f"Posted {stats.records:,} DVCQG records through the adapter in {stats.seconds:.2f} s "
        f"({stats.records / stats.seconds if stats.seconds else 0:,.0f} records/s, {stats.events:,} events derived; "
        f"{stats.requests} requests, {stats.retries} retries); "
        f"last 202 at {stats.last_accepted_at.isoformat(timespec='milliseconds')}."
    )
    return stats


_VIA_HELP = "\n".join(
    [
        "--via dvcqg sends every dossier the one-stop systems synchronise to the National Public Service",
        "Portal as copies of their DVCQG requests (DongBoHoSoMC snapshots 1 -> 2 -> 4 -> (6) -> (5 -> 4)",
        "-> 7 | 8 | 9 -> 10 and CapNhatTienDoHoSoMC steps, two senders' shapes, out of order and with",
        "repeats, fake personal data in the fields the adapter does not read). What a DVCQG record cannot",
        "express comes, as in a province, from the systems that hold it, as CloudEvents:",
        *(f"  - {fact}" for fact in CLOUDEVENT_FACTS),
        "The figures are the same as with --via cloudevents; the ids of the events the adapter derives",
        "differ. Use a store of its own: on top of a --via cloudevents run its supplement requests would",
        "count twice (one request, two identities). See docs/dvcqg-adapter.md.",
    ]
)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scenario",
        description="Replays the Mỹ Hào 2023 scenario through the intake API.",
        epilog=_VIA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The services' own port variables (deploy/services.sh), unless a whole URL is given.
    intake_url = f"http://127.0.0.1:{os.environ.get('INTAKE_PORT', '8001')}"
    reporting_url = f"http://127.0.0.1:{os.environ.get('REPORTING_PORT', '8002')}"
    parser.add_argument("--intake", default=os.environ.get("INTAKE_URL", intake_url))
    parser.add_argument("--reporting", default=os.environ.get("REPORTING_URL", reporting_url))
    parser.add_argument(
        "--via",
        choices=("cloudevents", "dvcqg"),
        default="cloudevents",
        help="cloudevents: POST /v1/events; dvcqg: the dossiers through POST /v1/adapters/dvcqg (below)",
    )
    parser.add_argument(
        "--scenario",
        choices=(MY_HAO, reform.NAME),
        default=MY_HAO,
        help=f"{MY_HAO}: the seed report's year (default); {reform.NAME}: across the 1 July 2025 reform",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help=f"default {MY_HAO_SEED} ({reform.DEFAULT_SEED} for {reform.NAME})"
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the figures")
    args = parser.parse_args(argv)
    if args.scenario == reform.NAME and args.via != "cloudevents":
        parser.error(f"--scenario {reform.NAME} posts CloudEvents only")
    args.intake = args.intake.rstrip("/")
    args.reporting = args.reporting.rstrip("/")
    return args


# --- waiting for the figures --------------------------------------------------------------------


ALONE = "alone"
ON_TOP = "on top of other events the store held"
ALREADY = "already in the store before this run"


@dataclass(frozen=True)
class Targets:
    """What a unit may show once the events are applied, each with how it came about.

    The scenario's figures alone (an empty store); those added to the figures read before posting
    (the store held other events); or the figures read before, unchanged, when they already
    include every count of the scenario (an earlier run with the same seed: duplicates change
    nothing).
    """

    expected: Figures
    candidates: tuple[tuple[str, Figures], ...]

    @classmethod
    def of(cls, expected: Figures, before: Mapping[str, Any] | None) -> Targets:
        candidates: list[tuple[str, Figures]] = [(ALONE, expected)]
        if before is not None and any(value for group in COUNT_GROUPS for value in before[group].values()):
            candidates.append((ON_TOP, combined(before, expected)))
            if _dominates(before, expected):
                candidates.append((ALREADY, {group: before[group] for group in GROUPS}))
        return cls(expected, tuple(candidates))

    def problems(self, shown: Mapping[str, Any]) -> tuple[list[str], str | None]:
        """The differences from the scenario's figures (none if any target is met), and which was met."""
        for label, target in self.candidates:
            if not differences(target, shown):
                return [], label
        return differences(self.expected, shown), None


def _dominates(before: Mapping[str, Any], expected: Figures) -> bool:
    return all(before[group][name] >= value for group in COUNT_GROUPS for name, value in expected[group].items())


@dataclass
class _Outcome:
    shown: dict[str, dict[str, Any]]  # the last indicators body per unit
    problems: dict[str, list[str]]  # unit -> differences (or the error met)
    delay: float | None = None  # seconds from the last 202 to all figures matching; None: never matched
    met: set[str] = field(default_factory=set)  # which targets the units met


def indicators_url(reporting: str, unit: str, window: Window) -> str:
    return f"{reporting}/v1/indicators?unit={unit}&scope=self&from={window.start}&to={window.end}"


def wait_for_figures(
    http: httpx.Client,
    reporting: str,
    window: Window,
    targets: Mapping[str, Targets],
    since: float,
    timeout: float,
) -> _Outcome:
    """Polls every unit's indicators until all show their targets, or the timeout passes.

    `since` is the time.monotonic() of the last 202; the delay is measured from it.
    """
    outcome = _Outcome({}, {})
    deadline = time.monotonic() + timeout
    while True:
        met: set[str] = set()
        for unit, target in targets.items():
            body = _read(http, indicators_url(reporting, unit, window), outcome.problems, unit)
            if body is not None:
                outcome.shown[unit] = body
                outcome.problems[unit], label = target.problems(body)
                met |= {label} if label else set()
        if not any(outcome.problems.values()):
            outcome.delay, outcome.met = time.monotonic() - since, met
            return outcome
        if time.monotonic() >= deadline:
            return outcome
        time.sleep(POLL_INTERVAL)


def _read(
    http: httpx.Client, url: str, problems: dict[str, list[str]] | None = None, unit: str = ""
) -> dict[str, Any] | None:
    """One indicators body, or None (the error noted in `problems` when given)."""
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        error = f"request failed: {exc}"
    else:
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        error = f"HTTP {response.status_code}: {response.text}"
    if problems is not None:
        problems[unit] = [error]
    return None


# --- output -------------------------------------------------------------------------------------


def _print_throughput(stats: PostStats) -> None:
    print(
        f"Posted {stats.events:,} events through the intake in {stats.seconds:.2f} s "
        f"({stats.events_per_second:,.0f} events/s; {stats.requests} requests, {stats.retries} retries); "
        f"last 202 at {stats.last_accepted_at.isoformat(timespec='milliseconds')}."
    )


def _print_mismatch(outcome: _Outcome, timeout: float) -> None:
    print(f"\nThe figures did not match within {timeout:.0f} s:", file=sys.stderr)
    for unit, problems in outcome.problems.items():
        for problem in problems:
            print(f"  {unit}: {problem}", file=sys.stderr)
    print(
        "  (Expected either the scenario's figures alone or added to what the store held before the run;"
        " events of an earlier, interrupted run or of another seed make both impossible.)",
        file=sys.stderr,
    )


def _share(numerator: int, denominator: int, decimals: int = 1) -> str:
    return f"{format_count(numerator)}/{format_count(denominator)} ({_percent(numerator, denominator, decimals)})"


def _percent(numerator: int, denominator: int, decimals: int = 1) -> str:
    return format_share(numerator, denominator, decimals)


def _print_summary(shown: Mapping[str, Mapping[str, Any]], names: Mapping[str, str], window: Window) -> None:
    town = shown[TOWN]
    d, docs, procs = town["dossiers"], town["documents"], town["procedures"]
    c = format_count
    period = f"từ {window.start:%d/%m/%Y} đến {window.end:%d/%m/%Y}"
    registered = docs["incoming"] + docs["outgoing"]
    lines = [
        f"\n{names[TOWN]} – chỉ số TTHC và văn bản điện tử {period}",
        f"  Hồ sơ tiếp nhận: {c(d['received'])} (trực tuyến {c(d['received_online'])} – "
        f"{_percent(d['received_online'], d['received'])}; trực tiếp {c(d['received_direct'])}; "
        f"qua bưu chính {c(d['received_postal'])})",
        f"  Đã giải quyết: {c(d['resolved'])} (đúng hạn {c(d['resolved_on_time'])} – "
        f"{_percent(d['resolved_on_time'], d['resolved'])}; quá hạn {c(d['resolved_late'])})",
        f"  Đang giải quyết: {c(d['in_progress'])} (quá hạn {c(d['in_progress_overdue'])})",
        f"  Số hóa thành phần hồ sơ: {_share(d['components_digitized'], d['digitization_required'])}",
        f"  Số hóa kết quả giải quyết: {_share(d['results_digitized'], d['result_digitization_required'])}",
        f"  Thanh toán trực tuyến: {_share(d['paid_online'], d['fee_required'])}",
        f"  Văn bản đến: {c(docs['incoming'])}; văn bản đi: {c(docs['outgoing'])}; "
        f"văn bản điện tử: {_share(docs['electronic'], registered)}",
        "  Ký số cá nhân lãnh đạo / ký số cơ quan: "
        f"{_share(docs['signed_by_leader'], docs['signed_by_organization'], 2)}",
        f"  Thủ tục hành chính: {c(procs['total'])} (cung cấp thông tin {c(procs['info'])}; "
        f"trực tuyến một phần {c(procs['partial_online'])}; trực tuyến toàn trình {c(procs['full_online'])})",
    ]
    print("\n".join(lines))
    _print_pilot_table(shown, names)


def _print_pilot_table(shown: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]) -> None:
    headers = ("Đơn vị", "Hồ sơ", "Trực tuyến", "Số hóa kết quả", "Thanh toán trực tuyến", "Hài lòng")
    rows = []
    for unit in PILOTS:
        d = shown[unit]["dossiers"]
        rows.append(
            (
                names[unit],
                format_count(d["received"]),
                _percent(d["received_online"], d["received"], 2),
                _percent(d["results_digitized"], d["result_digitization_required"], 2),
                _percent(d["paid_online"], d["fee_required"], 2),
                _percent(d["ratings_satisfied"], d["ratings"], 2),
            )
        )
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    print("\nCác phường, xã thí điểm:")
    for row in (headers, *rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  " + "  ".join(cells))


def index766_url(reporting: str, unit: str, window: Window) -> str:
    return f"{reporting}/v1/index766?unit={unit}&from={window.start}&to={window.end}"


def _print_index766(index: Mapping[str, Any]) -> None:
    """The Decision 766 score of the town for the window, by group, and its communes' ranking."""
    print(
        f"\nChỉ số phục vụ người dân, doanh nghiệp (QĐ 766, công thức {index['formula']}): "
        f"{format_points(index['score'])}/{format_points(index['computable_points'])} điểm tính được"
    )
    for group in index["groups"]:
        computed = sum(c["max_points"] for c in group["components"] if c["computed"])
        score = format_points(group["score"]) if group["score"] is not None else "chưa tính"
        print(f"  {group['name']}: {score}/{format_points(computed)} (tối đa {format_points(group['max_points'])})")
    print("  Xếp hạng các phường, xã:")
    for place, rank in enumerate(index["ranking"], start=1):
        print(f"    {place:>2}. {rank['name']}: {format_points(rank['score'])}")


def _print_links(intake: str, reporting: str, window: Window) -> None:
    print("\nXem số liệu:")
    print(f"  Màn hình điều hành (IOC): {reporting}/dashboard?unit={TOWN}&year=2023")
    print(f"  API chỉ số:               {indicators_url(reporting, TOWN, window)}")
    print(f"  Chỉ số QĐ 766:            {index766_url(reporting, TOWN, window)}")
    print(f"  Tài liệu API báo cáo:     {reporting}/docs")
    print(f"  Tài liệu API tiếp nhận:   {intake}/docs")


if __name__ == "__main__":
    sys.exit(main())
