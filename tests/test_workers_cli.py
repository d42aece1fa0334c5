"""`gridgov workers …`, `gridgov assign` and `gridgov staffing` as a user runs them (subprocess, real file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gridgov.store import Store
from tests.cli import cli_json, run_cli


@pytest.fixture
def demo(small_demo_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.duckdb"
    shutil.copy(small_demo_db, path)
    return path


def test_workers_import_list_and_reimport(demo: Path, tmp_path: Path) -> None:
    with Store(demo, read_only=True) as store:
        community = str(store.admin_areas("community")["code"].iloc[0])
        before = len(store.workers())
    roster = tmp_path / "roster.csv"
    roster.write_text(f"id,name,phone,hours,community,active\nN1,New One,13900000001,40,{community},yes\n"
                      f"N2,New Two,13900000002,-3,{community},yes\n", encoding="utf-8")
    out = cli_json("workers", "import", str(roster), db=demo)
    assert (out["accepted"], out["rejected"], out["inserted"], out["duplicate"]) == (1, 1, 1, False)
    assert out["rejects"][0]["row_no"] == 2 and out["rejects"][0]["field"] == "hours_per_week"
    again = run_cli("workers", "import", str(roster), db=demo)
    assert again.returncode == 0 and "nothing changed" in " ".join(again.stdout.split())  # the console wraps
    assert cli_json("workers", "import", str(roster), db=demo)["duplicate"] is True
    listed = cli_json("workers", "list", db=demo)
    assert len(listed) == before + 1
    assert {"worker_id", "name", "hours_per_week", "active", "grids"} <= set(listed[0])
    assert next(w for w in listed if w["worker_id"] == "N1")["grids"] == ""


def test_workers_add_edit_deactivate_and_errors(demo: Path) -> None:
    with Store(demo, read_only=True) as store:
        rows = store.assignments(int(store.current_layout_id() or 0))
    primary = rows[rows["role"] == "primary"].iloc[0]
    added = cli_json("workers", "add", "Z1", "--name", "Zhou", "--hours", "24", db=demo)
    assert added["hours_per_week"] == 24.0
    dup = run_cli("workers", "add", "Z1", "--name", "Zhou", "--hours", "24", db=demo)
    assert dup.returncode == 2 and "already exists" in dup.stderr and len(dup.stderr.strip().splitlines()) == 1
    bad = run_cli("workers", "add", "Z2", "--name", "Zhou", "--hours", "100", db=demo)
    assert bad.returncode == 2 and "hours_per_week" in bad.stderr
    assert cli_json("workers", "edit", "Z1", "--hours", "30", db=demo)["hours_per_week"] == 30.0
    gone = cli_json("workers", "deactivate", str(primary["worker_id"]), db=demo)
    assert primary["grid_code"] in gone["grids_needing_primary"]
    table = {g["grid_code"]: g for g in cli_json("staffing", db=demo)["grids"]}
    assert table[primary["grid_code"]]["status"] == "uncovered"


def test_assign_prints_totals_and_auto_fills(demo: Path) -> None:
    current = cli_json("assign", db=demo)
    assert current["totals"]["uncovered"] >= 1 and current["coverage"]["grids"] < 1
    assert "auto" not in current
    done = cli_json("assign", "--auto", db=demo)
    assert done["totals"]["uncovered"] == 0 and done["coverage"]["grids"] == 1.0
    assert done["auto"]["added"] > 0 and done["auto"]["messages"]
    assert done["totals"]["gap_hours"] < current["totals"]["gap_hours"]
    text = run_cli("assign", db=demo)
    assert text.returncode == 0 and "coverage" in text.stdout and "gap h/week" in text.stdout


def test_staffing_table_sorted_by_gap(demo: Path) -> None:
    out = cli_json("staffing", "--sort", "gap", db=demo)
    gaps = [g["gap_hours"] for g in out["grids"]]
    assert gaps == sorted(gaps, reverse=True) and len(gaps) == out["totals"]["grids"]
    assert {"grid_code", "demand_hours", "supply_hours", "gap_fte", "status", "primary_id"} <= set(out["grids"][0])
    street = out["grids"][0]["street_code"]
    one = cli_json("staffing", "--street", street, db=demo)
    assert {g["street_code"] for g in one["grids"]} == {street}
    wrong = run_cli("staffing", "--sort", "bogus", db=demo)
    assert wrong.returncode == 2 and "--sort" in wrong.stderr
