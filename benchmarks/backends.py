"""The same district on both backends: what the store's calls cost on a DuckDB file and on PostgreSQL/PostGIS.

Builds the demo district (``--size``, default medium) into a new DuckDB file and into an empty PostgreSQL database,
then times on each the calls behind the pages and the intake API, in one process, one call at a time:

* ``demo build`` — :func:`gridgov.demo.build_demo` (bulk writes: units, layout, 1 year of incidents);
* ``grid_stats 30 d + category`` / ``grid_stats year`` — the Overview's per-grid counts;
* ``grid_open_cases`` — the open cases of the busiest grid (My grids, the Overview's case list);
* ``open requests (API)`` — ``GET /requests?status=open`` (100 newest);
* ``counts`` — ``gridgov info``;
* ``insert_one_incident`` — one intake API case (p50 and p95 of ``--inserts`` calls);
* ``import N rows`` — :func:`gridgov.ingest.ingest_file` of a CSV of ``--import-rows`` cases drawn from the demo's.

Each read is repeated ``--repeat`` times; the median is printed. Without ``--pg`` a throwaway PostgreSQL cluster is
started for the run (``tests/pg_cluster.py``: PostgreSQL and PostGIS must be installed; fsync off, as for tests —
give ``--pg`` a database on a real server to measure that).

Usage::

    python benchmarks/backends.py [--size medium] [--pg postgresql://…/empty_db] [--repeat 5] [--inserts 200]
                                  [--import-rows 100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from gridgov import __version__
from gridgov.demo import build_demo
from gridgov.ingest import ingest_file
from gridgov.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pg_cluster, when no --pg is given

AS_OF = "2026-06-30"
NOW = datetime(2026, 6, 30, 18, 0)


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm: caches, plans, the first connection of the thread
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _import_file(store: Store, rows: int, folder: Path, seed: int = 0) -> Path:
    """A CSV of ``rows`` cases drawn from the store's own (new external ids), in gridgov's own column names."""
    cases = store.incidents(("source", "category_code", "reported_at", "status", "closed_at", "lon", "lat"))
    rng = np.random.default_rng(seed)
    pick = cases.iloc[rng.integers(0, len(cases), rows)].reset_index(drop=True)
    pick = (pick.drop(columns="incident_id").rename(columns={"category_code": "category"})
            .assign(source="bench", external_id=[f"B{i}" for i in range(rows)]))
    path = folder / f"import-{rows}.csv"
    pick.to_csv(path, index=False)
    return path


def measure(store: Store, *, size: str, repeat: int, inserts: int, import_rows: int, folder: Path) -> dict[str, str]:
    """The figures of one backend, as printed (a value per row of the table)."""
    out: dict[str, str] = {}
    t0 = time.perf_counter()
    summary = build_demo(store, size=size, seed=0, as_of=AS_OF, progress=False)
    out["demo build"] = f"{time.perf_counter() - t0:.1f} s ({summary['incidents']:,} incidents)"
    # As a running PostgreSQL would have them within a minute (autovacuum): planner statistics of the new rows.
    store.refresh_statistics()
    layout = store.current_layout_id()
    assert layout is not None
    cats = store.categories()["code"].tolist()[:3]
    month = dict(start=NOW - timedelta(days=30), end=NOW, now=NOW)
    year = dict(start=NOW - timedelta(days=365), end=NOW, now=NOW)
    month_ms = _median_ms(lambda: store.grid_stats(layout, **month, categories=cats), repeat)
    out["grid_stats 30 d + category"] = f"{month_ms:.1f} ms"
    out["grid_stats year"] = f"{_median_ms(lambda: store.grid_stats(layout, **year), repeat):.1f} ms"
    busiest = store.grid_stats(layout, **year).sort_values("open", ascending=False)["grid_code"].iloc[0]
    out["grid_open_cases"] = f"{_median_ms(lambda: store.grid_open_cases(layout, busiest), repeat):.1f} ms"
    out["open requests (API)"] = (
        f"{_median_ms(lambda: store.service_requests(layout, status='open', limit=100), repeat):.1f} ms")
    out["counts"] = f"{_median_ms(lambda: store.counts(now=NOW), repeat):.1f} ms"
    row = store.incidents().drop(columns="incident_id").iloc[0].to_dict()
    times = []
    for i in range(inserts):
        t1 = time.perf_counter()
        store.insert_one_incident({**row, "source": "bench-api", "external_id": f"API-{i}", "batch_id": None})
        times.append((time.perf_counter() - t1) * 1000)
    p95 = float(np.percentile(times, 95))
    out["insert_one_incident"] = f"p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms"
    path = _import_file(store, import_rows, folder)
    t2 = time.perf_counter()
    result = ingest_file(store, path)
    secs = time.perf_counter() - t2
    out[f"import {import_rows:,} rows"] = f"{secs:.1f} s ({result.accepted / secs / 1000:.0f} k rows/s)"
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--pg", help="URL of an EMPTY PostgreSQL database (default: a throwaway cluster)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--inserts", type=int, default=200)
    parser.add_argument("--import-rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    import duckdb
    import psycopg

    cluster = None
    url = args.pg
    if url is None:
        from tests.pg_cluster import ThrowawayCluster

        cluster = ThrowawayCluster()
        url = cluster.create_database("bench_backends")
    results: dict[str, dict[str, str]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, location in (("DuckDB file", folder / "bench.duckdb"), ("PostgreSQL", url)):
                with Store(location) as store:
                    results[name] = measure(store, size=args.size, repeat=args.repeat, inserts=args.inserts,
                                            import_rows=args.import_rows, folder=folder)
                    if name == "PostgreSQL":
                        version = store.con.execute("SELECT version(), postgis_lib_version()").fetchall()[0]
    finally:
        if cluster is not None:
            cluster.stop()
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"gridgov {__version__}, duckdb {duckdb.__version__}, psycopg {psycopg.__version__}, "
          f"{version[0].split(' on ')[0]}, PostGIS {version[1]}; load average {load[0]:.1f}")
    print(f"{args.size} demo; reads: median of {args.repeat}\n")
    rows = list(results["DuckDB file"])
    width = max(len(r) for r in rows)
    print(f"{'':{width}}  {'DuckDB file':>34}  {'PostgreSQL':>34}")
    for r in rows:
        print(f"{r:{width}}  {results['DuckDB file'][r]:>34}  {results['PostgreSQL'][r]:>34}")


if __name__ == "__main__":
    main()
