"""Shared fixtures: a hand-built tiny district and a small demo database built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gridgov.store import Store

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DEMO_AS_OF = "2026-06-30"


@pytest.fixture
def tiny_store(tmp_path: Path) -> Iterator[Store]:
    """The tiny district of ``tests/fixtures.py`` in a DuckDB file on disk."""
    from tests.fixtures import build_tiny

    store = build_tiny(tmp_path / "tiny.duckdb")
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
