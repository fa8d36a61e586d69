"""The shipped Hưng Yên registry: it is what the builder makes of the sources, and the 2025 reform in it."""

from __future__ import annotations

from datetime import date
from importlib import resources

import pytest

from scripts.build_units_hung_yen import Report, build, build_from, render
from shared.units import DEFAULT_UNITS_RESOURCE, HUNG_YEN_UNITS_RESOURCE, UnitRegistry

BEFORE, REFORM = date(2025, 6, 30), date(2025, 7, 1)


def shipped(resource: str) -> bytes:
    return resources.files("shared.data").joinpath(resource).read_bytes()


@pytest.fixture(scope="module")
def built() -> tuple[str, Report]:
    return build_from()


@pytest.fixture(scope="module")
def registry() -> UnitRegistry:
    return UnitRegistry.load_shipped(HUNG_YEN_UNITS_RESOURCE)


def test_the_committed_registry_is_what_the_builder_makes(built: tuple[str, Report]) -> None:
    text, _ = built
    assert shipped(HUNG_YEN_UNITS_RESOURCE).decode() == text, "run python -m scripts.build_units_hung_yen"


def test_the_builder_places_every_row_and_reports_the_spelling_differences(built: tuple[str, Report]) -> None:
    _, report = built
    assert report.unplaced == []
    assert [line.split(":")[0] for line in report.names] == [
        "district 328",  # 'Thị Xã' in the crosswalk
        "commune 12538",  # An Quí / An Quý
        "commune 12664",  # Kim Chung / Kim Trung
        "commune 12916",  # doubled space
        "commune 12949",  # doubled space
        "commune 13141",  # Vũ Quí / Vũ Quý
    ]
    assert "kept 'Xã Kim Chung'" in report.names[2] and "(spaces; kept 'Xã Dương Hồng Thủy')" in report.names[3]


def test_counts(registry: UnitRegistry) -> None:
    assert len(registry.entries) == 2 + 18 + 381 + 104
    assert registry.boundaries == (REFORM,)
    assert len(registry.tree(BEFORE).units) == 2 + 18 + 381
    assert len(registry.tree(REFORM).units) == 1 + 104


def test_before_the_reform_two_provinces_with_their_districts(registry: UnitRegistry) -> None:
    tree = registry.tree(BEFORE)
    assert tree.roots == ("33", "34")
    assert len(tree.children["33"]) == 10 and len(tree.children["34"]) == 8
    assert tree.units["328"].name == "Thị xã Mỹ Hào" and len(tree.children["328"]) == 13
    assert tree.units["12103"].name == "Phường Bần Yên Nhân"
    # the wards made of Mỹ Hào's communes count in the town in the old tree
    assert [r.entry.name for r in tree.extra_rows("328")] == ["Phường Mỹ Hào", "Phường Thượng Hồng", "Phường Đường Hào"]
    assert tree.unplaced == ()
    assert sorted(tree.stored_keys("33") + tree.stored_keys("34")) == sorted(e.key for e in registry.entries)


def test_from_the_reform_one_province_of_104_communes_and_wards(registry: UnitRegistry) -> None:
    tree = registry.tree(REFORM)
    assert tree.roots == ("33",) and len(tree.children["33"]) == 104
    assert all(not tree.children[code] for code in tree.children["33"])
    assert tree.units["12103"].name == "Phường Mỹ Hào" and tree.units["12103"].key == "12103@2025-07-01"
    assert tree.stored_keys("33", "self") == ("33", "34")  # Thái Bình merged whole
    assert sorted(tree.stored_keys("33")) == sorted(e.key for e in registry.entries)


def test_phuong_my_hao_is_made_of_four_old_units(registry: UnitRegistry) -> None:
    predecessors = registry.tree(REFORM).predecessors("12103")
    assert [(p.entry.name, p.whole) for p in predecessors] == [
        ("Phường Bần Yên Nhân", True),
        ("Phường Phan Đình Phùng", True),
        ("Xã Cẩm Xá", True),
        ("Phường Nhân Hòa", True),
    ]
    assert registry.tree(REFORM).stored_keys("12103") == ("12103", "12103@2025-07-01", "12106", "12109", "12118")


def test_the_three_split_communes_count_in_the_province_as_rows_of_their_own(registry: UnitRegistry) -> None:
    tree = registry.tree(REFORM)
    rows = {row.entry.code: row for row in tree.extra_rows("33")}
    assert {code for code, row in rows.items() if len(code) == 5} == {"11989", "12004", "12322"}
    assert [rows[c].entry.name for c in ("11989", "12004", "12322")] == ["Xã Lạc Đạo", "Xã Đình Dù", "Xã Ngọc Thanh"]
    assert all(row.split for row in rows.values())
    # the 18 districts were split among several new units each: their own events count there too
    assert sorted(code for code in rows if len(code) == 3) == sorted(registry.tree(BEFORE).children["33"]) + sorted(
        registry.tree(BEFORE).children["34"]
    )
    split = {(p.entry.code, p.whole) for p in tree.predecessors("33")}
    assert {("11989", False), ("12004", False), ("12322", False), ("34", True)} <= split
    # Đình Dù's old code now names Như Quỳnh, one of the two units it was split between
    assert tree.units["12004"].name == "Xã Như Quỳnh" and "12004" not in tree.stored_keys("12004")


def test_organs_name_the_unit_of_the_day(registry: UnitRegistry) -> None:
    ward = registry.resolve_organ("UBND phường Mỹ Hào", REFORM)
    assert ward is not None and ward.key == "12103@2025-07-01"
    assert registry.resolve_organ("Bộ phận Một cửa phường Mỹ Hào", BEFORE) is None
    town = registry.resolve_organ("ubnd thị xã mỹ hào", BEFORE)
    assert town is not None and town.code == "328"
    assert registry.resolve_organ("UBND thị xã Mỹ Hào", REFORM) is None
    # a commune name used twice is told apart by its district
    commune = registry.resolve_organ("UBND xã Tân Tiến, huyện Văn Giang", BEFORE)
    assert commune is not None and commune.parent == "326"
    assert registry.resolve_organ("UBND xã Tân Tiến", BEFORE) is None
    codes = [organ for entry in registry.entries for organ in entry.organs if organ[0].isdigit()]
    assert len(codes) == len(set(codes)) == len(registry.entries)
    note = registry.entry("33").note
    assert note is not None and "invented" in note


def test_the_demo_tree_uses_the_organs_of_the_same_units_in_the_hung_yen_registry(registry: UnitRegistry) -> None:
    demo = UnitRegistry.from_json(shipped(DEFAULT_UNITS_RESOURCE))
    assert not demo.dated
    old = {entry.name: entry.organs for entry in registry.tree(BEFORE).units.values()}
    for entry in demo.entries:
        assert entry.organs and entry.organs == old[entry.name], entry.code


UNITS_HEADER = "province_name,province_code,district_name,district_code,commune_name,commune_code,commune_kind\n"
CROSSWALK_HEADER = "new_province,new_name,new_code,old_name,old_code,merge,old_district,old_province\n"


def test_the_builder_reports_rows_it_cannot_place_instead_of_guessing() -> None:
    units = UNITS_HEADER + (
        "Tỉnh Hưng Yên,33,Thị xã Mỹ Hào,328,Phường Bần Yên Nhân,12103,Phường\n"
        "Tỉnh Hưng Yên,33,Thị xã Mỹ Hào,328,Xã Cẩm Xá,12109,Xã\n"
        "Tỉnh Hưng Yên,33,Thị xã Mỹ Hào,328,Xã Dương Quang,12112,Xã\n"
        "Tỉnh Hà Nam,35,Huyện Lý Nhân,350,Xã Nhân Hưng,13300,Xã\n"
    )
    crosswalk = CROSSWALK_HEADER + "".join(
        f"Tỉnh Hưng Yên (33),Phường Mỹ Hào,12103,{old},{merge},Thị xã Mỹ Hào (328),Tỉnh Hưng Yên (33)\n"
        for old, merge in [
            ("Phường  Bần Yên Nhân,12103", "Nhập toàn bộ"),
            ("Xã Cẩm Xá,12109", "Nhập một phần"),
            ("Xã Hòa Phong,12115", "Nhập toàn bộ"),
            ("Xã Dương Quang,12112", "Sáp nhập"),
        ]
    )
    entries, report = build(units, crosswalk)
    assert report.unplaced == [
        "hung-yen-thai-binh-units-2025-01-04.csv line 5: province '35' is neither Hưng Yên (33) nor Thái Bình (34)",
        "hung-yen-crosswalk-2025-07-01.csv line 4: old commune '12115' is not in"
        " hung-yen-thai-binh-units-2025-01-04.csv",
        "hung-yen-crosswalk-2025-07-01.csv line 5: unknown merge 'Sáp nhập'",
        "old commune 12109: its crosswalk rows are neither one whole merge nor several partial ones"
        " ([('12103', False)]); it ends without successors",
        "old commune 12112: in no row of hung-yen-crosswalk-2025-07-01.csv; it ends without successors",
    ]
    assert report.names == [
        "commune 12103: units file 'Phường Bần Yên Nhân', crosswalk 'Phường  Bần Yên Nhân'"
        " (spaces; kept 'Phường Bần Yên Nhân')"
    ]
    by_key = {f"{e['code']}@{e['valid_from']}": e for e in entries}
    assert by_key["12109@None"]["successors"] == [] and by_key["12103@None"]["successors"] == [
        {"code": "12103", "whole": True}
    ]
    UnitRegistry.from_json(render(entries))  # what it could place is still a valid registry
