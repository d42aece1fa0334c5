"""Shared fixtures: store locations on both backends, a hand-built tiny district, a small demo database.

Fixtures parametrized over the backends (``store_location``, ``tiny_store``) run each test twice, with ids
``[duckdb]`` and ``[postgresql]``. The PostgreSQL runs share one throwaway cluster (``tests/pg_cluster.py``) per
session and copy every database from a template that already has PostGIS and the store's migrations.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gridgov.store import Store
from tests.pg_cluster import ThrowawayCluster, available

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DEMO_AS_OF = "2026-06-30"
BACKENDS = ["duckdb", "postgresql"]
PG_TEMPLATE = "gridgov_template"
_pg_databases = itertools.count(1)


@pytest.fixture(scope="session")
def pg_available() -> None:
    """Skip the test when PostgreSQL with PostGIS is not installed here; fail it instead when ``CI`` is set."""
    ok, reason = available()
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the PostgreSQL tests cannot run: {reason}. The CI test command runs "
                    "`bash scripts/install-test-deps.sh` first, which installs postgresql and postgis.", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}; run `bash scripts/install-test-deps.sh` to install it")


@pytest.fixture(scope="session")
def pg_cluster(pg_available: None) -> Iterator[ThrowawayCluster]:
    """One throwaway PostgreSQL cluster for the whole run, stopped and removed at its end."""
    cluster = ThrowawayCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: ThrowawayCluster) -> str:
    """Name of a database with PostGIS and every migration applied, the template of each test's database."""
    pg_cluster.create_database(PG_TEMPLATE)
    # Opening the store creates the extension and migrates, once: copying the result is far faster than redoing it.
    Store(pg_cluster.url(PG_TEMPLATE)).close()
    return PG_TEMPLATE


@contextmanager
def _fresh_location(request: pytest.FixtureRequest, tmp_path: Path, filename: str) -> Iterator[Path | str]:
    """A new, empty store location on the backend in ``request.param``; a PostgreSQL database is dropped after."""
    if request.param == "duckdb":
        yield tmp_path / filename
        return
    cluster: ThrowawayCluster = request.getfixturevalue("pg_cluster")
    template: str = request.getfixturevalue("pg_template")
    name = f"gridgov_test_{next(_pg_databases)}"
    try:
        yield cluster.create_database(name, template=template)
    finally:
        # Each copy holds ~15 MB (PostGIS's spatial_ref_sys): drop it rather than let hundreds pile up in a run.
        cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """Where to open a new store: ``tmp_path / "store.duckdb"``, or the URL of a new database without data.

    The PostgreSQL database is a copy of :func:`pg_template`: PostGIS and the migrations are already in.
    """
    with _fresh_location(request, tmp_path, "store.duckdb") as location:
        yield location


@pytest.fixture(params=BACKENDS)
def tiny_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The tiny district of ``tests/fixtures.py``, in a DuckDB file or a PostgreSQL database."""
    from tests.fixtures import build_tiny

    with _fresh_location(request, tmp_path, "tiny.duckdb") as location:
        store = build_tiny(location)
        yield store
        store.close()


@pytest.fixture(scope="session")
def small_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a small demo database (seed 0), built once per test session; open it read-only or copy it."""
    from gridgov.demo import build_demo_file

    path = tmp_path_factory.mktemp("demo") / "small.duckdb"
    build_demo_file(path, size="small", seed=0, as_of=DEMO_AS_OF, progress=False)
    return path


@pytest.fixture
def la311_dir() -> Path:
    """The real LA 311 sample folder; tests that need it skip when it is absent."""
    folder = SHARED_DATA / "la-311"
    if not folder.exists():
        pytest.skip(f"real sample data not found at {folder.resolve()} (see ../shared/data/README.md)")
    return folder
