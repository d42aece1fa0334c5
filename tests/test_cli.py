"""The command line as a user runs it (a real subprocess on a real file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gridgov.store import Store
from tests.fixtures import build_future_file


def gridgov(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridgov.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_categories_json_lists_the_taxonomy() -> None:
    out = gridgov("categories", "--json", "--db", "/nonexistent/x.duckdb")
    assert out.returncode == 0, out.stderr
    cats = json.loads(out.stdout)
    assert len(cats) >= 24
    assert {"code", "name_zh", "name_en", "class", "sla_hours", "handling_minutes"} <= set(cats[0])


def test_info_json_counts_the_store(tiny_store: Store) -> None:
    path = tiny_store.location
    tiny_store.close()
    out = gridgov("info", "--json", "--db", str(path), env={"GRIDGOV_NOW": "2026-06-10T12:00"})
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["admin_areas"] == {"district": 1, "street": 1, "community": 2}
    assert (info["units"], info["grids"], info["incidents"], info["open"], info["overdue"]) == (8, 4, 6, 2, 1)
    lon0, lat0, lon1, lat1 = info["bbox"]
    assert 121.42 < lon0 < lon1 < 121.44 and 31.21 < lat0 < lat1 < 31.23


def test_db_defaults_to_env(tiny_store: Store, tmp_path: Path) -> None:
    path = tiny_store.location
    tiny_store.close()
    out = gridgov("info", "--json", env={"GRIDGOV_DB": str(path)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["db"] == str(path)


def test_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    newer = build_future_file(tmp_path / "newer.duckdb")
    out = gridgov("info", "--db", str(newer))
    assert out.returncode == 2
    assert "error:" in out.stderr and "upgrade gridgov" in out.stderr
    assert "Traceback" not in out.stderr
