"""The demo district: deterministic, complete, geometrically sound, and carrying the structure docs/demo.md describes.

Most checks read the session's small demo (seed 0, as_of 2026-06-30, see tests/conftest.py); the determinism tests
build two more small demos. Nothing here asserts build times.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely

from gridgov import geo
from gridgov.config import WorkCalendar
from gridgov.demo import LAND_USES, build_demo, build_demo_file
from gridgov.errors import InputError, StoreError
from gridgov.incidents import OPEN_STATUSES, due_times
from gridgov.store import Store
from tests.conftest import DEMO_AS_OF

# Wall-clock columns the demo cannot control: when a migration was applied (written by the store on first open), and
# the demo users' password hashes (salted, so the same password hashes differently each build).
WALL_CLOCK_COLUMNS = {("schema_version", "applied_at"), ("app_user", "password_hash")}


def _dump(path: Path) -> dict[str, pa.Table]:
    """Every table of a database file, ordered by all its columns, geometries as WKB.

    Read as an outside tool would (through the store's cursor, but with no gridgov query in between), so that a table
    added by a later migration is compared too.
    """
    out: dict[str, pa.Table] = {}
    with Store(path, read_only=True) as store:
        con = store.con
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name"
        ).fetchall()]
        for table in tables:
            cols = []
            for name, ctype, *_ in con.execute(f'DESCRIBE "{table}"').fetchall():
                if (table, name) in WALL_CLOCK_COLUMNS:
                    continue
                cols.append(f'ST_AsWKB("{name}") AS "{name}"' if ctype.upper() == "GEOMETRY" else f'"{name}"')
            out[table] = con.execute(f'SELECT {", ".join(cols)} FROM "{table}" ORDER BY ALL').fetch_arrow_table()
    return out


@pytest.fixture(scope="module")
def demo(small_demo_db: Path) -> dict[str, Any]:
    """Everything the checks need from the session's small demo, read once."""
    with Store(small_demo_db, read_only=True) as store:
        layout_id = store.current_layout_id()
        assert layout_id is not None
        meta = store.meta()
        end = datetime.fromisoformat(meta["demo_window_end"])
        return {
            "meta": meta,
            "end": end,
            "areas": store.admin_areas(),
            "units": store.units(),
            "layouts": store.layouts(),
            "layout_id": layout_id,
            "grids": store.layout_grids(layout_id),
            "unit_grid": store.layout_units(layout_id),
            "workers": store.workers(),
            "assignments": store.assignments(layout_id),
            "categories": store.categories(),
            "incidents": store.incidents(),
            "counts": store.counts(now=end),
        }


# -- determinism ---------------------------------------------------------------------------------------------------
def test_same_seed_and_as_of_give_identical_tables(small_demo_db: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.duckdb"
    build_demo_file(again, size="small", seed=0, as_of=DEMO_AS_OF)
    first, second = _dump(small_demo_db), _dump(again)
    assert first.keys() == second.keys()
    differing = [t for t in first if not first[t].equals(second[t])]
    assert differing == []
    assert first["incident"].num_rows > 0 and first["unit"].num_rows > 0


def test_another_seed_gives_another_district(small_demo_db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    summary = build_demo_file(other, size="small", seed=1, as_of=DEMO_AS_OF)
    first, second = _dump(small_demo_db), _dump(other)
    for table in ("admin_area", "unit", "layout_grid", "worker", "incident"):
        assert not first[table].equals(second[table]), table
    assert first["category"].equals(second["category"])
    # The hidden structure holds for this seed too.
    with Store(other, read_only=True) as store:
        hidden = json.loads(store.meta()["demo_hidden"])
        units = store.units()
        incidents = store.incidents(("unit_id",))
    assert _densest_community(units, incidents) == hidden["overloaded_community"]
    assert summary["seed"] == 1


def test_summary_counts_match_the_store(tmp_path: Path) -> None:
    path = tmp_path / "counted.duckdb"
    summary = build_demo_file(path, size="small", seed=7, as_of="2026-01-15")
    with Store(path, read_only=True) as store:
        end = datetime.fromisoformat(store.meta()["demo_window_end"])
        counts = store.counts(now=end)
        layout_id = store.current_layout_id()
        assert layout_id is not None
        assert summary["grids"] == counts["grids"] == len(store.layout_grids(layout_id))
        assert summary["roster"] == len(store.workers())
        assert summary["assignments"] == len(store.assignments(layout_id))
        assert summary["households"] == int(store.unit_table()["households"].sum())
    assert summary["db"] == str(path)
    assert summary["as_of"] == "2026-01-15" and end == datetime(2026, 1, 16)
    assert summary["streets"] == counts["admin_areas"]["street"]
    assert summary["communities"] == counts["admin_areas"]["community"]
    assert counts["admin_areas"]["district"] == 1
    for key in ("units", "workers", "incidents", "open", "overdue"):
        assert summary[key] == counts[key], key
    assert summary["seconds"] >= 0


# -- sizes and arguments -------------------------------------------------------------------------------------------
def test_small_has_the_promised_size(demo: dict[str, Any]) -> None:
    counts = demo["counts"]
    assert counts["admin_areas"] == {"district": 1, "street": 2, "community": 6}
    assert 150 <= counts["units"] <= 250
    assert 12 <= counts["grids"] <= 20
    assert 5_000 <= counts["incidents"] <= 10_000
    area_km2 = demo["areas"].query("level == 'district'")["area_m2"].iloc[0] / 1e6
    assert 1.0 <= area_km2 <= 2.0


def test_existing_file_needs_force(tmp_path: Path) -> None:
    path = tmp_path / "taken.duckdb"
    path.write_bytes(b"not a database")
    with pytest.raises(InputError, match="--force"):
        build_demo_file(path, size="small", seed=0, as_of=DEMO_AS_OF)
    assert path.read_bytes() == b"not a database"
    build_demo_file(path, size="small", seed=0, as_of=DEMO_AS_OF, force=True)
    with Store(path, read_only=True) as store:
        assert store.counts(now=datetime(2026, 7, 1))["units"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.duckdb"]


def test_interrupted_build_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gridgov.demo

    def boom(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(gridgov.demo, "build_demo", boom)
    with pytest.raises(KeyboardInterrupt):
        build_demo_file(tmp_path / "half.duckdb", size="small", seed=0, as_of=DEMO_AS_OF)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "field", "text"), [
    ({"size": "huge"}, "size", "small, medium, large"),
    ({"as_of": "30/06/2026"}, "as_of", "2026-06-30"),
    ({"seed": -1}, "seed", ">= 0"),
])
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(InputError, match=re.escape(text)) as err:
        build_demo_file(tmp_path / "x.duckdb", **{"size": "small", **kwargs})
    assert err.value.field == field
    assert list(tmp_path.iterdir()) == []


def test_build_demo_wants_an_empty_store(tiny_store: Store) -> None:
    with pytest.raises(StoreError, match="already holds"):
        build_demo(tiny_store, size="small")


# -- geography -----------------------------------------------------------------------------------------------------
def test_admin_hierarchy_and_codes(demo: dict[str, Any]) -> None:
    areas = demo["areas"]
    meta = demo["meta"]
    district = areas.query("level == 'district'")
    streets = areas.query("level == 'street'")
    communities = areas.query("level == 'community'")
    assert district["code"].tolist() == ["990100"] == [meta["district_code"]]
    assert district["name"].iloc[0] == meta["district_name"] and meta["district_name_en"]
    assert streets["code"].tolist() == [f"990100{i:03d}" for i in range(1, len(streets) + 1)]
    assert (streets["parent_code"] == "990100").all()
    assert communities["code"].str.fullmatch(r"\d{12}").all()
    assert (communities["code"].str[:9] == communities["parent_code"]).all()
    assert set(communities["parent_code"]) == set(streets["code"])
    assert areas["name_en"].notna().all() and areas["name"].str.len().gt(0).all()
    assert meta["metric_crs"] == "EPSG:32651"
    for key in ("demo_seed", "demo_size", "as_of"):
        assert key in meta
    assert (meta["demo_seed"], meta["demo_size"], meta["as_of"]) == ("0", "small", DEMO_AS_OF)
    # Areas add up level by level and boundaries are not rectangles.
    total = district["area_m2"].iloc[0]
    assert streets["area_m2"].sum() == pytest.approx(total, rel=1e-6)
    assert communities["area_m2"].sum() == pytest.approx(total, rel=1e-6)
    metric = areas.to_crs(meta["metric_crs"])
    assert np.allclose(metric.area, areas["area_m2"], rtol=1e-3)
    assert (shapely.get_num_coordinates(metric.geometry.values) > 20).all()
    lon, lat = areas.geometry.union_all().centroid.coords[0]
    assert abs(lon - 121.47) < 0.05 and abs(lat - 31.23) < 0.05


def test_units_tile_the_district(demo: dict[str, Any]) -> None:
    units = demo["units"]
    areas = demo["areas"]
    assert units["unit_id"].tolist() == list(range(1, len(units) + 1))
    assert set(units["land_use"]) <= set(LAND_USES)
    assert {"water", "park", "residential"} <= set(units["land_use"])
    assert set(units["community_code"]) == set(areas.query("level == 'community'")["code"])
    district_area = areas.query("level == 'district'")["area_m2"].iloc[0]
    assert units["area_m2"].sum() == pytest.approx(district_area, rel=1e-4)
    # ~100 m squares; clipped ones at the edge keep at least the sliver threshold.
    assert units["area_m2"].median() == pytest.approx(10_000, rel=1e-6)
    assert units["area_m2"].min() >= 1_500 * 0.99
    assert units.geometry.is_valid.all()


def test_households_live_where_people_can(demo: dict[str, Any]) -> None:
    units = demo["units"]
    empty = units["land_use"].isin(["water", "park"])
    assert (units.loc[empty, ["households", "population"]] == 0).all().all()
    assert (units.loc[units["households"] == 0, "population"] == 0).all()
    homes = units.query("land_use == 'residential' and households > 0")
    assert len(homes) > 0.5 * len(units)
    assert (homes["population"] >= homes["households"]).all()
    # Dense old compounds next to thin edges: a real spread, not a flat surface.
    assert homes["households"].quantile(0.9) > 2 * homes["households"].quantile(0.1)


# -- the hand-drawn layout -----------------------------------------------------------------------------------------
def test_layout_is_current_complete_and_dated_by_as_of(demo: dict[str, Any]) -> None:
    layouts = demo["layouts"]
    assert len(layouts) == 1
    row = layouts.iloc[0]
    assert row["status"] == "current" and row["name"].startswith("hand-drawn")
    start = demo["end"] - timedelta(days=365)
    assert pd.Timestamp(row["created_at"]) == pd.Timestamp(start)
    unit_grid = demo["unit_grid"]
    assert unit_grid["unit_id"].is_unique
    assert sorted(unit_grid["unit_id"]) == demo["units"]["unit_id"].tolist()
    assert set(unit_grid["grid_code"]) == set(demo["grids"]["grid_code"])


def test_grids_are_contiguous_inside_one_community(demo: dict[str, Any]) -> None:
    units = demo["units"].merge(demo["unit_grid"], on="unit_id")
    grids = demo["grids"].set_index("grid_code")
    per_grid = units.groupby("grid_code")["community_code"].agg(["nunique", "first"])
    assert (per_grid["nunique"] == 1).all()
    assert (per_grid["first"] == grids.loc[per_grid.index, "community_code"]).all()
    assert (grids.index.str[:12] == grids["community_code"]).all()
    assert grids.index.str.fullmatch(r"\d{15}").all()
    pairs = geo.rook_adjacency(units.geometry.values)
    codes = units["grid_code"].to_numpy()
    same = codes[pairs[:, 0]] == codes[pairs[:, 1]]
    labels = geo.connected_components(len(units), pairs[same])
    parts = pd.Series(labels).groupby(codes).nunique()
    assert (parts == 1).all(), parts[parts > 1].to_dict()
    # Stats columns agree with the units, and the grid geometry is the union of its units.
    stats = units.groupby("grid_code").agg(n=("unit_id", "size"), hh=("households", "sum"),
                                           pop=("population", "sum"), area=("area_m2", "sum"))
    assert (stats["n"] == grids.loc[stats.index, "n_units"]).all()
    assert (stats["hh"] == grids.loc[stats.index, "households"]).all()
    assert (stats["pop"] == grids.loc[stats.index, "population"]).all()
    assert np.allclose(stats["area"], grids.loc[stats.index, "area_m2"])
    assert (grids.geometry.geom_type == "Polygon").all()


def test_layout_is_unbalanced_like_a_hand_drawn_one(demo: dict[str, Any]) -> None:
    grids = demo["grids"]
    incidents = demo["incidents"].merge(demo["unit_grid"], on="unit_id")
    per_grid = incidents.groupby("grid_code").size()
    assert grids["n_units"].max() >= 2 * grids["n_units"].min()
    assert per_grid.max() >= 4 * per_grid.median()


# -- workers -------------------------------------------------------------------------------------------------------
def test_roster_and_assignments(demo: dict[str, Any]) -> None:
    workers = demo["workers"]
    assignments = demo["assignments"]
    grids = demo["grids"]
    assert workers["worker_id"].tolist() == [f"W{i:04d}" for i in range(1, len(workers) + 1)]
    assert workers["phone"].str.fullmatch(r"1[3-9]\d{9}").all() and workers["phone"].is_unique
    assert workers["name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    assert set(workers["hours_per_week"]) <= {20.0, 24.0, 28.0, 32.0, 40.0}
    assert (workers["hours_per_week"] == 40).mean() > 0.5 and (workers["hours_per_week"] < 40).any()
    assert workers["base_community"].isin(demo["areas"]["code"]).all()
    assert (~workers["active"]).any()
    assert set(assignments["role"]) == {"primary", "backup"} and not assignments["manual"].any()
    assert assignments["active"].all()
    primaries = assignments.query("role == 'primary'")
    assert primaries["grid_code"].is_unique
    assert (primaries.groupby("worker_id").size() == 2).any()
    assert (~grids["grid_code"].isin(primaries["grid_code"])).any()
    hidden = json.loads(demo["meta"]["demo_hidden"])
    assert set(hidden["unstaffed_grids"]) == set(grids["grid_code"]) - set(assignments["grid_code"])


# -- incidents -----------------------------------------------------------------------------------------------------
def test_incident_points_lie_in_their_units(demo: dict[str, Any]) -> None:
    incidents = demo["incidents"]
    units = demo["units"].set_index("unit_id")
    polygons = units.geometry.loc[incidents["unit_id"]].values
    assert shapely.contains_xy(polygons, incidents["lon"].to_numpy(), incidents["lat"].to_numpy()).all()


def test_incident_lifecycle(demo: dict[str, Any]) -> None:
    inc = demo["incidents"]
    end = pd.Timestamp(demo["end"])
    start = end - pd.Timedelta(days=365)
    assert inc["reported_at"].between(start, end, inclusive="left").all()
    assert inc["incident_id"].tolist() == list(range(1, len(inc) + 1))
    assert inc["reported_at"].is_monotonic_increasing
    closed = inc["status"] == "closed"
    assert inc["closed_at"].notna().eq(closed).all()
    assert (inc.loc[closed, "closed_at"] >= inc.loc[closed, "reported_at"]).all()
    assert (inc.loc[closed, "closed_at"] <= end).all()
    handled = inc["handled_at"].notna()
    assert (inc.loc[handled, "handled_at"] >= inc.loc[handled, "dispatched_at"]).all()
    assert (inc.loc[closed, "closed_at"] >= inc.loc[closed, "handled_at"]).all()
    assert (inc.loc[inc["dispatched_at"].notna(), "dispatched_at"] >= inc.loc[inc["dispatched_at"].notna(),
                                                                              "reported_at"]).all()
    is_open = inc["status"].isin(OPEN_STATUSES)
    assert is_open.sum() > 0
    assert (is_open & (inc["due_at"] < end)).sum() > 0, "some cases are overdue at as_of"
    late = closed & (inc["closed_at"] > inc["due_at"])
    assert 0 < late.sum() < 0.5 * closed.sum()
    assert set(inc["status"]) <= {"reported", "dispatched", "handled", "closed", "cancelled"}
    assert (inc["status"] == "cancelled").any()
    # Deadlines are the category SLA in working hours.
    sla = demo["categories"].set_index("code")["sla_hours"]
    expected = due_times(inc["reported_at"], sla.loc[inc["category_code"]].to_numpy(), WorkCalendar())
    assert (inc["due_at"].to_numpy() == expected).all()


def test_incident_fields(demo: dict[str, Any]) -> None:
    inc = demo["incidents"]
    assert set(inc["category_code"]) == set(demo["categories"]["code"])
    share = inc["source"].value_counts(normalize=True)
    assert set(share.index) == {"hotline", "patrol", "app"} and share["hotline"] > share["app"]
    assert inc["external_id"].is_unique
    assert inc["external_id"].str.fullmatch(r"DEMO-\d{4}-\d{7}").all()
    assert inc["address"].notna().all() and inc["description"].notna().all()
    patrol = inc["source"] == "patrol"
    assert inc.loc[patrol, ["reporter_name", "reporter_phone"]].isna().all().all()
    assert inc.loc[~patrol, "reporter_phone"].notna().mean() > 0.8
    assert inc.loc[~patrol, "reporter_name"].notna().mean() > 0.5
    assert inc["batch_id"].isna().all()
    mix = inc["category_code"].value_counts(normalize=True)
    common = {"exposed_garbage", "illegal_parking", "street_vending"}
    assert common <= set(mix.index[:5])
    assert mix["illegal_construction"] < 0.02


def test_rhythms_of_the_year_week_and_day(demo: dict[str, Any]) -> None:
    inc = demo["incidents"]
    hour = inc["reported_at"].dt.hour
    assert ((hour >= 8) & (hour < 18)).mean() > 0.6
    noise = inc.loc[inc["category_code"] == "noise", "reported_at"].dt.hour
    assert (noise >= 19).mean() > (hour >= 19).mean()
    patrol = inc.loc[inc["source"] == "patrol", "reported_at"]
    assert (patrol.dt.day_of_week >= 5).mean() < 0.05
    summer = inc["reported_at"].dt.month.isin([6, 7, 8])
    garbage = inc["category_code"].isin(["exposed_garbage", "sewage_overflow"])
    assert (garbage & summer).sum() / garbage.sum() > summer.mean()


# -- the hidden structure ------------------------------------------------------------------------------------------
def _densest_community(units: pd.DataFrame, incidents: pd.DataFrame) -> str:
    per_unit = incidents.groupby("unit_id").size()
    comm = units.assign(n=units["unit_id"].map(per_unit).fillna(0)).groupby("community_code")
    return str((comm["n"].sum() / comm["area_m2"].sum()).idxmax())


def test_hidden_structure(demo: dict[str, Any]) -> None:
    hidden = json.loads(demo["meta"]["demo_hidden"])
    units = demo["units"]
    inc = demo["incidents"].merge(demo["unit_grid"], on="unit_id")
    # The overloaded community has the most incidents per km² and closes worst.
    over = hidden["overloaded_community"]
    assert _densest_community(units, inc) == over
    in_over = inc["grid_code"].str[:12] == over
    done = inc[inc["status"] == "closed"]
    on_time = done["closed_at"] <= done["due_at"]
    assert on_time[done["grid_code"].str[:12] == over].mean() < on_time[done["grid_code"].str[:12] != over].mean()
    assert in_over.mean() > 0.15
    # The construction site only complains after it opened, and mostly about debris and noise.
    site = inc[inc["unit_id"].isin(hidden["construction_site_units"])]
    since = pd.Timestamp(hidden["construction_site_since"])
    debris = site["category_code"].isin(["construction_waste", "noise"])
    assert debris.sum() > 30
    assert (site.loc[debris, "reported_at"] >= since).mean() > 0.8
    # The riverside park is quiet; unstaffed grids close later.
    per_unit = inc.groupby("unit_id").size().reindex(units["unit_id"], fill_value=0)
    park = hidden["riverside_park_units"]
    assert len(park) > 0 and per_unit.loc[park].mean() < 0.5 * per_unit.mean()
    unstaffed = done["grid_code"].isin(hidden["unstaffed_grids"])
    assert on_time[unstaffed].mean() < on_time[~unstaffed].mean()
