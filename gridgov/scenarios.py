"""Scenario layouts: figures to compare, adoption with re-issued codes and carried-over workers, and whether today's
layout is an outlier among the layouts the grid engine can draw.

A scenario is a saved layout (``gridgov regrid`` makes one) that touches nobody's area until it is adopted.
Adopting makes it current in one transaction: its codes are re-issued against the layout it replaces (unchanged
grids keep their codes, :func:`gridgov.codes.reissue_codes`), the workers go with their areas, and the replaced
layout is archived, never deleted, so adopting it again is the undo. Incidents are untouched: they reference units.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridgov import codes as grid_codes
from gridgov import replay, staffing
from gridgov.errors import InputError, StoreError

if TYPE_CHECKING:
    from gridgov.planning.plan import Cancel, Progress
    from gridgov.store import Store

#: A new grid takes its worker from the old grid it draws most households from; below this share the choice is
#: flagged for a manager to review.
CLEAR_SHARE = 0.5


# --------------------------------------------------------------------------------------------------------------------
# Which old grid each new grid continues, and who goes with it
# --------------------------------------------------------------------------------------------------------------------

def successors(store: Store, old_id: int, new_id: int) -> pd.DataFrame:
    """For each grid of layout ``new_id``: the grid of ``old_id`` it draws most households from (units when it has
    no households) and that share.

    Returns
    -------
    pandas.DataFrame
        ``new_grid, old_grid, household_share, unit_share``, one row per new grid.
    """
    old, new = store.layout_units(old_id), store.layout_units(new_id)
    households = store.unit_table().set_index("unit_id")["households"]
    mapping = grid_codes.code_mapping(old, new, households=households)
    return _best_successors(mapping)[["new_grid", "old_grid", "household_share", "unit_share"]].reset_index(drop=True)


def _best_successors(mapping: pd.DataFrame) -> pd.DataFrame:
    """Per new grid, the mapping row of the old grid it draws most households from (then units, then code)."""
    best = mapping.sort_values(["new_grid", "household_share", "unit_share", "old_grid"],
                               ascending=[True, False, False, True], kind="stable")
    return best.drop_duplicates("new_grid")


def carry_assignments(old_assignments: pd.DataFrame, succ: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Assignments of a new layout carried over from the old one: each new grid keeps the workers (primary and
    backups, manual flag and all) of the old grid it continues.

    Returns
    -------
    tuple
        The rows ``grid_code, worker_id, role, manual`` and the new grid codes to review: those that continue no
        old grid clearly (below :data:`CLEAR_SHARE` of their households) or whose old grid had no primary.
    """
    rows = []
    review: list[str] = []
    by_old = {code: grp for code, grp in old_assignments.groupby("grid_code")}
    for rec in succ.itertuples(index=False):
        held = by_old.get(rec.old_grid)
        if rec.household_share < CLEAR_SHARE or held is None or not (held["role"] == "primary").any():
            review.append(str(rec.new_grid))
        if held is not None:
            for a in held.itertuples(index=False):
                rows.append({"grid_code": rec.new_grid, "worker_id": a.worker_id, "role": a.role,
                             "manual": bool(a.manual)})
    out = pd.DataFrame(rows, columns=["grid_code", "worker_id", "role", "manual"])
    return out.drop_duplicates(["grid_code", "worker_id"]).reset_index(drop=True), sorted(review)


# --------------------------------------------------------------------------------------------------------------------
# Adopt
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AdoptResult:
    """What adopting a layout did.

    Attributes
    ----------
    layout_id, archived_id
        The layout now current and the one it replaced (archived; adopt it again to undo).
    mapping
        Old → new mapping by final codes (:func:`gridgov.codes.code_mapping`, with incidents).
    kept_codes, new_codes
        How many grids kept their old code and how many got a fresh one.
    assignments
        The carried-over assignments.
    review
        New grid codes whose workers a manager should check.
    without_area
        Workers of the replaced layout who hold no grid in the new one.
    restored
        True when an archived layout came back (an undo): it kept its own codes and workers.
    """

    layout_id: int
    archived_id: int | None
    mapping: pd.DataFrame
    kept_codes: int
    new_codes: int
    assignments: pd.DataFrame
    review: list[str]
    without_area: list[str]
    restored: bool = False

    def summary(self) -> dict[str, Any]:
        """Plain figures for the CLI and the page."""
        return {"layout_id": self.layout_id, "archived_id": self.archived_id, "kept_codes": self.kept_codes,
                "new_codes": self.new_codes, "assignments": len(self.assignments), "review": self.review,
                "without_area": self.without_area, "restored": self.restored}


def adopt(store: Store, name: str) -> AdoptResult:
    """Make the layout ``name`` (a scenario, or an archived layout to undo an adoption) current.

    A scenario's codes are re-issued against the current layout (an archived layout keeps the codes it had) and
    every grid's workers follow their area (see :func:`carry_assignments`); the current layout is archived. The
    store's part is one transaction.
    """
    layout_id = store.layout_id(name)
    layouts = store.layouts().set_index("layout_id")
    if layouts.loc[layout_id, "status"] == "current":
        raise StoreError(f"layout {name!r} is already the current one")
    current = store.current_layout_id()
    restored = layouts.loc[layout_id, "status"] == "archived"
    table = store.unit_table()
    households = table.set_index("unit_id")["households"]
    new_units = store.layout_units(layout_id)
    grids = store.layout_grids(layout_id)
    own = pd.Series(grids["grid_code"].to_numpy(), index=grids["grid_code"].to_numpy())
    mapping = pd.DataFrame()
    old_codes: set[str] = set()
    if current is None:
        final = own
        assignments = pd.DataFrame(columns=["grid_code", "worker_id", "role", "manual"])
        review: list[str] = []
        old_assign = assignments
    else:
        old_units = store.layout_units(current)
        old_codes = set(old_units["grid_code"])
        if restored:
            # Undo: a layout that was current before keeps the codes it was issued then.
            final = own
        else:
            labelled = grids.rename(columns={"grid_code": "grid"})
            issued = grid_codes.reissue_codes(old_units, new_units, labelled, households=households)
            final = pd.Series(issued.reindex(own.index).to_numpy(dtype=object), index=own.index)
        # The old → new mapping by final codes, with incidents: what the planner is shown and what workers follow.
        counts = store.unit_incident_counts()
        incidents = counts.groupby("unit_id")["n"].sum() if len(counts) else None
        renamed = new_units.assign(grid_code=new_units["grid_code"].map(final))
        mapping = grid_codes.code_mapping(old_units, renamed, households=households, incidents=incidents)
        old_assign = store.assignments(current)
        if restored:
            # Undo: the layout's own workers come back with it (edited since only if a manager did so).
            mine = store.assignments(layout_id)
            assignments = pd.DataFrame(mine[["grid_code", "worker_id", "role", "manual"]])
            staffed = set(mine.loc[(mine["role"] == "primary") & mine["active"].astype(bool), "grid_code"])
            review = sorted(set(own.index) - staffed)
        else:
            assignments, review = carry_assignments(old_assign, _best_successors(mapping))
    codes_frame = pd.DataFrame({"old_code": final.index.to_numpy(), "new_code": final.to_numpy()})
    archived = store.adopt_layout(layout_id, codes=codes_frame, assignments=assignments)
    kept = int(sum(code in old_codes for code in final.to_numpy()))
    placed = set(assignments["worker_id"])
    without = sorted(set(old_assign["worker_id"]) - placed) if len(old_assign) else []
    return AdoptResult(layout_id=layout_id, archived_id=archived, mapping=mapping, kept_codes=kept,
                       new_codes=len(final) - kept, assignments=assignments, review=review, without_area=without,
                       restored=bool(restored))


# --------------------------------------------------------------------------------------------------------------------
# Figures to compare layouts
# --------------------------------------------------------------------------------------------------------------------

def _polsby_popper(grids: Any) -> pd.Series:
    from gridgov.geo import metric_crs_for

    metric = grids.to_crs(metric_crs_for(grids))
    return pd.Series(4 * np.pi * metric.area.to_numpy() / metric.length.to_numpy() ** 2,
                     index=grids["grid_code"].to_numpy())


@dataclass(frozen=True)
class Figures:
    """The figures of one layout (see :func:`figures`)."""

    values: dict[str, float | int | None]
    per_grid: pd.DataFrame


def figures(store: Store, layout_id: int, *, now: datetime, household_range: tuple[float, float] | None = None,
            model: replay.ReplayModel | None = None, params: staffing.StaffingParams | None = None,
            reference_id: int | None = None) -> Figures:
    """What a planner compares between layouts.

    Demand per grid is the staffing demand in hours a week (incidents, patrol, visits; ``docs/staffing.md``).
    Staffing gap and replay use today's roster assigned automatically to the layout, so that two layouts are
    compared on the same footing rather than on how well each happens to be staffed today. With
    ``reference_id`` (the current layout), the households, incidents and workers whose grid changes are counted.

    Returns
    -------
    Figures
        ``values`` keyed by: ``n_grids``, ``demand_min``, ``demand_median``, ``demand_max``, ``max_over_mean``,
        ``cv``, ``households_min``, ``households_max``, ``outside_range``, ``pp_median``, ``households_moved``,
        ``households_moved_share``, ``incidents_moved``, ``incidents_moved_share``, ``workers_changed``,
        ``gap_hours``, ``worst_gap_hours``, ``worst_gap_grid``, ``forecast_on_time``; ``per_grid`` has demand,
        households, compactness, gap and forecast per grid.
    """
    params = params or staffing.StaffingParams()
    demand, counts = staffing.store_demand(store, layout_id, params=params, now=now)
    grids = store.layout_grids(layout_id)
    d = demand["demand_hours"].to_numpy(dtype=float)
    mean = float(d.mean()) if d.size else 0.0
    hh = grids.set_index("grid_code")["households"].reindex(demand["grid_code"]).to_numpy(dtype=float)
    pp = _polsby_popper(grids).reindex(demand["grid_code"]).to_numpy()
    values: dict[str, float | int | None] = {
        "n_grids": int(d.size),
        "demand_min": float(d.min()) if d.size else None,
        "demand_median": float(np.median(d)) if d.size else None,
        "demand_max": float(d.max()) if d.size else None,
        "max_over_mean": float(d.max() / mean) if mean > 0 else None,
        "cv": float(d.std() / mean) if mean > 0 else None,
        "households_min": int(hh.min()) if hh.size else None,
        "households_max": int(hh.max()) if hh.size else None,
        "outside_range": (int(((hh < household_range[0]) | (hh > household_range[1])).sum())
                          if household_range else None),
        "pp_median": float(np.median(pp)) if pp.size else None,
    }
    roster = store.workers()
    auto = _auto_assignments(store, layout_id, demand, roster, params)
    rep = staffing.report(demand, auto, roster, params, incidents=counts)
    gap = rep.table.set_index("grid_code")["gap_hours"]
    values["gap_hours"] = float(gap.clip(lower=0).sum())
    values["worst_gap_hours"] = float(gap.max()) if len(gap) else None
    values["worst_gap_grid"] = None
    per_grid = pd.DataFrame({"grid_code": demand["grid_code"].to_numpy(), "demand_hours": d, "households": hh,
                             "polsby_popper": pp, "gap_hours": gap.reindex(demand["grid_code"]).to_numpy()})
    values["forecast_on_time"] = None
    if model is not None:
        result = replay.replay_store(store, layout_id, now=now, model=model, assignments=auto)
        values["forecast_on_time"] = result.forecast_on_time
        per_grid["forecast_on_time"] = (result.grids.set_index("grid_code")["forecast_on_time"]
                                        .reindex(per_grid["grid_code"]).to_numpy())
    for key in ("households_moved", "households_moved_share", "incidents_moved", "incidents_moved_share",
                "workers_changed"):
        values[key] = None
    if reference_id is not None:
        values.update(_changes(store, reference_id, layout_id))
    return Figures(values=values, per_grid=per_grid)


def _auto_assignments(store: Store, layout_id: int, demand: pd.DataFrame, roster: pd.DataFrame,
                      params: staffing.StaffingParams) -> pd.DataFrame:
    from gridgov.workers import auto_assign

    empty = pd.DataFrame(columns=["grid_code", "worker_id", "role", "manual"])
    result = auto_assign(demand, roster, empty, store.grid_adjacency(layout_id), params)
    return result.assignments


def _changes(store: Store, old_id: int, new_id: int) -> dict[str, float | int | None]:
    """Households and incidents whose grid changes, and workers whose area changes, from ``old_id`` to ``new_id``."""
    if old_id == new_id:
        return {"households_moved": 0, "households_moved_share": 0.0, "incidents_moved": 0,
                "incidents_moved_share": 0.0, "workers_changed": 0}
    old, new = store.layout_units(old_id), store.layout_units(new_id)
    table = store.unit_table().set_index("unit_id")
    succ = successors(store, old_id, new_id).set_index("new_grid")["old_grid"]
    units = old.merge(new, on="unit_id", suffixes=("_old", "_new"))
    moved = units["grid_code_new"].map(succ).to_numpy() != units["grid_code_old"].to_numpy()
    hh = table["households"].reindex(units["unit_id"]).fillna(0).to_numpy()
    counts = store.unit_incident_counts()
    inc = (counts.groupby("unit_id")["n"].sum().reindex(units["unit_id"]).fillna(0).to_numpy()
           if len(counts) else np.zeros(len(units)))
    old_assign = store.assignments(old_id)
    moved_units = set(units.loc[moved, "unit_id"])
    touched = set(units.loc[units["unit_id"].isin(moved_units), "grid_code_old"])
    workers = set(old_assign.loc[old_assign["grid_code"].isin(touched), "worker_id"])
    return {
        "households_moved": int(hh[moved].sum()),
        "households_moved_share": float(hh[moved].sum() / hh.sum()) if hh.sum() else 0.0,
        "incidents_moved": int(inc[moved].sum()),
        "incidents_moved_share": float(inc[moved].sum() / inc.sum()) if inc.sum() else 0.0,
        "workers_changed": len(workers),
    }


#: Rows of the comparison table: key, and whether a lower value is better (None: neither).
COMPARE_ROWS: tuple[tuple[str, bool | None], ...] = (
    ("n_grids", None), ("demand_min", None), ("demand_median", None), ("demand_max", True),
    ("max_over_mean", True), ("cv", True), ("households_min", None), ("households_max", None),
    ("outside_range", True), ("pp_median", False), ("households_moved", True), ("households_moved_share", True),
    ("incidents_moved", True), ("incidents_moved_share", True), ("workers_changed", True), ("gap_hours", True),
    ("worst_gap_hours", True), ("forecast_on_time", False),
)


def compare(a: Figures, b: Figures) -> pd.DataFrame:
    """Figures of two layouts side by side with the change (``b − a``) and whether it is better.

    Returns
    -------
    pandas.DataFrame
        ``metric, a, b, change, better`` (``better`` is True, False or None when neither direction is better or a
        value is missing).
    """
    rows = []
    for key, lower_better in COMPARE_ROWS:
        va, vb = a.values.get(key), b.values.get(key)
        change = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        better = None
        if change is not None and lower_better is not None and abs(change) > 1e-9:
            better = (change < 0) == lower_better
        rows.append({"metric": key, "a": va, "b": vb, "change": change, "better": better})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------------------
# Is today's layout unusual?
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outlier:
    """Where a layout sits among ``samples`` alternative layouts the engine drew with the same grid count.

    Attributes
    ----------
    balance_percentile
        Share of samples at least as balanced (max/mean of demand not above the layout's), in percent: near 0,
        today's layout is better balanced than almost all; near 100, worse than almost all.
    compactness_percentile
        Share of samples at least as compact (Polsby–Popper median not below the layout's), in percent.
    layout_max_over_mean, layout_pp_median
        The layout's own figures.
    samples
        ``seed, max_over_mean, pp_median`` of each sample.
    """

    balance_percentile: float
    compactness_percentile: float
    layout_max_over_mean: float
    layout_pp_median: float
    samples: pd.DataFrame


def outlier(store: Store, layout_id: int | None = None, *, n: int = 100, seed: int = 0, respect: str = "community",
            progress: Progress | None = None,
            cancel: Cancel | None = None) -> Outlier:
    """Sample ``n`` alternative valid layouts with the same grid count (seeds ``seed … seed+n-1``, each plan
    contiguous and inside community borders, balanced on the same demand weight) and place the layout among them.

    The samples differ by the planner's random choices (``explore``: random cut directions among the good cuts,
    and the order of local moves), so they span layouts a careful drawer could make at that count; they are not a
    uniform sample of all possible partitions.
    """
    from gridgov.planning import InfeasiblePlan, plan_layout
    from gridgov.regrid import unit_graph, unit_weights

    if n < 1:
        raise InputError(f"must be at least 1, got {n}", field="n")
    layout_id = layout_id if layout_id is not None else store.current_layout_id()
    if layout_id is None:
        raise StoreError("the store has no current layout")
    graph = unit_graph(store)
    units = unit_weights(store)
    lu = store.layout_units(layout_id)
    labels = pd.Series(lu["grid_code"].to_numpy(), index=lu["unit_id"].to_numpy())
    k = int(labels.nunique())
    w = units.set_index("unit_id")["demand"]
    loads = w.groupby(labels.reindex(w.index).to_numpy()).sum()
    own_mm = float(loads.max() / loads.mean())
    own_pp = float(np.median(_polsby_popper(store.layout_grids(layout_id)).to_numpy()))
    rows = []
    for i in range(n):
        if cancel is not None and (cancel() if callable(cancel) else cancel.is_set()):
            from gridgov.planning import PlanCancelled

            raise PlanCancelled("cancelled")
        try:
            # Every sample aims at ±3 % like a fresh regrid; the tolerance is left wide so that a heavy unit makes a
            # sample less balanced rather than an error.
            plan = plan_layout(units, graph=graph, n_grids=k, weight="demand", tolerance=1.0, aim=0.03,
                               respect=respect, seed=seed + i, explore=True)  # type: ignore[arg-type]
        except InfeasiblePlan as err:
            if err.best is None:
                continue
            plan = err.best
        rows.append({"seed": seed + i, "max_over_mean": plan.metrics.max_over_mean,
                     "pp_median": plan.metrics.polsby_popper_median})
        if progress is not None:
            progress("sample", (i + 1) / n)
    samples = pd.DataFrame(rows, columns=["seed", "max_over_mean", "pp_median"])
    if samples.empty:
        raise StoreError("the engine could not draw any alternative layout at this grid count")
    return Outlier(
        balance_percentile=float((samples["max_over_mean"] <= own_mm + 1e-12).mean() * 100),
        compactness_percentile=float((samples["pp_median"] >= own_pp - 1e-12).mean() * 100),
        layout_max_over_mean=own_mm, layout_pp_median=own_pp, samples=samples,
    )
