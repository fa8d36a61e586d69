"""Property: the figures of a dossier synchronised through the DVCQG adapter depend only on the set of
distinct snapshots received, never on their order, repetition, batching or value forms (contract §3.1).

A random life of a dossier (2 -> 4 -> 5 -> 4 -> 6 -> ... -> 7 | 8 | 9 -> 10, with supplements, due
date changes, corrections, flags that come and go, and the senders' "5, 6, 8 sent as 9" quirk) is
sent as its snapshots, shuffled and repeated, some values as numbers, in requests of random sizes.
The aggregator's pure core must reach the same states and counts as from the deterministic rule,
computed here from the snapshots themselves: the final snapshot (the latest progress stamp, then
the greatest status) alone, plus the facts only earlier snapshots carried (the latest resolution
and withdrawal, every flag, every supplement).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.aggregator.domain import AggregateKey, Contributions, DossierState, State
from services.intake.dvcqg import events_from_request
from shared.events import Event, decode_event
from tests.planning import add_into, is_empty, plan_batch
from tests.unit.test_dvcqg_mapping import DOSSIER, NOW, SENDER, SOURCE, VIETNAM, body, resolve

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FACT_KINDS = ("received", "resolved", "withdrawn")  # facts where one event wins
RESOLUTION_KINDS = ("resolved", "withdrawn")  # facts a later snapshot may not carry
STAMP_FIELDS = ("NgayTiepNhan", "NgayKetThucXuLy", "NgayTra")
SUPPLEMENT_STAMPS = ("NgayBoSung", "NgayTiepNhanBoSung")


def _text(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


@st.composite
def lives(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The snapshots a one-stop system sends over a dossier's life, in the order of that life."""
    clock = datetime(2023, 3, 1, 7, tzinfo=VIETNAM) + timedelta(minutes=draw(st.integers(0, 24 * 60)))
    received_at = clock
    due_at = received_at + timedelta(days=draw(st.integers(0, 12)), hours=draw(st.integers(0, 9)))
    middle = draw(st.lists(st.sampled_from([4, 5, 6]), max_size=6))
    end = draw(st.sampled_from([None, 7, 8, 9, 10]))
    statuses = [2, *middle, *({None: [], 10: [9, 10]}.get(end, [end]))]

    fields: dict[str, Any] = {
        "MaHoSo": DOSSIER,
        "MaTTHC": "1.004227",
        "NgayTiepNhan": _text(received_at),
        "NgayHenTra": _text(due_at),
        "KenhThucHien": draw(st.sampled_from(["1", "2", "3", ""])),
        "DonViXuLy": draw(st.sampled_from(["UBND phường Bần Yên Nhân", ""])),  # "": the query's organ
        "DanhSachLePhi": [{"Gia": draw(st.sampled_from(["0", "50000"]))}],
    }
    supplements: list[dict[str, str]] = []
    snapshots: list[dict[str, Any]] = []
    previous: int | None = None
    for status in statuses:
        dated = False  # whether this step records a new fact (a later progress stamp)
        pending = supplements and not supplements[-1]["NgayTiepNhanBoSung"]
        if status == 5 and previous != 5 and not pending:
            clock += timedelta(hours=draw(st.integers(1, 72)))
            new_due = due_at + timedelta(days=draw(st.integers(0, 10)))
            supplements.append({"NgayBoSung": _text(clock), "NgayTiepNhanBoSung": "", "NgayHenTraMoi": _text(new_due)})
            dated = True
        elif status == 4 and pending:
            clock += timedelta(hours=draw(st.integers(1, 72)))
            supplements[-1]["NgayTiepNhanBoSung"] = _text(clock)
            dated = True
        elif status in (7, 8, 9) and "NgayKetThucXuLy" not in fields:
            clock += timedelta(hours=draw(st.integers(1, 240)))
            fields["NgayKetThucXuLy"] = _text(clock)
            dated = True
        elif status == 10:
            clock += timedelta(hours=draw(st.integers(0, 48)))
            fields["NgayTra"] = _text(clock)
            dated = True
        if dated and draw(st.booleans()):
            # A correction of what the reception recorded, sent with the next new fact.
            fields["KenhThucHien"] = draw(st.sampled_from(["1", "2", "3"]))
            fields["DanhSachLePhi"] = [{"Gia": draw(st.sampled_from(["0", "20.000"]))}]
        sent_status = status
        if status in (5, 6, 8) and draw(st.integers(0, 4)) == 0:
            sent_status = 9  # the quirk of some senders: local 5, 6 and 8 go out as 9
        snapshot = {
            **fields,
            "TrangThaiHoSo": str(sent_status),
            "DanhSachHoSoBoSung": [dict(item) for item in supplements],
            # flags that may come and go between snapshots: true if any event says so
            "HoSoCoThanhPhanSoHoa": draw(st.sampled_from(["0", "1", ""])),
            "TaiLieuNop": [
                {
                    "DuocSoHoa": draw(st.sampled_from(["0", "1"])),
                    "DuocTaiSuDung": draw(st.sampled_from(["0", "1"])),
                    "DuocLayTuKhoDMQG": draw(st.sampled_from(["0", "1"])),
                    "IsDeleted": draw(st.sampled_from(["False", "True"])),
                }
            ],
            "DuocThanhToanTrucTuyen": draw(st.sampled_from(["0", "1", "2"])),
            "DanhSachGiayToKetQua": [{"DuongDanTepTinKetQua": draw(st.sampled_from(["", "/ket-qua/1"]))}],
        }
        snapshots.append(snapshot)
        previous = status
    return snapshots


def progress(snapshot: dict[str, Any]) -> tuple[str, int]:
    """How far along a snapshot is, read from its content: its latest fact date, then its status."""
    dates = [str(snapshot.get(name) or "") for name in STAMP_FIELDS]
    dates += [item[name] for item in snapshot["DanhSachHoSoBoSung"] for name in SUPPLEMENT_STAMPS]
    return (max(dates), int(snapshot["TrangThaiHoSo"]))


def as_numbers(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The same snapshot with its codes and dates written as JSON numbers (some senders do)."""
    numbers = {name: int(value) for name, value in snapshot.items() if isinstance(value, str) and value.isdigit()}
    return {**snapshot, **numbers, "MaHoSo": snapshot["MaHoSo"]}


def derive(snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    derived = events_from_request(body(snapshots), source=SOURCE, organ_code=SENDER, resolve_organ=resolve, now=NOW)
    assert derived.errors == []
    return derived.events


def kind(event: dict[str, Any]) -> str:
    return str(event["type"]).rsplit(".", 1)[1]


def deterministic_rule(snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The final snapshot's events, plus the facts only earlier snapshots carried."""
    by_snapshot = [derive([snapshot]) for snapshot in snapshots]
    order = sorted(range(len(snapshots)), key=lambda index: progress(snapshots[index]))
    final = order[-1]
    expected = list(by_snapshot[final])
    for fact in RESOLUTION_KINDS:
        if any(kind(event) == fact for event in by_snapshot[final]):
            continue
        carriers = [index for index in order if any(kind(event) == fact for event in by_snapshot[index])]
        if carriers:
            expected += [event for event in by_snapshot[carriers[-1]] if kind(event) == fact]
    for events in by_snapshot:
        expected += [event for event in events if kind(event) not in FACT_KINDS]
    return expected


def decode(events: list[dict[str, Any]]) -> list[Event]:
    return [decode_event(json.dumps(event).encode()) for event in events]


def apply_in_batches(events: list[Event], sizes: list[int]) -> tuple[dict[AggregateKey, State], Contributions]:
    """The core's states and counts after applying `events` batch by batch, as the aggregator does."""
    states: dict[AggregateKey, State] = {}
    total = Contributions.empty()
    start = 0
    for size in [*sizes, len(events)]:
        plan = plan_batch(events[start : start + size], states)
        states.update(plan.states)
        add_into(total, plan.delta)
        start += size
        if start >= len(events):
            break
    return states, total


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], list[int]]:
    """A life, its snapshots shuffled and repeated (each sent at least once) in requests, and batch sizes."""
    snapshots = draw(lives())
    repeats = draw(st.lists(st.sampled_from(range(len(snapshots))), max_size=len(snapshots)))
    sent = draw(st.permutations([*range(len(snapshots)), *repeats]))
    items = [as_numbers(snapshots[index]) if draw(st.booleans()) else snapshots[index] for index in sent]
    requests: list[list[dict[str, Any]]] = []
    while items:
        size = draw(st.integers(1, len(items)))
        requests.append(items[:size])
        items = items[size:]
    batch_sizes = draw(st.lists(st.integers(1, 12), max_size=6))
    return snapshots, requests, batch_sizes


@PROPERTY_SETTINGS
@given(deliveries())
def test_any_order_and_repetition_of_snapshots_gives_the_figures_of_the_deterministic_rule(
    delivery: tuple[list[dict[str, Any]], list[list[dict[str, Any]]], list[int]],
) -> None:
    snapshots, requests, batch_sizes = delivery
    received = [event for request in requests for event in derive(request)]

    states, counts = apply_in_batches(decode(received), batch_sizes)
    expected_states, expected_counts = apply_in_batches(decode(deterministic_rule(snapshots)), [])

    assert states == expected_states
    assert counts == expected_counts
    assert not is_empty(counts)  # a dossier was received: the comparison is about real figures
    check_against_snapshots(states, snapshots)


def _local(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=VIETNAM)


def check_against_snapshots(states: dict[AggregateKey, State], snapshots: list[dict[str, Any]]) -> None:
    """The core's state read against the snapshots directly, without the adapter's own derivation."""
    state = states[("dossier", DOSSIER)]
    assert isinstance(state, DossierState) and state.received is not None and state.due is not None
    final = max(snapshots, key=progress)
    channels = {"1": "direct", "2": "online", "3": "postal", "": "direct"}
    assert state.received.value.channel == channels[final["KenhThucHien"]]
    assert state.received.value.fee_required == (final["DanhSachLePhi"][0]["Gia"] != "0")
    new_dues = [item["NgayHenTraMoi"] for item in final["DanhSachHoSoBoSung"]]
    assert state.due.value == _local(max(new_dues) if new_dues else final["NgayHenTra"])
    entries = [item for snapshot in snapshots for item in snapshot["DanhSachHoSoBoSung"]]
    assert len(state.v2.supplement_requests) == len({item["NgayBoSung"] for item in entries})
    assert len(state.v2.supplement_completions) == len({item["NgayTiepNhanBoSung"] for item in entries} - {""})
    assert state.v2.synced
    live_files = [item for snapshot in snapshots for item in snapshot["TaiLieuNop"] if item["IsDeleted"] == "False"]
    digitized = [snapshot for snapshot in snapshots if snapshot["HoSoCoThanhPhanSoHoa"] == "1"]
    assert state.components_digitized == bool(digitized or [item for item in live_files if item["DuocSoHoa"] == "1"])

    def live(snapshot: dict[str, Any]) -> list[dict[str, str]]:
        return [item for item in snapshot["TaiLieuNop"] if item["IsDeleted"] == "False"]

    with_digitized = [s for s in snapshots if s in digitized or any(item["DuocSoHoa"] == "1" for item in live(s))]
    assert state.v2.components_reused == any(item["DuocTaiSuDung"] == "1" for s in with_digitized for item in live(s))
    from_store = any(item["DuocLayTuKhoDMQG"] == "1" for s in with_digitized for item in live(s))
    assert state.v2.components_from_personal_store == from_store
    assert state.paid_online == any(snapshot["DuocThanhToanTrucTuyen"] != "0" for snapshot in snapshots)
    assert state.result_digitized == any(s["DanhSachGiayToKetQua"][0]["DuongDanTepTinKetQua"] for s in snapshots)
    resolving = [snapshot for snapshot in snapshots if snapshot["TrangThaiHoSo"] in ("8", "9", "10")]
    if not resolving:
        assert state.resolved is None
    else:
        latest = max(resolving, key=progress)
        resolved = state.resolved
        assert resolved is not None
        assert resolved.value.outcome == ("rejected" if latest["TrangThaiHoSo"] == "8" else "approved")
        end = latest.get("NgayKetThucXuLy") or latest.get("NgayTra") or progress(latest)[0]
        assert resolved.value.resolved_at == _local(end)
    assert (state.withdrawn is not None) == any(snapshot["TrangThaiHoSo"] == "7" for snapshot in snapshots)


@settings(PROPERTY_SETTINGS, max_examples=50)
@given(lives())
def test_each_event_identity_names_one_content_only(snapshots: list[dict[str, Any]]) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for snapshot in snapshots:
        for event in derive([snapshot]) + derive([as_numbers(snapshot)]):
            assert seen.setdefault(event["id"], event) == event  # else: an identity conflict, a dead letter
