"""A tiny hand-built district whose every figure can be worked out by hand.

Layout (EPSG:32651 metres, origin x=350000, y=3455000; each unit a 100 m square)::

    row 1 (north)   u5  u6 | u7  u8
    row 0 (south)   u1  u2 | u3  u4
                  community A | community B
    grids: G1 = {u1,u5}, G2 = {u2,u6}, G3 = {u3,u7}, G4 = {u4,u8} (each 20,000 m²)

Incidents (NOW = Wednesday 2026-06-10 12:00):
    id1  u1 exposed_garbage  reported 2026-06-01 10:00 closed 2026-06-01 11:00     (on time)
    id2  u5 exposed_garbage  reported 2026-06-02 10:00 closed 2026-06-05 10:00     (late)
    id3  u2 noise            reported 2026-06-09 09:00 open                        (due 06-09 17:00: overdue)
    id4  u3 street_light     reported 2026-06-09 10:00 open                        (due 06-12 10:00: not overdue)
    id5  u3 street_light     reported 2026-04-01 10:00 closed 2026-04-02 10:00     (outside a June window)
    id6  u8 illegal_parking  reported 2026-06-08 10:00 closed 2026-06-08 11:00     (on time)
"""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path
from types import ModuleType

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box
from shapely.ops import unary_union

from gridgov.config import WorkCalendar
from gridgov.incidents import due_times, load_categories
from gridgov.store import Store

X0, Y0, SIZE = 350_000.0, 3_455_000.0, 100.0
NOW = datetime(2026, 6, 10, 12, 0)
UTM = "EPSG:32651"
DISTRICT, STREET = "990100", "990100001"
COMM_A, COMM_B = "990100001001", "990100001002"
GRID_OF_UNIT = {1: "G1", 5: "G1", 2: "G2", 6: "G2", 3: "G3", 7: "G3", 4: "G4", 8: "G4"}
HOUSEHOLDS = {1: 100, 2: 50, 3: 0, 4: 10, 5: 100, 6: 50, 7: 0, 8: 10}

INCIDENTS = [
    # unit, category, reported_at, status, closed_at
    (1, "exposed_garbage", "2026-06-01 10:00", "closed", "2026-06-01 11:00"),
    (5, "exposed_garbage", "2026-06-02 10:00", "closed", "2026-06-05 10:00"),
    (2, "noise", "2026-06-09 09:00", "dispatched", None),
    (3, "street_light", "2026-06-09 10:00", "reported", None),
    (3, "street_light", "2026-04-01 10:00", "closed", "2026-04-02 10:00"),
    (8, "illegal_parking", "2026-06-08 10:00", "closed", "2026-06-08 11:00"),
]


def unit_box(unit_id: int):
    """The square of a unit in EPSG:32651."""
    row, col = divmod(unit_id - 1, 4)
    return box(X0 + col * SIZE, Y0 + row * SIZE, X0 + (col + 1) * SIZE, Y0 + (row + 1) * SIZE)


def unit_center_lonlat(unit_id: int) -> tuple[float, float]:
    """Longitude and latitude of a unit's centre."""
    pt = gpd.GeoSeries([unit_box(unit_id).centroid], crs=UTM).to_crs(4326).iloc[0]
    return (pt.x, pt.y)


def build_tiny(path: Path | str) -> Store:
    """Write the tiny district to ``path`` and return the open store."""
    store = Store(path)
    cats = load_categories()
    store.write_categories(cats)
    store.set_meta({"district_name": "Tiny test district", "metric_crs": UTM})

    units = gpd.GeoDataFrame(
        {
            "unit_id": list(range(1, 9)),
            "community_code": [COMM_A if ((u - 1) % 4) < 2 else COMM_B for u in range(1, 9)],
            "land_use": "residential",
            "area_m2": SIZE * SIZE,
            "households": [HOUSEHOLDS[u] for u in range(1, 9)],
            "population": [HOUSEHOLDS[u] * 3 for u in range(1, 9)],
        },
        geometry=[unit_box(u) for u in range(1, 9)],
        crs=UTM,
    )
    comm_geom = {c: unary_union(units.geometry[units.community_code == c].tolist()) for c in (COMM_A, COMM_B)}
    district_geom = unary_union(units.geometry.tolist())
    areas = gpd.GeoDataFrame(
        {
            "code": [DISTRICT, STREET, COMM_A, COMM_B],
            "name": ["Tiny district", "Tiny street", "Community A", "Community B"],
            "level": ["district", "street", "community", "community"],
            "parent_code": [None, DISTRICT, STREET, STREET],
            "area_m2": [80_000.0, 80_000.0, 40_000.0, 40_000.0],
        },
        geometry=[district_geom, district_geom, comm_geom[COMM_A], comm_geom[COMM_B]],
        crs=UTM,
    )
    store.write_admin_areas(areas.to_crs(4326))
    store.write_units(units.to_crs(4326))

    unit_grid = pd.DataFrame({"unit_id": list(GRID_OF_UNIT), "grid_code": list(GRID_OF_UNIT.values())})
    rows = []
    for code in ("G1", "G2", "G3", "G4"):
        members = [u for u, g in GRID_OF_UNIT.items() if g == code]
        rows.append({
            "grid_code": code,
            "community_code": COMM_A if code in ("G1", "G2") else COMM_B,
            "street_code": STREET,
            "n_units": len(members),
            "area_m2": SIZE * SIZE * len(members),
            "households": sum(HOUSEHOLDS[u] for u in members),
            "population": sum(HOUSEHOLDS[u] * 3 for u in members),
            "geometry": unary_union([unit_box(u) for u in members]),
        })
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM).to_crs(4326)
    store.save_layout("hand-drawn", unit_grid=unit_grid, grids=grids, status="current")

    sla = cats.set_index("code")["sla_hours"]
    inc = pd.DataFrame(INCIDENTS, columns=["unit_id", "category_code", "reported_at", "status", "closed_at"])
    inc["reported_at"] = pd.to_datetime(inc["reported_at"])
    inc["closed_at"] = pd.to_datetime(inc["closed_at"])
    inc["due_at"] = due_times(inc["reported_at"], sla.loc[inc["category_code"]].to_numpy(), WorkCalendar())
    lonlat = np.array([unit_center_lonlat(u) for u in inc["unit_id"]])
    inc["lon"], inc["lat"] = lonlat[:, 0], lonlat[:, 1]
    inc["source"] = "fixture"
    inc["external_id"] = [f"T{i}" for i in range(1, len(inc) + 1)]
    store.insert_incidents(inc)
    return store


def build_future_file(path: Path) -> Path:
    """A database file that claims schema version 999, as a newer gridgov would write it."""
    import duckdb

    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (999, 'from_the_future', now())")
    con.close()
    return path


# Roster for the tiny district (see tests/test_staffing.py for the figures worked out by hand):
#   W1 2.8 h, community A: primary G1, backup G2      W2 2 h, community A: primary G2
#   W3 1 h, community B: primary G3                   W4 40 h, inactive: primary G4 (so G4 is uncovered)
#   W5 40 h, community B: a floater without grids
TINY_ROSTER = [
    # worker_id, name, phone, hours_per_week, base_community, active
    ("W1", "Wang Fang", "13800000001", 2.8, COMM_A, True),
    ("W2", "Li Na", "13800000002", 2.0, COMM_A, True),
    ("W3", "Zhang Wei", "021-55550003", 1.0, COMM_B, True),
    ("W4", "Liu Yang", None, 40.0, COMM_B, False),
    ("W5", "Chen Jing", "13800000005", 40.0, COMM_B, True),
]
TINY_ASSIGNMENTS = [
    # grid_code, worker_id, role, manual
    ("G1", "W1", "primary", False),
    ("G2", "W1", "backup", False),
    ("G2", "W2", "primary", True),
    ("G3", "W3", "primary", False),
    ("G4", "W4", "primary", False),
]


def add_tiny_roster(store: Store) -> Store:
    """Write :data:`TINY_ROSTER` and :data:`TINY_ASSIGNMENTS` (on the current layout) into a tiny store."""
    store.write_workers(pd.DataFrame(TINY_ROSTER, columns=["worker_id", "name", "phone", "hours_per_week",
                                                           "base_community", "active"]))
    layout_id = store.current_layout_id()
    assert layout_id is not None
    store.write_assignments(layout_id, pd.DataFrame(TINY_ASSIGNMENTS,
                                                    columns=["grid_code", "worker_id", "role", "manual"]))
    return store


def ingest_benchmark() -> ModuleType:
    """``benchmarks/ingest.py`` as a module: its seeded file generator and store builder serve the crash tests."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ingest.py"
    spec = importlib.util.spec_from_file_location("bench_ingest", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
