"""``open_case`` (migration 006) holds exactly the open incidents after every kind of write — insert, import,
re-import, a killed import, an intake POST, every lifecycle step — and the dashboard reads that use it give the same
answers as counting over all incidents."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from flask import Flask

from dashboards.api import IntakeAPI
from gridgov import auth, intake, lifecycle
from gridgov.config import Settings
from gridgov.incidents import OPEN_STATUSES
from gridgov.ingest import ingest_file
from gridgov.store import INCIDENT_COLUMNS, Store, connection
from tests.conftest import DEMO_AS_OF
from tests.fixtures import add_tiny_roster, ingest_benchmark

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 6, 10, 12, 0)
_COLUMNS = "incident_id, unit_id, category_code, reported_at, due_at"



def assert_exact(store: Store) -> int:
    """``open_case`` equals the open rows of ``incident``, row for row and column for column; returns their number."""
    want = store.df(f"SELECT {_COLUMNS} FROM incident WHERE list_contains(?, status) ORDER BY incident_id",
                    [list(OPEN_STATUSES)])
    got = store.df(f"SELECT {_COLUMNS} FROM open_case ORDER BY incident_id")
    pd.testing.assert_frame_equal(got, want)
    return len(want)


def _open_ids(store: Store) -> set[int]:
    return set(store.df("SELECT incident_id FROM open_case")["incident_id"].astype(int))


def _case(store: Store, external_id: str) -> int:
    return int(store.df("SELECT incident_id FROM incident WHERE external_id = ?", [external_id])["incident_id"].iloc[0])


# -- inserts and lifecycle -------------------------------------------------------------------------------------------

def test_inserted_incidents_open_ones_only(tiny_store: Store) -> None:
    assert assert_exact(tiny_store) == 2  # the tiny district: one dispatched, one reported, four closed
    more = tiny_store.incidents().drop(columns="incident_id").head(4).assign(
        external_id=["N1", "N2", "N3", "N4"], status=["registered", "cancelled", "handled", "closed"])
    tiny_store.insert_incidents(more)
    assert assert_exact(tiny_store) == 4
    assert {_case(tiny_store, "N1"), _case(tiny_store, "N3")} <= _open_ids(tiny_store)


def test_every_lifecycle_step_keeps_open_cases_exact(tiny_store: Store) -> None:
    add_tiny_roster(tiny_store)
    auth.add_user(tiny_store, "boss", "district-pass", role="manager", at=AT)
    boss = auth.get_user(tiny_store, "boss")
    assert boss is not None
    case = _case(tiny_store, "T4")  # reported
    for action, note, open_after in (("accept", None, True), ("handle", "lamp replaced", True),
                                     ("close", None, False)):
        lifecycle.apply_action(tiny_store, boss, case, action, note=note, at=AT)
        assert_exact(tiny_store)
        assert (case in _open_ids(tiny_store)) is open_after
    other = _case(tiny_store, "T3")  # dispatched
    tiny_store.record_incident_event(other, expected="dispatched", status="cancelled", at=AT, actor="office",
                                     note=None, event="cancelled")
    assert assert_exact(tiny_store) == 0
    # A store-level move back into an open status (no lifecycle action does this today) restores the row.
    tiny_store.record_incident_event(other, expected="cancelled", status="dispatched", at=AT, actor="office",
                                     note=None, event="dispatched")
    assert assert_exact(tiny_store) == 1 and _open_ids(tiny_store) == {other}


def test_a_refused_step_changes_nothing(tiny_store: Store) -> None:
    case = _case(tiny_store, "T3")  # dispatched
    with pytest.raises(Exception, match="is dispatched now"):
        tiny_store.record_incident_event(case, expected="handled", status="closed", at=AT, actor="x", note=None,
                                         event="closed")
    assert assert_exact(tiny_store) == 2 and case in _open_ids(tiny_store)


# -- intake API ------------------------------------------------------------------------------------------------------

@pytest.fixture
def api_env(small_demo_db: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    path = tmp_path / "demo.duckdb"
    shutil.copy2(small_demo_db, path)
    store = Store(path)
    key = intake.create_client(store, "hotline", "12345 hotline")
    server = Flask("test")
    server.register_blueprint(IntakeAPI(store, Settings(db_path=path), rate=1000.0, burst=5000).blueprint())
    units = store.units()
    inside = units.geometry.iloc[len(units) // 2].representative_point()
    yield {"store": store, "client": server.test_client(), "headers": {"X-API-Key": key}, "lat": inside.y,
           "lon": inside.x}
    store.close()


def test_intake_posts_and_updates_keep_open_cases_exact(api_env: dict[str, Any]) -> None:
    store, client, headers = api_env["store"], api_env["client"], api_env["headers"]
    before = assert_exact(store)
    assert before > 0
    ids = []
    for code in ("noise", "street_light"):
        reply = client.post("/api/v2/requests.json", headers=headers,
                            json={"service_code": code, "lat": api_env["lat"], "long": api_env["lon"]})
        assert reply.status_code == 201, reply.get_data(as_text=True)
        ids.append(int(reply.get_json()[0]["service_request_id"]))
        assert_exact(store)
    assert set(ids) <= _open_ids(store)
    for action, still_open in (("dispatch", True), ("handled", True), ("close", False)):
        done = client.post(f"/api/v2/requests/{ids[0]}/{action}", json={"note": action}, headers=headers)
        assert done.status_code == 200, done.get_data(as_text=True)
        assert_exact(store)
        assert (ids[0] in _open_ids(store)) is still_open
    done = client.post(f"/api/v2/requests/{ids[1]}/cancel", json={}, headers=headers)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert assert_exact(store) == before and not set(ids) & _open_ids(store)


# -- imports ---------------------------------------------------------------------------------------------------------

def test_imports_and_reimports_keep_open_cases_exact(tmp_path: Path) -> None:
    bench = ingest_benchmark()
    db, first, second = tmp_path / "imp.duckdb", tmp_path / "a.csv", tmp_path / "b.csv"
    bench.build_store(db)
    bench.generate_csv(first, 3_000, seed=1)
    bench.generate_csv(second, 3_000, seed=2)  # the same external ids: all but the new rows are duplicates
    with Store(db) as store:
        result = ingest_file(store, first)
        assert result.accepted > 2_000
        n_open = assert_exact(store)
        assert 0 < n_open < result.accepted
        assert ingest_file(store, first).already_imported
        assert assert_exact(store) == n_open
        again = ingest_file(store, second)
        assert again.rejected_by_reason.get("duplicate_external_id", 0) > 0
        assert assert_exact(store) >= n_open


@pytest.mark.parametrize("delay", [1.0, 3.0])
def test_a_killed_import_leaves_open_cases_exact_and_the_retry_too(tmp_path: Path, delay: float) -> None:
    bench = ingest_benchmark()
    db, csv = tmp_path / "crash.duckdb", tmp_path / "big.csv"
    bench.build_store(db)
    bench.generate_csv(csv, 100_000, seed=7)
    proc = subprocess.Popen([sys.executable, "-m", "gridgov.cli", "ingest", str(csv), "--db", str(db), "--json"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    with Store(db) as store:  # replays or discards the write-ahead log
        assert_exact(store)
        ingest_file(store, csv)
        assert assert_exact(store) > 0
        assert int(store.df("SELECT count(*) AS n FROM import_batch")["n"].iloc[0]) == 1


# -- migration -------------------------------------------------------------------------------------------------------

def test_migration_fills_open_cases_from_an_older_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       tiny_store: Store) -> None:
    rows = tiny_store.incidents()
    path = tmp_path / "v5.duckdb"
    real = connection.migrations()
    monkeypatch.setattr(connection, "migrations", lambda: [m for m in real if m[0] < 6])
    with Store(path) as old:
        assert old.schema_version == 5
        # A file written by the gridgov before migration 006: incidents without open_case (the store of that
        # version inserted exactly these columns).
        old.con.register("_rows", pa.Table.from_pandas(rows, preserve_index=False))
        old.con.execute(f"INSERT INTO incident (incident_id, {', '.join(INCIDENT_COLUMNS)}) "
                        f"SELECT incident_id, {', '.join(INCIDENT_COLUMNS)} FROM _rows")
    monkeypatch.setattr(connection, "migrations", lambda: real)
    with Store(path) as store:
        assert store.schema_version == real[-1][0]
        assert assert_exact(store) == 2
        pd.testing.assert_frame_equal(store.incidents(), rows)


# -- the reads -------------------------------------------------------------------------------------------------------

def _reference(store: Store, layout_id: int, *, start: datetime, end: datetime, now: datetime,
               codes: set[str]) -> pd.DataFrame:
    """grid_stats by counting over every incident in pandas."""
    inc = store.incidents()
    inc = inc[inc["category_code"].isin(codes)]
    grid = inc["unit_id"].map(store.layout_units(layout_id).set_index("unit_id")["grid_code"])
    opened = inc["status"].isin(OPEN_STATUSES) & (inc["reported_at"] <= now)
    closed = (inc["closed_at"] >= start) & (inc["closed_at"] < end)
    flags = pd.DataFrame({
        "reported": (inc["reported_at"] >= start) & (inc["reported_at"] < end), "open": opened,
        "overdue": opened & (inc["due_at"] < now), "closed": closed,
        "closed_on_time": closed & (inc["closed_at"] <= inc["due_at"]),
    })
    out = flags.groupby(grid.to_numpy()).sum().astype("int64")
    out = out[out.sum(axis=1) > 0].rename_axis("grid_code").reset_index()
    return out.sort_values("grid_code", ignore_index=True)


@pytest.mark.parametrize(("days", "categories", "klass"), [
    (30, None, None), (30, ["exposed_garbage", "illegal_parking", "noise"], None), (7, None, "component"),
    (90, ["noise", "street_light"], "event"),
])
def test_grid_stats_equal_counting_every_incident(small_demo_db: Path, days: int, categories: list[str] | None,
                                                  klass: str | None) -> None:
    now = datetime.fromisoformat(DEMO_AS_OF) + timedelta(hours=12)
    start, end = now - timedelta(days=days), now
    with Store(small_demo_db, read_only=True) as store:
        layout_id = store.current_layout_id()
        assert layout_id is not None
        cats = store.categories()
        codes = set(cats["code"])
        if categories is not None:
            codes &= set(categories)
        if klass is not None:
            codes &= set(cats.loc[cats["class"] == klass, "code"])
        got = store.grid_stats(layout_id, start=start, end=end, now=now, categories=categories, klass=klass)
        want = _reference(store, layout_id, start=start, end=end, now=now, codes=codes)
    got = got[want.columns.tolist()].astype({c: "int64" for c in want.columns[1:]})
    if categories == ["noise", "street_light"]:  # street_light is a component: only noise passes both filters
        assert codes == {"noise"}
    assert want["open"].sum() > 0 and want["reported"].sum() > 0 and want["closed"].sum() > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want)


def test_counts_and_open_case_lists_equal_reading_every_incident(small_demo_db: Path) -> None:
    now = datetime.fromisoformat(DEMO_AS_OF) + timedelta(hours=12)
    with Store(small_demo_db, read_only=True) as store:
        inc = store.incidents()
        opened = inc[inc["status"].isin(OPEN_STATUSES)]
        counts = store.counts(now=now)
        assert counts["open"] == int((opened["reported_at"] <= now).sum()) > 0
        assert counts["overdue"] == int(((opened["reported_at"] <= now) & (opened["due_at"] < now)).sum()) > 0
        layout_id = store.current_layout_id()
        assert layout_id is not None
        grid_of = store.layout_units(layout_id).set_index("unit_id")["grid_code"]
        busiest = opened["unit_id"].map(grid_of).value_counts().index[0]
        mine = opened[opened["unit_id"].map(grid_of) == busiest].sort_values(["due_at", "incident_id"])
        cases = store.grid_open_cases(layout_id, busiest)
        assert cases["incident_id"].tolist() == mine["incident_id"].tolist()
        assert set(cases["status"]) <= set(OPEN_STATUSES)
        short = store.grid_open_cases(layout_id, busiest, limit=3, categories=mine["category_code"].iloc[:1].tolist())
        same_cat = mine[mine["category_code"] == mine["category_code"].iloc[0]]
        assert short["incident_id"].tolist() == same_cat["incident_id"].head(3).tolist()
