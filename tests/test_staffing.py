"""Staffing maths on the tiny district worked out by hand, and the demo's hidden structure found by the report.

Tiny district (tests/fixtures.py), default parameters, NOW = 2026-06-10 12:00, window 91 days = 13 weeks (all six
incidents fall in it). Per grid, hours per week:

    grid  handling (h in window)      incidents/wk  patrol (0.8/grid + 0.006/household)  visits (0.00375/hh)  demand
    G1    2 × exposed garbage 20 min  (2/3)/13      0.8 + 1.2                             0.75                 2.801282
    G2    noise 30 min                0.5/13        0.8 + 0.6                             0.375                1.813462
    G3    2 × street light 45 min     1.5/13        0.8 + 0                               0                    0.915385
    G4    illegal parking 15 min      0.25/13       0.8 + 0.12                            0.075                1.014231

Supply (TINY_ROSTER): W1 (2.8 h) holds G1 as primary (weight 1) and G2 as backup (0.25): 2.8 × 1/1.25 = 2.24 to G1,
2.8 × 0.25/1.25 = 0.56 to G2; W2 gives G2 its 2 h; W3 gives G3 1 h; W4 is inactive, so G4 gets nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridgov.config import Settings
from gridgov.errors import InputError
from gridgov.staffing import (
    StaffingParams,
    coverage,
    grid_demand,
    grid_supply,
    hiring_need,
    report,
    staffing_report,
    staffing_table,
    store_demand,
    worker_loads,
)
from gridgov.store import Store
from tests.fixtures import COMM_A, COMM_B, NOW, add_tiny_roster

DEMAND = {"G1": 2 / 3 / 13 + 0.8 + 1.2 + 0.75, "G2": 0.5 / 13 + 0.8 + 0.6 + 0.375, "G3": 1.5 / 13 + 0.8,
          "G4": 0.25 / 13 + 0.8 + 0.12 + 0.075}
SUPPLY = {"G1": 2.24, "G2": 2.56, "G3": 1.0, "G4": 0.0}
P = StaffingParams()


@pytest.fixture
def staffed(tiny_store: Store) -> Store:
    return add_tiny_roster(tiny_store)


def test_demand_on_the_hand_fixture(staffed: Store) -> None:
    demand, counts = store_demand(staffed, 1, params=P, now=NOW)
    assert demand["grid_code"].tolist() == ["G1", "G2", "G3", "G4"]
    assert demand["demand_hours"].to_dict() == pytest.approx(DEMAND)
    assert demand.loc["G3", "incident_hours"] == pytest.approx(1.5 / 13)
    assert demand.loc["G1", "patrol_hours"] == pytest.approx(2.0)
    assert demand.loc["G1", "visit_hours"] == pytest.approx(0.75)
    assert counts.to_dict() == {"G1": 2, "G2": 1, "G3": 2, "G4": 1}
    # A June-only window (10 days) drops the April street light and spreads the rest over 10/7 weeks.
    short, _ = store_demand(staffed, 1, params=P.replace(window_days=10), now=NOW)
    assert short.loc["G3", "incident_hours"] == pytest.approx(0.75 / (10 / 7))


def test_cancelled_incidents_take_no_handling_time(staffed: Store) -> None:
    base = staffed.incidents().iloc[[3]].drop(columns=["incident_id"])  # the open street light in u3 (G3)
    staffed.insert_incidents(base.assign(status="cancelled", external_id="T-cancelled"))
    start, end = datetime(2026, 3, 11, 12), NOW
    hours = staffed.grid_incident_hours(1, start=start, end=end).set_index("grid_code")
    assert hours.loc["G3", "incidents"] == 2 and hours.loc["G3", "handling_hours"] == pytest.approx(1.5)
    staffed.insert_incidents(base.assign(external_id="T-again"))
    hours = staffed.grid_incident_hours(1, start=start, end=end).set_index("grid_code")
    assert hours.loc["G3", "incidents"] == 3 and hours.loc["G3", "handling_hours"] == pytest.approx(2.25)


def test_gap_maths_on_the_hand_fixture(staffed: Store) -> None:
    rep = staffing_report(staffed, 1, params=P, now=NOW)
    t = rep.table
    assert list(t.index) == ["G1", "G2", "G3", "G4"]
    assert t["supply_hours"].to_dict() == pytest.approx(SUPPLY)
    gap = {g: DEMAND[g] - SUPPLY[g] for g in DEMAND}
    assert t["gap_hours"].to_dict() == pytest.approx(gap)
    assert t["gap_fte"].to_dict() == pytest.approx({g: v / 40.0 for g, v in gap.items()})
    assert t["gap_share"].to_dict() == pytest.approx({g: gap[g] / DEMAND[g] for g in gap})
    # G1 short by 20 % (under), G2 has 41 % too much (over), G3 within 10 % (ok), G4 only an inactive primary.
    assert t["status"].to_dict() == {"G1": "under", "G2": "over", "G3": "ok", "G4": "uncovered"}
    assert t.loc["G2", "primary_id"] == "W2" and t.loc["G2", "backup_ids"] == "W1"
    assert t.loc["G4", "primary_id"] is None and t.loc["G4", "n_workers"] == 0
    assert rep.totals["demand_hours"] == pytest.approx(sum(DEMAND.values()))
    assert rep.totals["supply_hours"] == pytest.approx(5.8)
    assert rep.totals["gap_hours"] == pytest.approx(gap["G1"] + gap["G4"])
    assert rep.totals["surplus_hours"] == pytest.approx(-gap["G2"] - gap["G3"])
    assert rep.totals["gap_fte"] == pytest.approx((gap["G1"] + gap["G4"]) / 40.0)
    assert (rep.totals["uncovered"], rep.totals["under"], rep.totals["ok"], rep.totals["over"]) == (1, 1, 1, 1)


def test_coverage_shares(staffed: Store) -> None:
    rep = staffing_report(staffed, 1, params=P, now=NOW)
    # G4 (20 of 320 households, 1 of 6 incidents) has no active primary.
    assert rep.coverage == pytest.approx({"grids": 0.75, "households": 300 / 320, "incidents": 5 / 6})
    assert coverage(rep.table, pd.Series({"G4": 3, "G1": 1}))["incidents"] == pytest.approx(0.25)


def test_worker_loads_and_overload(staffed: Store) -> None:
    rep = staffing_report(staffed, 1, params=P, now=NOW)
    w = rep.workers.set_index("worker_id")
    assert list(w.index) == ["W1", "W2", "W3", "W5"]  # W4 is inactive; W5 is a floater
    # W1 carries all of G1 and a fifth (0.25 of 1.25) of G2.
    assert w.loc["W1", "demand_on_worker"] == pytest.approx(DEMAND["G1"] + DEMAND["G2"] * 0.2)
    assert w.loc["W1", "load_ratio"] == pytest.approx((DEMAND["G1"] + DEMAND["G2"] * 0.2) / 2.8)
    assert w.loc["W1", "grids"] == "G1,G2" and w.loc["W1", "n_grids"] == 2
    assert w["overloaded"].to_dict() == {"W1": True, "W2": False, "W3": False, "W5": False}
    assert (w.loc["W5", "n_grids"], w.loc["W5", "demand_on_worker"], w.loc["W5", "grids"]) == (0, 0.0, "")
    assert rep.totals["overloaded_workers"] == 1


def test_hiring_need_brings_grids_within_band(staffed: Store) -> None:
    rep = staffing_report(staffed, 1, params=P, now=NOW)
    need_g1 = 0.9 * DEMAND["G1"] - SUPPLY["G1"]
    need_g4 = 0.9 * DEMAND["G4"]
    assert rep.need.hours == pytest.approx(need_g1 + need_g4)
    assert rep.need.workers == 1
    by = rep.need.by_area.set_index("community_code")
    assert by.loc[COMM_B, "hours"] == pytest.approx(need_g4)
    assert by.loc[COMM_A, "hours"] == pytest.approx(need_g1)
    assert by["workers"].sum() == 1 and by.loc[COMM_B, "workers"] == 1  # the bigger need gets the hire
    assert list(by.index) == [COMM_B, COMM_A]
    # Adding exactly the missing hours to each short grid leaves nothing to hire.
    fixed = rep.table.copy()
    fixed["supply_hours"] = np.maximum(fixed["supply_hours"], 0.9 * fixed["demand_hours"])
    assert hiring_need(fixed, P).workers == 0 and hiring_need(fixed, P).hours == 0.0


def test_report_is_pure_and_matches_the_parts(staffed: Store) -> None:
    demand, counts = store_demand(staffed, 1, params=P, now=NOW)
    roster, rows = staffed.workers(), staffed.assignments(1)
    rep = report(demand, rows, roster, P, incidents=counts)
    pd.testing.assert_frame_equal(rep.table, staffing_table(demand, rows, roster, P))
    pd.testing.assert_frame_equal(rep.workers, worker_loads(rep.table, rows, roster, P))
    supply = grid_supply(rows, roster, P).set_index("grid_code")
    assert supply["supply_hours"].to_dict() == pytest.approx({"G1": 2.24, "G2": 2.56, "G3": 1.0})
    # An unsaved edit: W5 (40 h) becomes G4's primary; only that grid changes.
    edited = pd.concat([rows, pd.DataFrame([{"grid_code": "G4", "worker_id": "W5", "role": "primary",
                                             "manual": True}])], ignore_index=True)
    after = report(demand, edited, roster, P, incidents=counts)
    assert after.table.loc["G4", "status"] == "over" and after.table.loc["G4", "supply_hours"] == 40.0
    assert after.table.loc["G1", "gap_hours"] == rep.table.loc["G1", "gap_hours"]
    assert after.coverage["grids"] == 1.0


def test_backup_weight_changes_the_split() -> None:
    demand = grid_demand(pd.DataFrame({"grid_code": ["A", "B"], "area_m2": [1e6, 1e6], "households": [0, 0]}),
                         pd.Series(dtype="float64"), P)
    roster = pd.DataFrame({"worker_id": ["X"], "name": ["x"], "hours_per_week": [30.0], "active": [True]})
    rows = pd.DataFrame({"grid_code": ["A", "B"], "worker_id": ["X", "X"], "role": ["primary", "backup"]})
    t = staffing_table(demand, rows, roster, P.replace(backup_weight=0.5))
    assert t["supply_hours"].tolist() == pytest.approx([20.0, 10.0])
    assert t["demand_hours"].tolist() == pytest.approx([40.0, 40.0])
    assert t["status"].tolist() == ["under", "uncovered"]


@pytest.mark.parametrize(("field", "value"), [("window_days", 0), ("band", 1.5), ("backup_weight", 0.0),
                                              ("standard_week_hours", -1.0), ("vulnerable_share", 2.0),
                                              ("patrol_hours_per_km2", float("nan"))])
def test_bad_parameters_name_the_field(field: str, value: float) -> None:
    with pytest.raises(InputError, match=field):
        StaffingParams(**{field: value})


def test_parameters_from_settings_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "gridgov.toml"
    cfg.write_text("standard_week_hours = 38.0\n[staffing]\nwindow_days = 28\nband = 0.05\n", encoding="utf-8")
    monkeypatch.setenv("GRIDGOV_CONFIG", str(cfg))
    params = StaffingParams.from_settings(Settings.from_env())
    assert (params.window_days, params.band, params.standard_week_hours) == (28, 0.05, 38.0)
    assert StaffingParams.from_toml(cfg).band == 0.05
    cfg.write_text("[staffing]\nbandwidth = 0.05\n", encoding="utf-8")
    with pytest.raises(InputError, match="bandwidth"):
        Settings.from_env()


def test_demo_overloaded_community_is_understaffed_and_unstaffed_grid_uncovered(small_demo_db: Path) -> None:
    with Store(small_demo_db, read_only=True) as store:
        hidden = json.loads(store.meta()["demo_hidden"])
        rep = staffing_report(store, int(store.current_layout_id() or 0), params=P, now=datetime(2026, 7, 1))
    t = rep.table
    over = hidden["overloaded_community"]
    by_comm = t.groupby("community_code")[["demand_hours", "supply_hours"]].sum()
    share = (by_comm["demand_hours"] - by_comm["supply_hours"]) / by_comm["demand_hours"]
    # The overloaded community is the most understaffed one, by far, and every grid of it is short or uncovered.
    assert share.idxmax() == over
    assert share[over] > 0.5 and share.drop(over).max() < share[over] - 0.1
    assert set(t.loc[t["community_code"] == over, "status"]) <= {"under", "uncovered"}
    for code in hidden["unstaffed_grids"]:
        assert t.loc[code, "status"] == "uncovered"
        assert t.loc[code, "supply_hours"] == 0.0
    assert set(t.loc[t["status"] == "uncovered", "grid_code"]) == set(hidden["unstaffed_grids"])
    # The part-timer covering the overloaded market grid carries far more than their 24 hours.
    w = rep.workers.set_index("worker_id")
    market_worker = t.loc[t["community_code"] == over, "primary_id"].dropna().iloc[0]
    assert w.loc[market_worker, "hours_per_week"] == 24.0 and bool(w.loc[market_worker, "overloaded"])
    assert rep.need.by_area.iloc[0]["community_code"] == over
