"""plan_layout: balanced, contiguous, compact responsibility grids over unit grids."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from gridgov.errors import GridgovError, InfeasibleError, InputError
from gridgov.planning import _engine
from gridgov.planning.layout import GridLayout
from gridgov.planning.shareout import (
    feasible_counts,
    pick_range_count,
    range_counts,
    share_out,
    share_out_bound,
)
from gridgov.units import UnitGraph, adjacency

Respect = Literal["community", "none"]
#: How far inside the tolerance the fresh planner aims by default (max/mean 1.03 when the tolerance allows it).
DEFAULT_AIM = 0.03
_SHOW = 5
#: Time budget (seconds) for checking the tolerance and grid counts an infeasible count-mode request suggests; the
#: first check always runs, later ones only while the budget allows another try as long as the last one.
SUGGEST_SECONDS = 4.0
_SUGGEST_TRIES = 8
_SUGGEST_COUNTS = 2


class PlanCancelled(GridgovError):
    """A planning run was stopped through its ``cancel`` flag; nothing was produced."""


class InfeasiblePlan(InfeasibleError):
    """A planning request cannot be met. The message says why and what would work; the fields say it to programs.

    Attributes
    ----------
    reason
        ``too_few_grids``, ``too_many_grids``, ``heavy_unit``, ``island``, ``share_out``, ``range`` or
        ``not_reached``.
    tolerance
        The smallest tolerance that would work (or that the best layout found meets), when one is known.
    n_grids
        Grid counts that would work, nearest first.
    units, communities
        The units or communities at fault.
    best
        The best plan found at the asked grid count, meeting ``tolerance`` (``not_reached``, and after checking
        suggestions for ``share_out``, ``heavy_unit`` and ``island``).

    In count mode the suggested tolerance and grid counts are checked by planning them (a bounded number of tries,
    at most about :data:`SUGGEST_SECONDS`): only suggestions that produced a plan are given.
    """

    def __init__(self, message: str, *, reason: str, tolerance: float | None = None,
                 n_grids: tuple[int, ...] = (), units: tuple[int, ...] = (), communities: tuple[str, ...] = (),
                 best: Plan | None = None, why: str | None = None) -> None:
        super().__init__(message)
        #: The message's first part, why the request fails (without the suggestions).
        self.why = why if why is not None else message
        self.reason = reason
        self.tolerance = tolerance
        self.n_grids = n_grids
        self.units = units
        self.communities = communities
        self.best = best


class _Flag(Protocol):
    def is_set(self) -> bool: ...


Progress = Callable[[str, float], None]
Cancel = _Flag | Callable[[], bool]


@dataclass(frozen=True)
class PlanMetrics:
    """Figures of a plan (definitions in docs/metrics.md and docs/planning.md).

    ``max_over_mean`` and ``min_over_mean`` divide grid loads by the mean load ``W / n_grids``; ``cv`` is their
    standard deviation over the mean; ``bound_max_over_mean`` is the lowest max/mean the share-out of grids to parts
    allows; moved shares compare with ``start`` (None without one).
    """

    n_units: int
    n_grids: int
    weight: str
    mean_load: float
    max_over_mean: float
    min_over_mean: float
    cv: float
    contiguous: bool
    polsby_popper_median: float
    polsby_popper_min: float
    bound_max_over_mean: float
    units_moved: int | None
    households_moved_share: float | None
    incidents_moved_share: float | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary (for JSON, tables)."""
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """The result of :func:`plan_layout`: a validated layout, its figures and how grids were shared out."""

    layout: GridLayout
    metrics: PlanMetrics
    parts: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def unit_grid(self) -> pd.Series:
        """Grid of each unit, indexed by ``unit_id``."""
        return self.layout.unit_grid


class _Monitor:
    """Reports progress and stops the run when the cancel flag is raised (checked between steps)."""

    def __init__(self, progress: Progress | None, cancel: Cancel | None) -> None:
        self._progress = progress
        self._cancel = cancel
        self._ticks = 0
        self._phase = ""
        self._span = (0.0, 1.0)
        self._expected = 0

    def _cancelled(self) -> bool:
        if self._cancel is None:
            return False
        is_set = getattr(self._cancel, "is_set", None)
        return bool(is_set()) if callable(is_set) else bool(self._cancel())  # type: ignore[operator]

    def phase(self, name: str, start: float, end: float, expected: int = 0) -> None:
        self._phase, self._span, self._expected, self._ticks = name, (start, end), expected, 0
        self.check()
        if self._progress is not None:
            self._progress(name, start)

    def check(self) -> None:
        if self._cancelled():
            raise PlanCancelled(f"planning cancelled during {self._phase or 'set-up'}")

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % 32 == 0:
            self.check()
            if self._progress is not None and self._expected:
                a, b = self._span
                self._progress(self._phase, a + (b - a) * min(1.0, self._ticks / self._expected))


@dataclass
class _Request:
    """Everything derived from the arguments that the steps share."""

    graph: UnitGraph
    table: pd.DataFrame
    w: NDArray[np.float64]
    weight_name: str
    comm: NDArray[np.object_] | None
    allowed: NDArray[np.bool_]
    part_of: NDArray[np.int64]
    parts: list[NDArray[np.int64]]
    part_names: list[str]
    island: NDArray[np.bool_]
    tolerance: float
    aim: float
    target: tuple[float, float] | None


# --------------------------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------------------------

def plan_layout(units: pd.DataFrame, *, graph: UnitGraph | None = None, n_grids: int | None = None,
                target: tuple[float, float] | None = None, weight: str | ArrayLike = "demand",
                tolerance: float = 0.10, respect: Respect = "community",
                start: GridLayout | pd.Series | Mapping[int, Hashable] | None = None, minimal_change: bool = False,
                incidents: pd.Series | None = None, aim: float | None = None, seed: int = 0,
                explore: bool = False, progress: Progress | None = None, cancel: Cancel | None = None) -> Plan:
    """Cut the units into responsibility grids: complete, contiguous, balanced and compact.

    Parameters
    ----------
    units
        Unit table with ``unit_id`` (and ``community_code`` when ``respect="community"``, ``households`` for the
        moved-households figure). A GeoDataFrame when ``graph`` is not given.
    graph
        The units' adjacency (:func:`gridgov.units.adjacency`); computed from ``units`` when missing.
    n_grids
        How many grids (count mode). With ``minimal_change`` and no count, the start layout's count is kept.
    target
        ``(low, high)`` load per grid (range mode), e.g. ``(300, 500)`` households. Each part gets the whole number
        of grids whose mean load is nearest the middle of the range, and every grid must end inside the range.
    weight
        Column of ``units`` to balance (``"demand"``, ``"households"`` …), or values aligned on ``units``.
    tolerance
        Count mode: every grid's load must be at most ``(1 + tolerance) ×`` the mean load.
    respect
        ``"community"``: grids never cross a community border and grid counts are shared out to communities by
        weight. ``"none"``: only the connected parts of the district are kept apart.
    start
        The current layout (a :class:`GridLayout` or ``unit_id → grid`` labels). Fresh plans are labelled to
        match it as far as they overlap, and moved shares are reported against it.
    minimal_change
        Start from ``start`` and only make the moves needed to meet the rules (mend broken grids, fit the grid
        count, bring loads within tolerance).
    incidents
        Incident count per ``unit_id`` for the moved-incidents share; default the ``incidents`` column if any.
    aim
        How close to the mean a fresh plan tries to bring every grid before improving compactness; default
        ``min(tolerance, 0.03)``.
    seed
        Seed of the only random choices (tie-breaking cut directions and the order of compactness moves): the same
        inputs and seed give the same layout.
    explore
        Let the seed choose among more of the good cuts (random cut directions; any connected cut up to 1.5 × the
        shortest): different seeds then give visibly different valid layouts, as when sampling the layouts the
        engine can draw (:func:`gridgov.scenarios.outlier`). Off, the shortest cut near the principal axis wins.
    progress
        Called as ``progress(phase, fraction)`` between steps.
    cancel
        A ``threading.Event`` (or a callable returning True) checked between steps; raises :class:`PlanCancelled`.

    Returns
    -------
    Plan
        The validated layout, its metrics and the share-out of grids to parts.

    Raises
    ------
    InfeasiblePlan
        When the request cannot be met; the message names the units or communities at fault and what would work.
    InputError
        When an argument is malformed.
    PlanCancelled
        When ``cancel`` was raised.
    """
    kwargs: dict[str, Any] = {"graph": graph, "target": target, "weight": weight, "tolerance": tolerance,
                              "respect": respect, "start": start, "incidents": incidents, "aim": aim, "seed": seed,
                              "explore": explore, "progress": progress, "cancel": cancel}
    try:
        return _plan_either(units, n_grids=n_grids, minimal_change=minimal_change, kwargs=kwargs)
    except InfeasiblePlan as exc:
        if target is not None or n_grids is None or exc.reason not in _CHECKED:
            raise
        raise _checked_suggestions(exc, units, n_grids, minimal_change, kwargs) from None


def _plan_either(units: pd.DataFrame, *, n_grids: int | None, minimal_change: bool, kwargs: dict[str, Any]) -> Plan:
    target, start = kwargs["target"], kwargs["start"]
    if not minimal_change:
        return _plan(units, n_grids=n_grids, minimal_change=False, **kwargs)
    # Local repair keeps most units where they are, but from a start far from balance it can end up moving more
    # households than a fresh plan labelled to match the start. Minimal change must never move more, so both are
    # made and the one that keeps more households in their grid wins.
    kept: Plan | None = None
    failure: InfeasiblePlan | None = None
    try:
        kept = _plan(units, n_grids=n_grids, minimal_change=True, **kwargs)
    except InfeasiblePlan as exc:
        failure = exc
    count = n_grids
    if count is None and target is None:
        count = kept.metrics.n_grids if kept is not None else _start_count(start)
    try:
        fresh = _plan(units, n_grids=count, minimal_change=False, **kwargs)
    except InfeasiblePlan:
        if kept is None:
            assert failure is not None
            raise failure from None
        return kept
    if kept is not None and (kept.metrics.households_moved_share or 0.0) <= (fresh.metrics.households_moved_share
                                                                               or 0.0):
        return kept
    params = {**fresh.params, "minimal_change": True,
              "method": "fresh plan matched to the start (it moved fewer households than local repair)"}
    return replace(fresh, params=params)


_CHECKED = ("share_out", "heavy_unit", "island", "not_reached")


def _checked_suggestions(exc: InfeasiblePlan, units: pd.DataFrame, k: int, minimal_change: bool,
                         kwargs: dict[str, Any]) -> InfeasiblePlan:
    """The same failure, with only suggestions that planning confirmed: a tolerance that works at ``k`` grids and
    the nearest grid counts that work with the asked tolerance.

    Share-out bounds, heavy units and islands give necessary conditions only; units too coarse for the bound make
    such suggestions fail too. So each one is planned (same units, seed and mode) within a bounded number of tries
    and :data:`SUGGEST_SECONDS`; what was not confirmed is not suggested.
    """
    t0 = time.perf_counter()
    tol = float(kwargs["tolerance"])
    req = _prepare(units, graph=kwargs["graph"], weight=kwargs["weight"], tolerance=tol, respect=kwargs["respect"],
                   aim=kwargs["aim"], target=None, n_grids=None)
    quiet = {**kwargs, "graph": req.graph, "progress": None}
    tries = 0
    last = 0.0

    def attempt(count: int, tolerance: float) -> Plan | InfeasiblePlan | None:
        nonlocal tries, last
        spent = time.perf_counter() - t0
        if tries >= _SUGGEST_TRIES or (tries and spent + last > SUGGEST_SECONDS):
            return None
        tries += 1
        t = time.perf_counter()
        try:
            return _plan_either(units, n_grids=count, minimal_change=minimal_change,
                                kwargs={**quiet, "tolerance": tolerance})
        except InfeasiblePlan as err:
            return err
        finally:
            last = time.perf_counter() - t

    # The smallest tolerance that works at k grids: start from the known lower bound (or the best plan's figure)
    # and raise it to what the best plan found reaches until a run meets it.
    best = exc.best
    ok_tol: float | None = None
    want = exc.tolerance if exc.reason != "not_reached" else None
    if best is not None:
        want = max(want or 0.0, best.metrics.max_over_mean - 1)
    for _ in range(3):
        if want is None or not math.isfinite(want):
            break
        cand = max(math.ceil(want * 1000 - 1e-6) / 1000, tol + 0.001)
        got = attempt(k, cand)
        if isinstance(got, Plan):
            ok_tol, best = cand, got
            break
        if got is None:
            break
        if got.best is not None and (best is None or got.best.metrics.max_over_mean < best.metrics.max_over_mean):
            best = got.best
        nxt = got.tolerance if got.tolerance is not None else None
        if got.best is not None:
            nxt = max(nxt or 0.0, got.best.metrics.max_over_mean - 1)
        if nxt is None or nxt <= cand - 1e-12:
            nxt = cand + 0.001
        want = nxt

    # Grid counts near k whose share-out, heaviest unit and units let a plan meet the asked tolerance.
    part_w = np.array([req.w[p].sum() for p in req.parts])
    part_n = np.array([p.size for p in req.parts])
    options = feasible_counts(part_w, tolerance=tol, max_unit=float(req.w.max()),
                              k_range=(len(req.parts), min(req.graph.n_units, 3 * k + 10)), max_grids=part_n)
    tried: list[int] = []
    works: list[int] = []
    for c in sorted((c for c in options if c != k), key=lambda c: (abs(c - k), c)):
        got = attempt(c, tol)
        if got is None:
            break
        tried.append(c)
        if isinstance(got, Plan):
            works.append(c)
            if len(works) >= _SUGGEST_COUNTS:
                break

    parts: list[str] = []
    if ok_tol is not None and best is not None:
        parts.append(f"at {k} grids a tolerance of {ok_tol:.3f} works (checked: a plan with it reaches max/mean "
                     f"{best.metrics.max_over_mean:.3f})")
    elif best is not None:
        ok_tol = best.metrics.max_over_mean - 1
        parts.append(f"at {k} grids the best layout found reaches max/mean {best.metrics.max_over_mean:.3f}, so it "
                     f"meets a tolerance of {math.ceil(ok_tol * 1000) / 1000:.3f}")
    if works:
        parts.append(f"grid counts that work with tolerance {tol:.4g} (checked by planning them): "
                     f"{', '.join(map(str, sorted(works)))}")
    elif tried:
        parts.append(f"no grid count near {k} was found to meet tolerance {tol:.4g} (tried {', '.join(map(str, tried))}"
                     f"{'' if len(tried) == len(options) - (k in options) else ' within the time allowed'})")
    else:
        parts.append(f"no other grid count meets tolerance {tol:.4g} by the share-out of grids to communities"
                     if not options or options == [k] else "grid counts were not checked within the time allowed")
    extra = " or split the heavy unit" if exc.reason == "heavy_unit" else (
        " or join the cut-off units by a link" if exc.reason == "island" else "")
    message = f"{exc.why}. What works: " + "; ".join(parts) + f"; or use smaller units{extra}"
    return InfeasiblePlan(message, reason=exc.reason, tolerance=ok_tol, n_grids=tuple(works), units=exc.units,
                          communities=exc.communities, best=best, why=exc.why)


def _start_count(start: GridLayout | pd.Series | Mapping[int, Hashable] | None) -> int:
    if isinstance(start, GridLayout):
        return len(start.grids)
    if isinstance(start, pd.Series):
        return int(start.nunique())
    if start is None:
        raise InputError("minimal_change needs the current layout as start", field="start")
    return len(set(start.values()))


def _plan(units: pd.DataFrame, *, graph: UnitGraph | None, n_grids: int | None, target: tuple[float, float] | None,
          weight: str | ArrayLike, tolerance: float, respect: Respect,
          start: GridLayout | pd.Series | Mapping[int, Hashable] | None, minimal_change: bool,
          incidents: pd.Series | None, aim: float | None, seed: int, progress: Progress | None,
          cancel: Cancel | None, explore: bool = False) -> Plan:
    t0 = time.perf_counter()
    mon = _Monitor(progress, cancel)
    mon.phase("prepare", 0.0, 0.05)
    req = _prepare(units, graph=graph, weight=weight, tolerance=tolerance, respect=respect, aim=aim, target=target,
                   n_grids=n_grids)
    rng = np.random.default_rng(seed)
    start_labels = _start_labels(start, req.graph) if start is not None else None
    if minimal_change and start_labels is None:
        raise InputError("minimal_change needs the current layout as start", field="start")
    if n_grids is None and target is None:
        if not minimal_change or start_labels is None:
            raise InputError("give n_grids (a grid count) or target (a per-grid load range)", field="n_grids")
        n_grids = int(pd.Series(start_labels).nunique())

    part_w = np.array([req.w[p].sum() for p in req.parts])
    part_n = np.array([p.size for p in req.parts])
    if target is None:
        assert n_grids is not None
        counts = _counts_for_total(req, part_w, part_n, n_grids)
    else:
        counts = _counts_for_range(req, part_w, part_n)
    k = int(counts.sum())
    mean = float(req.w.sum()) / k
    bound = share_out_bound(part_w, counts)
    specs = _part_specs(req, part_w, counts, mean, relaxed=minimal_change)

    mon.phase("cut", 0.05, 0.45, expected=max(1, k - len(req.parts)))
    rows = np.repeat(np.arange(req.graph.n_units), np.diff(req.graph.indptr))
    cols = req.graph.indices
    a_rows, a_cols = rows[req.allowed], cols[req.allowed]
    adj = sparse.csr_matrix((req.graph.shared_m[req.allowed] + 1e-9, (a_rows, a_cols)),
                            shape=(req.graph.n_units,) * 2)
    names: list[Hashable | None]
    if minimal_change:
        assert start_labels is not None
        labels, names = _from_start(req, adj, start_labels, specs, rng)
    else:
        labels = _engine.bisect(adj, req.graph.x, req.graph.y, req.w, req.graph.area_m2, specs, rng, mon.tick,
                                explore=explore)
        names = [None] * k
    work = _work(req, adj, labels, specs)
    work.adj = adj

    mon.phase("balance", 0.45, 0.65)
    if minimal_change:
        work.diffuse(mon.tick)
    work.balance(mon.tick, rng)
    if minimal_change and any(work.outside_limits(g) for g in range(work.k)):
        # A second, more generous spreading for what single moves could not fix.
        work.diffuse(mon.tick, margin=0.03)
        work.balance(mon.tick, rng)
    if not minimal_change:
        mon.phase("compact", 0.65, 0.95)
        work.compact(mon.tick, rng)
        work.balance(mon.tick, rng)
        if len(req.parts) > 1:
            # With borders respected the heaviest part's grids make max/mean: bring them down to its target.
            work.lower_max(mon.tick, rng)
            work.compact(mon.tick, rng, passes=2)
    mon.phase("finish", 0.95, 1.0)
    labels = np.asarray(work.assign, dtype=np.int64)
    layout, names = _label(req, labels, names, start_labels)
    plan = _finish(req, layout, counts, part_w, bound, start_labels, incidents, t0,
                   params={"n_grids": n_grids, "target": target, "weight": req.weight_name, "tolerance": tolerance,
                           "respect": respect, "minimal_change": minimal_change, "aim": req.aim, "seed": seed})
    _check_reached(req, plan, work, specs, mean)
    if progress is not None:
        progress("done", 1.0)
    return plan


# --------------------------------------------------------------------------------------------------------------------
# Preparing the request
# --------------------------------------------------------------------------------------------------------------------

def _ids(values: Any) -> str:
    vals = list(np.asarray(values).tolist())
    more = f" … ({len(vals)} in all)" if len(vals) > _SHOW else ""
    return ", ".join(str(v) for v in vals[:_SHOW]) + more


def _prepare(units: pd.DataFrame, *, graph: UnitGraph | None, weight: str | ArrayLike, tolerance: float,
             respect: str, aim: float | None, target: tuple[float, float] | None,
             n_grids: int | None) -> _Request:
    if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance > 0):
        raise InputError(f"must be > 0, got {tolerance!r}", field="tolerance")
    if respect not in ("community", "none"):
        raise InputError(f"must be 'community' or 'none', got {respect!r}", field="respect")
    if n_grids is not None and target is not None:
        raise InputError("give either n_grids or target, not both", field="target")
    if n_grids is not None and (not isinstance(n_grids, int | np.integer) or n_grids < 1):
        raise InputError(f"must be a whole number >= 1, got {n_grids!r}", field="n_grids")
    if target is not None:
        if len(target) != 2 or not (0 <= float(target[0]) < float(target[1])):
            raise InputError(f"must be (low, high) with 0 <= low < high, got {target!r}", field="target")
        target = (float(target[0]), float(target[1]))
    if aim is None:
        aim = min(float(tolerance), DEFAULT_AIM)
    if not (math.isfinite(aim) and aim > 0):
        raise InputError(f"must be > 0, got {aim!r}", field="aim")
    if "unit_id" not in units.columns:
        raise InputError("is missing from units", field="unit_id")
    if graph is None:
        if not isinstance(units, gpd.GeoDataFrame):
            raise InputError("units without geometry need their adjacency: pass graph=adjacency(...)", field="graph")
        graph = adjacency(units)
    table = _align(units, graph)
    w, weight_name = _weights(units, table, weight)
    comm = table["community_code"].astype(str).to_numpy(dtype=object) if "community_code" in table else None
    if respect == "community" and comm is None:
        raise InputError("respect='community' needs a community_code column in units", field="respect")
    n = graph.n_units
    rows = np.repeat(np.arange(n), np.diff(graph.indptr))
    cols = graph.indices
    allowed = comm[rows] == comm[cols] if respect == "community" and comm is not None else np.ones(cols.size, bool)
    mat = sparse.coo_matrix((np.ones(int(allowed.sum())), (rows[allowed], cols[allowed])), shape=(n, n))
    _, raw = csgraph.connected_components(mat, directed=False)
    # Parts in a stable order: by community, then largest first, then by smallest unit.
    frame = pd.DataFrame({"part": raw, "pos": np.arange(n), "comm": comm if comm is not None else ""})
    info = frame.groupby("part").agg(comm=("comm", "first"), size=("pos", "size"), first=("pos", "min"))
    info["w"] = np.bincount(raw, weights=w)
    key_comm = info["comm"] if respect == "community" else ""
    info = info.assign(key_comm=key_comm).sort_values(["key_comm", "size", "first"], ascending=[True, False, True])
    rank = pd.Series(np.arange(len(info)), index=info.index)
    part_of = rank.reindex(raw).to_numpy(dtype=np.int64)
    order = np.argsort(part_of, kind="stable")
    splits = np.flatnonzero(np.diff(part_of[order])) + 1
    parts = [np.sort(p) for p in np.split(order, splits)]
    island = np.zeros(len(parts), dtype=bool)
    names: list[str] = []
    seen: set[str] = set()
    ids = graph.unit_ids
    for i, p in enumerate(parts):
        group = str(info["key_comm"].iloc[i])
        if group in seen:
            island[i] = True
        seen.add(group)
        who = f"community {group}" if respect == "community" else "the district"
        names.append(f"units {_ids(ids[p])} of {who}" if island[i] else who)
    return _Request(graph, table, w, weight_name, comm, allowed, part_of, parts, names, island, float(tolerance),
                    float(aim), target)


def _align(units: pd.DataFrame, graph: UnitGraph) -> pd.DataFrame:
    ids = pd.Index(units["unit_id"].to_numpy())
    if ids.has_duplicates:
        raise InputError(f"unit_id {ids[ids.duplicated()][0]} appears more than once", field="unit_id")
    missing = pd.Index(graph.unit_ids).difference(ids)
    extra = ids.difference(pd.Index(graph.unit_ids))
    if len(missing) or len(extra):
        raise InputError(f"units and graph differ: {len(missing)} graph unit(s) missing from units "
                         f"({_ids(missing)}), {len(extra)} unit(s) not in the graph ({_ids(extra)})", field="graph")
    pos = ids.get_indexer(graph.unit_ids)
    table = pd.DataFrame(units.drop(columns=[c for c in ("geometry",) if c in units.columns])).iloc[pos]
    return table.reset_index(drop=True).assign(_row=pos)


def _weights(units: pd.DataFrame, table: pd.DataFrame, weight: str | ArrayLike) -> tuple[NDArray[np.float64], str]:
    if isinstance(weight, str):
        if weight not in table.columns:
            hint = " (compute it with gridgov.units.demand_weights)" if weight == "demand" else ""
            raise InputError(f"units have no column {weight!r}{hint}", field="weight")
        values = pd.to_numeric(table[weight], errors="coerce").to_numpy(dtype=float)
        name = weight
    else:
        raw = np.asarray(weight.to_numpy() if isinstance(weight, pd.Series) else weight, dtype=float)
        if raw.shape != (len(units),):
            raise InputError(f"must have one value per unit ({len(units)}), got shape {raw.shape}", field="weight")
        values = raw[table["_row"].to_numpy()]
        name = str(getattr(weight, "name", None) or "weight")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        unit = table["unit_id"].iloc[int(np.flatnonzero(bad)[0])]
        raise InputError(f"must be numbers >= 0; unit {unit} has {values[bad][0]}", field="weight")
    if values.sum() <= 0:
        raise InputError("adds up to 0 over all units: there is nothing to balance", field="weight")
    return values, name


def _start_labels(start: GridLayout | pd.Series | Mapping[int, Hashable], graph: UnitGraph) -> NDArray[np.object_]:
    """Start grid of each unit in graph order (None for units the start layout does not cover)."""
    if isinstance(start, GridLayout):
        series = start.unit_grid
    elif isinstance(start, pd.Series):
        series = start
    else:
        series = pd.Series(dict(start), dtype=object)
    if series.index.has_duplicates:
        raise InputError(f"lists unit {series.index[series.index.duplicated()][0]} more than once", field="start")
    values = np.array(series.reindex(graph.unit_ids).to_numpy(dtype=object), dtype=object)
    values[pd.isna(values)] = None
    return values


# --------------------------------------------------------------------------------------------------------------------
# How many grids each part gets
# --------------------------------------------------------------------------------------------------------------------

def _counts_for_total(req: _Request, part_w: NDArray[np.float64], part_n: NDArray[np.int64],
                      k: int) -> NDArray[np.int64]:
    total = float(req.w.sum())
    tol = req.tolerance
    n_parts = len(req.parts)
    ids = req.graph.unit_ids
    if k < n_parts:
        raise InfeasiblePlan(
            f"{k} grids are too few: the district has {n_parts} parts that cannot share a grid "
            f"({'; '.join(req.part_names[:_SHOW])}{' …' if n_parts > _SHOW else ''}); use at least {n_parts} grids",
            reason="too_few_grids", n_grids=(n_parts,))
    if k > req.graph.n_units:
        raise InfeasiblePlan(f"{k} grids are more than the {req.graph.n_units} units; use at most "
                             f"{req.graph.n_units} grids", reason="too_many_grids", n_grids=(req.graph.n_units,))
    mean = total / k
    cap = (1 + tol) * mean
    heavy = int(np.argmax(req.w))
    if req.w[heavy] > cap + 1e-9:
        most = max(1, math.floor((1 + tol) * total / req.w[heavy] + 1e-9))
        need_tol = req.w[heavy] / mean - 1
        why = (f"unit {ids[heavy]} alone weighs {req.w[heavy]:.4g} ({req.weight_name}), more than one grid may "
               f"carry: {1 + tol:.2f} × the mean load {mean:.4g} = {cap:.4g}")
        raise InfeasiblePlan(
            f"{why}. Use at most {most} grids, a tolerance of at "
            f"least {math.ceil(need_tol * 1000) / 1000:.3f}, or split the unit into smaller ones", why=why,
            reason="heavy_unit", tolerance=need_tol, n_grids=(most,), units=(int(ids[heavy]),))
    small = [i for i in np.flatnonzero(req.island) if part_w[i] < (1 - tol) * mean - 1e-9]
    if small:
        i = small[0]
        p = req.parts[i]
        desc = _nearest_across(req, i)
        share = part_w[i] / mean
        count = f" ({len(small)} such pieces)" if len(small) > 1 else ""
        need_k = math.ceil((1 - tol) * total / part_w[i]) if part_w[i] > 0 else None
        more = f", or at least {need_k} grids" if need_k and need_k <= min(req.graph.n_units, 3 * k) else ""
        why = (f"{req.part_names[i]} are cut off from the rest (no shared edge) and weigh {share:.0%} of a grid, too "
               f"little for a grid of their own within tolerance {tol:g}{count}. Join them with a link for the "
               f"bridge or ferry that serves them, e.g. graph.with_links([{desc}])")
        raise InfeasiblePlan(
            f"{req.part_names[i]} are cut off from the rest (no shared edge) and weigh {share:.0%} of a grid, too "
            f"little for a grid of their own within tolerance {tol:g}{count}. "
            f"Join them with a link for the bridge or ferry that serves them, e.g. "
            f"graph.with_links([{desc}]); or use a tolerance of at least {1 - share:.3f}{more}",
            reason="island", tolerance=1 - share, why=why, n_grids=(need_k,) if need_k else (),
            units=tuple(int(u) for u in req.graph.unit_ids[p]))
    counts = share_out(part_w, k, max_grids=part_n)
    bound = share_out_bound(part_w, counts)
    if bound > 1 + tol + 1e-9:
        worst = int(np.argmax(part_w / counts))
        options = feasible_counts(part_w, tolerance=tol, max_unit=float(req.w.max()),
                                  k_range=(n_parts, min(req.graph.n_units, 3 * k + 10)), max_grids=part_n)
        near = tuple(sorted(options, key=lambda c: (abs(c - k), c))[:2])
        why = (f"{req.part_names[worst]} weighs {part_w[worst] / mean:.2f} grids' worth; cut into the "
               f"{counts[worst]} grid(s) it gets when {k} grids are shared out to communities by weight, its grids "
               f"average {bound:.3f} × the mean load, above 1 + tolerance = {1 + tol:.3f}. Whole grids cannot do "
               f"better at {k} grids: no tolerance below {math.ceil((bound - 1) * 1000) / 1000:.3f} can work")
        alt = f"; grid counts that work with tolerance {tol:g}: {', '.join(map(str, sorted(near)))}" if near else ""
        raise InfeasiblePlan(
            f"{req.part_names[worst]} weighs {part_w[worst] / mean:.2f} grids' worth; cut into the {counts[worst]} "
            f"grid(s) it gets when {k} grids are shared out to communities by weight, its grids average "
            f"{bound:.3f} × the mean load, above 1 + tolerance = {1 + tol:.3f}. Whole grids cannot do better: the "
            f"smallest tolerance that works is {math.ceil((bound - 1) * 1000) / 1000:.3f}{alt}",
            reason="share_out", tolerance=bound - 1, n_grids=near, why=why,
            communities=(str(req.comm[req.parts[worst][0]]),) if req.comm is not None else ())
    return counts


def _nearest_across(req: _Request, part: int) -> str:
    """``(own_unit, other_unit)``: the closest pair of centroids between a cut-off part and the rest of its group."""
    g = req.graph
    own = req.parts[part]
    group = req.comm == req.comm[own[0]] if _respecting(req) and req.comm is not None else np.ones(g.n_units, bool)
    other = np.flatnonzero(group & (req.part_of != part))
    if other.size == 0:
        other = np.flatnonzero(req.part_of != part)
    xy = np.column_stack([g.x, g.y])
    dist, j = cKDTree(xy[other]).query(xy[own])
    i = int(np.argmin(dist))
    return f"({g.unit_ids[own[i]]}, {g.unit_ids[other[int(j[i])]]})"


def _counts_for_range(req: _Request, part_w: NDArray[np.float64], part_n: NDArray[np.int64]) -> NDArray[np.int64]:
    assert req.target is not None
    lo, hi = req.target
    ids = req.graph.unit_ids
    heavy = int(np.argmax(req.w))
    if req.w[heavy] > hi + 1e-9:
        raise InfeasiblePlan(
            f"unit {ids[heavy]} alone weighs {req.w[heavy]:.4g} ({req.weight_name}), above the most a grid may "
            f"carry ({hi:g}); raise the upper end of the range to at least {req.w[heavy]:.4g} or split the unit",
            reason="heavy_unit", units=(int(ids[heavy]),))
    problems: list[str] = []
    bad: list[int] = []
    for i, wp in enumerate(part_w):
        fewest, most = range_counts(float(wp), lo, hi, int(part_n[i]))
        if fewest <= most:
            continue
        bad.append(i)
        if wp < lo:
            problems.append(f"{req.part_names[i]} weighs {wp:.4g}, less than one grid's minimum {lo:g} (lower the "
                            f"minimum to {wp:.4g}{', or join it by a link' if req.island[i] else ''})")
        else:
            under, over = wp / fewest, wp / (fewest - 1)
            low, high = math.floor(under * 100) / 100, math.ceil(over * 100) / 100
            problems.append(f"{req.part_names[i]} weighs {wp:.4g}: {fewest - 1} grid(s) would carry {over:.4g} "
                            f"each (> {hi:g}), {fewest} grids {under:.4g} each (< {lo:g}); lower the minimum to "
                            f"{low:g} or raise the maximum to {high:g}")
    if problems:
        raise InfeasiblePlan(
            f"{len(problems)} part(s) cannot be cut into whole grids inside the range {lo:g}–{hi:g}: "
            + "; ".join(problems[:_SHOW]) + (" …" if len(problems) > _SHOW else ""),
            reason="range", communities=tuple(str(req.comm[req.parts[i][0]]) for i in bad) if req.comm is not None
            else ())
    return np.array([pick_range_count(float(wp), lo, hi, int(part_n[i])) for i, wp in enumerate(part_w)],
                    dtype=np.int64)


def _part_specs(req: _Request, part_w: NDArray[np.float64], counts: NDArray[np.int64], mean: float, *,
                relaxed: bool) -> list[_engine.Part]:
    """Target load and band of each part's grids; the hard cap is the tolerance (count) or the range."""
    specs = []
    t_max = float((part_w / counts).max())
    # With several parts, the heaviest part's grids set max/mean: they are balanced tighter (1 %) so that max/mean
    # comes as close to the share-out bound as the units allow; lighter parts keep the ordinary aim.
    top = min(req.aim, 0.01) if len(req.parts) > 1 else req.aim
    for p, wp, kp in zip(req.parts, part_w, counts, strict=True):
        t = float(wp) / int(kp)
        if req.target is None:
            cap, floor = (1 + req.tolerance) * mean, 0.0
        else:
            floor, cap = req.target
        if relaxed:
            hi, lo = cap, floor
        else:
            hi, lo = min(cap, t * (1 + req.aim), t_max * (1 + top)), max(floor, t * (1 - req.aim))
        specs.append(_engine.Part(index=p, n_grids=int(kp), target=t, hi=max(hi, t), lo=min(lo, t), cap=cap,
                                  floor=floor))
    return specs


# --------------------------------------------------------------------------------------------------------------------
# Local search set-up, minimal change
# --------------------------------------------------------------------------------------------------------------------

def _work(req: _Request, adj: sparse.csr_matrix, labels: NDArray[np.int64], specs: list[_engine.Part]) -> _engine.Work:
    k = int(labels.max()) + 1
    target, hi, lo, cap, floor = ([0.0] * k for _ in range(5))
    grid_part = np.zeros(k, dtype=np.int64)
    grid_part[labels] = req.part_of
    for g in range(k):
        s = specs[int(grid_part[g])]
        target[g], hi[g], lo[g], cap[g], floor[g] = s.target, s.hi, s.lo, s.cap, s.floor
    nbr = [adj.indices[adj.indptr[i]:adj.indptr[i + 1]].tolist() for i in range(adj.shape[0])]
    lens = [(adj.data[adj.indptr[i]:adj.indptr[i + 1]] - 1e-9).tolist() for i in range(adj.shape[0])]
    g = req.graph
    return _engine.Work(nbr, lens, req.w.tolist(), g.perimeter_m.tolist(), g.area_m2.tolist(), g.x, g.y,
                        labels.tolist(), target=target, hi=hi, lo=lo, cap=cap, floor=floor)


def _from_start(req: _Request, adj: sparse.csr_matrix, start: NDArray[np.object_], specs: list[_engine.Part],
                rng: np.random.Generator) -> tuple[NDArray[np.int64], list[Hashable | None]]:
    """Grid index of every unit taken from the start layout, mended so that it can be balanced.

    Units the start leaves out and pieces of a grid cut off from its main piece (or lying in another community)
    join the neighbouring grid they share most boundary with, unless they are big enough (half a grid) to be a grid
    of their own. Then parts with too many grids merge their lightest grid into its lightest neighbour and parts
    with too few split their heaviest grid in two.
    """
    n = req.graph.n_units
    coo = adj.tocoo()
    rows, cols, data = coo.row, coo.col, coo.data
    key = pd.Series(start, dtype=object).fillna("\0none").astype(str).to_numpy()
    same = key[rows] == key[cols]
    mat = sparse.coo_matrix((np.ones(int(same.sum())), (rows[same], cols[same])), shape=(n, n))
    _, piece = csgraph.connected_components(mat, directed=False)
    n_pieces = int(piece.max()) + 1
    piece_w = np.bincount(piece, weights=req.w, minlength=n_pieces)
    piece_n = np.bincount(piece, minlength=n_pieces)
    piece_part = np.zeros(n_pieces, dtype=np.int64)
    piece_part[piece] = req.part_of
    piece_label = np.empty(n_pieces, dtype=object)
    piece_label[piece] = start
    # The main piece of each start grid keeps its label: the heaviest, then the one with most units.
    frame = pd.DataFrame({"label": [str(v) if v is not None else None for v in piece_label], "w": piece_w,
                          "n": piece_n, "piece": np.arange(n_pieces)})
    frame = frame.sort_values(["w", "n", "piece"], ascending=[False, False, True])
    keeper = frame.dropna(subset=["label"]).drop_duplicates("label")["piece"].to_numpy()
    keeps = np.zeros(n_pieces, dtype=bool)
    keeps[keeper] = True
    targets = np.array([specs[int(p)].target for p in piece_part])
    alone = keeps | (piece_w >= 0.5 * targets)
    # Pieces too small to stand alone join a neighbour (union-find over pieces, lightest first).
    parent = np.arange(n_pieces)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    cross = piece[rows] != piece[cols]
    edges = pd.DataFrame({"a": piece[rows[cross]], "b": piece[cols[cross]], "len": data[cross]})
    shared = edges.groupby(["a", "b"])["len"].sum()
    by_piece: dict[int, list[tuple[float, int]]] = {}
    for (a, b), ln in shared.items():
        by_piece.setdefault(int(a), []).append((float(ln), int(b)))
    for p in np.argsort(piece_w, kind="stable").tolist():
        if alone[p]:
            continue
        options: dict[int, float] = {}
        for ln, b in by_piece.get(p, []):
            root = find(b)
            if root != find(p):
                options[root] = options.get(root, 0.0) + ln
        if options:
            best = max(options.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            parent[find(p)] = best
    roots = np.array([find(int(p)) for p in range(n_pieces)])
    grid_of_piece, root_index = np.unique(roots, return_inverse=True)
    labels = root_index[piece].astype(np.int64)
    names: list[Hashable | None] = [piece_label[r] if keeps[r] else None for r in grid_of_piece]

    # Fit each part's grid count.
    for spec in specs:
        while True:
            in_part = np.unique(labels[spec.index])
            if in_part.size == spec.n_grids:
                break
            loads = np.bincount(labels, weights=req.w, minlength=len(names))
            if in_part.size > spec.n_grids:
                light = int(in_part[np.argmin(loads[in_part])])
                members = np.flatnonzero(labels == light)
                nb = np.unique(labels[adj[members].indices])
                nb = nb[(nb != light) & np.isin(nb, in_part)]
                if nb.size == 0:
                    break
                into = int(nb[np.argmin(loads[nb])])
                labels[members] = into
                if names[into] is None:
                    names[into] = names[light]
                labels, names = _compact_labels(labels, names)
            else:
                heavy = int(in_part[np.argmax(loads[in_part])])
                members = np.flatnonzero(labels == heavy)
                if members.size < 2:
                    break
                side = _engine._split(adj, members, req.graph.x[members], req.graph.y[members], req.w[members],
                                      req.graph.area_m2[members], 1, 1, rng)
                keep_a = req.w[members[side]].sum() >= req.w[members[~side]].sum()
                moved = members[~side] if keep_a else members[side]
                labels[moved] = len(names)
                names.append(None)
    return labels, names


def _compact_labels(labels: NDArray[np.int64], names: list[Hashable | None]) -> tuple[NDArray[np.int64],
                                                                                         list[Hashable | None]]:
    used, new = np.unique(labels, return_inverse=True)
    return new.astype(np.int64), [names[int(u)] for u in used]


# --------------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------------

def _label(req: _Request, labels: NDArray[np.int64], names: list[Hashable | None],
           start: NDArray[np.object_] | None) -> tuple[GridLayout, list[Hashable]]:
    """Validated layout with final grid labels: kept start labels, matched start labels, or 1…k."""
    k = int(labels.max()) + 1
    final: list[Hashable | None] = list(names)
    if start is not None:
        known = np.array([s is not None for s in start])
        if all(v is None for v in final) and known.any():
            final = _match_start(req, labels, start, k)
        taken = {v for v in final if v is not None}
        ints = all(isinstance(v, int | np.integer) for v in start[known]) if known.any() else True
        counter = (max(int(v) for v in start[known]) if known.any() and ints else 0)
        for g in range(k):
            if final[g] is None:
                counter += 1
                label: Hashable = counter if ints else f"new-{counter}"
                while label in taken:
                    counter += 1
                    label = counter if ints else f"new-{counter}"
                final[g] = label
                taken.add(label)
    else:
        final = list(range(1, k + 1))
    grids = tuple(final)
    layout = GridLayout._trusted(req.graph, labels, grids,  # type: ignore[arg-type]
                                 communities=req.comm if _respecting(req) else None)
    return layout, list(grids)


def _respecting(req: _Request) -> bool:
    return req.comm is not None and not bool(req.allowed.all())


def _match_start(req: _Request, labels: NDArray[np.int64], start: NDArray[np.object_],
                 k: int) -> list[Hashable | None]:
    """Give each new grid the start label it overlaps most (one-to-one, maximising kept households and weight)."""
    known = np.flatnonzero(np.array([s is not None for s in start]))
    old_codes, old_labels = pd.factorize(pd.Series(start[known], dtype=object))
    hh = req.table["households"].to_numpy(dtype=float) if "households" in req.table else np.zeros(labels.size)
    score = np.ones(labels.size) / labels.size
    if hh.sum() > 0:
        score = score + hh / hh.sum()
    score = score + req.w / req.w.sum()
    overlap = np.zeros((k, len(old_labels)))
    np.add.at(overlap, (labels[known], old_codes), score[known])
    r, c = linear_sum_assignment(-overlap)
    out: list[Hashable | None] = [None] * k
    for g, o in zip(r.tolist(), c.tolist(), strict=True):
        if overlap[g, o] > 0:
            out[g] = old_labels[o]
    return out


def _finish(req: _Request, layout: GridLayout, counts: NDArray[np.int64], part_w: NDArray[np.float64],
            bound: float, start: NDArray[np.object_] | None, incidents: pd.Series | None, t0: float,
            params: dict[str, Any]) -> Plan:
    loads = np.bincount(layout.grid_index, weights=req.w, minlength=layout.n_grids)
    mean = float(req.w.sum()) / layout.n_grids
    shapes = layout.shapes()
    units_moved = hh_share = inc_share = None
    if start is not None:
        final = layout.unit_grid.to_numpy(dtype=object)
        moved = np.array([s is not None and s != f for s, f in zip(start, final, strict=True)])
        units_moved = int(moved.sum())
        hh_share = _share(req.table, "households", None, moved)
        inc_share = _share(req.table, "incidents", incidents, moved)
    metrics = PlanMetrics(
        n_units=req.graph.n_units, n_grids=layout.n_grids, weight=req.weight_name, mean_load=mean,
        max_over_mean=float(loads.max() / mean), min_over_mean=float(loads.min() / mean),
        cv=float(loads.std() / mean), contiguous=True,
        polsby_popper_median=float(shapes["polsby_popper"].median()),
        polsby_popper_min=float(shapes["polsby_popper"].min()), bound_max_over_mean=float(bound),
        units_moved=units_moved, households_moved_share=hh_share, incidents_moved_share=inc_share,
        seconds=time.perf_counter() - t0)
    parts = pd.DataFrame({
        "part": np.arange(len(req.parts)),
        "community_code": [str(req.comm[p[0]]) if req.comm is not None else "" for p in req.parts],
        "island": req.island,
        "n_units": [p.size for p in req.parts],
        "weight": part_w,
        "n_grids": counts,
        "mean_load_over_mean": part_w / counts / mean,
    })
    return Plan(layout=layout, metrics=metrics, parts=parts, params=params)


def _share(table: pd.DataFrame, column: str, given: pd.Series | None, moved: NDArray[np.bool_]) -> float | None:
    if given is not None:
        values = given.reindex(table["unit_id"].to_numpy()).fillna(0).to_numpy(dtype=float)
    elif column in table.columns:
        values = pd.to_numeric(table[column], errors="coerce").fillna(0).to_numpy(dtype=float)
    else:
        return None
    total = values.sum()
    return float(values[moved].sum() / total) if total > 0 else 0.0


def _check_reached(req: _Request, plan: Plan, work: _engine.Work, specs: list[_engine.Part], mean: float) -> None:
    """Raise when the hard limits were not met, carrying the best plan and the tolerance it does meet."""
    loads = np.asarray(work.load)
    m = plan.metrics
    if req.target is None:
        cap = (1 + req.tolerance) * mean
        if loads.max() <= cap + 1e-9:
            return
        reached = m.max_over_mean - 1
        why = (f"no layout with max/mean <= {1 + req.tolerance:.3f} was found (the best found reaches "
               f"{m.max_over_mean:.3f}; the share-out allows {m.bound_max_over_mean:.3f}): units are too coarse for "
               f"this tolerance here")
        raise InfeasiblePlan(
            f"no layout with max/mean <= {1 + req.tolerance:.3f} was found (the best found reaches "
            f"{m.max_over_mean:.3f}; the share-out allows {m.bound_max_over_mean:.3f}): units are too coarse for this "
            f"tolerance here. A tolerance of {math.ceil(reached * 1000) / 1000:.3f} works (the best plan found meets "
            f"it), or use fewer grids or smaller units", reason="not_reached", tolerance=reached,
            best=plan, why=why)
    lo, hi = req.target
    if loads.max() <= hi + 1e-9 and loads.min() >= lo - 1e-9:
        return
    raise InfeasiblePlan(
        f"no layout with every grid between {lo:g} and {hi:g} was found (the best found spans {loads.min():.4g}–"
        f"{loads.max():.4g}); widen the range to {min(lo, loads.min()):.4g}–"
        f"{max(hi, loads.max()):.4g} or use smaller units", reason="not_reached", best=plan)
