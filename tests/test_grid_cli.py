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
from shapely.geometry import Polygon, box

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
