"""Dashboard metrics, defined once (see docs/metrics.md): density, KPIs, on-time rate."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

DensityBasis = Literal["km2", "residents"]

#: Columns of :meth:`gridgov.store.Store.grid_stats` that add up over grids.
COUNT_COLUMNS: tuple[str, ...] = ("reported", "open", "overdue", "closed", "closed_on_time")


def density(counts: pd.Series, *, area_m2: pd.Series, population: pd.Series,
            basis: DensityBasis = "km2") -> pd.Series:
    """Incidents per km² or per 1,000 residents.

    Parameters
    ----------
    counts
        Incidents per grid.
    area_m2, population
        Area and residents of the same grids (aligned on the index).
    basis
        ``"km2"`` or ``"residents"`` (per 1,000). A grid with no residents has no per-resident density (NaN).

    Returns
    -------
    pandas.Series
        Density per grid (float).

    Examples
    --------
    >>> import pandas as pd
    >>> density(pd.Series([5, 0]), area_m2=pd.Series([250_000.0, 1e6]), population=pd.Series([500, 0])).tolist()
    [20.0, 0.0]
    >>> density(pd.Series([5, 3]), area_m2=pd.Series([1e6, 1e6]), population=pd.Series([500, 0]),
    ...         basis="residents").tolist()
    [10.0, nan]
    """
    counts = counts.astype("float64")
    if basis == "km2":
        return counts / (area_m2.astype("float64") / 1e6)
    if basis == "residents":
        pop = population.astype("float64").where(population > 0, np.nan)
        return counts / pop * 1000.0
    raise ValueError(f"basis must be 'km2' or 'residents', got {basis!r}")


def on_time_rate(closed: float, closed_on_time: float) -> float | None:
    """Share of cases closed by their deadline among cases closed (None when none closed)."""
    return float(closed_on_time) / float(closed) if closed else None


def kpis(stats: pd.DataFrame) -> dict[str, float | int | None]:
    """Headline figures for a set of grids.

    Parameters
    ----------
    stats
        Per-grid counts with :data:`COUNT_COLUMNS` (e.g. from ``Store.grid_stats``), already filtered to the
        grids in view.

    Returns
    -------
    dict
        ``reported, open, overdue, closed, closed_on_time`` (sums) and ``on_time_rate`` (0–1 or None).
    """
    totals: dict[str, float | int | None] = {
        col: int(stats[col].sum()) if col in stats else 0 for col in COUNT_COLUMNS
    }
    totals["on_time_rate"] = on_time_rate(float(totals["closed"] or 0), float(totals["closed_on_time"] or 0))
    return totals
