"""Replay benchmark: calibration error and speed of the incident replay on the demo and on real LA data.

Prints one table: for each data set the cases replayed, the fitted case share, the on-time rates recorded and
forecast on the held-out stretch (the calibration error), the per-grid error, and the seconds to calibrate and to
replay once. Goals (issue 6): within ±5 points of the recorded on-time rate on the demo; 1 M incidents replayed in
under 10 s. A report, not a test.

    python benchmarks/replay.py                      # small + medium demo (built in a temp folder), LA sample
    python benchmarks/replay.py --large              # also the large demo (~2 M incidents, about a minute to build)
    python benchmarks/replay.py --large-db FILE      # a large demo built before (gridgov demo --size large)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridgov import __version__, replay  # noqa: E402
from gridgov.demo import build_demo_file  # noqa: E402
from gridgov.store import Store  # noqa: E402
from tests.la311 import build_la311  # noqa: E402

AS_OF = "2026-06-30"
NOW = datetime(2026, 7, 1)
LA_DIR = REPO.parent / "shared" / "data" / "la-311"


def _row(name: str, store: Store, *, now: datetime, params: replay.ReplayParams,
         window: tuple[datetime, datetime] | None = None) -> str:
    t0 = time.perf_counter()
    cal = replay.calibrate_store(store, now=now, params=params, window=window)
    t_cal = time.perf_counter() - t0
    layout_id = store.current_layout_id()
    assert layout_id is not None
    result = replay.replay_store(store, layout_id, now=now, model=cal.model, params=params, window=window)
    grid_err = f"{cal.grid_error_points:.1f}" if cal.grid_error_points is not None else "—"
    n = int(result.grids["cases"].sum())
    line = (f"{name:<14}{n:>10,}{result.grids.shape[0]:>7}{cal.model.case_share:>9.2f}"
            f"{cal.recorded * 100:>9.1f}{cal.forecast * 100:>9.1f}{cal.error_points:>+8.1f}{grid_err:>9}"
            f"{t_cal:>9.2f}{result.seconds:>9.2f}")
    for note in cal.notes:
        line += f"\n{'':<14}note: {note}"
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="also build and replay the large demo")
    parser.add_argument("--large-db", type=Path, help="a large demo database built before")
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, gridgov {__version__}, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    params = replay.ReplayParams()
    print(f"window: {params.months} months up to now (warm-up {params.warmup_days} days); model fitted on the "
          f"first {1 - params.holdout_share:.0%}, measured on the last {params.holdout_share:.0%}\n")
    print(f"{'data':<14}{'cases':>10}{'grids':>7}{'share':>9}{'rec %':>9}{'fcst %':>9}{'error':>8}{'grid err':>9}"
          f"{'calib s':>9}{'replay s':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        sizes = ["small", "medium"] + (["large"] if args.large and args.large_db is None else [])
        for size in sizes:
            path = Path(tmp) / f"{size}.duckdb"
            build_demo_file(path, size=size, seed=0, as_of=datetime.fromisoformat(AS_OF).date())
            with Store(path, read_only=True) as store:
                print(_row(f"demo {size}", store, now=NOW, params=params), flush=True)
        if args.large_db is not None:
            with Store(args.large_db, read_only=True) as store:
                last = store.incident_time_range()
                assert last is not None
                now = (last[1] + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
                print(_row("demo large", store, now=now, params=params), flush=True)
        if LA_DIR.exists():
            store, _ = build_la311(Path(tmp) / "la.duckdb", LA_DIR)
            with store:
                first, last = store.incident_time_range() or (None, None)
                assert first is not None and last is not None
                window = (first, last + timedelta(seconds=1))
                print(_row("LA 311 (real)", store, now=window[1], window=window,
                           params=replay.ReplayParams(warmup_days=0)), flush=True)
        else:
            print(f"LA 311: skipped, {LA_DIR} is absent")
    print("\nrec/fcst %: on-time rate recorded and forecast on the held-out stretch; error = fcst − rec in points; "
          "grid err = mean absolute per-grid error (points, weighted by closed cases, grids with ≥ 20 of them).")


if __name__ == "__main__":
    main()
