"""City-scale benchmark: point → unit assignment, per-grid aggregation and map payload, against the obvious
alternatives in the same run. Prints one table of figures and ratios with the machine's facts; not a test.

    python benchmarks/city.py                         # 10 M points / incidents (needs ~6 GB RAM, a few minutes)
    python benchmarks/city.py --points 2000000 --baseline-points 500000

Parts (issue 9):

* **assign**: 10 M points into ~40,000 unit polygons in lon/lat (a 200 × 200 lattice of 100 m squares, plus an
  irregular Voronoi set of as many units): ``gridgov.locate.PointLocator`` on 1 and ``--threads`` threads vs geopandas
  ``sjoin`` (one thread) vs a DuckDB spatial join (``ST_Contains`` with the spatial extension, DuckDB's default of one
  thread per core; building its point column is counted). Baselines run on ``--baseline-points`` and are compared per
  point. Exactness: our answers against shapely's ``intersects`` (lowest id) on 200,000 of the random points and on
  some 250,000 points on, and a hair off, the unit boundaries; the mismatch counts must be 0. Each of our rows also
  gives the CPU seconds of the process, which the other processes on a shared machine do not inflate.
* **aggregate**: 10 M incidents in a real store on disk; the data behind one dashboard filter change (per-grid counts
  for a 30-day window with a category filter, ``Store.grid_stats``) vs pandas on the same columns in memory.
* **payload**: 10,000 irregular grids as the map's GeoJSON: raw, per-polygon ``simplify`` (opens gaps), and
  ``shapely.coverage_simplify`` on the shared boundaries with rounded coordinates (ours); and the Patch a filter
  change sends (one value per grid).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridgov import __version__  # noqa: E402
from gridgov.locate import PointLocator  # noqa: E402

UTM = "EPSG:32651"
X0, Y0, SIZE = 350_000.0, 3_455_000.0, 100.0


def _machine() -> str:
    import duckdb

    return (f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, python "
            f"{platform.python_version()}, gridgov {__version__}, duckdb {duckdb.__version__}, shapely "
            f"{shapely.__version__}, geopandas {gpd.__version__}; load average "
            f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def square_units(side: int) -> gpd.GeoDataFrame:
    ids = np.arange(1, side * side + 1)
    row, col = np.divmod(ids - 1, side)
    geoms = shapely.box(X0 + col * SIZE, Y0 + row * SIZE, X0 + (col + 1) * SIZE, Y0 + (row + 1) * SIZE)
    return gpd.GeoDataFrame({"unit_id": ids}, geometry=geoms, crs=UTM).to_crs(4326)


def voronoi_units(n: int, extent: float, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    pts = shapely.points(X0 + rng.uniform(0, extent, n), Y0 + rng.uniform(0, extent, n))
    frame = box(X0, Y0, X0 + extent, Y0 + extent)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame))
    cells = shapely.intersection(cells, frame)
    return gpd.GeoDataFrame({"unit_id": np.arange(1, len(cells) + 1)}, geometry=cells, crs=UTM).to_crs(4326)


def random_points(units: gpd.GeoDataFrame, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = units.total_bounds
    return rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> Any:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


# -- assign ---------------------------------------------------------------------------------------------------------

def _shapely_lowest(tree: shapely.STRtree, ids: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reference answer: lowest id among the units whose geometry ``intersects`` each point (boundary included)."""
    expect = np.full(len(x), -1, dtype=np.int64)
    pi, gi = tree.query(shapely.points(x, y), predicate="intersects")
    hit = ids[gi]
    order = np.lexsort((hit, pi))
    first = np.unique(pi[order], return_index=True)[1]
    expect[pi[order][first]] = hit[order][first]
    return expect


def _boundary_sample(units: gpd.GeoDataFrame, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on unit boundaries (vertices and interpolated) and a hair (1e-9 and 1e-12 degrees) off them."""
    rng = np.random.default_rng(seed)
    rings = shapely.boundary(units.geometry.to_numpy())
    pick = rng.integers(0, len(rings), n)
    on = shapely.get_coordinates(shapely.line_interpolate_point(rings[pick], rng.uniform(0, 1, n),
                                                                normalized=True))
    verts = shapely.get_coordinates(rings[pick[: n // 4]])
    xy = np.vstack([on, verts, on + rng.normal(0, 1e-9, on.shape), verts + rng.normal(0, 1e-12, verts.shape)])
    return xy[:, 0], xy[:, 1]


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _timed_cpu(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """Result, wall seconds and CPU seconds of this process (all threads): on a shared machine the CPU figure
    shows the work done, the wall figure what the other processes left of the cores."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench_assign(n_points: int, n_base: int, side: int, threads: int) -> list[tuple[str, ...]]:
    """Ours (1 and ``threads`` threads) vs geopandas ``sjoin`` vs DuckDB, lattice and Voronoi units, with exactness."""
    rows: list[tuple[str, ...]] = []
    for label, units in (("lattice", square_units(side)), ("voronoi", voronoi_units(side * side, side * SIZE))):
        geoms, ids = units.geometry.to_numpy(), units["unit_id"].to_numpy()
        lon, lat = random_points(units, n_points)
        locator, t_build, cpu_build = _timed_cpu(PointLocator, geoms, ids)
        rates: dict[int, float] = {}
        found = None
        for th in sorted({1, threads}):
            found, t, cpu = _timed_cpu(locator.locate, lon, lat, threads=th)
            rates[th] = n_points / t
            rows.append((f"assign {label} ({len(units):,} units)" if th == 1 else "",
                         f"gridgov PointLocator, {th} thread{'s' if th > 1 else ''}", f"{n_points:,}", f"{t:.2f}",
                         f"{rates[th] / 1e6:.2f} M/s", f"CPU {cpu:.2f} s; {_load()}"))
        assert found is not None
        shape = locator.raster_shape
        rows.append(("", "  its raster", "", f"{t_build:.2f} build",
                     f"{locator.raster_nbytes / 2**20:.0f} MB",
                     f"{shape[0]}×{shape[1]} cells, {locator.near_boundary_share():.1%} crossed by a boundary; "
                     f"build CPU {cpu_build:.2f} s"
                     if shape else "no raster"))
        # Exactness against shapely (lowest id among ``intersects``): random points, then points on and a hair off
        # the boundaries, where a raster shortcut would go wrong first.
        tree = shapely.STRtree(geoms)
        k = min(200_000, n_points)
        random_bad = int(np.sum(found[:k] != _shapely_lowest(tree, ids, lon[:k], lat[:k])))
        bx, by = _boundary_sample(units, 50_000, seed=7)
        edge_bad = int(np.sum(locator.locate(bx, by) != _shapely_lowest(tree, ids, bx, by)))
        rows.append(("", "  exactness vs shapely intersects", f"{k + len(bx):,}", "", "",
                     f"mismatches: {random_bad} of {k:,} random, {edge_bad} of {len(bx):,} on/near edges"))
        pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon[:n_base], lat[:n_base]), crs=4326)
        joined, t_sj, cpu_sj = _timed_cpu(gpd.sjoin, pts, units, predicate="within", how="left")
        del joined, pts
        sj_rate = n_base / t_sj
        rows.append(("", "geopandas sjoin (within), 1 thread", f"{n_base:,}", f"{t_sj:.2f}",
                     f"{sj_rate / 1e6:.2f} M/s", f"ours {rates[1] / sj_rate:.1f}× (1 thread), "
                     f"{rates[threads] / sj_rate:.1f}× ({threads} threads); CPU {cpu_sj:.2f} s; {_load()}"))
        duck_rate, cpu_duck = _duckdb_join(units, lon[:n_base], lat[:n_base])
        rows.append(("", f"DuckDB spatial join (ST_Contains), {os.cpu_count()} threads", f"{n_base:,}",
                     f"{n_base / duck_rate:.2f}", f"{duck_rate / 1e6:.2f} M/s",
                     f"ours {rates[1] / duck_rate:.1f}× (1 thread), {rates[threads] / duck_rate:.1f}× "
                     f"({threads} threads); CPU {cpu_duck:.2f} s; {_load()}"))
    return rows


def _duckdb_join(units: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> tuple[float, float]:
    """Points per second of DuckDB's spatial join (building the point column included), and its CPU seconds."""
    import duckdb
    import pyarrow as pa

    from gridgov.store import load_spatial

    con = duckdb.connect()
    load_spatial(con)
    con.register("_u", pa.table({"unit_id": units["unit_id"].to_numpy(), "wkb": shapely.to_wkb(units.geometry)}))
    con.execute("CREATE TABLE u AS SELECT unit_id, ST_GeomFromWKB(wkb) AS geom FROM _u")
    con.register("_p", pa.table({"i": np.arange(lon.size), "lon": lon, "lat": lat}))
    c0, t0 = time.process_time(), time.perf_counter()
    con.execute("CREATE TABLE p AS SELECT i, ST_Point(lon, lat) AS geom FROM _p")
    con.execute("SELECT count(*) FROM p JOIN u ON ST_Contains(u.geom, p.geom)").fetchall()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    con.close()
    return lon.size / seconds, cpu


# -- aggregate ------------------------------------------------------------------------------------------------------

def bench_aggregate(n_incidents: int, side: int, tmp: Path) -> list[tuple[str, ...]]:
    from gridgov.incidents import due_times, load_categories
    from gridgov.store import Store

    rng = np.random.default_rng(3)
    units = square_units(side)
    n_units = len(units)
    cats = load_categories()
    db = tmp / "city.duckdb"
    store = Store(db)
    store.write_categories(cats)
    store.write_units(units.assign(community_code="990100001001", land_use="residential", area_m2=SIZE * SIZE,
                                   households=50, population=150))
    grids_per_side = max(1, side // 5)
    row, col = np.divmod(units["unit_id"].to_numpy() - 1, side)
    grid_idx = (row // 5) * grids_per_side + (col // 5)
    codes = np.array([f"G{g:05d}" for g in range(grids_per_side * grids_per_side)], dtype=object)
    unit_grid = pd.DataFrame({"unit_id": units["unit_id"], "grid_code": codes[grid_idx]})
    grid_geoms = units.dissolve(by=unit_grid["grid_code"].to_numpy()).reset_index(names="grid_code")
    grid_geoms = grid_geoms.assign(community_code="990100001001", street_code="990100001", n_units=25,
                                   area_m2=25 * SIZE * SIZE, households=1250, population=3750)
    store.save_layout("city", unit_grid=unit_grid, grids=grid_geoms, status="current",
                      created_at=datetime(2025, 1, 1))
    start = np.datetime64("2025-01-01T00:00:00", "us")
    t0 = time.perf_counter()
    chunk = 2_000_000
    for first in range(0, n_incidents, chunk):
        n = min(chunk, n_incidents - first)
        reported = np.sort(start + rng.integers(0, 365 * 86_400, n).astype("timedelta64[s]"))
        cat = cats["code"].to_numpy()[rng.integers(0, len(cats), n)]
        due = due_times(reported, cats.set_index("code").loc[cat, "sla_hours"].to_numpy(), _calendar())
        open_ = rng.random(n) < 0.03
        closed = np.where(open_, np.datetime64("NaT"), reported + rng.integers(600, 5 * 86_400, n).astype(
            "timedelta64[s]"))
        frame = pd.DataFrame({"source": "bench", "external_id": None, "category_code": cat, "reported_at": reported,
                              "due_at": due, "status": np.where(open_, "dispatched", "closed"),
                              "closed_at": closed, "lon": 121.5, "lat": 31.2,
                              "unit_id": rng.integers(1, n_units + 1, n)})
        store.insert_incidents(frame)
    t_load = time.perf_counter() - t0
    now = datetime(2026, 1, 1)
    w_end = datetime(2025, 12, 31)
    w_start = w_end - timedelta(days=30)
    pick = ["exposed_garbage", "illegal_parking", "noise"]
    store.grid_stats(1, start=w_start, end=w_end, now=now, categories=pick)  # warm
    times = []
    for _ in range(7):
        _, t = _timed(store.grid_stats, 1, start=w_start, end=w_end, now=now, categories=pick)
        times.append(t)
    ours = float(np.median(times))
    cols = store.df("SELECT unit_id, category_code, reported_at, due_at, status, closed_at FROM incident")
    lu = unit_grid.set_index("unit_id")["grid_code"]

    def pandas_stats() -> pd.DataFrame:
        f = cols[cols["category_code"].isin(pick)]
        g = f["unit_id"].map(lu)
        in_w = (f["reported_at"] >= w_start) & (f["reported_at"] < w_end)
        is_open = f["status"].isin(["reported", "registered", "dispatched", "handled"]) & (f["reported_at"] <= now)
        closed_w = (f["closed_at"] >= w_start) & (f["closed_at"] < w_end)
        return pd.DataFrame({"reported": in_w, "open": is_open, "overdue": is_open & (f["due_at"] < now),
                             "closed": closed_w, "on_time": closed_w & (f["closed_at"] <= f["due_at"])}).groupby(
            g.to_numpy()).sum()

    pd_times = [_timed(pandas_stats)[1] for _ in range(3)]
    store.close()
    return [
        (f"aggregate ({n_incidents:,} incidents, {len(codes):,} grids)", "gridgov Store.grid_stats (DuckDB file)",
         f"{n_incidents:,}", f"{ours * 1000:.0f} ms", "", f"load {t_load:.0f} s"),
        ("", "pandas, same columns in memory", f"{n_incidents:,}", f"{np.median(pd_times) * 1000:.0f} ms", "",
         f"ours {np.median(pd_times) / ours:.1f}× faster"),
    ]


def _calendar() -> Any:
    from gridgov.config import WorkCalendar

    return WorkCalendar()


# -- payload --------------------------------------------------------------------------------------------------------

def bench_payload(n_grids: int) -> list[tuple[str, ...]]:
    extent = float(np.sqrt(n_grids)) * 500.0  # grids of about 500 m across
    grids = voronoi_units(n_grids, extent, seed=5).to_crs(UTM)
    # Irregular, detailed boundaries: densify like real street-following grids, with a little noise.
    dense = shapely.segmentize(grids.geometry.to_numpy(), 20.0)

    def size(geoms: np.ndarray, precision: int) -> tuple[int, int]:
        gdf = gpd.GeoDataFrame({"grid_code": [f"G{i:05d}" for i in range(len(geoms))]}, geometry=geoms, crs=UTM)
        gdf = gdf.to_crs(4326)
        gdf["geometry"] = shapely.set_precision(gdf.geometry.to_numpy(), 10 ** -precision)
        text = gdf.to_json(drop_id=True).encode()
        return len(text), len(gzip.compress(text))

    raw = size(dense, 7)
    per_poly = shapely.simplify(dense, 10.0)
    gaps = float(shapely.area(shapely.difference(shapely.union_all(dense), shapely.union_all(per_poly))))
    simple = size(per_poly, 5)
    cov, t_cov = _timed(shapely.coverage_simplify, dense, 10.0)
    cov_size = size(np.asarray(cov), 5)
    gaps_cov = float(shapely.area(shapely.difference(shapely.union_all(dense), shapely.union_all(cov))))
    values = json.dumps([round(float(v), 2) for v in np.random.default_rng(0).gamma(2.0, 30.0, n_grids)]).encode()
    mb = 1024 * 1024
    return [
        (f"map payload ({n_grids:,} irregular grids)", "raw GeoJSON (7 decimals)", "", f"{raw[0] / mb:.1f} MB",
         f"gzip {raw[1] / mb:.1f} MB", ""),
        ("", "per-polygon simplify 10 m", "", f"{simple[0] / mb:.1f} MB", f"gzip {simple[1] / mb:.1f} MB",
         f"gaps/overlaps {gaps:,.0f} m²"),
        ("", "coverage_simplify 10 m, 5 decimals (ours)", "", f"{cov_size[0] / mb:.1f} MB",
         f"gzip {cov_size[1] / mb:.1f} MB", f"gaps {gaps_cov:,.0f} m²; {t_cov:.1f} s once"),
        ("", "filter change: Patch of one value per grid", "", f"{len(values) / 1024:.0f} KB", "", ""),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--baseline-points", type=int, default=1_000_000)
    parser.add_argument("--side", type=int, default=200, help="units per side of the lattice (200: 40,000)")
    parser.add_argument("--grids", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2, help="threads for the second assign figure")
    parser.add_argument("--parts", nargs="+", default=["assign", "aggregate", "payload"])
    args = parser.parse_args(argv)
    print(_machine(), flush=True)
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "assign" in args.parts:
            rows += bench_assign(args.points, args.baseline_points, args.side, args.threads)
        if "aggregate" in args.parts:
            rows += bench_aggregate(args.points, args.side, Path(tmp))
        if "payload" in args.parts:
            rows += bench_payload(args.grids)
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
