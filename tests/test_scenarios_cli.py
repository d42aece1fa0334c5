"""`gridgov scenarios …`, `gridgov adopt` and `gridgov replay` as a planner runs them (subprocess, real file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli import cli_json, run_cli


@pytest.fixture
def demo(small_demo_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.duckdb"
    shutil.copy(small_demo_db, path)
    return path


def test_plan_compare_replay_adopt_and_undo_from_the_command_line(demo: Path) -> None:
    cli_json("regrid", "--name", "even", "--n-grids", "16", "--tolerance", "0.5", db=demo)
    layouts = {r["name"]: r["status"] for r in cli_json("scenarios", db=demo)["layouts"]}
    current = next(n for n, s in layouts.items() if s == "current")
    assert layouts["even"] == "scenario"

    rows = {r["metric"]: r for r in cli_json("scenarios", "compare", current, "even", "--households", "100-300",
                                          db=demo)["rows"]}
    assert rows["max_over_mean"]["better"] is True  # the demo's hand-drawn grids are unbalanced
    assert rows["households_moved_share"]["b"] > 0 and rows["outside_range"]["a"] is not None

    replay = cli_json("replay", db=demo)
    assert abs(replay["calibration"]["error_points"]) <= 5.0
    assert {"grid_code", "weekly_hours_mean", "weekly_hours_p90", "forecast_on_time"} <= set(replay["grids"][0])

    adopted = cli_json("adopt", "even", db=demo)
    assert adopted["archived"] == current and not adopted["restored"]
    refused = run_cli("scenarios", "delete", current, db=demo)
    assert refused.returncode == 2 and "only scenarios can be deleted" in refused.stderr
    undone = cli_json("adopt", current, db=demo)
    assert undone["restored"] and undone["archived"] == "even"
    assert {r["name"]: r["status"] for r in cli_json("scenarios", db=demo)["layouts"]} == {current: "current",
                                                                                        "even": "archived"}


def test_rename_delete_and_outlier(demo: Path) -> None:
    cli_json("regrid", "--name", "draft", "--n-grids", "16", "--tolerance", "0.5", db=demo)
    assert run_cli("scenarios", "rename", "draft", "draft 2", db=demo).returncode == 0
    assert run_cli("scenarios", "delete", "draft 2", db=demo).returncode == 0
    assert "draft 2" not in {r["name"] for r in cli_json("scenarios", db=demo)["layouts"]}
    out = cli_json("scenarios", "outlier", "--n", "3", db=demo)
    assert out["samples"] == 3 and out["balance_percentile"] == 100.0
