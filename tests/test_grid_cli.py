"""The grid-engine commands end to end: areas import, units build, regrid, export layout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from gridgov.store import Store

METRIC_KEYS = {"n_grids", "max_over_mean", "cv", "contiguous", "polsby_popper_median", "households_moved_share",
               "seconds"}


def _run(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridgov.cli", *args, "--db", str(db)], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).resolve().parents[1])


def _json(*args: str, db: Path) -> Any:
    done = _run(*args, "--json", db=db)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def demo_copy(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "demo.duckdb"
    shutil.copy(small_demo_db, path)
    return path


@pytest.fixture(scope="module")
def scenario_s1(demo_copy: Path) -> dict[str, Any]:
    # respect=none: on the small demo no 20-grid split by community meets tolerance 0.10 (nor does any nearby count
    # on 195 coarse units; see test_infeasible_regrid_suggests_only_what_works).
    return _json("regrid", "--n-grids", "20", "--respect", "none", "--name", "s1", db=demo_copy)  # type: ignore


def test_regrid_saves_a_scenario_and_leaves_current_alone(demo_copy: Path, scenario_s1: dict[str, Any]) -> None:
    assert set(scenario_s1) >= METRIC_KEYS
    assert scenario_s1["n_grids"] == 20
    assert scenario_s1["contiguous"] is True
    assert scenario_s1["max_over_mean"] <= 1.10
    assert scenario_s1["status"] == "scenario"
    with Store(demo_copy, read_only=True) as store:
        layouts = store.layouts().set_index("name")
        current = store.current_layout_id()
        assert layouts.loc["s1", "status"] == "scenario"
        assert current is not None and current != layouts.loc["s1", "layout_id"]
        assert store.layout_grids(current).shape[0] == 16
        s1_units = store.layout_units(int(layouts.loc["s1", "layout_id"]))
        assert sorted(s1_units["unit_id"]) == sorted(store.unit_table()["unit_id"])
        assert store.unit_graph_frames() is not None


def test_infeasible_regrid_suggests_only_what_works(demo_copy: Path) -> None:
    # Community borders, tolerance 0.10: the share-out of 20 grids allows 1.195 at best, and 17 or 21 grids (which
    # the share-out alone would allow) miss 0.10 on these coarse units. Whatever the error suggests must work.
    done = _run("regrid", "--n-grids", "20", "--name", "x", "--json", db=demo_copy)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())  # the console wraps long lines
    found = re.search(r"at 20 grids a tolerance of (\d+\.\d+) works", message)
    assert found, message
    tolerance = found.group(1)
    ok = _json("regrid", "--n-grids", "20", "--tolerance", tolerance, "--name", "x-tol", db=demo_copy)
    assert ok["n_grids"] == 20 and ok["contiguous"] is True
    assert ok["max_over_mean"] <= 1 + float(tolerance) + 1e-9
    counts = re.search(r"grid counts that work with tolerance 0\.1 \(checked by planning them\): ([\d, ]+)", message)
    suggested = [int(c) for c in counts.group(1).split(", ")] if counts else []
    assert counts or "no grid count near 20 was found to meet tolerance 0.1" in message
    for k in suggested:
        got = _json("regrid", "--n-grids", str(k), "--name", f"x-{k}", db=demo_copy)
        assert got["n_grids"] == k and got["max_over_mean"] <= 1.10 + 1e-9


def test_infeasible_plan_fields_carry_checked_suggestions(demo_copy: Path) -> None:
    from gridgov.planning import InfeasiblePlan
    from gridgov.regrid import regrid

    with Store(demo_copy) as store:
        with pytest.raises(InfeasiblePlan) as info:
            regrid(store, n_grids=20, name="y", tolerance=0.10)
        err = info.value
        assert err.reason == "share_out" and err.tolerance is not None and err.best is not None
        assert err.best.metrics.max_over_mean <= 1 + err.tolerance + 1e-9
        ok = regrid(store, n_grids=20, name="y-tol", tolerance=err.tolerance)
        assert ok["max_over_mean"] <= 1 + err.tolerance + 1e-9
        for k in err.n_grids:
            got = regrid(store, n_grids=k, name=f"y-{k}", tolerance=0.10)
            assert got["max_over_mean"] <= 1.10 + 1e-9


def test_minimal_change_moves_fewer_households(demo_copy: Path, scenario_s1: dict[str, Any]) -> None:
    common = ("--n-grids", "20", "--tolerance", "0.25")
    fresh = _json("regrid", *common, "--name", "fresh20", db=demo_copy)
    minimal = _json("regrid", *common, "--minimal-change", "--name", "minimal20", db=demo_copy)
    assert minimal["contiguous"] is True
    assert minimal["households_moved_share"] < fresh["households_moved_share"]


def test_minimal_change_never_moves_more_than_fresh_from_an_unbalanced_start(demo_copy: Path) -> None:
    # The hand-drawn demo layout is far from balanced; local repair alone once moved 66 % of households here
    # where a fresh plan moved 57 %.
    common = ("--n-grids", "16", "--respect", "none", "--tolerance", "0.10")
    fresh = _json("regrid", *common, "--name", "fresh16", db=demo_copy)
    minimal = _json("regrid", *common, "--minimal-change", "--name", "minimal16", db=demo_copy)
    assert minimal["contiguous"] is True and minimal["max_over_mean"] <= 1.10 + 1e-9
    assert minimal["households_moved_share"] <= fresh["households_moved_share"]


def test_export_layout_geojson_and_mapping(demo_copy: Path, scenario_s1: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "s1.geojson"
    result = _json("export", "layout", "s1", "--format", "geojson", "--out", str(out), db=demo_copy)
    grids = gpd.read_file(out)
    assert len(grids) == 20 == result["n_grids"]
    assert grids["grid_code"].astype(str).str.fullmatch(r"\d{15}").all()
    assert {"community_code", "households", "population", "area_m2", "demand", "n_units"} <= set(grids.columns)
    mapping = pd.read_csv(tmp_path / "s1_mapping.csv", dtype={"new_grid": str, "old_grid": str})
    assert result["mapping"] == str(tmp_path / "s1_mapping.csv")
    sums = mapping.groupby("new_grid")["household_share"].sum()
    assert sums.round(9).eq(1.0).all()
    assert set(mapping["new_grid"]) == set(grids["grid_code"].astype(str))


def test_regrid_rejects_an_existing_name(demo_copy: Path, scenario_s1: dict[str, Any]) -> None:
    done = _run("regrid", "--n-grids", "20", "--respect", "none", "--name", "s1", db=demo_copy)
    assert done.returncode == 2
    assert "already exists" in done.stderr


def _write_place(folder: Path) -> None:
    x, y = 350_000, 3_455_000
    gpd.GeoDataFrame({"code": ["990100"], "name": ["Test district"]}, geometry=[box(x, y, x + 600, y + 400)],
                     crs=32651).to_file(folder / "district.geojson", driver="GeoJSON")
    bow_tie = Polygon([(x + 300, y), (x + 600, y + 400), (x + 600, y), (x + 300, y + 400), (x + 300, y)])
    assert not bow_tie.is_valid
    gpd.GeoDataFrame({"code": ["990100001001", "990100001002"], "name": ["West", "East"]},
                     geometry=[box(x, y, x + 300, y + 400), bow_tie], crs=32651).to_file(
        folder / "communities.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"households": [2400]}, geometry=[box(x, y, x + 600, y + 400)], crs=32651).to_file(
        folder / "households.geojson", driver="GeoJSON")


def test_fresh_place_from_files_to_first_layout(tmp_path: Path) -> None:
    _write_place(tmp_path)
    db = tmp_path / "place.duckdb"
    district = _json("areas", "import", str(tmp_path / "district.geojson"), "--level", "district", db=db)
    assert district["stored"] == 1 and district["metric_crs"] == "EPSG:32651"
    comms = _json("areas", "import", str(tmp_path / "communities.geojson"), "--level", "community", db=db)
    assert comms["stored"] == 2
    assert comms["repaired"] == ["990100001002"]
    assert comms["parents_inferred"] == 2
    assert comms["gaps"] and comms["gaps"][0]["parent"] == "990100"
    with Store(db, read_only=True) as store:
        assert set(store.admin_areas("community")["parent_code"]) == {"990100"}

    units = _json("units", "build", "--size", "100", "--population", str(tmp_path / "households.geojson"),
                  "--pop-col", "households", db=db)
    assert units["n_units"] == 24 and units["households"] == 2400 and units["components"] == 1

    first = _json("regrid", "--n-grids", "4", "--weight", "households", "--name", "first", db=db)
    assert first["status"] == "current" and first["n_grids"] == 4 and first["contiguous"] is True
    info = _json("info", db=db)
    assert info["grids"] == 4
    with Store(db, read_only=True) as store:
        codes = store.layout_grids(store.current_layout_id() or 0)["grid_code"]
    assert codes.str.fullmatch(r"99010000100[12]\d{3}").all()


def test_areas_import_without_crs_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "nocrs.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}), encoding="utf-8")
    done = _run("areas", "import", str(path), "--level", "district", "--code-col", "code", db=tmp_path / "x.duckdb")
    assert done.returncode == 2
    assert "error" in done.stderr


def _write_councils(folder: Path) -> Path:
    """Four features as a city's boundary file has them: a council split over two rows, two councils sharing a
    placeholder id, and a polygon without attributes."""
    x, y = 350_000, 3_455_000
    rows = [("7", "Hilltop", box(x, y, x + 400, y + 400)),
            ("7", "Hilltop", box(x + 400, y, x + 600, y + 400)),
            ("0", "Riverside", box(x, y + 400, x + 300, y + 800)),
            ("0", "Lakeside", box(x + 300, y + 400, x + 600, y + 800)),
            (None, None, box(x, y + 800, x + 600, y + 1000))]
    path = folder / "councils.geojson"
    gpd.GeoDataFrame({"nc_id": [r[0] for r in rows], "nc_name": [r[1] for r in rows]},
                     geometry=[r[2] for r in rows], crs=32651).to_file(path, driver="GeoJSON")
    return path


def test_areas_import_reports_what_a_city_file_gets_wrong(tmp_path: Path) -> None:
    path = _write_councils(tmp_path)
    report = _json("areas", "import", str(path), "--level", "community", "--code-col", "nc_id",
                   "--name-col", "nc_name", db=tmp_path / "plain.duckdb")
    assert report["stored"] == 2 and report["merged"] == ["7"]
    assert [r["code"] for r in report["rejected"]] == ["row 4", "row 5"]
    assert "duplicate code 0" in report["rejected"][0]["reason"] and "Riverside" in report["rejected"][0]["reason"]
    assert "--fix-row 5=" in report["rejected"][1]["reason"]
    assert any("12 digits" in n for n in report["notes"])
    assert report["categories_added"] > 0
    with Store(tmp_path / "plain.duckdb", read_only=True) as store:
        hilltop = store.admin_areas("community").set_index("code").loc["7"]
        assert len(store.categories()) == report["categories_added"]
    assert hilltop["area_m2"] == pytest.approx(600 * 400, rel=1e-6)  # both rows, one area


def test_areas_import_fixes_rows_prefixes_codes_and_makes_the_district(tmp_path: Path) -> None:
    path = _write_councils(tmp_path)
    db = tmp_path / "city.duckdb"
    report = _json("areas", "import", str(path), "--level", "community", "--code-col", "nc_id",
                   "--name-col", "nc_name", "--fix-row", "3=12", "--fix-row", "5=13:Meadow",
                   "--code-prefix", "990100000", "--district", "990100:Test city", db=db)
    assert report["stored"] == 4 and not report["rejected"] and not report["notes"]
    assert report["district"]["code"] == "990100"
    assert report["district"]["area_m2"] == pytest.approx(600 * 1000, rel=1e-6)
    with Store(db, read_only=True) as store:
        areas = store.admin_areas("community").set_index("code")
        assert store.meta()["district_name"] == "Test city"
        assert len(store.admin_areas("district")) == 1
    assert dict(areas["name"]) == {"990100000007": "Hilltop", "990100000012": "Riverside",
                                   "990100000000": "Lakeside", "990100000013": "Meadow"}
    assert set(areas["parent_code"]) == {"990100"}
    # What the codes are for: units and a first layout whose grid codes extend the community codes.
    households = tmp_path / "households.geojson"
    gpd.GeoDataFrame({"households": [6000]}, geometry=[box(350_000, 3_455_000, 350_600, 3_456_000)],
                     crs=32651).to_file(households, driver="GeoJSON")
    units = _json("units", "build", "--size", "100", "--population", str(households), "--pop-col", "households",
                  db=db)
    assert units["n_units"] == 60 and units["households"] == 6000
    first = _json("regrid", "--n-grids", "5", "--weight", "households", "--name", "first", db=db)
    assert first["n_grids"] == 5
    with Store(db, read_only=True) as store:
        grids = store.layout_grids(store.current_layout_id() or 0)
    assert (grids["grid_code"].str[:12] == grids["community_code"]).all()


@pytest.mark.parametrize(("args", "message"), [
    (("--fix-row", "five=12"), "ROW=CODE"),
    (("--fix-row", "9=12"), "row 9 is not a feature"),
    (("--code-prefix", "99x"), "code_prefix"),
    (("--district", "12:Too short"), "6 digits"),
])
def test_areas_import_bad_corrections_name_the_option(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    path = _write_councils(tmp_path)
    done = _run("areas", "import", str(path), "--level", "community", "--code-col", "nc_id", *args,
                db=tmp_path / "bad.duckdb")
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split())


def test_code_prefix_names_the_row_of_a_code_that_is_not_a_number(tmp_path: Path) -> None:
    path = _write_councils(tmp_path)
    done = _run("areas", "import", str(path), "--level", "community", "--code-col", "nc_name",
                "--code-prefix", "990100000", db=tmp_path / "bad.duckdb")
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "row 1" in message and "'Hilltop'" in message


def test_areas_join_matches_names_loosely_and_feeds_units_build(tmp_path: Path) -> None:
    path = _write_councils(tmp_path)
    db = tmp_path / "city.duckdb"
    _json("areas", "import", str(path), "--level", "community", "--code-col", "nc_id", "--name-col", "nc_name",
          "--fix-row", "3=12", "--fix-row", "5=13:Meadow", "--code-prefix", "990100000", db=db)
    table = tmp_path / "population.csv"
    table.write_text("council,population\nHILL-TOP,2400\nRiverside,1200\nLake side,600\nMeadows,300\nNowhere,5\n",
                     encoding="utf-8")
    out = tmp_path / "pop.geojson"
    loose = _json("areas", "join", str(table), "--on", "council", "--out", str(out), db=db)
    assert loose["matched"] == 3
    assert [(r["row"], r["value"]) for r in loose["unmatched_rows"]] == [(4, "Meadows"), (5, "Nowhere")]
    assert loose["areas_without_row"] == ["Meadow"]
    full = _json("areas", "join", str(table), "--on", "council", "--out", str(out), "--alias", "Meadows=Meadow",
                 db=db)
    assert full["matched"] == 4 and full["areas_without_row"] == []
    layer = gpd.read_file(out)
    assert dict(zip(layer["name"], layer["population"], strict=True)) == {
        "Hilltop": 2400, "Riverside": 1200, "Lakeside": 600, "Meadow": 300}
    units = _json("units", "build", "--size", "100", "--population", str(out), "--pop-col", "population", db=db)
    assert units["population"] == 4500
    bad = _run("areas", "join", str(table), "--on", "council", "--out", str(out), "--alias", "Meadows=Moon", db=db)
    assert bad.returncode == 2 and "Moon" in bad.stderr


def test_areas_import_drops_specks_that_would_stretch_the_map(tmp_path: Path) -> None:
    x, y = 350_000, 3_455_000
    # A council whose file geometry carries a 0.25 m² speck 20 km away (digitising debris in real boundary files).
    speck = box(x + 20_000, y + 20_000, x + 20_000.5, y + 20_000.5)
    path = tmp_path / "specks.geojson"
    gpd.GeoDataFrame({"code": ["990100000001", "990100000002"], "name": ["Hilltop", "Riverside"]},
                     geometry=[MultiPolygon([box(x, y, x + 400, y + 400), speck]), box(x + 400, y, x + 800, y + 400)],
                     crs=32651).to_file(path, driver="GeoJSON")
    db = tmp_path / "specks.duckdb"
    report = _json("areas", "import", str(path), "--level", "community", db=db)
    assert report["stored"] == 2
    assert [(d["code"], d["parts"]) for d in report["dropped_parts"]] == [("990100000001", 1)]
    assert report["dropped_parts"][0]["farthest_m"] > 19_000
    info = _json("info", db=db)
    with Store(db, read_only=True) as store:
        areas = store.admin_areas("community").to_crs(32651)
    assert areas.total_bounds == pytest.approx([x, y, x + 800, y + 400], abs=0.01)
    assert info["bbox"][2] < 121.5  # the speck, at about 121.63° E, no longer widens the district
