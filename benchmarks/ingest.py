"""Import benchmark: a 1 M-row incident CSV into a district of ~1,000 square units.

Each step runs in its own Python process so that its peak RSS (``ru_maxrss``) is its own. Baselines in the same run:

* ``pyarrow_read_all`` — ``pyarrow.csv.read_csv`` of the whole file as text columns: the floor for parsing, with the
  whole file in memory and no validation or writes.
* ``pandas_read_all`` — ``pandas.read_csv(dtype=str)`` of the whole file: what a naive importer starts with.
* ``gridgov_ingest`` — :func:`gridgov.ingest.ingest_file`: chunked parse, validation, unit lookup, due times, dedupe
  and one transaction of Arrow inserts. Its breakdown (``--phases``, on by default) times each part in the thread
  that runs it: ``read`` (CSV parsing), ``hash`` (SHA-256 of the file), ``validate`` (all checks but the unit
  lookup), ``locate`` (point → unit, raster build included), ``stage`` (the store calls made per chunk: known ids,
  scratch files) and ``publish`` (the one transaction at the end). Reading, hashing and validating run on background
  threads while the caller's thread stages, so the parts overlap and add up to more than the wall time; ``waiting``
  is how long the caller's thread waited for validated chunks.
* ``gridgov_reimport`` — the same file again (content hash hit: nothing is written).
* ``gridgov_ingest`` again on a file of a quarter of the rows, into a fresh store: with bounded memory its peak
  RSS is close to the full file's.
* ``ingest@REF`` (``--before REF[,REF…]``, default ``6ffbcf2,HEAD``: the last revision before the speed work, and
  the last commit): the same full file imported by the gridgov of a git revision (``git archive`` into a temporary
  folder; the working tree is not touched), into a fresh store, so the before/after figures come from the same run
  on the same machine.

Seconds are wall time; ``cpu_s`` is the process's CPU time (all its threads). On a shared machine wall time swings
with the other load while CPU time holds steadier, so both are printed, with the load average before each step. The
breakdown's figures are CPU seconds of the thread doing the part (wall seconds for the store's, which runs DuckDB's
own threads), per million rows.

Usage::

    python benchmarks/ingest.py [--rows 1000000] [--before REF[,REF...] | --no-before] [--no-phases] [--workdir DIR]
                                [--keep]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

UTM = "EPSG:32651"
X0, Y0, SIZE, SIDE = 350_000.0, 3_455_000.0, 100.0, 32  # 32 x 32 = 1,024 units of 100 m
CHUNK = 100_000
#: Revisions whose importer runs as "before" lines: the last one before the first speed work (pandas frames, DuckDB
#: scratch tables, STRtree only), and the last commit.
BEFORE_REF = "6ffbcf2,HEAD"
REPO = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def build_store(db: Path) -> None:
    """A store with 1,024 square 100 m units (one community) and the shipped categories."""
    import geopandas as gpd
    from shapely.geometry import box

    from gridgov.incidents import load_categories
    from gridgov.store import Store

    ids = np.arange(1, SIDE * SIDE + 1)
    row, col = np.divmod(ids - 1, SIDE)
    geoms = [box(X0 + c * SIZE, Y0 + r * SIZE, X0 + (c + 1) * SIZE, Y0 + (r + 1) * SIZE)
             for r, c in zip(row, col, strict=True)]
    units = gpd.GeoDataFrame({"unit_id": ids, "community_code": "990100001001", "land_use": "residential",
                              "area_m2": SIZE * SIZE, "households": 50, "population": 150},
                             geometry=geoms, crs=UTM).to_crs(4326)
    with Store(db) as store:
        store.write_categories(load_categories())
        store.write_units(units)


def generate_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Write a realistic-ish hotline export in chunks (about 1.5 % of rows are bad in some way)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    from pyproj import Transformer

    from gridgov.incidents import load_categories

    rng = np.random.default_rng(seed)
    cats = load_categories()
    names = np.concatenate([cats["code"].to_numpy(), cats["name_zh"].to_numpy(), cats["name_en"].to_numpy()])
    statuses = np.array(["closed", "办结", "处置中", "dispatched", "reported", "Closed", ""])
    to_lonlat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    start = np.datetime64("2025-01-01T00:00:00", "s")
    writer = None
    for first in range(0, rows, CHUNK):
        n = min(CHUNK, rows - first)
        x = X0 + rng.uniform(0, SIDE * SIZE, n)
        y = Y0 + rng.uniform(0, SIDE * SIZE, n)
        outside = rng.random(n) < 0.01
        x[outside] += 10_000.0
        lon, lat = to_lonlat.transform(x, y)
        reported = start + rng.integers(0, 365 * 86_400, n).astype("timedelta64[s]")
        closed = reported + rng.integers(600, 10 * 86_400, n).astype("timedelta64[s]")
        status = statuses[rng.integers(0, len(statuses), n)]
        is_closed = np.isin(status, ["closed", "办结", "Closed", ""])
        ids = np.array([f"SH{first + i:08d}" for i in range(n)], dtype=object)
        dup = rng.random(n) < 0.003
        ids[dup] = [f"SH{max(first + i - 7, 0):08d}" for i in np.flatnonzero(dup)]
        category = names[rng.integers(0, len(names), n)].astype(object)
        category[rng.random(n) < 0.002] = "未知类别"
        rep_text = pc.strftime(pa.array(reported), format="%Y-%m-%d %H:%M:%S").to_numpy(zero_copy_only=False)
        rep_text[rng.random(n) < 0.005] = "not a time"
        closed_text = pc.strftime(pa.array(closed), format="%Y-%m-%d %H:%M:%S").to_numpy(zero_copy_only=False)
        table = pa.table({
            "external_id": pa.array(ids, pa.string()),
            "reported_at": pa.array(rep_text, pa.string()),
            "category": pa.array(category, pa.string()),
            "lon": pa.array(np.round(lon, 7)),
            "lat": pa.array(np.round(lat, 7)),
            "status": pa.array(status, pa.string()),
            "closed_at": pa.array(np.where(is_closed, closed_text, None), pa.string()),
            "description": pa.array([f"市民反映第{first + i}号问题, 请尽快处理" for i in range(n)], pa.string()),
            "address": pa.array([f"示范路{(first + i) % 997}号" for i in range(n)], pa.string()),
        })
        if writer is None:
            writer = pcsv.CSVWriter(str(path), table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Phases:
    """Seconds spent in parts of the importer, timed by wrapping its functions (the library carries no timers)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] += seconds

    def timed(self, owner: Any, name: str, phase: str, *, wall: bool = False,
              when: Callable[[], bool] = lambda: True) -> None:
        """Time ``owner.name`` into ``phase``: CPU of the calling thread, or wall time."""
        fn = getattr(owner, name, None)
        if fn is None:  # an older importer without this part
            return
        clock = time.perf_counter if wall else time.thread_time

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not when():
                return fn(*args, **kwargs)
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(phase, clock() - t0)

        setattr(owner, name, wrapper)

    def install(self) -> None:
        import gridgov.ingest as ingest
        from gridgov.store import Store

        csv_reader = ingest._csv_reader

        def timed_reader(path: Path) -> Any:
            reader = csv_reader(path)
            if not dataclasses.is_dataclass(reader) or not hasattr(reader, "chunks"):
                return reader  # an older reader: not timed

            def chunks() -> Iterator[Any]:
                source = reader.chunks()
                try:
                    while True:
                        t0 = time.thread_time()
                        try:
                            item = next(source)
                        except StopIteration:
                            return
                        finally:
                            self.add("read", time.thread_time() - t0)
                        yield item
                finally:
                    source.close()

            return dataclasses.replace(reader, chunks=chunks)

        ingest._csv_reader = timed_reader
        self.timed(ingest, "_sha256_file", "hash")
        # Older importers validate through validate(); now the import calls _check() (validate() wraps it).
        self.timed(ingest, "_check" if hasattr(ingest, "_check") else "validate", "validate")
        self.timed(ingest.UnitIndex, "locate", "locate")
        for method in ("stage_incidents", "stage_rejects", "known_external_ids"):
            self.timed(Store, method, "stage", wall=True)
        self.timed(Store, "publish_import", "publish", wall=True)
        if hasattr(ingest, "_Ahead"):
            self.timed(ingest._Ahead, "__next__", "waiting", wall=True,
                       when=lambda: threading.current_thread() is threading.main_thread())

    def per_million(self, rows: int) -> dict[str, float]:
        out = dict(self.seconds)
        if "validate" in out:
            out["validate"] -= out.get("locate", 0.0)  # locate runs inside validation, in the same thread
        return {k: round(v * 1e6 / max(rows, 1), 2) for k, v in out.items()}


def _step(name: str, csv_path: Path, db: Path, rows: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    out: dict[str, Any] = {"step": name}
    if name == "generate":
        generate_csv(csv_path, rows)
    elif name == "build_store":
        build_store(db)
    elif name == "pyarrow_read_all":
        import pyarrow as pa
        import pyarrow.csv as pcsv

        header = csv_path.open(encoding="utf-8").readline().strip().split(",")
        header = [h.strip('"') for h in header]
        table = pcsv.read_csv(csv_path, convert_options=pcsv.ConvertOptions(
            column_types={h: pa.string() for h in header}))
        out["rows"] = table.num_rows
    elif name == "pandas_read_all":
        import pandas as pd

        out["rows"] = len(pd.read_csv(csv_path, dtype=str, keep_default_na=False))
    elif name in ("gridgov_ingest", "gridgov_reimport"):
        from gridgov.ingest import ingest_file
        from gridgov.store import Store

        phases = _Phases()
        if os.environ.get("GRIDGOV_BENCH_PHASES") == "1":
            phases.install()
        with Store(db) as store:
            cpu0 = _cpu_s()
            result = ingest_file(store, csv_path, progress=sys.stderr.isatty())
            out["cpu_s"] = round(_cpu_s() - cpu0, 2)
        out.update({k: v for k, v in result.to_dict().items() if k not in ("sample_rejects", "file", "sha256")})
        out["rows"] = result.rows_in
        if phases.seconds:
            out["phases_per_1m"] = phases.per_million(result.rows_in)
    else:
        raise SystemExit(f"unknown step {name}")
    # Ingest steps report the import's own wall time (ImportResult.seconds), without loading the libraries.
    out["seconds"] = round(out.pop("seconds", None) or time.perf_counter() - t0, 2)
    out.setdefault("cpu_s", round(_cpu_s(), 2))
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    if out.get("rows"):
        out["rows_per_s"] = round(out["rows"] / out["seconds"])
    return out


def _run_child(step: str, csv_path: Path, db: Path, rows: int, *, source: Path | None = None,
               phases: bool = False) -> dict[str, Any]:
    """Run one step in a fresh process; ``source`` puts another checkout of gridgov first on its path."""
    cmd = [sys.executable, __file__, "--child", step, "--csv", str(csv_path), "--db", str(db), "--rows", str(rows)]
    env = dict(os.environ)
    env["GRIDGOV_BENCH_PHASES"] = "1" if phases else "0"
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _checkout(ref: str, into: Path) -> Path:
    """The gridgov package of a git revision, extracted with ``git archive`` (the working tree is left alone)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "gridgov", "geodata"], stdout=subprocess.PIPE,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _short(ref: str) -> str:
    """The abbreviated commit hash a revision names (so that ``HEAD`` prints as the commit it was)."""
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], stdout=subprocess.PIPE, text=True,
                         check=True)
    return out.stdout.strip()


def _machine() -> str:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, duckdb "
            f"{duckdb.__version__}, pyarrow {pa.__version__}, pandas {pd.__version__}; load average {load}")


def main() -> None:
    """Run every step and print a table (and the raw figures as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the generated CSV and database.")
    parser.add_argument("--before", default=BEFORE_REF,
                        help="Git revisions (comma-separated) whose importers run as 'before' lines.")
    parser.add_argument("--no-before", dest="before", action="store_const", const=None,
                        help="Skip the 'before' lines.")
    parser.add_argument("--no-phases", dest="phases", action="store_false",
                        help="Do not time the parts of the working tree's import.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_step(args.child, args.csv, args.db, args.rows), ensure_ascii=False))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="gridgov-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    full_csv, full_db = work / f"incidents_{args.rows}.csv", work / "bench.duckdb"
    quarter_csv, quarter_db = work / f"incidents_{args.rows // 4}.csv", work / "bench_quarter.duckdb"
    refs = [r.strip() for r in (args.before or "").split(",") if r.strip()]
    befores = [(_short(ref), work / f"before-{i}", work / f"bench_before_{i}.duckdb") for i, ref in enumerate(refs)]
    for db in (full_db, quarter_db, *(b[2] for b in befores)):
        db.unlink(missing_ok=True)
    for ref, (_, folder, _) in zip(refs, befores, strict=True):
        _checkout(ref, folder)
    plan: list[tuple[str, str, Path, Path, int, Path | None]] = [
        ("generate", "generate", full_csv, full_db, args.rows, None),
        ("build_store", "build_store", full_csv, full_db, args.rows, None),
        ("build_store", "build_store", quarter_csv, quarter_db, args.rows // 4, None),
        ("pyarrow_read_all", "pyarrow_read_all", full_csv, full_db, args.rows, None),
        ("pandas_read_all", "pandas_read_all", full_csv, full_db, args.rows, None),
    ]
    for short, folder, db in befores:
        plan += [("build_store", "build_store", full_csv, db, args.rows, folder),
                 (f"ingest@{short}", "gridgov_ingest", full_csv, db, args.rows, folder)]
    plan += [
        ("gridgov_ingest", "gridgov_ingest", full_csv, full_db, args.rows, None),
        ("gridgov_reimport", "gridgov_reimport", full_csv, full_db, args.rows, None),
        ("generate", "generate", quarter_csv, quarter_db, args.rows // 4, None),
        ("gridgov_ingest", "gridgov_ingest", quarter_csv, quarter_db, args.rows // 4, None),
    ]
    results = []
    print(_machine(), flush=True)
    try:
        for label, step, csv_path, db, rows, source in plan:
            load = os.getloadavg()[0]
            res = _run_child(step, csv_path, db, rows, source=source,
                             phases=args.phases and step == "gridgov_ingest")
            res["step"], res["file_rows"], res["load_before"] = label, rows, round(load, 1)
            results.append(res)
            rate = f"{res['rows_per_s']:>10,} rows/s" if "rows_per_s" in res else " " * 17
            print(f"{label:<18} {rows:>10,} rows {res['seconds']:>8.2f} s {rate}  cpu {res['cpu_s']:>7.2f} s  "
                  f"peak RSS {res['peak_rss_mb']:>7.1f} MB  (load {load:.1f})", flush=True)
        size_mb = full_csv.stat().st_size / 2**20
        ing = next(r for r in results if r["step"] == "gridgov_ingest")
        print(f"file {size_mb:.0f} MB, {args.rows:,} rows, {SIDE * SIDE} units; accepted {ing['accepted']:,}, "
              f"rejected {ing['rejected']:,} {ing['rejected_by_reason']}")
        order = ("read", "hash", "validate", "locate", "stage", "publish", "waiting")
        for res in results:
            if "phases_per_1m" in res and res["file_rows"] == args.rows:
                parts = ", ".join(f"{k} {res['phases_per_1m'][k]:.2f}" for k in order if k in res["phases_per_1m"])
                print(f"{res['step']} per 1 M rows: {parts} s")
        print("  (CPU seconds of the thread doing each part; stage, publish and waiting: wall seconds of the caller's "
              "thread)")
        for old in (r for r in results if r["step"].startswith("ingest@")):
            same = (old["accepted"], old["rejected_by_reason"]) == (ing["accepted"], ing["rejected_by_reason"])
            print(f"before/after ({old['step'][7:]} → working tree): {old['rows_per_s']:,} → {ing['rows_per_s']:,} "
                  f"rows/s wall ({ing['rows_per_s'] / old['rows_per_s']:.1f}x), {old['cpu_s']:.1f} → "
                  f"{ing['cpu_s']:.1f} s CPU ({old['cpu_s'] / ing['cpu_s']:.1f}x less); same accepted and rejects: "
                  f"{same}")
        print(json.dumps(results, ensure_ascii=False))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
