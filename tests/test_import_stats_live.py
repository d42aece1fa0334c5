"""Live writes during an import: while a file is being staged, intake API cases and case actions are written at once
(staging does not hold the write lock); publishing numbers the batch after them and turns a staged row whose external
id the API took meanwhile into a ``duplicate_external_id`` reject.

The import is held mid-way deterministically: a store wrapper blocks the second ``stage_incidents`` call on an event
until the test releases it, and the order of events is asserted, never times.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import gridgov.ingest as ingest_mod
from dashboards.api import IntakeAPI
from gridgov import intake
from gridgov.auth import User
from gridgov.config import Settings
from gridgov.ingest import ImportResult, ingest_file
from gridgov.lifecycle import apply_action
from gridgov.store import Store
from tests.fixtures import unit_center_lonlat
from tests.test_open_cases import assert_exact

HEADER = ["external_id", "reported_at", "category", "lon", "lat", "status", "closed_at", "source"]
#: Long enough never to be reached by a correct run; it only keeps a broken run from hanging the suite.
PATIENCE = 60.0


def _write_csv(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _row(ext: str, unit: int, *, status: str = "", closed: str = "", source: str = "") -> list[object]:
    lon, lat = unit_center_lonlat(unit)
    return [ext, "2026-06-10 10:00", "exposed_garbage", lon, lat, status, closed, source]


def _file(tmp_path: Path, *, source: str = "") -> Path:
    """Nine rows over the units, open and closed; L1..L9 as external ids."""
    rows = [_row(f"L{i}", 1 + i % 8, source=source,
                 **({"status": "closed", "closed": "2026-06-10 11:00"} if i % 3 == 0 else {}))
            for i in range(1, 10)]
    return _write_csv(tmp_path / "live.csv", rows)


class _HeldStore:
    """The store as ``ingest_file`` sees it, holding the import at its second staged chunk until released."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.staging = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def stage_incidents(self, incidents: Any) -> int:
        self.calls += 1
        if self.calls == 2:
            self.staging.set()
            if not self.release.wait(PATIENCE):
                raise RuntimeError("the test never released the import")
        return self._store.stage_incidents(incidents)


@pytest.fixture
def held(tiny_store: Store, monkeypatch: pytest.MonkeyPatch) -> _HeldStore:
    monkeypatch.setattr(ingest_mod, "CHUNK_ROWS", 2)
    return _HeldStore(tiny_store)


def _import_while(held: _HeldStore, path: Path, write: Callable[[], Any]) -> tuple[ImportResult, Any, list[str]]:
    """Import ``path`` through ``held``; once it is held mid-way, run ``write`` on another thread, then release.

    Returns the import's result, what ``write`` returned and the order in which the write finished and the import
    was released.
    """
    order: list[str] = []
    out: dict[str, Any] = {}

    def run_import() -> None:
        try:
            out["result"] = ingest_file(held, path)  # type: ignore[arg-type]
        except BaseException as exc:  # re-raised on the test's thread
            out["import_error"] = exc

    def run_write() -> None:
        try:
            out["write"] = write()
        except BaseException as exc:
            out["write_error"] = exc
        order.append("written")

    importer = threading.Thread(target=run_import, name="test-import")
    importer.start()
    assert held.staging.wait(PATIENCE), out.get("import_error")
    writer = threading.Thread(target=run_write, name="test-write")
    writer.start()
    writer.join(PATIENCE)  # a write that waits for the import would only finish after the release below
    order.append("released")
    held.release.set()
    importer.join()
    writer.join()
    for key in ("import_error", "write_error"):
        if key in out:
            raise out[key]
    return out["result"], out["write"], order


def _batch_ids(store: Store, batch_id: int) -> list[int]:
    return store.df("SELECT incident_id FROM incident WHERE batch_id = ? ORDER BY incident_id",
                    [batch_id])["incident_id"].astype(int).tolist()


def _no_duplicate_keys(store: Store) -> None:
    assert store.df("SELECT count(*) - count(DISTINCT incident_id) AS d FROM incident")["d"].iloc[0] == 0
    dup = store.df("SELECT source, external_id FROM incident WHERE external_id IS NOT NULL "
                   "GROUP BY source, external_id HAVING count(*) > 1")
    assert dup.empty, dup


def test_an_insert_during_staging_is_written_before_the_import_ends(held: _HeldStore, tmp_path: Path) -> None:
    store: Store = held._store
    before = int(store.df("SELECT max(incident_id) AS m FROM incident")["m"].iloc[0])
    live = store.incidents().drop(columns="incident_id").iloc[[3]].assign(external_id="LIVE-1", source="hotline")
    row = live.iloc[0].to_dict()

    result, new_id, order = _import_while(held, _file(tmp_path), lambda: store.insert_one_incident(row))

    assert order == ["written", "released"]
    assert new_id == before + 1
    assert (result.rows_in, result.accepted, result.rejected, result.duplicates) == (9, 9, 0, 0)
    ids = _batch_ids(store, result.batch_id)
    assert ids == list(range(before + 2, before + 11))  # after the live case, gapless, in file order
    got = store.df("SELECT external_id FROM incident WHERE batch_id = ? ORDER BY incident_id", [result.batch_id])
    assert got["external_id"].tolist() == [f"L{i}" for i in range(1, 10)]
    _no_duplicate_keys(store)
    assert_exact(store)
    assert ingest_file(store, tmp_path / "live.csv").already_imported


@pytest.fixture
def api(held: _HeldStore, tmp_path: Path) -> Iterator[dict[str, Any]]:
    store: Store = held._store
    key = intake.create_client(store, "hotline", "12345 hotline")
    server = Flask("test")
    server.register_blueprint(IntakeAPI(store, Settings(db_path=store.path), rate=1000.0, burst=5000).blueprint())
    yield {"client": server.test_client(), "key": key}


def test_an_external_id_posted_during_staging_rejects_the_files_row(held: _HeldStore, api: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    store: Store = held._store
    lon, lat = unit_center_lonlat(2)

    def post() -> Any:
        # L2 is in the file's first chunk, staged before the import was held: only publishing can see the clash.
        return api["client"].post("/api/v2/requests.json", headers={"X-API-Key": api["key"]},
                                  json={"service_code": "noise", "lat": lat, "long": lon, "external_id": "L2"})

    result, reply, order = _import_while(held, _file(tmp_path, source="hotline"), post)

    assert order == ["written", "released"]
    assert reply.status_code == 201, reply.get_data(as_text=True)
    api_id = int(reply.get_json()[0]["service_request_id"])
    assert (result.rows_in, result.accepted, result.rejected, result.duplicates) == (9, 8, 1, 1)
    assert result.rejected_by_reason == {"duplicate_external_id": 1}
    assert result.sample_rejects == [{"row_no": 2, "field": "external_id", "reason": "duplicate_external_id",
                                      "message": "external id 'L2' was imported before for source 'hotline'"}]
    batch = store.import_batches().set_index("batch_id").loc[result.batch_id]
    assert (batch["accepted"], batch["rejected"], batch["duplicates"]) == (8, 1, 1)
    rejects = store.rejects(result.batch_id)
    assert rejects[["row_no", "field", "reason"]].values.tolist() == [[2, "external_id", "duplicate_external_id"]]
    raw = json.loads(rejects["raw"].iloc[0])
    assert (raw["source"], raw["external_id"]) == ("hotline", "L2")

    owner = store.df("SELECT incident_id, category_code, batch_id IS NULL AS live FROM incident "
                     "WHERE source = 'hotline' AND external_id = 'L2'")
    assert owner.values.tolist() == [[api_id, "noise", True]]  # the API's case, not the file's
    assert _batch_ids(store, result.batch_id) == list(range(api_id + 1, api_id + 9))  # gapless without L2
    got = store.df("SELECT external_id FROM incident WHERE batch_id = ? ORDER BY incident_id", [result.batch_id])
    assert got["external_id"].tolist() == [f"L{i}" for i in range(1, 10) if i != 2]
    _no_duplicate_keys(store)
    assert_exact(store)


def test_a_case_action_during_staging_completes_before_the_import_ends(held: _HeldStore, tmp_path: Path) -> None:
    store: Store = held._store
    case = int(store.df("SELECT min(incident_id) AS i FROM incident WHERE status = 'reported'")["i"].iloc[0])

    result, status, order = _import_while(held, _file(tmp_path),
                                          lambda: apply_action(store, User("manager", "manager"), case, "accept"))

    assert order == ["written", "released"]
    assert status == "dispatched"
    assert store.incident_row(case)["status"] == "dispatched"
    events = store.df("SELECT actor FROM incident_event WHERE incident_id = ?", [case])
    assert events["actor"].tolist() == ["manager"]
    assert result.accepted == 9 and len(_batch_ids(store, result.batch_id)) == 9
    _no_duplicate_keys(store)
    assert_exact(store)
