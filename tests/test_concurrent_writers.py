"""Several writers at once: no case lost or written twice, no case taken by two workers.

On PostgreSQL the writers are separate processes, each with its own ``Store`` on the database (as several dashboard
servers and hotline importers are); on DuckDB, which one process writes, they are threads sharing the store. Both
run the same races, started together by a barrier:

* intake: every writer sends its own cases plus the same shared external ids, which must be stored once each;
* dispatch: every writer tries to accept the same reported cases, which each must go to exactly one writer.
"""

from __future__ import annotations

import multiprocessing
import threading
from datetime import datetime
from typing import Any

from gridgov.errors import InputError, StoreError
from gridgov.store import Store, migrations
from tests.fixtures import unit_center_lonlat
from tests.pg_cluster import ThrowawayCluster
from tests.test_open_cases import assert_exact

WRITERS = 4
OWN_CASES = 12
SHARED_IDS = [f"SHARED-{i}" for i in range(8)]
AT = datetime(2026, 6, 10, 9, 0)


def _case(external_id: str, unit: int) -> dict[str, Any]:
    lon, lat = unit_center_lonlat(unit)
    return {"source": "hotline", "external_id": external_id, "category_code": "A0101", "reported_at": AT,
            "due_at": datetime(2026, 6, 11, 9, 0), "status": "reported", "lon": lon, "lat": lat, "unit_id": unit}


def _intake(store: Store, writer: int) -> dict[str, list[Any]]:
    """Send this writer's cases interleaved with the shared ones; what was stored and what was refused."""
    stored, refused = [], []
    shared = iter(SHARED_IDS[writer % 2::2] + SHARED_IDS[(writer + 1) % 2::2])
    for i in range(OWN_CASES):
        for ext in (f"W{writer}-{i}", next(shared, None)):
            if ext is None:
                continue
            try:
                stored.append((ext, store.insert_one_incident(_case(ext, 1 + (i + writer) % 8))))
            except InputError as exc:
                assert exc.field == "external_id"
                refused.append(ext)
    return {"stored": stored, "refused": refused}


def _dispatch(store: Store, writer: int, ids: list[int]) -> dict[str, list[Any]]:
    """Try to accept every case; the ones this writer got."""
    got, lost = [], []
    for incident_id in ids:
        try:
            store.record_incident_event(incident_id, expected="reported", status="dispatched", at=AT,
                                        actor=f"writer{writer}", note=None, event="accept")
            got.append(incident_id)
        except StoreError:
            lost.append(incident_id)
    return {"got": got, "lost": lost}


def _child(location: str, job: str, writer: int, ids: list[int], barrier: Any, out: Any) -> None:
    try:
        with Store(location) as store:
            barrier.wait(timeout=60)
            result = _intake(store, writer) if job == "intake" else _dispatch(store, writer, ids)
    except Exception as exc:  # reported to the test, which names it, instead of a silent dead process
        out.put((writer, {"error": [repr(exc)]}))
        return
    out.put((writer, result))


def _race(store: Store, job: str, ids: list[int] | None = None) -> list[dict[str, list[Any]]]:
    """Run ``job`` on every writer at once; their results by writer."""
    ids = ids or []
    if store.backend == "duckdb":
        barrier = threading.Barrier(WRITERS)
        results: dict[int, dict[str, list[Any]]] = {}

        def run(writer: int) -> None:
            barrier.wait(timeout=60)
            results[writer] = _intake(store, writer) if job == "intake" else _dispatch(store, writer, ids)

        threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        return [results[w] for w in range(WRITERS)]
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(str(store.location), job, w, ids, barrier, out))
             for w in range(WRITERS)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=180) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    errors = {w: r["error"] for w, r in got.items() if "error" in r}
    assert not errors, errors
    return [got[w] for w in range(WRITERS)]


def _one(store: Store, sql: str, params: list[Any] | None = None) -> Any:
    return store.df(sql, params).iloc[0, 0]


def test_concurrent_intake_loses_nothing_and_stores_each_external_id_once(tiny_store: Store) -> None:
    store = tiny_store
    before = int(_one(store, "SELECT max(incident_id) FROM incident"))
    results = _race(store, "intake")

    stored = [s for r in results for s in r["stored"]]
    refused = [x for r in results for x in r["refused"]]
    own = {f"W{w}-{i}" for w in range(WRITERS) for i in range(OWN_CASES)}
    assert {ext for ext, _ in stored} == own | set(SHARED_IDS)  # every case stored…
    assert len(stored) == len(own) + len(SHARED_IDS)  # …once: each shared id won by exactly one writer
    assert sorted(refused) == sorted(SHARED_IDS * (WRITERS - 1))
    ids = sorted(i for _, i in stored)
    assert ids == list(range(before + 1, before + 1 + len(stored)))  # the ids the writers were told, gapless
    rows = store.df("SELECT incident_id, external_id FROM incident WHERE incident_id > ? ORDER BY incident_id",
                    [before])
    assert dict(zip(rows["incident_id"], rows["external_id"], strict=True)) == {i: e for e, i in stored}
    assert_exact(store)


def test_racing_workers_each_case_goes_to_exactly_one(tiny_store: Store) -> None:
    store = tiny_store
    ids = [store.insert_one_incident(_case(f"R{i}", 1 + i % 8)) for i in range(10)]
    results = _race(store, "dispatch", ids)

    winners: dict[int, list[int]] = {i: [] for i in ids}
    for writer, r in enumerate(results):
        for i in r["got"]:
            winners[i].append(writer)
        assert sorted(r["got"] + r["lost"]) == sorted(ids)
    assert all(len(w) == 1 for w in winners.values()), winners
    events = store.df("SELECT incident_id, actor FROM incident_event WHERE status = 'accept' ORDER BY incident_id")
    assert events["incident_id"].tolist() == sorted(ids)  # one accept event per case, by its winner
    assert events["actor"].tolist() == [f"writer{winners[i][0]}" for i in sorted(ids)]
    statuses = store.df(f"SELECT DISTINCT status FROM incident WHERE incident_id IN ({', '.join('?' * len(ids))})",
                        ids)
    assert statuses["status"].tolist() == ["dispatched"]
    assert_exact(store)


def test_servers_starting_on_an_empty_database_migrate_it_once(pg_cluster: ThrowawayCluster) -> None:
    url = pg_cluster.create_database("gridgov_race_migrate")  # no template: no PostGIS, no tables yet
    try:
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(WRITERS), ctx.Queue()
        procs = [ctx.Process(target=_open_and_report, args=(url, barrier, out)) for _ in range(WRITERS)]
        for p in procs:
            p.start()
        versions = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        with Store(url) as store:
            applied = store.df("SELECT version FROM schema_version ORDER BY version")["version"].tolist()
        assert applied == [v for v, _, _ in migrations()]  # each migration applied once, in order
        assert versions == [applied[-1]] * WRITERS
    finally:
        pg_cluster.drop_database("gridgov_race_migrate")


def _open_and_report(location: str, barrier: Any, out: Any) -> None:
    barrier.wait(timeout=60)
    with Store(location) as store:
        out.put(store.schema_version)
