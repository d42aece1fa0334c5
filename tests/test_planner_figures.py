"""Pure builders of the Planner page: the form, the layouts list, the maps, the change view, the comparison table,
the calibration sentence and the outlier view."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from dashboards import planner_figures as pf
from gridgov.errors import InputError
from gridgov.scenarios import COMPARE_ROWS, Figures, compare


# -- the form -------------------------------------------------------------------------------------------------
def test_form_values_become_regrid_arguments() -> None:
    kw = pf.regrid_kwargs(name="  east  ", mode="count", n_grids="18", households="300-500", weight="households",
                          tolerance_pct=12.5, respect="street", minimal_change=True, seed="3")
    assert kw == {"name": "east", "n_grids": 18, "weight": "households", "tolerance": 0.125, "respect": "street",
                  "minimal_change": True, "seed": 3}
    kw = pf.regrid_kwargs(name="", mode="range", n_grids=None, households=" 300 – 500 ", weight="demand",
                          tolerance_pct=10, respect="bogus", minimal_change=False, seed=None,
                          taken=["Scenario 1", "hand-drawn"])
    assert kw["name"] == "Scenario 2" and kw["households"] == "300-500" and "n_grids" not in kw
    assert kw["respect"] == "community" and kw["seed"] == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"n_grids": 0}, "n_grids"), ({"n_grids": 2.5}, "n_grids"), ({"n_grids": "x"}, "n_grids"),
    ({"tolerance_pct": 0}, "tolerance"), ({"tolerance_pct": None}, "tolerance"), ({"seed": -1}, "seed"),
    ({"mode": "range", "households": "500-300"}, "households"), ({"mode": "range", "households": "lots"}, "households"),
    ({"name": "taken"}, "name"),
])
def test_form_errors_name_the_field(change: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"name": "new", "mode": "count", "n_grids": 10, "households": "300-500",
                                 "weight": "demand", "tolerance_pct": 10, "respect": "community",
                                 "minimal_change": False, "seed": 0}
    values.update(change)
    with pytest.raises(InputError) as err:
        pf.regrid_kwargs(taken=["taken"], **values)  # type: ignore[arg-type]
    assert err.value.field == field


def test_parse_range() -> None:
    assert pf.parse_range("300-500") == (300, 500)
    assert pf.parse_range("300 – 500") == (300, 500)
    assert pf.parse_range("500-300") is None and pf.parse_range("") is None and pf.parse_range(None) is None


def test_suggestions_round_the_tolerance_up_and_list_counts() -> None:
    offers = pf.suggestions(tolerance=0.1377, n_grids=(17, 21, 25), asked_tolerance=0.1)
    assert [o["key"] for o in offers] == ["tolerance:13.8", "n_grids:17", "n_grids:21"]
    assert offers[0]["label"] == "Run with tolerance 13.8%"
    assert pf.suggestions(tolerance=0.05, n_grids=(), asked_tolerance=0.1) == []  # not above what was asked
    assert "容差" in pf.suggestions(tolerance=0.2, n_grids=(), asked_tolerance=0.1, lang="zh")[0]["label"]


# -- layouts list ---------------------------------------------------------------------------------------------
def _layouts() -> pd.DataFrame:
    params = {"n_grids": 18, "weight": "demand", "tolerance": 0.1, "respect": "community", "minimal_change": True,
              "seed": 4, "households": None, "method": "gridgov regrid"}
    return pd.DataFrame({
        "layout_id": [4, 3, 2, 1], "name": ["newer", "old", "now", "first"],
        "status": ["scenario", "scenario", "current", "archived"],
        "created_at": pd.to_datetime(["2026-07-04", "2026-07-03", "2026-07-02", "2026-07-01"]),
        "parent_id": [2, 2, 1, None], "params": [json.dumps(params), "{}", '{"method": "demo hand-drawn"}', None],
        "n_grids": [18, 16, 16, 16],
    })


def test_layout_rows_put_the_current_layout_first() -> None:
    rows = pf.layout_rows(_layouts())
    assert [r["name"] for r in rows] == ["now", "newer", "old", "first"]
    assert rows[0]["status_label"] == "current" and rows[0]["params"] == "drawn by hand"
    assert rows[1]["params"] == "18 grids · Demand · ±10% · Community · minimal change · seed 4"
    assert pf.layout_rows(_layouts(), "zh")[0]["status_label"] == "现行"
    assert pf.layout_rows(_layouts().iloc[0:0]) == []


def test_default_pair_is_current_and_newest_scenario() -> None:
    assert pf.default_pair(_layouts()) == (2, 4)
    only = _layouts()[_layouts()["status"] != "scenario"]
    assert pf.default_pair(only) == (2, 1)
    assert pf.default_pair(_layouts().iloc[2:3]) == (2, None)
    assert pf.default_pair(_layouts().iloc[0:0]) == (None, None)


# -- maps and what changes ------------------------------------------------------------------------------------
def _grids(codes: list[str], n: int = 2) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"grid_code": codes, "community_code": ["C1"] * len(codes),
                             "households": [100 * (i + 1) for i in range(len(codes))]},
                            geometry=[box(i * 0.01, 0, (i + 1) * 0.01, 0.01) for i in range(len(codes))],
                            crs="EPSG:4326")


def test_demand_map_shares_the_colour_scale() -> None:
    zr = pf.demand_range([10.0, 20.0], [15.0, 40.0])
    assert zr == (0.0, 40.0)
    fig = pf.demand_map(_grids(["A", "B"]), {"A": 10.0}, zrange=zr, community_names={"C1": "One"}, colorbar=False)
    trace = fig.data[0]
    assert list(trace.locations) == ["A", "B"] and list(trace.z) == [10.0, None]
    assert (trace.zmin, trace.zmax) == zr and trace.showscale is False
    assert trace.customdata[0][0] == "One" and fig.layout.map.style == "white-bg"
    assert [f["id"] for f in trace.geojson["features"]] == ["A", "B"]


def test_unit_moves_follow_the_successor_rule() -> None:
    old = pd.DataFrame({"unit_id": [1, 2, 3, 4], "grid_code": ["A", "A", "B", "B"]})
    new = pd.DataFrame({"unit_id": [1, 2, 3, 4], "grid_code": ["X", "X", "X", "Y"]})
    succ = pd.DataFrame({"new_grid": ["X", "Y"], "old_grid": ["A", "B"]})
    moves = pf.unit_moves(old, new, succ)
    assert moves.set_index("unit_id")["moved"].to_dict() == {1: False, 2: False, 3: True, 4: False}

    units = gpd.GeoDataFrame({"unit_id": [1, 2, 3, 4], "households": [10, 20, 30, 40]},
                             geometry=[box(i, 0, i + 1, 1) for i in range(4)], crs="EPSG:4326")
    areas = pf.moved_areas(units, moves)
    assert areas[["old_grid", "new_grid", "units", "households"]].values.tolist() == [["B", "X", 1, 30]]
    assert pf.moved_areas(units, moves.assign(moved=False)).empty

    status = pf.code_status(["A", "B"], ["A", "Z"])
    assert status.to_dict() == {"A": "kept", "Z": "new"}
    text = pf.change_summary(moves, status, {1: 10, 2: 20, 3: 30, 4: 40})
    assert text.startswith("1 unit grids (30 households) move") and "1 codes kept, 1 new" in text


def test_change_map_colours_new_codes_and_moving_areas() -> None:
    grids = _grids(["A", "Z"])
    units = gpd.GeoDataFrame({"unit_id": [1, 2], "households": [5, 7]},
                             geometry=[box(0, 0, 0.005, 0.01), box(0.005, 0, 0.01, 0.01)], crs="EPSG:4326")
    moves = pd.DataFrame({"unit_id": [1, 2], "old_grid": ["A", "A"], "new_grid": ["A", "Z"],
                          "moved": [False, True]})
    fig = pf.change_map(grids, pd.Series({"A": "kept", "Z": "new"}), pf.moved_areas(units, moves),
                        layers=pf.planner_layers(communities_source="/c", streets_source="/s",
                                                 old_grids={"type": "FeatureCollection", "features": []}))
    fills, moved = fig.data
    assert list(fills.z) == [0, 1] and list(moved.locations) == ["m0"]
    assert moved.customdata[0][:2] == ("A", "Z") or list(moved.customdata[0][:2]) == ["A", "Z"]
    layers = fig.layout.map.layers
    assert layers[-1].line.dash == (2, 2), "the compared layout's borders are dashed"
    assert [x["kind"] for x in pf.change_legend()] == ["fill", "fill", "fill", "dash"]
    empty = pf.change_map(grids, pd.Series({"A": "kept", "Z": "kept"}), pf.moved_areas(units, moves.assign(
        moved=False)))
    assert list(empty.data[1].locations) == []


# -- comparison table and calibration -------------------------------------------------------------------------
def _figures(**values: float | int | None) -> Figures:
    base: dict[str, float | int | None] = {key: 1.0 for key, _ in COMPARE_ROWS}
    base.update(values)
    return Figures(values=base, per_grid=pd.DataFrame())


def test_metric_rows_format_and_colour_changes() -> None:
    a = _figures(n_grids=16, max_over_mean=3.93, households_moved=0, households_moved_share=0.0,
                 forecast_on_time=0.9297, pp_median=0.49, outside_range=14)
    b = _figures(n_grids=12, max_over_mean=1.22, households_moved=2239, households_moved_share=0.154,
                 forecast_on_time=0.92965, pp_median=0.57, outside_range=16)
    rows = {r["key"]: r for r in pf.metric_rows(compare(a, b), household_range=(300, 500))}
    assert "households_moved_share" not in rows, "shares are folded into their counts"
    assert (rows["n_grids"]["a"], rows["n_grids"]["b"], rows["n_grids"]["change"]) == ("16", "12", "−4")
    assert rows["n_grids"]["tone"] == ""  # neither more nor fewer grids is better as such
    assert rows["max_over_mean"]["change"] == "−2.71" and rows["max_over_mean"]["tone"] == "better"
    assert rows["pp_median"]["tone"] == "better" and rows["outside_range"]["tone"] == "worse"
    assert rows["outside_range"]["label"] == "Grids outside 300–500 households"
    assert rows["households_moved"]["b"] == "2,239 (15.4%)" and rows["households_moved"]["tone"] == "worse"
    # A change too small to print is neither better nor worse on screen.
    assert rows["forecast_on_time"]["change"] == "0" and rows["forecast_on_time"]["tone"] == ""
    assert rows["demand_max"]["unit"] == "h/week"
    zh = pf.metric_rows(compare(a, b), lang="zh")
    assert zh[0]["label"] == "网格数" and "标准" in next(r for r in zh if r["key"] == "outside_range")["label"]


def test_missing_values_show_a_dash() -> None:
    rows = {r["key"]: r for r in pf.metric_rows(compare(_figures(forecast_on_time=None), _figures()))}
    assert rows["forecast_on_time"]["a"] == "—" and rows["forecast_on_time"]["change"] == "—"
    assert rows["forecast_on_time"]["tone"] == ""


def test_calibration_sentence() -> None:
    text = pf.calibration_text(error_points=-0.26, grid_error_points=4.58, recorded=0.902, forecast=0.8997)
    assert text["headline"] == "Replay on the current layout comes within 0.3 points of the recorded on-time rate."
    assert "per grid the forecast is off by 4.6 points" in text["detail"] and text["tone"] == "good"
    assert pf.calibration_text(error_points=7.0, grid_error_points=None, recorded=0.7, forecast=0.77)["tone"] == "warn"
    assert "0.3 个百分点" in pf.calibration_text(error_points=0.3, grid_error_points=1.0, recorded=0.9,
                                               forecast=0.903, lang="zh")["headline"]


# -- is today's layout unusual? -------------------------------------------------------------------------------
def test_outlier_view_marks_today() -> None:
    samples = pd.DataFrame({"seed": range(10), "max_over_mean": [1.14 + i * 0.01 for i in range(10)],
                            "pp_median": [0.48 + i * 0.005 for i in range(10)]})
    fig = pf.outlier_figure(samples, layout_max_over_mean=3.9, layout_pp_median=0.5)
    assert [tr.type for tr in fig.data] == ["histogram", "histogram"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted(s.x0 for s in lines) == [0.5, 3.9]
    assert fig.layout.xaxis.range[1] > 3.9, "today's value is inside the axis even far from the samples"
    assert fig.data[0].xbins.size < 0.2, "narrow bins keep the samples' cluster visible"
    words = pf.outlier_text(balance_percentile=100.0, compactness_percentile=40.0, samples=10)
    assert "outlier (worse)" in words["balance"] and "usual range" in words["compactness"]
    assert words["outlier"] == "yes" and words["samples"].startswith("Among 10")
    assert "几乎所有" in pf.outlier_text(balance_percentile=2.0, compactness_percentile=3.0, samples=10,
                                      lang="zh")["balance"]
