"""KPI and density maths against the hand-built tiny district (tests/fixtures.py)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from gridgov import metrics
from gridgov.store import Store
from tests.fixtures import NOW

JUNE = {"start": datetime(2026, 6, 1), "end": datetime(2026, 7, 1), "now": NOW}


def test_grid_stats_by_hand(tiny_store: Store) -> None:
    stats = tiny_store.grid_stats(1, **JUNE).set_index("grid_code")
    assert stats.loc["G1"].to_dict() == {"reported": 2, "open": 0, "overdue": 0, "closed": 2, "closed_on_time": 1}
    assert stats.loc["G2"].to_dict() == {"reported": 1, "open": 1, "overdue": 1, "closed": 0, "closed_on_time": 0}
    # G3's April case is outside the window but its open June case counts.
    assert stats.loc["G3"].to_dict() == {"reported": 1, "open": 1, "overdue": 0, "closed": 0, "closed_on_time": 0}
    assert stats.loc["G4"].to_dict() == {"reported": 1, "open": 0, "overdue": 0, "closed": 1, "closed_on_time": 1}


def test_kpis_by_hand(tiny_store: Store) -> None:
    k = metrics.kpis(tiny_store.grid_stats(1, **JUNE))
    assert k == {"reported": 5, "open": 2, "overdue": 1, "closed": 3, "closed_on_time": 2,
                 "on_time_rate": pytest.approx(2 / 3)}


def test_filters_change_the_counts(tiny_store: Store) -> None:
    garbage = metrics.kpis(tiny_store.grid_stats(1, categories=["exposed_garbage"], **JUNE))
    assert (garbage["reported"], garbage["closed"], garbage["on_time_rate"]) == (2, 2, 0.5)
    components = metrics.kpis(tiny_store.grid_stats(1, klass="component", **JUNE))
    assert (components["reported"], components["open"], components["overdue"]) == (1, 1, 0)
    april = metrics.kpis(tiny_store.grid_stats(1, start=datetime(2026, 4, 1), end=datetime(2026, 5, 1), now=NOW))
    assert (april["reported"], april["closed"], april["on_time_rate"]) == (1, 1, 1.0)


def test_overdue_follows_the_clock(tiny_store: Store) -> None:
    later = metrics.kpis(tiny_store.grid_stats(1, start=JUNE["start"], end=JUNE["end"],
                                               now=datetime(2026, 6, 12, 12, 0)))
    assert later["overdue"] == 2  # the street light's deadline (06-12 10:00) has passed too


def test_density_by_hand(tiny_store: Store) -> None:
    grids = tiny_store.layout_grids(1).set_index("grid_code")
    stats = tiny_store.grid_stats(1, **JUNE).set_index("grid_code").reindex(grids.index, fill_value=0)
    per_km2 = metrics.density(stats["reported"], area_m2=grids["area_m2"], population=grids["population"])
    assert per_km2.to_dict() == {"G1": 100.0, "G2": 50.0, "G3": 50.0, "G4": 50.0}  # 0.02 km² each
    per_res = metrics.density(stats["reported"], area_m2=grids["area_m2"], population=grids["population"],
                              basis="residents")
    assert per_res["G1"] == pytest.approx(2 / 600 * 1000)
    assert pd.isna(per_res["G3"])  # nobody lives in G3


def test_empty_selection_has_no_on_time_rate() -> None:
    empty = pd.DataFrame(columns=list(metrics.COUNT_COLUMNS))
    assert metrics.kpis(empty)["on_time_rate"] is None
    with pytest.raises(ValueError, match="basis"):
        metrics.density(pd.Series([1]), area_m2=pd.Series([1.0]), population=pd.Series([1]), basis="x")  # type: ignore[arg-type]
