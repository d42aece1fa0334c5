"""The DuckDB store: migrations, versions, the single-writer lock, round trips."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

from gridgov.errors import SchemaVersionError, StoreBusyError, StoreError
from gridgov.store import Store, connection, latest_version
from tests.fixtures import build_future_file


def test_new_file_is_migrated_to_latest(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.duckdb"
    with Store(path) as store:
        assert store.schema_version == latest_version()
        tables = set(store.df("SELECT table_name FROM information_schema.tables")["table_name"])
    assert path.exists()
    for name in ("admin_area", "unit", "layout", "layout_unit", "layout_grid", "worker", "assignment", "category",
                 "incident", "incident_event", "import_batch", "reject", "schema_version", "meta", "roster_batch",
                 "roster_reject"):
        assert name in tables


def test_times_are_microsecond_timestamps(tmp_path: Path) -> None:
    with Store(tmp_path / "t.duckdb") as store:
        types = dict(store.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'incident'"
        ).fetchall())
    for col in ("reported_at", "due_at", "closed_at", "dispatched_at", "handled_at"):
        assert types[col] == "TIMESTAMP", col


def test_older_file_is_migrated_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.duckdb"
    real = connection.migrations()
    monkeypatch.setattr(connection, "migrations", lambda: real[:1])
    Store(path).close()
    extra = (real[-1][0] + 1, "test_extra", "ALTER TABLE worker ADD COLUMN team VARCHAR;")
    monkeypatch.setattr(connection, "migrations", lambda: [*real, extra])
    with Store(path) as store:
        assert store.schema_version == extra[0]
        cols = set(store.df("SELECT column_name FROM information_schema.columns WHERE table_name = 'worker'")
                   ["column_name"])
        assert "team" in cols
        applied = store.df("SELECT version, name FROM schema_version ORDER BY version")
    assert applied["version"].tolist() == [m[0] for m in [*real, extra]]


def test_failed_migration_leaves_file_at_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.duckdb"
    Store(path).close()
    real = connection.migrations()
    bad = (real[-1][0] + 1, "broken", "ALTER TABLE worker ADD COLUMN x INTEGER; SELECT * FROM no_such_table;")
    monkeypatch.setattr(connection, "migrations", lambda: [*real, bad])
    with pytest.raises(StoreError, match="broken"):
        Store(path)
    monkeypatch.setattr(connection, "migrations", lambda: real)
    with Store(path) as store:
        assert store.schema_version == real[-1][0]
        cols = set(store.df("SELECT column_name FROM information_schema.columns WHERE table_name = 'worker'")
                   ["column_name"])
        assert "x" not in cols


def test_newer_file_is_refused(tmp_path: Path) -> None:
    path = build_future_file(tmp_path / "new.duckdb")
    with pytest.raises(SchemaVersionError, match="upgrade gridgov"):
        Store(path)


def test_second_writer_process_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from gridgov.store import Store
            s = Store({str(path)!r})
            print("ready", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreBusyError, match="another process"):
            Store(path)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    time.sleep(0.1)
    Store(path).close()


def test_read_only_missing_file_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="gridgov demo"):
        Store(tmp_path / "missing.duckdb", read_only=True)


def test_layout_round_trip_and_current_switch(tiny_store: Store) -> None:
    first = tiny_store.current_layout_id()
    assert first is not None
    grids = tiny_store.layout_grids(first)
    assert grids.crs.to_epsg() == 4326
    assert grids["grid_code"].tolist() == ["G1", "G2", "G3", "G4"]
    assert grids["households"].tolist() == [200, 100, 0, 20]
    units = tiny_store.layout_units(first)
    second = tiny_store.save_layout("copy", unit_grid=units, grids=grids, status="current")
    assert tiny_store.current_layout_id() == second
    statuses = dict(zip(tiny_store.layouts()["name"], tiny_store.layouts()["status"], strict=True))
    assert statuses == {"hand-drawn": "archived", "copy": "current"}
    with pytest.raises(StoreError, match="already exists"):
        tiny_store.save_layout("copy", unit_grid=units, grids=grids)


def test_failed_layout_write_leaves_nothing(tiny_store: Store) -> None:
    units = tiny_store.layout_units(1)
    grids = tiny_store.layout_grids(1)
    before = tiny_store.df("SELECT count(*) AS n FROM layout_unit")["n"][0]
    with pytest.raises(Exception):  # noqa: B017 - the duplicate primary key error type is DuckDB's
        tiny_store.save_layout("dup", unit_grid=units.iloc[[0, 0]], grids=grids)
    assert tiny_store.df("SELECT count(*) AS n FROM layout_unit")["n"][0] == before
    assert "dup" not in tiny_store.layouts()["name"].tolist()


def test_geometries_must_be_lonlat(tiny_store: Store) -> None:
    grids = tiny_store.layout_grids(1).to_crs(32651)
    with pytest.raises(StoreError, match="EPSG:4326"):
        tiny_store.save_layout("metric", unit_grid=tiny_store.layout_units(1), grids=grids)


def test_a_setting_changed_for_a_block_comes_back(tiny_store: Store) -> None:
    if tiny_store.backend == "postgresql":
        pytest.skip("DuckDB planner settings: on PostgreSQL local_setting leaves the connection as it is")
    con = tiny_store.con

    def threshold() -> int:
        return int(con.execute("SELECT current_setting('perfect_ht_threshold')").fetchall()[0][0])

    before = threshold()
    with connection.local_setting(con, "perfect_ht_threshold", before + 5):
        assert threshold() == before + 5
    assert threshold() == before
    with pytest.raises(ZeroDivisionError), connection.local_setting(con, "perfect_ht_threshold", before + 1):
        1 / 0  # noqa: B018 - an error inside the block
    assert threshold() == before
    with pytest.raises(StoreError, match="threads"), connection.local_setting(con, "threads", 1):
        pass


def test_reporters_of_cases_by_id(tiny_store: Store) -> None:
    ids = tiny_store.incidents()["incident_id"].tolist()
    picked = tiny_store.incident_reporters([ids[3], ids[0], 999_999])
    assert picked["incident_id"].tolist() == [ids[0], ids[3]]
    assert list(picked.columns) == ["incident_id", "reporter_name", "reporter_phone"]
    none = tiny_store.incident_reporters([])
    assert none.empty and list(none.columns) == list(picked.columns)


def test_open_cases_of_a_grid(tiny_store: Store) -> None:
    layout_id = tiny_store.current_layout_id()
    assert layout_id is not None
    g2 = tiny_store.grid_open_cases(layout_id, "G2")  # u2 noise, dispatched
    assert g2[["category_code", "status", "name_en"]].values.tolist() == [["noise", "dispatched", "Noise nuisance"]]
    assert tiny_store.grid_open_cases(layout_id, "G2", klass="component").empty
    empty = tiny_store.grid_open_cases(layout_id, "G4")  # only a closed case
    assert empty.empty and list(empty.columns) == list(g2.columns)


def test_grid_counts_for_a_category_nobody_reported_are_empty(tiny_store: Store) -> None:
    window = {"start": datetime(2026, 1, 1), "end": datetime(2026, 7, 1), "now": datetime(2026, 6, 10)}
    assert tiny_store.grid_stats(1, categories=["no_such_category"], **window).empty
    events = tiny_store.grid_stats(1, klass="event", **window)  # noise (G2) is an event, street lights are not
    assert events.set_index("grid_code")["open"].to_dict() == {"G1": 0, "G2": 1, "G4": 0}
