"""End to end across the 1 July 2025 reform, with the Hưng Yên registry (contract §1.1, §4).

The services serve `shared/data/units-hung-yen.json`. The Hưng Yên 2024–2026 scenario runs through
`python -m scenario --scenario hung-yen-2024-2026` (it checks its own tally against the API); then
a messy stream on top of it (duplicates, corrections that move `received_at` across 1 July 2025 in
both directions and onto a reused code, late events of old units sent in 2026) and the reporting
API agrees with the reference model, whose roll-up is written from the contract's words
(`tests.reference_units`), for every unit of the trees of 31 December 2024 and 30 November 2026,
both scopes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenario import reform
from shared.timezone import end_of_day
from shared.vietnamese import format_count
from tests import reference_model
from tests.browser import open_dashboard, require_browser
from tests.conftest import eventually
from tests.reference_units import ReferenceRegistry
from tests.subprocesses import REPO, ServiceSet

pytestmark = pytest.mark.e2e

UNITS_FILE = REPO / "shared/data/units-hung-yen.json"
REFERENCE = ReferenceRegistry.load(UNITS_FILE)
POST = {"Authorization": "Bearer dev-intake-token", "Content-Type": "application/cloudevents-batch+json"}
READ = {"Authorization": "Bearer dev-read-token"}
SEED = 2026
OLD_TREE, NEW_TREE = date(2024, 12, 31), date(2026, 11, 30)
WHOLE = (date(2024, 1, 1), date(2026, 11, 30))
YEARS = [(date(2024, 1, 1), date(2024, 12, 31)), (date(2025, 1, 1), date(2025, 12, 31))]
GROUPS = ("dossiers", "documents", "procedures", "rates")
# The new ward each old unit merged into (the split Đình Dù goes to Như Quỳnh, which took its code).
NEW_HOME = {old: new for new, olds in reform.NEW_WARDS.items() for old in olds} | {reform.SPLIT_OLD: "12004"}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    stack = ServiceSet(log_dir=Path(tmp_path_factory.mktemp("reform")))
    try:
        for name in ("aggregator", "intake", "reporting"):
            stack.start(name, name, UNITS_FILE=str(UNITS_FILE))
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def scenario_run(services: ServiceSet) -> str:
    return services.run_scenario("--scenario", reform.NAME, "--seed", str(SEED))


def test_the_scenario_shows_its_tally_through_the_api(scenario_run: str) -> None:
    for label in (
        "Phường Mỹ Hào 2024 (4 đơn vị tiền thân)",
        "Phường Mỹ Hào 2025",
        "Phường Mỹ Hào 2026",
        "Phường Bần Yên Nhân 2024 (cây đơn vị 31/12/2024)",
    ):
        assert label in scenario_run


def _local(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def messy_extras(scenario: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Duplicates, corrections across the reform and late events of old units, as upstream sends them."""
    rng = random.Random(seed)
    serial = iter(range(1, 10**6))

    def new_id() -> str:
        return f"hy-extra-{next(serial):06d}"

    extras = [dict(item) for item in rng.sample(scenario, len(scenario) // 10)]  # resends
    received = [e for e in scenario if e["type"] == "vn.gov.tthc.dossier.received"]
    late_june = [e for e in received if "2025-06-23" <= e["data"]["received_at"][:10] <= "2025-06-30"]
    early_july = [e for e in received if "2025-07-01" <= e["data"]["received_at"][:10] <= "2025-07-04"]
    last_time = max(_local(e["time"]) for e in scenario)
    # Received in June by an old unit, corrected to July: the dossier moves to the new ward.
    for original in rng.sample(late_june, 12):
        data = dict(original["data"])
        data["unit"] = NEW_HOME[data["unit"]] if data["unit"] != reform.TOWN else "12103"
        data["received_at"] = "2025-07-01T07:45:00+07:00"
        data["due_at"] = max(data["due_at"], "2025-07-08T17:00:00+07:00")  # same offset: strings compare
        extras.append(_correction(original, data, last_time, new_id()))
    # Received in July by a new ward, corrected to 30 June: back to one of its predecessors.
    for original in rng.sample(early_july, 12):
        data = dict(original["data"])
        if data["unit"] not in reform.NEW_WARDS:
            continue
        data["unit"] = rng.choice(reform.NEW_WARDS[data["unit"]])
        data["received_at"] = "2025-06-30T10:00:00+07:00"
        extras.append(_correction(original, data, last_time, new_id()))
    # Late events of old units, sent in 2026: dossiers received in 2025 (one resolved in 2026) and
    # documents registered in 2024.
    sent = datetime(2026, 3, 2, 9, 0, tzinfo=reform.LOCAL)
    for n, unit in enumerate(("12106", "12130", reform.SPLIT_OLD, "12103")):
        dossier_id = f"000.00.{unit}.H31-late-{n}"
        data = {
            "dossier_id": dossier_id,
            "unit": unit,
            "procedure_code": "1.000001",
            "channel": "online",
            "received_at": "2025-03-10T09:00:00+07:00",
            "due_at": "2025-03-20T17:00:00+07:00",
            "fee_required": False,
        }
        extras.append(_event("vn.gov.tthc.dossier.received", dossier_id, sent, data, new_id()))
        resolved = {"dossier_id": dossier_id, "resolved_at": "2026-02-27T10:00:00+07:00", "outcome": "approved"}
        extras.append(_event("vn.gov.tthc.dossier.resolved", dossier_id, sent, resolved, new_id()))
        document_id = f"vb-{unit}-late-{n}"
        document = {
            "document_id": document_id,
            "unit": unit,
            "direction": "incoming",
            "registered_at": "2024-11-05T08:30:00+07:00",
            "electronic": True,
            "confidential": False,
        }
        extras.append(_event("vn.gov.qlvb.document.registered", document_id, sent, document, new_id(), reform.QLVB))
    rng.shuffle(extras)
    return extras


def _correction(original: dict[str, Any], data: dict[str, Any], after: datetime, event_id: str) -> dict[str, Any]:
    return _event(original["type"], original["subject"], after + timedelta(minutes=1), data, event_id)


def _event(
    kind: str, subject: str, moment: datetime, data: dict[str, Any], event_id: str, source: str = reform.MOTCUA
) -> dict[str, Any]:
    """The contract event of type `kind` (e.g. vn.gov.tthc.dossier.received) about `subject`."""
    family, name = kind.split(".")[-2:]
    fields = {key: value for key, value in data.items() if key not in ("dossier_id", "document_id")}
    return reference_model.event(f"{family}.{name}", subject, id=event_id, time=moment, source=source, **fields)


@pytest.fixture(scope="module")
def posted(scenario_run: str, services: ServiceSet) -> list[dict[str, Any]]:
    """Every event the stack accepted in this module: the scenario's, then the messy extras."""
    scenario, _tally = reform.generate(SEED)
    extras = messy_extras(scenario, SEED)
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(extras), 500):
            batch = extras[start : start + 500]
            response = client.post(f"{services.url('intake')}/v1/events", content=json.dumps(batch), headers=POST)
            assert response.status_code == 202, response.text
    return scenario + extras


def _indicators(client: httpx.Client, url: str, params: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{url}/v1/indicators", params=params, headers=READ)
    assert response.status_code == 200, (params, response.text)
    body: dict[str, Any] = response.json()
    return body


async def test_every_unit_of_both_trees_agrees_with_the_reference(
    services: ServiceSet, posted: list[dict[str, Any]]
) -> None:
    prepared = reference_model.prepare(posted)
    url = services.url("reporting")
    checked = nonzero = 0
    async with httpx.AsyncClient(timeout=60, headers=READ) as client:

        async def shown(params: dict[str, str]) -> dict[str, Any]:
            response = await client.get(f"{url}/v1/indicators", params=params)
            assert response.status_code == 200, (params, response.text)
            return {group: response.json()[group] for group in GROUPS}

        for tree in (OLD_TREE, NEW_TREE):
            listing = (await client.get(f"{url}/v1/units", params={"tree": str(tree)})).json()
            units = [row["code"] for row in listing]
            assert sorted(units) == sorted(REFERENCE.tree_units(tree))
            for unit, scope in [(unit, scope) for unit in units for scope in ("subtree", "self")]:
                counts = REFERENCE.counts_in(unit, tree, scope)
                procedures = REFERENCE.procedures_in(unit, tree, scope)
                windows = [WHOLE]
                for first, last in windows:
                    expected = reference_model.figures(prepared, first, last, end_of_day(last), counts, procedures)
                    expected = {group: expected[group] for group in GROUPS}
                    if (first, last) == WHOLE and any(expected["dossiers"].values()):
                        nonzero += 1
                        windows += YEARS  # the area's units: each year too
                    params = {"unit": unit, "scope": scope, "tree": str(tree), "from": str(first), "to": str(last)}

                    async def agrees(params: dict[str, str] = params, expected: dict[str, Any] = expected) -> bool:
                        return await shown(params) == expected

                    try:
                        await eventually(agrees, timeout=60, interval=0.2, what=f"figures of {params}")
                    except AssertionError:  # show what differs
                        assert await shown(params) == expected, params
                        raise
                    checked += 1
    assert nonzero >= 30  # the stream reaches the area's units in both trees, both scopes
    assert checked > 1_000


def test_the_trees_of_the_reform(services: ServiceSet, posted: list[dict[str, Any]]) -> None:
    url = services.url("reporting")
    with httpx.Client(timeout=60) as client:
        before = client.get(f"{url}/v1/units", params={"tree": "2025-06-30"}, headers=READ).json()
        after = client.get(f"{url}/v1/units", params={"tree": "2025-07-01"}, headers=READ).json()
        roots_before = sorted(row["code"] for row in before if row["parent"] is None)
        assert roots_before == ["33", "34"]
        districts = [row for row in before if row["parent"] in ("33", "34")]
        assert len(districts) == 18 and all(len(row["code"]) == 3 for row in districts)
        assert [row["code"] for row in after if row["parent"] is None] == ["33"]
        assert len([row for row in after if row["parent"] == "33"]) == 104
        ward = next(row for row in after if row["code"] == "12103")
        assert ward["name"] == "Phường Mỹ Hào" and ward["valid_from"] == "2025-07-01"
        assert sorted(p["code"] for p in ward["predecessors"] if p["whole"]) == sorted(reform.NEW_WARDS["12103"])

        # The area's totals are the same under both trees: the old roots together, the new root alone.
        first, last = WHOLE
        window = {"from": str(first), "to": str(last)}
        old_roots = [_indicators(client, url, {"unit": r, "tree": "2025-06-30", **window}) for r in roots_before]
        new_root = _indicators(client, url, {"unit": "33", "tree": "2025-07-01", **window})
        for group in ("dossiers", "documents"):
            for name, value in new_root[group].items():
                assert value == sum(root[group][name] for root in old_roots), (group, name)
        assert new_root["dossiers"]["received"] > 7_000


def test_the_breakdown_shows_the_split_commune_and_adds_up(services: ServiceSet, posted: list[dict[str, Any]]) -> None:
    url = services.url("reporting")
    first, last = WHOLE
    params = {"unit": "33", "tree": str(NEW_TREE), "from": str(first), "to": str(last)}
    with httpx.Client(timeout=60) as client:
        breakdown = client.get(f"{url}/v1/indicators/breakdown", params=params, headers=READ)
        assert breakdown.status_code == 200, breakdown.text
        rows = breakdown.json()["rows"]
        total = _indicators(client, url, params)
    split = {(row["unit"], row["name"]): row for row in rows if row["split"]}
    # The 18 districts and the 3 split communes of the reform count in the province, as rows of their own.
    assert len(split) == 21 and all(row["valid_to"] == "2025-07-01" for row in split.values())
    dinh_du, town = split[(reform.SPLIT_OLD, "Xã Đình Dù")], split[(reform.TOWN, "Thị xã Mỹ Hào")]
    assert dinh_du["dossiers"]["received"] > 0 and town["dossiers"]["received"] > 0
    children = [i for i, row in enumerate(rows) if row["row"] == "child"]
    assert len(children) == 104 and all(rows.index(row) > max(children) for row in split.values())
    for name in ("received", "resolved", "in_progress", "withdrawn"):
        assert sum(row["dossiers"][name] for row in rows) == total["dossiers"][name], name


def test_an_old_unit_is_reachable_for_audit_in_an_old_tree_only(
    services: ServiceSet, posted: list[dict[str, Any]]
) -> None:
    url = services.url("reporting")
    with httpx.Client(timeout=60) as client:
        old = client.get(f"{url}/v1/indicators", params={"unit": "12106", "tree": "2024-12-31"}, headers=READ)
        gone = client.get(f"{url}/v1/indicators", params={"unit": "12106", "tree": "2026-11-30"}, headers=READ)
        bad = client.get(f"{url}/v1/indicators", params={"unit": "12106", "tree": "2024-13-01"}, headers=READ)
    assert old.status_code == 200
    assert gone.status_code == 404 and gone.headers["content-type"].startswith("application/problem+json")
    assert bad.status_code == 422 and "tree" in bad.text


async def test_the_dashboard_picks_the_tree_and_lists_its_units(
    services: ServiceSet, posted: list[dict[str, Any]]
) -> None:
    require_browser()
    from playwright.async_api import expect

    url = services.url("reporting")

    def received(tree: str | None) -> str:
        params = {"unit": "12103", "year": "2025", **({"tree": tree} if tree else {})}
        snapshot = httpx.get(f"{url}/v1/snapshot", params=params, headers=READ).json()
        return format_count(snapshot["dossiers"]["received"])

    async with open_dashboard(url, "unit=12103&year=2025") as (page, _loads, failed):
        await expect(page.locator("#unit-name")).to_have_text("Phường Mỹ Hào")
        await expect(page.locator("#fig-received")).to_have_text(received(None), timeout=15_000)
        await expect(page.locator("#tree-picker")).to_be_visible(timeout=15_000)
        await expect(page.locator("#tree-select option")).to_have_text(["Hiện nay", "Trước 01/07/2025"])
        await expect(page.locator("#unit-select option")).to_have_count(105)
        assert not failed, failed
        leaving = len(failed)

        await page.locator("#tree-select").select_option("2025-06-30")
        await page.wait_for_url("**tree=2025-06-30**")
        await expect(page.locator("#unit-name")).to_have_text("Phường Bần Yên Nhân")  # the code, reused
        await expect(page.locator("#fig-received")).to_have_text(received("2025-06-30"), timeout=15_000)
        await expect(page.locator("#unit-select option")).to_have_count(401, timeout=15_000)
        await expect(page.locator("#tree-select")).to_have_value("2025-06-30")
        assert received(None) != received("2025-06-30")
        # Leaving the first page cancels its stream and the requests it had in flight (no `tree`);
        # the second page must load without any failure.
        assert all(f.startswith(f"{url}/v1/") and "tree=" not in f for f in failed[leaving:]), failed


def test_the_annual_report_of_a_new_ward_names_its_predecessors(
    services: ServiceSet, posted: list[dict[str, Any]]
) -> None:
    url = services.url("reporting")
    with httpx.Client(timeout=60, headers=READ) as client:
        units = client.get(f"{url}/v1/units").json()
        ward = next(row for row in units if row["code"] == "12103")
        names = [p["name"] for p in ward["predecessors"]]
        report = client.get(f"{url}/v1/reports/annual", params={"unit": "12103", "year": "2024"})
        old = client.get(f"{url}/v1/reports/annual", params={"unit": "12103", "year": "2024", "tree": "2024-12-31"})
        figures = _indicators(client, url, {"unit": "12103", "scope": "self", "from": "2024-01-01", "to": "2024-12-31"})
    assert report.status_code == 200 and old.status_code == 200
    assert len(names) == 4 and "Phường Bần Yên Nhân" in names
    line = f"Số liệu gồm cả số liệu của các đơn vị trước sắp xếp: {', '.join(names)}."
    assert report.text.count(line) == 1, report.text[:2000]
    assert f"{format_count(figures['dossiers']['received'])} hồ sơ" in report.text
    assert "đơn vị trước sắp xếp" not in old.text  # Bần Yên Nhân in its own tree has no predecessor
    assert "Đơn vị: Phường Mỹ Hào" in report.text and "Đơn vị: Phường Bần Yên Nhân" in old.text
