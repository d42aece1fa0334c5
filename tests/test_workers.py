"""The roster (import, validation, edits), assignments in the store, and automatic assignment."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

from gridgov.errors import InputError
from gridgov.staffing import StaffingParams, report, staffing_report, store_demand
from gridgov.store import Store
from gridgov.workers import (
    MESSAGE_TEXTS,
    AssignMessage,
    add_worker,
    auto_assign,
    deactivate_worker,
    edit_worker,
    import_roster,
    read_roster,
    validate_roster,
)
from tests.fixtures import COMM_A, COMM_B, NOW, add_tiny_roster

P = StaffingParams()

GOOD_AND_BAD = f"""id,name,phone,hours_per_week,base_community,active
A1,Wang Fang,138 0000 0001,40,{COMM_A},yes
A2,Li Na,,32.5,{COMM_B},
,No Id,13800000003,40,{COMM_A},true
A1,Wang Again,13800000004,40,{COMM_A},true
A5,,13800000005,40,{COMM_A},true
A6,Bad Hours,13800000006,lots,{COMM_A},true
A7,Too Many,13800000007,100,{COMM_A},true
A8,Elsewhere,13800000008,40,999999999999,true
A9,Maybe,13800000009,40,{COMM_A},maybe
A10,Short Phone,12345,40,{COMM_A},true
A11,Landline,021-55551234,20,{COMM_B},否
"""


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


# -- roster import ---------------------------------------------------------------------------------------------------
def test_validation_rejects_name_field_and_row() -> None:
    import io

    frame = pd.read_csv(io.StringIO(GOOD_AND_BAD), dtype=str, keep_default_na=False)
    frame = frame.rename(columns={"id": "worker_id"})
    accepted, rejects = validate_roster(frame, communities={COMM_A, COMM_B})
    assert accepted["worker_id"].tolist() == ["A1", "A2", "A11"]
    assert accepted.set_index("worker_id")["active"].to_dict() == {"A1": True, "A2": True, "A11": False}
    assert accepted.set_index("worker_id").loc["A2", "phone"] is None
    got = list(zip(rejects["row_no"], rejects["field"], rejects["reason"], strict=True))
    assert got == [(3, "worker_id", "missing_id"), (4, "worker_id", "duplicate_id"), (5, "name", "missing_name"),
                   (6, "hours_per_week", "bad_hours"), (7, "hours_per_week", "bad_hours"),
                   (8, "base_community", "unknown_community"), (9, "active", "bad_active"),
                   (10, "phone", "bad_phone")]
    assert "'lots'" in rejects.iloc[3]["message"] and "'100'" in rejects.iloc[4]["message"]
    assert json.loads(rejects.iloc[0]["raw"])["name"] == "No Id"


def test_import_keeps_rejects_and_reimport_changes_nothing(tiny_store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "roster.csv", GOOD_AND_BAD)
    first = import_roster(tiny_store, path)
    assert (first.rows_in, first.accepted, first.rejected, first.inserted, first.updated) == (11, 3, 8, 3, 0)
    assert not first.duplicate
    stored = tiny_store.workers()
    assert stored["worker_id"].tolist() == ["A1", "A11", "A2"]
    assert stored.set_index("worker_id").loc["A2", "hours_per_week"] == 32.5
    rejects = tiny_store.roster_rejects(first.batch_id)
    assert rejects["row_no"].tolist() == [3, 4, 5, 6, 7, 8, 9, 10]
    assert rejects.loc[rejects["row_no"] == 8, "field"].item() == "base_community"
    assert json.loads(rejects.loc[rejects["row_no"] == 6, "raw"].item())["hours_per_week"] == "lots"

    again = import_roster(tiny_store, path)
    assert again.duplicate and again.batch_id == first.batch_id
    assert "nothing changed" in again.summary()
    pd.testing.assert_frame_equal(tiny_store.workers(), stored)
    assert len(tiny_store.roster_batches()) == 1
    assert len(tiny_store.roster_rejects(first.batch_id)) == 8

    # The same rows in a different file (BOM, reordered columns, Chinese headers): nothing changes either.
    zh = _write(tmp_path / "roster_zh.csv", "工号,姓名,每周工时,所属社区,在岗,电话\n"
                f"A1,Wang Fang,40,{COMM_A},是,138 0000 0001\n", encoding="utf-8-sig")
    same = import_roster(tiny_store, zh)
    assert (same.accepted, same.inserted, same.updated, same.unchanged, same.rejected) == (1, 0, 0, 1, 0)
    pd.testing.assert_frame_equal(tiny_store.workers(), stored)
    # A changed row updates just that worker; columns the file lacks (phone, active) keep their stored values.
    changed = _write(tmp_path / "roster2.csv", f"id,name,hours,community\nA1,Wang Fang,30,{COMM_A}\n")
    upd = import_roster(tiny_store, changed)
    assert (upd.updated, upd.inserted) == (1, 0)
    after = tiny_store.workers().set_index("worker_id")
    assert after.loc["A1", "hours_per_week"] == 30.0 and after.loc["A1", "phone"] == "138 0000 0001"
    assert after.drop(index="A1").equals(stored.set_index("worker_id").drop(index="A1"))


def test_roster_file_problems_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="hours_per_week"):
        read_roster(_write(tmp_path / "a.csv", "id,name\nA,B\n"))
    with pytest.raises(InputError, match="UTF-8"):
        read_roster(_write(tmp_path / "b.csv", "id,name,hours\nA,王,40\n", encoding="gbk"))
    with pytest.raises(InputError, match="does not exist"):
        read_roster(tmp_path / "missing.csv")


def test_add_edit_deactivate(tiny_store: Store) -> None:
    store = add_tiny_roster(tiny_store)
    rec = add_worker(store, worker_id="W9", name="Zhao Lei", hours_per_week=36, phone="13900000009",
                     base_community=COMM_A)
    assert rec["hours_per_week"] == 36.0 and store.worker("W9")["active"] is True
    with pytest.raises(InputError, match="already exists"):
        add_worker(store, worker_id="W9", name="Zhao Lei", hours_per_week=36)
    with pytest.raises(InputError, match="hours_per_week"):
        add_worker(store, worker_id="W10", name="X", hours_per_week=0)
    with pytest.raises(InputError, match="base_community"):
        add_worker(store, worker_id="W10", name="X", hours_per_week=10, base_community="nowhere")
    edit_worker(store, "W9", hours_per_week=20, phone="")
    assert store.worker("W9")["hours_per_week"] == 20.0 and store.worker("W9")["phone"] is None
    with pytest.raises(InputError, match="phone"):
        edit_worker(store, "W9", phone="12")
    with pytest.raises(InputError, match="no worker"):
        edit_worker(store, "nobody", hours_per_week=3)


def test_deactivated_worker_stops_supplying(tiny_store: Store) -> None:
    store = add_tiny_roster(tiny_store)
    before = staffing_report(store, 1, params=P, now=NOW).table
    assert before.loc["G1", "supply_hours"] == pytest.approx(2.24)
    assert deactivate_worker(store, "W1") == ["G1"]
    after = staffing_report(store, 1, params=P, now=NOW)
    t = after.table
    assert store.worker("W1")["active"] is False  # the row stays
    assert t.loc["G1", "supply_hours"] == 0.0 and t.loc["G1", "status"] == "uncovered"
    assert t.loc["G2", "supply_hours"] == pytest.approx(2.0)  # W1's backup share is gone too
    assert "W1" not in set(after.workers["worker_id"])
    assert ((store.assignments(1)["worker_id"] == "W1").sum()) == 2  # assignments kept, marked by the status


# -- store: assignments and adjacency ---------------------------------------------------------------------------------
def test_set_assignments_replaces_only_the_given_grids(tiny_store: Store) -> None:
    store = add_tiny_roster(tiny_store)
    rows = pd.DataFrame({"grid_code": ["G4"], "worker_id": ["W5"], "role": ["primary"]})
    assert store.set_assignments(1, rows) == 1
    a = store.assignments(1)
    assert a.loc[a["grid_code"] == "G4", ["worker_id", "manual"]].values.tolist() == [["W5", True]]
    assert len(a) == 5  # G1–G3 untouched
    store.set_assignments(1, rows.iloc[:0], grids=["G3"])
    assert "G3" not in set(store.assignments(1)["grid_code"])
    with pytest.raises(InputError, match="unknown worker"):
        store.set_assignments(1, pd.DataFrame({"grid_code": ["G1"], "worker_id": ["ghost"], "role": ["primary"]}))
    with pytest.raises(InputError, match="not in layout"):
        store.set_assignments(1, pd.DataFrame({"grid_code": ["G9"], "worker_id": ["W1"], "role": ["primary"]}))
    with pytest.raises(InputError, match="role"):
        store.set_assignments(1, pd.DataFrame({"grid_code": ["G1"], "worker_id": ["W1"], "role": ["boss"]}))


def test_grid_adjacency_from_geometry(tiny_store: Store) -> None:
    adj = tiny_store.grid_adjacency(1)
    assert list(zip(adj["grid_code_a"], adj["grid_code_b"], strict=True)) == [("G1", "G2"), ("G2", "G3"),
                                                                               ("G3", "G4")]
    assert adj["shared_m"].tolist() == pytest.approx([200.0, 200.0, 200.0], abs=0.5)
    # With a stored unit graph the same pairs come from the unit adjacency.
    nodes = pd.DataFrame({"unit_id": range(1, 9), "x": 0.0, "y": 0.0, "area_m2": 1e4, "perimeter_m": 400.0})
    pairs = [(1, 2), (2, 3), (3, 4), (5, 6), (6, 7), (7, 8), (1, 5), (2, 6), (3, 7), (4, 8)]
    edges = pd.DataFrame(pairs, columns=["unit_a", "unit_b"]).assign(shared_m=100.0)
    tiny_store.write_unit_graph(nodes, edges, crs="EPSG:32651")
    from_graph = tiny_store.grid_adjacency(1)
    pair_cols = ["grid_code_a", "grid_code_b"]
    assert from_graph[pair_cols].values.tolist() == adj[pair_cols].values.tolist()
    assert from_graph["shared_m"].tolist() == [200.0, 200.0, 200.0]


# -- automatic assignment --------------------------------------------------------------------------------------------
def _tiny_inputs(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    demand, _ = store_demand(store, 1, params=P, now=NOW)
    return demand, store.grid_adjacency(1)


def _roster(*hours: float, community: str = COMM_A) -> pd.DataFrame:
    return pd.DataFrame({"worker_id": [f"X{i}" for i in range(len(hours))], "name": "x",
                         "hours_per_week": list(hours), "base_community": community, "active": True})


def _connected(grids: list[str], adj: pd.DataFrame) -> bool:
    g = nx.Graph()
    g.add_nodes_from(grids)
    g.add_edges_from((a, b) for a, b in zip(adj["grid_code_a"], adj["grid_code_b"], strict=True)
                     if a in grids and b in grids)
    return nx.is_connected(g)


def test_auto_fills_every_grid_when_hours_suffice(tiny_store: Store) -> None:
    demand, adj = _tiny_inputs(tiny_store)
    no_rows = pd.DataFrame(columns=["grid_code", "worker_id", "role", "manual"])
    # Fewer workers than grids but enough hours: workers share adjacent grids.
    roster = _roster(4.0, 4.0)
    res = auto_assign(demand, roster, no_rows, adj, P)
    t = report(demand, res.assignments, roster, P).table
    assert res.unfilled == [] and (t["status"] != "uncovered").all()
    assert (t["n_primaries"] == 1).all()
    assert res.shortfall_hours == 0.0 and not any("Not enough" in m for m in res.messages)
    assert t["gap_share"].max() <= P.band
    for _, grp in res.assignments.groupby("worker_id"):
        assert _connected(grp["grid_code"].tolist(), adj)
    # Deterministic for a seed.
    again = auto_assign(demand, roster, no_rows, adj, P)
    pd.testing.assert_frame_equal(res.assignments, again.assignments)


def test_auto_explains_when_hours_do_not_suffice(tiny_store: Store) -> None:
    demand, adj = _tiny_inputs(tiny_store)
    no_rows = pd.DataFrame(columns=["grid_code", "worker_id", "role", "manual"])
    res = auto_assign(demand, _roster(2.0), no_rows, adj, P)
    assert res.unfilled == []  # the one worker takes every grid: each still has a primary
    total = float(demand["demand_hours"].sum())
    assert res.shortfall_hours > 0
    t = report(demand, res.assignments, _roster(2.0), P).table
    assert res.shortfall_hours == pytest.approx(((0.9 * t["demand_hours"] - t["supply_hours"]).clip(lower=0)).sum())
    text = " ".join(res.messages)
    assert f"need {total:.0f} h/week" in text and "have 2 h/week" in text
    assert "Not enough hours" in text and "hire 1" in text
    assert res.need is not None and res.need.workers == 1
    # With nobody at all, the grids are named.
    empty = auto_assign(demand, _roster(2.0).assign(active=False), no_rows, adj, P)
    assert empty.unfilled == ["G1", "G2", "G3", "G4"] and "No active worker" in " ".join(empty.messages)


def test_auto_messages_are_codes_with_values_and_english_for_the_cli(tiny_store: Store) -> None:
    demand, adj = _tiny_inputs(tiny_store)
    no_rows = pd.DataFrame(columns=["grid_code", "worker_id", "role", "manual"])
    res = auto_assign(demand, _roster(2.0), no_rows, adj, P, community_names={COMM_A: "Alpha"})
    notes = {n.code: n.values for n in res.notes}
    assert res.notes[0].code == "assigned" and res.notes[-1].code == "hire_total"
    total = float(demand["demand_hours"].sum())
    assert notes["district_short"] == {"demand_hours": pytest.approx(total), "worker_hours": 2.0}
    assert notes["hire_total"]["workers"] == 1 and notes["hire_total"]["band"] == P.band
    areas = [n.values for n in res.notes if n.code in ("area_hire", "area_small")]
    assert areas and {a["community_code"] for a in areas} <= {COMM_A, COMM_B}
    assert all(a["community"] == ("Alpha" if a["community_code"] == COMM_A else a["community_code"]) for a in areas)
    # The English rendering is what the CLI prints and `to_dict` (the CLI's JSON) carries.
    assert res.messages == [MESSAGE_TEXTS[n.code].format(**n.values) for n in res.notes]
    assert res.to_dict()["messages"] == res.messages and all(isinstance(m, str) for m in res.messages)
    assert f"the grids need {total:.0f} h/week, the active workers have 2 h/week." in res.messages[1]
    assert str(AssignMessage("all_within", {"band": 0.1})) == "Every grid is within 10% of its demand or above it."
    with pytest.raises(ValueError, match="'nonsense'"):
        AssignMessage("nonsense")


def test_manual_assignments_survive_auto(tiny_store: Store) -> None:
    store = add_tiny_roster(tiny_store)
    demand, adj = _tiny_inputs(store)
    roster, rows = store.workers(), store.assignments(1)
    res = auto_assign(demand, roster, rows, adj, P)
    a = res.assignments
    manual = a[a["manual"]]
    assert manual[["grid_code", "worker_id", "role"]].values.tolist() == [["G2", "W2", "primary"]]
    assert res.kept_manual == 1 and res.removed == 4
    assert (a.groupby("grid_code")["role"].apply(lambda r: (r == "primary").sum()) == 1).all()
    t = report(demand, a, roster, P).table
    assert (t["status"] != "uncovered").all() and res.unfilled == []
    assert "W4" not in set(a["worker_id"])  # inactive
    # keep_auto keeps the existing automatic rows of active workers and fills only the gap (G4).
    kept = auto_assign(demand, roster, rows, adj, P, keep_auto=True)
    ka = kept.assignments
    assert {("G1", "W1"), ("G2", "W1"), ("G3", "W3"), ("G2", "W2")} <= set(zip(ka["grid_code"], ka["worker_id"],
                                                                                  strict=True))
    assert (report(demand, ka, roster, P).table["status"] != "uncovered").all()


def test_auto_on_the_demo_fills_every_grid_and_narrows_the_worst_gap(small_demo_db: Path) -> None:
    with Store(small_demo_db, read_only=True) as store:
        lid = int(store.current_layout_id() or 0)
        demand, counts = store_demand(store, lid, params=P, now=datetime(2026, 7, 1))
        roster, rows, adj = store.workers(), store.assignments(lid), store.grid_adjacency(lid)
    before = report(demand, rows, roster, P, incidents=counts)
    start = time.perf_counter()
    res = auto_assign(demand, roster, rows, adj, P, seed=3)
    assert time.perf_counter() - start < 30  # generous: it takes well under a second
    after = report(demand, res.assignments, roster, P, incidents=counts)
    assert after.totals["uncovered"] == 0 and after.coverage["grids"] == 1.0
    assert after.table["gap_share"].max() < before.table["gap_share"].max()
    assert after.need.hours <= before.need.hours
    active = set(roster.loc[roster["active"], "worker_id"])
    assert set(res.assignments["worker_id"]) <= active
