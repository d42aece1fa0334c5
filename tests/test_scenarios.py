"""Scenarios: figures to compare, adoption (codes re-issued, workers carried, old layout archived), undo,
rename/delete, and the outlier test of today's layout."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from gridgov import regrid, replay, scenarios
from gridgov.errors import StoreError
from gridgov.planning import plan_layout
from gridgov.store import Store

NOW = datetime(2026, 7, 1)


@pytest.fixture
def demo(small_demo_db: Path, tmp_path: Path) -> Store:
    path = tmp_path / "demo.duckdb"
    shutil.copy2(small_demo_db, path)
    store = Store(path)
    yield store
    store.close()


def _statuses(store: Store) -> dict[str, str]:
    return dict(zip(store.layouts()["name"], store.layouts()["status"], strict=True))


def test_adopting_a_scenario_archives_the_current_layout_and_carries_the_workers(demo: Store) -> None:
    before_id = demo.current_layout_id()
    assert before_id is not None
    before_name = demo.layouts().set_index("layout_id").loc[before_id, "name"]
    incidents_before = demo.df("SELECT incident_id, unit_id, status FROM incident ORDER BY incident_id")
    regrid.regrid(demo, name="even", n_grids=16, tolerance=0.5)
    assert _statuses(demo)["even"] == "scenario"  # a scenario touches nobody's area

    result = scenarios.adopt(demo, "even")

    assert _statuses(demo) == {before_name: "archived", "even": "current"}
    assert result.archived_id == before_id and result.layout_id == demo.current_layout_id()
    # Incidents reference units: nothing about them changed.
    pd.testing.assert_frame_equal(incidents_before,
                                  demo.df("SELECT incident_id, unit_id, status FROM incident ORDER BY incident_id"))
    # Every new grid's workers are those of the old grid it draws most households from.
    succ = scenarios.successors(demo, before_id, result.layout_id).set_index("new_grid")["old_grid"]
    old = demo.assignments(before_id)
    new = demo.assignments(result.layout_id)
    for grid, held in new.groupby("grid_code"):
        expected = set(old.loc[old["grid_code"] == succ[grid], "worker_id"])
        assert set(held["worker_id"]) == expected
    # The mapping covers every new grid with shares summing to one; codes are 15 digits and unique.
    shares = result.mapping.groupby("new_grid")["household_share"].sum()
    assert set(shares.index) == set(demo.layout_units(result.layout_id)["grid_code"])
    assert shares.round(9).eq(1).all()
    codes = demo.layout_grids(result.layout_id)["grid_code"]
    assert codes.str.fullmatch(r"\d{15}").all() and codes.is_unique
    # Grids that continue no old grid clearly, or whose old grid had nobody, are flagged for review.
    staffed = set(new.loc[new["role"] == "primary", "grid_code"])
    assert set(codes) - staffed <= set(result.review)


def test_undo_is_adopting_the_archived_layout_which_keeps_its_codes_and_workers(demo: Store) -> None:
    before_id = demo.current_layout_id()
    assert before_id is not None
    name = demo.layouts().set_index("layout_id").loc[before_id, "name"]
    codes_before = demo.layout_units(before_id)
    workers_before = demo.assignments(before_id)[["grid_code", "worker_id", "role"]]
    regrid.regrid(demo, name="even", n_grids=16, tolerance=0.5)
    scenarios.adopt(demo, "even")
    undo = scenarios.adopt(demo, name)
    assert undo.restored and demo.current_layout_id() == before_id
    assert _statuses(demo)["even"] == "archived"  # never deleted
    pd.testing.assert_frame_equal(codes_before, demo.layout_units(before_id))
    pd.testing.assert_frame_equal(workers_before.reset_index(drop=True),
                                  demo.assignments(before_id)[["grid_code", "worker_id", "role"]].reset_index(
                                      drop=True))
    with pytest.raises(StoreError, match="already the current one"):
        scenarios.adopt(demo, name)


def test_a_scenario_drawn_before_another_adoption_gets_its_codes_reissued(demo: Store) -> None:
    regrid.regrid(demo, name="a", n_grids=16, tolerance=0.5)
    regrid.regrid(demo, name="b", n_grids=15, tolerance=0.5, seed=3)
    scenarios.adopt(demo, "a")
    a_codes = set(demo.layout_units(demo.layout_id("a"))["grid_code"])
    b_units_before = demo.layout_units(demo.layout_id("b"))
    result = scenarios.adopt(demo, "b")
    b_units = demo.layout_units(result.layout_id)
    # Same units in the same grids, only the labels re-issued against "a" (kept codes are a's codes).
    pairs = b_units_before.merge(b_units, on="unit_id")
    assert pairs.groupby("grid_code_x")["grid_code_y"].nunique().eq(1).all()
    kept = set(b_units["grid_code"]) & a_codes
    assert len(kept) == result.kept_codes
    assert demo.layout_grids(result.layout_id)["grid_code"].is_unique


def test_rename_and_delete_scenarios_but_never_current_or_archived(demo: Store) -> None:
    regrid.regrid(demo, name="draft", n_grids=16, tolerance=0.5)
    demo.rename_layout("draft", "draft 2")
    with pytest.raises(StoreError, match="already exists"):
        demo.rename_layout("draft 2", demo.layouts().query("status == 'current'")["name"].iloc[0])
    current = demo.layouts().query("status == 'current'")["name"].iloc[0]
    with pytest.raises(StoreError, match="only scenarios can be deleted"):
        demo.delete_layout(current)
    layout_id = demo.layout_id("draft 2")
    demo.delete_layout("draft 2")
    assert "draft 2" not in set(demo.layouts()["name"])
    assert demo.df("SELECT count(*) AS n FROM layout_unit WHERE layout_id = ?", [layout_id])["n"].iloc[0] == 0


def test_figures_compare_a_balanced_scenario_with_the_hand_drawn_layout(demo: Store) -> None:
    regrid.regrid(demo, name="even", n_grids=16, tolerance=0.5)
    current = demo.current_layout_id()
    assert current is not None
    model = replay.calibrate_store(demo, now=NOW).model
    a = scenarios.figures(demo, current, now=NOW, model=model, household_range=(100, 300))
    b = scenarios.figures(demo, demo.layout_id("even"), now=NOW, model=model, household_range=(100, 300),
                          reference_id=current)
    table = scenarios.compare(a, b).set_index("metric")
    assert table.loc["n_grids", "a"] == table.loc["n_grids", "b"] == 16
    # The demo's hand-drawn grids are unbalanced by design; the engine's are not.
    assert table.loc["max_over_mean", "better"] is True and table.loc["cv", "better"] is True
    assert 0 < b.values["households_moved_share"] <= 1  # type: ignore[operator]
    assert 0 <= b.values["forecast_on_time"] <= 1  # type: ignore[operator]
    assert len(b.per_grid) == 16 and b.per_grid["demand_hours"].sum() == pytest.approx(
        a.per_grid["demand_hours"].sum(), rel=0.02)  # the same work, shared differently
    same = scenarios.figures(demo, current, now=NOW, reference_id=current)
    assert same.values["households_moved"] == 0 and same.values["workers_changed"] == 0


def test_outlier_places_the_hand_drawn_layout_among_sampled_layouts(demo: Store) -> None:
    result = scenarios.outlier(demo, n=6)
    assert len(result.samples) == 6
    assert result.samples["pp_median"].nunique() > 1  # the samples are different layouts
    # Every sample is better balanced than the hand-drawn grids (the demo's unbalanced layout is an outlier).
    assert result.balance_percentile == 100.0
    assert 0.0 <= result.compactness_percentile <= 100.0


def test_explore_gives_different_valid_layouts_per_seed(demo: Store) -> None:
    graph = regrid.unit_graph(demo)
    units = regrid.unit_weights(demo)
    plans = [plan_layout(units, graph=graph, n_grids=16, tolerance=1.0, aim=0.03, seed=s, explore=True)
             for s in (1, 2)]
    assert not plans[0].layout.equals(plans[1].layout)
    assert all(p.metrics.contiguous for p in plans)
