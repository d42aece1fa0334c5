"""Staffing: demand hours against supply hours per grid, the gap in hours and FTE, coverage and hiring need.

Everything here is pure pandas/numpy on small frames (one row per grid or per worker), fast enough to recompute on
every edit in the dashboard; :func:`staffing_report` is the one function that reads the store. The model and every
default are explained in ``docs/staffing.md``.

Frames returned per grid are indexed by grid code (an unnamed index) *and* carry a ``grid_code`` column, in the
order of the demand frame, so ``table.loc[code]`` and ``table["grid_code"]`` both work.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridgov.errors import InputError

if TYPE_CHECKING:
    from gridgov.config import Settings
    from gridgov.store import Store

#: Statuses of a grid in the staffing table, worst first.
STATUSES: tuple[str, ...] = ("uncovered", "under", "ok", "over")
ROLES: tuple[str, ...] = ("primary", "backup")


@dataclass(frozen=True)
class StaffingParams:
    """Parameters of the demand and supply model (see ``docs/staffing.md`` for why each default).

    Parameters
    ----------
    window_days
        Length of the incident window ending at "now"; its handling hours are averaged per week.
    patrol_hours_per_km2
        Routine patrol hours per week per km² of grid area (0.4 h per 100 m unit).
    patrol_hours_per_100_households
        Routine patrol hours per week per 100 households.
    vulnerable_share
        Share of households that need routine visits (elderly living alone, disabled, ...).
    visit_minutes
        Length of one routine visit.
    visits_per_week
        Visits per vulnerable household per week (0.25: one every four weeks).
    backup_weight
        How much a backup role counts against a primary role when a worker's hours are split over their grids.
    standard_week_hours
        Hours of one full-time worker (FTE).
    band
        A grid is "ok" when its gap is within ± ``band`` × its demand.
    overload_threshold
        A worker is overloaded when the demand on them divided by their hours exceeds this.
    """

    window_days: int = 91
    patrol_hours_per_km2: float = 40.0
    patrol_hours_per_100_households: float = 0.6
    vulnerable_share: float = 0.03
    visit_minutes: float = 30.0
    visits_per_week: float = 0.25
    backup_weight: float = 0.25
    standard_week_hours: float = 40.0
    band: float = 0.10
    overload_threshold: float = 1.10

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("window_days", isinstance(self.window_days, int | np.integer) and not isinstance(self.window_days, bool)
             and self.window_days >= 1, "a whole number of days >= 1"),
            ("patrol_hours_per_km2", _finite(self.patrol_hours_per_km2) and self.patrol_hours_per_km2 >= 0, ">= 0"),
            ("patrol_hours_per_100_households", _finite(self.patrol_hours_per_100_households)
             and self.patrol_hours_per_100_households >= 0, ">= 0"),
            ("vulnerable_share", _finite(self.vulnerable_share) and 0 <= self.vulnerable_share <= 1,
             "between 0 and 1"),
            ("visit_minutes", _finite(self.visit_minutes) and self.visit_minutes >= 0, ">= 0"),
            ("visits_per_week", _finite(self.visits_per_week) and self.visits_per_week >= 0, ">= 0"),
            ("backup_weight", _finite(self.backup_weight) and 0 < self.backup_weight <= 1, "> 0 and <= 1"),
            ("standard_week_hours", _finite(self.standard_week_hours) and 0 < self.standard_week_hours <= 168,
             "> 0 and <= 168"),
            ("band", _finite(self.band) and 0 <= self.band < 1, ">= 0 and < 1"),
            ("overload_threshold", _finite(self.overload_threshold) and self.overload_threshold > 0, "> 0"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise InputError(f"must be {what}, got {getattr(self, name)!r}", field=name)

    @property
    def weeks(self) -> float:
        """Length of the incident window in weeks."""
        return self.window_days / 7.0

    def replace(self, **changes: Any) -> StaffingParams:
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> StaffingParams:
        """Build from a mapping such as a TOML ``[staffing]`` table; unknown keys are an error naming the key."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise InputError(f"unknown staffing parameter; known: {', '.join(sorted(known))}", field=key)
        return cls(**values)

    @classmethod
    def from_toml(cls, path: Path | str) -> StaffingParams:
        """Read the ``[staffing]`` table of a TOML file (defaults for what it leaves out)."""
        with Path(path).open("rb") as fh:
            raw = tomllib.load(fh)
        return cls.from_mapping(dict(raw.get("staffing", {})))

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> StaffingParams:
        """Parameters of a deployment: its ``[staffing]`` table and ``standard_week_hours``, then ``overrides``."""
        values: dict[str, Any] = {"standard_week_hours": float(settings.standard_week_hours)}
        values.update(dict(getattr(settings, "staffing", {}) or {}))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value)) and not isinstance(value, bool)
    except (TypeError, ValueError):
        return False


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} needs column(s) {missing}; it has {list(frame.columns)}", field=missing[0])


def _frame(data: dict[str, Any], index: np.ndarray | None = None) -> pd.DataFrame:
    """A DataFrame from column arrays; object columns holding ``None`` stay object (pandas would make them ``str``
    with NaN), so that a missing worker reads as ``None`` everywhere."""
    cols = {k: pd.Series(v, dtype=object) if isinstance(v, np.ndarray) and v.dtype == object
            and any(x is None for x in v.tolist()) else v for k, v in data.items()}
    out = pd.DataFrame(cols)
    if index is not None:
        out.index = pd.Index(index, dtype=object)
    return out


def _by_code(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its index set to the grid codes (unnamed) and ``grid_code`` kept as a column."""
    out = frame.copy()
    out.index = pd.Index(out["grid_code"].to_numpy(dtype=object), name=None)
    return out


# ----------------------------------------------------------------------------------------------------------------
# demand and supply
# ----------------------------------------------------------------------------------------------------------------
def grid_demand(grids: pd.DataFrame, incident_hours: pd.Series, params: StaffingParams) -> pd.DataFrame:
    """Hours of work per week in each grid.

    Parameters
    ----------
    grids
        ``grid_code, area_m2, households`` (any other columns, e.g. ``community_code``, are kept; a geometry
        column is dropped).
    incident_hours
        Handling hours of the incidents reported in the window, per grid code (index); missing grids have none.
    params
        The model.

    Returns
    -------
    pandas.DataFrame
        The grid columns plus ``incident_hours`` (per week), ``patrol_hours``, ``visit_hours`` and ``demand_hours``
        (their sum, per week).

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"grid_code": ["A"], "area_m2": [250_000.0], "households": [1000]})
    >>> d = grid_demand(g, pd.Series({"A": 91.0}), StaffingParams())
    >>> [round(float(d.loc["A", c]), 2) for c in ("incident_hours", "patrol_hours", "visit_hours", "demand_hours")]
    [7.0, 16.0, 3.75, 26.75]
    """
    _require(grids, ["grid_code", "area_m2", "households"], "grids")
    out = pd.DataFrame(grids.drop(columns=["geometry"], errors="ignore"))
    if out["grid_code"].duplicated().any():
        dup = out.loc[out["grid_code"].duplicated(), "grid_code"].iloc[0]
        raise InputError(f"grid code {dup!r} appears twice", field="grid_code")
    inc = pd.Series(incident_hours, dtype="float64")
    weekly = inc.reindex(out["grid_code"].to_numpy()).fillna(0.0).to_numpy() / params.weeks
    area_km2 = out["area_m2"].to_numpy(dtype="float64") / 1e6
    households = out["households"].to_numpy(dtype="float64")
    out["incident_hours"] = weekly
    out["patrol_hours"] = (params.patrol_hours_per_km2 * area_km2
                           + params.patrol_hours_per_100_households * households / 100.0)
    out["visit_hours"] = households * params.vulnerable_share * params.visits_per_week * params.visit_minutes / 60.0
    out["demand_hours"] = out["incident_hours"] + out["patrol_hours"] + out["visit_hours"]
    return _by_code(out.reset_index(drop=True))


@dataclass(frozen=True)
class _Roles:
    """The roster and the assignment rows of active workers as arrays, computed once per report."""

    ids: np.ndarray  # roster worker ids (str), last entry of each id
    names: np.ndarray
    hours: np.ndarray
    active: np.ndarray
    base: np.ndarray
    grid: np.ndarray  # per active role row: grid code
    widx: np.ndarray  # per active role row: index into ``ids``
    primary: np.ndarray
    weight: np.ndarray
    supply: np.ndarray  # hours per week this role gives its grid


def _col(frame: pd.DataFrame, name: str, default: Any = None) -> np.ndarray:
    if name in frame.columns:
        return frame[name].to_numpy(dtype=object)
    return np.full(len(frame), default, dtype=object)


def _roles(assignments: pd.DataFrame, roster: pd.DataFrame, params: StaffingParams) -> _Roles:
    _require(assignments, ["grid_code", "worker_id", "role"], "assignments")
    _require(roster, ["worker_id", "hours_per_week", "active"], "roster")
    all_ids = [str(x) for x in roster["worker_id"].to_numpy(dtype=object)]
    last = {w: i for i, w in enumerate(all_ids)}  # a repeated id: its last row wins
    keep = np.fromiter(sorted(last.values()), dtype=np.int64, count=len(last))
    ids = np.array([all_ids[i] for i in keep], dtype=object)
    pos = {w: i for i, w in enumerate(ids)}
    hours = roster["hours_per_week"].to_numpy(dtype="float64")[keep]
    active = np.array([False if pd.isna(v) else bool(v) for v in roster["active"].to_numpy(dtype=object)],
                      dtype=bool)[keep]
    names = _col(roster, "name")[keep]
    base = _col(roster, "base_community")[keep]
    role = assignments["role"].to_numpy(dtype=object)
    bad = ~np.isin(role, ROLES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"role must be primary or backup, got {role[i]!r}", field="role", row=i + 1)
    widx = np.fromiter((pos.get(str(w), -1) for w in assignments["worker_id"].to_numpy(dtype=object)),
                       dtype=np.int64, count=len(assignments))
    ok = widx >= 0
    ok[ok] = active[widx[ok]]
    widx = widx[ok]
    primary = role[ok] == "primary"
    weight = np.where(primary, 1.0, params.backup_weight)
    total = np.bincount(widx, weights=weight, minlength=ids.size)
    supply = hours[widx] * weight / total[widx] if widx.size else np.zeros(0)
    return _Roles(ids=ids, names=names, hours=hours, active=active, base=base,
                  grid=assignments["grid_code"].to_numpy(dtype=object)[ok], widx=widx, primary=primary,
                  weight=weight, supply=supply)


def _grid_index(codes: np.ndarray, grid: np.ndarray) -> np.ndarray:
    pos = {c: i for i, c in enumerate(codes)}
    return np.fromiter((pos.get(c, -1) for c in grid), dtype=np.int64, count=grid.size)


def _supply_columns(codes: np.ndarray, r: _Roles, gidx: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Supply columns of :func:`grid_supply` for the grids ``codes`` (in that order)."""
    n = codes.size
    if gidx is None:
        gidx = _grid_index(codes, r.grid)
    inn = gidx >= 0
    g, w, prim = gidx[inn], r.widx[inn], r.primary[inn]
    supply = np.bincount(g, weights=r.supply[inn], minlength=n)
    primary_id = np.full(n, None, dtype=object)
    backups: dict[int, list[str]] = {}
    for gi, wi, p in zip(g.tolist(), w.tolist(), prim.tolist(), strict=True):
        wid = r.ids[wi]
        if p:
            if primary_id[gi] is None or wid < primary_id[gi]:
                primary_id[gi] = wid
        else:
            backups.setdefault(gi, []).append(wid)
    name_of = dict(zip(r.ids.tolist(), r.names.tolist(), strict=True))
    primary_name = np.array([name_of.get(p) if p is not None else None for p in primary_id], dtype=object)
    backup_ids = np.full(n, "", dtype=object)
    for gi, lst in backups.items():
        backup_ids[gi] = ",".join(sorted(lst))
    return {"supply_hours": supply, "primary_id": primary_id, "primary_name": primary_name,
            "backup_ids": backup_ids, "n_workers": np.bincount(g, minlength=n).astype(np.int64),
            "n_primaries": np.bincount(g[prim], minlength=n).astype(np.int64)}


def grid_supply(assignments: pd.DataFrame, roster: pd.DataFrame, params: StaffingParams) -> pd.DataFrame:
    """Hours per week the assigned active workers give each grid.

    A worker's hours are split over the grids they hold in proportion to role weight (primary 1, backup
    ``params.backup_weight``). Inactive or unknown workers supply nothing.

    Parameters
    ----------
    assignments
        ``grid_code, worker_id, role`` (``manual`` and other columns ignored).
    roster
        ``worker_id, name, hours_per_week, active``.
    params
        The model.

    Returns
    -------
    pandas.DataFrame
        One row per grid with an active worker, in code order: ``grid_code, supply_hours, primary_id,
        primary_name, backup_ids`` (comma-separated), ``n_workers`` (active workers), ``n_primaries``.
    """
    r = _roles(assignments, roster, params)
    codes = np.array(sorted(set(r.grid.tolist())), dtype=object)
    return _frame({"grid_code": codes, **_supply_columns(codes, r)})


def staffing_table(demand: pd.DataFrame, assignments: pd.DataFrame, roster: pd.DataFrame,
                   params: StaffingParams) -> pd.DataFrame:
    """Demand against supply for every grid of ``demand``.

    Parameters
    ----------
    demand
        :func:`grid_demand` output (``grid_code, demand_hours`` at least).
    assignments, roster
        As for :func:`grid_supply`.
    params
        The model.

    Returns
    -------
    pandas.DataFrame
        Every column of ``demand`` plus those of :func:`grid_supply` (grids without workers: supply 0, no primary),
        ``gap_hours = demand_hours - supply_hours`` (positive: understaffed), ``gap_fte`` (gap / standard week),
        ``gap_share`` (gap / demand; for a grid without demand 0 when it has no supply, else -1) and ``status``:
        ``uncovered`` (no active primary), ``under`` (gap > band × demand), ``over`` (gap < -band × demand) or
        ``ok``. Rows in the order of ``demand``, indexed by grid code.
    """
    return _table(demand, _roles(assignments, roster, params), params)


def _table(demand: pd.DataFrame, r: _Roles, params: StaffingParams, gidx: np.ndarray | None = None
           ) -> pd.DataFrame:
    _require(demand, ["grid_code", "demand_hours"], "demand")
    codes = demand["grid_code"].to_numpy(dtype=object)
    cols = _supply_columns(codes, r, gidx)
    d = demand["demand_hours"].to_numpy(dtype="float64")
    s = cols["supply_hours"]
    gap = d - s
    safe = np.where(d > 0, d, 1.0)
    share = np.where(d > 0, gap / safe, np.where(s > 0, -1.0, 0.0))
    tol = params.band * d + 1e-9
    status = np.select([cols["n_primaries"] == 0, gap > tol, gap < -tol], ["uncovered", "under", "over"], "ok")
    data: dict[str, Any] = {c: demand[c].to_numpy() for c in demand.columns if c not in cols}
    data.update(cols)
    data.update({"gap_hours": gap, "gap_fte": gap / params.standard_week_hours, "gap_share": share,
                 "status": status.astype(object)})
    return _frame(data, codes)


# ----------------------------------------------------------------------------------------------------------------
# coverage, worker loads, hiring need
# ----------------------------------------------------------------------------------------------------------------
def coverage(table: pd.DataFrame, incidents: pd.Series | None = None) -> dict[str, float]:
    """Shares of grids, households and incidents in grids with an active primary worker.

    Parameters
    ----------
    table
        :func:`staffing_table` output.
    incidents
        Incident counts per grid code (index); without it the table's ``incidents`` column is used when present.

    Returns
    -------
    dict
        ``grids``, ``households``, ``incidents``: shares between 0 and 1 (NaN when there is nothing to cover,
        e.g. no incidents at all).
    """
    covered = table["status"].to_numpy(dtype=object) != "uncovered"

    def share(values: np.ndarray) -> float:
        total = float(values.sum())
        return float(values[covered].sum()) / total if total > 0 else float("nan")

    hh = table["households"].to_numpy(dtype="float64") if "households" in table.columns else np.zeros(len(table))
    if incidents is not None:
        counts = dict(zip(pd.Series(incidents).index.tolist(), pd.Series(incidents).to_numpy(dtype="float64"),
                          strict=True))
        inc = np.array([counts.get(c, 0.0) for c in table["grid_code"].tolist()], dtype="float64")
    elif "incidents" in table.columns:
        inc = table["incidents"].to_numpy(dtype="float64")
    else:
        inc = np.zeros(len(table))
    return {"grids": float(covered.mean()) if len(table) else float("nan"), "households": share(hh),
            "incidents": share(inc)}


def worker_loads(table: pd.DataFrame, assignments: pd.DataFrame, roster: pd.DataFrame,
                 params: StaffingParams) -> pd.DataFrame:
    """The demand resting on each active worker.

    A grid's demand is shared among its active workers by role weight; a worker carries the sum of their shares
    over the grids of ``table`` (grids outside it add nothing).

    Parameters
    ----------
    table
        :func:`staffing_table` output.
    assignments, roster
        As for :func:`grid_supply`.
    params
        The model.

    Returns
    -------
    pandas.DataFrame
        One row per active worker, floaters (no grid) included, ordered by ``worker_id``: ``worker_id, name,
        hours_per_week, base_community, grids`` (comma-separated, primary grids first), ``n_grids``,
        ``demand_on_worker``, ``load_ratio`` (demand on worker / hours), ``overloaded`` (load ratio >
        ``params.overload_threshold``).
    """
    return _loads(table, _roles(assignments, roster, params), params)


def _loads(table: pd.DataFrame, r: _Roles, params: StaffingParams, gidx: np.ndarray | None = None) -> pd.DataFrame:
    codes = table["grid_code"].to_numpy(dtype=object)
    n = codes.size
    d = table["demand_hours"].to_numpy(dtype="float64")
    if gidx is None:
        gidx = _grid_index(codes, r.grid)
    inn = gidx >= 0
    g, w, wt, prim = gidx[inn], r.widx[inn], r.weight[inn], r.primary[inn]
    grid_weight = np.bincount(g, weights=wt, minlength=n)
    share = d[g] * wt / grid_weight[g] if g.size else np.zeros(0)
    on_worker = np.bincount(w, weights=share, minlength=r.ids.size)
    # One entry per (worker, grid), primary grids first, each part in code order.
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(codes.astype(str), kind="stable")] = np.arange(n)
    order = np.lexsort((rank[g], ~prim, w))
    g_s, w_s = g[order], w[order]
    first = np.ones(g_s.size, dtype=bool)
    if g_s.size:
        key = w_s * n + g_s
        _, first_idx = np.unique(key, return_index=True)
        first[:] = False
        first[first_idx] = True
    g_s, w_s = g_s[first], w_s[first]
    n_held = np.bincount(w_s, minlength=r.ids.size)
    held = np.full(r.ids.size, "", dtype=object)
    if w_s.size:
        starts = np.r_[0, np.flatnonzero(np.diff(w_s)) + 1]
        ends = np.r_[starts[1:], w_s.size]
        for wi, a, b in zip(w_s[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
            held[wi] = ",".join(codes[g_s[a:b]].tolist())
    act = np.flatnonzero(r.active)
    act = act[np.argsort(r.ids[act].astype(str), kind="stable")]
    hours = r.hours[act]
    demand_on = on_worker[act]
    ratio = demand_on / hours
    return _frame({"worker_id": r.ids[act], "name": r.names[act], "hours_per_week": hours,
                         "base_community": r.base[act], "grids": held[act], "n_grids": n_held[act].astype(np.int64),
                         "demand_on_worker": demand_on, "load_ratio": ratio,
                         "overloaded": ratio > params.overload_threshold})


@dataclass(frozen=True)
class HiringNeed:
    """Extra staff needed so that every grid is within ± band of its demand.

    Attributes
    ----------
    workers
        Whole standard-week workers to hire: the extra hours rounded up to standard weeks.
    hours
        Extra hours per week.
    by_area
        ``community_code`` (and ``street_code`` when known), ``grids_short``, ``hours``, ``fte`` (hours / standard
        week) and ``workers`` (the hires shared out by largest remainder of ``fte``, so they add up to
        ``workers``; an area with a small need may get none — a neighbouring hire or part-timer covers it);
        communities needing most first.
    """

    workers: int
    hours: float
    by_area: pd.DataFrame


def hiring_need(table: pd.DataFrame, params: StaffingParams) -> HiringNeed:
    """How many more workers, and where, bring every grid up to within ``band`` of its demand.

    Each grid short of ``(1 - band) × demand`` needs the difference; surplus elsewhere is not moved (that is what
    :func:`gridgov.workers.auto_assign` does, so run it first for the smallest answer). The hours are rounded up
    to whole standard weeks and the hires shared out over communities by largest remainder.

    Parameters
    ----------
    table
        :func:`staffing_table` output (``community_code`` groups the need; without it there is one area).
    params
        The model.

    Returns
    -------
    HiringNeed
    """
    d = table["demand_hours"].to_numpy(dtype="float64")
    need = np.maximum((1.0 - params.band) * d - table["supply_hours"].to_numpy(dtype="float64"), 0.0)
    short = np.flatnonzero(need > 1e-9)
    has_street = "street_code" in table.columns
    comm = _col(table, "community_code")
    street = _col(table, "street_code")
    acc: dict[Any, list[Any]] = {}
    for i in short.tolist():
        key = comm[i]
        if key not in acc:
            acc[key] = [street[i], 0, 0.0]
        acc[key][1] += 1
        acc[key][2] += float(need[i])
    rows = sorted(acc.items(), key=lambda kv: (-kv[1][2], str(kv[0])))
    by = pd.DataFrame({
        "community_code": [k for k, _ in rows],
        **({"street_code": [v[0] for _, v in rows]} if has_street else {}),
        "grids_short": np.array([v[1] for _, v in rows], dtype=np.int64),
        "hours": np.array([v[2] for _, v in rows], dtype="float64"),
    })
    hours = float(need[short].sum())
    total = math.ceil(hours / params.standard_week_hours - 1e-9) if hours > 0 else 0
    by["fte"] = by["hours"].to_numpy() / params.standard_week_hours
    by["workers"] = _apportion(by["fte"].to_numpy(), total)
    return HiringNeed(workers=total, hours=hours, by_area=by)


def _apportion(fte: np.ndarray, total: int) -> np.ndarray:
    """Share ``total`` whole workers over areas by largest remainder of their FTE (ties: earlier area first)."""
    if fte.size == 0:
        return np.zeros(0, dtype=np.int64)
    base = np.floor(fte + 1e-9).astype(np.int64)
    left = total - int(base.sum())
    if left > 0:
        order = np.argsort(-(fte - base), kind="stable")[:left]
        base[order] += 1
    return base


# ----------------------------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StaffingReport:
    """Everything the staffing page and ``gridgov staffing`` show.

    Attributes
    ----------
    table
        :func:`staffing_table`.
    coverage
        :func:`coverage`.
    workers
        :func:`worker_loads`.
    need
        :func:`hiring_need`.
    totals
        ``demand_hours``, ``supply_hours``, ``gap_hours`` (sum of positive gaps), ``surplus_hours`` (sum of negative
        gaps, as a positive number), ``gap_fte`` (gap hours / standard week), ``grids``, ``uncovered``, ``under``,
        ``ok``, ``over`` (grid counts), ``overloaded_workers``, ``hire_workers``, ``hire_hours``.
    """

    table: pd.DataFrame
    coverage: dict[str, float]
    workers: pd.DataFrame
    need: HiringNeed
    totals: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Coverage, totals and the hiring need as plain JSON-ready values."""
        return {"coverage": self.coverage, "totals": self.totals,
                "hire": {"workers": self.need.workers, "hours": self.need.hours,
                         "by_area": self.need.by_area.to_dict(orient="records")}}


def report(demand: pd.DataFrame, assignments: pd.DataFrame, roster: pd.DataFrame, params: StaffingParams,
           incidents: pd.Series | None = None) -> StaffingReport:
    """The staffing table, coverage, worker loads, hiring need and totals in one go.

    Parameters
    ----------
    demand
        :func:`grid_demand` output (compute it once per layout and window; only assignments change on edits).
    assignments, roster
        As for :func:`grid_supply`.
    params
        The model.
    incidents
        Incident counts per grid code for the incident coverage share.

    Returns
    -------
    StaffingReport
    """
    roles = _roles(assignments, roster, params)
    _require(demand, ["grid_code", "demand_hours"], "demand")
    gidx = _grid_index(demand["grid_code"].to_numpy(dtype=object), roles.grid)
    table = _table(demand, roles, params, gidx)
    cov = coverage(table, incidents)
    loads = _loads(table, roles, params, gidx)
    need = hiring_need(table, params)
    gap = table["gap_hours"].to_numpy()
    status = table["status"].to_numpy(dtype=object)
    totals: dict[str, float] = {
        "demand_hours": float(table["demand_hours"].to_numpy().sum()),
        "supply_hours": float(table["supply_hours"].to_numpy().sum()),
        "gap_hours": float(gap[gap > 0].sum()),
        "surplus_hours": float(-gap[gap < 0].sum()),
    }
    totals["gap_fte"] = totals["gap_hours"] / params.standard_week_hours
    totals["grids"] = float(len(table))
    for name in STATUSES:
        totals[name] = float((status == name).sum())
    totals["overloaded_workers"] = float(loads["overloaded"].to_numpy().sum())
    totals["hire_workers"] = float(need.workers)
    totals["hire_hours"] = need.hours
    return StaffingReport(table=table, coverage=cov, workers=loads, need=need, totals=totals)


def window(now: datetime, params: StaffingParams) -> tuple[datetime, datetime]:
    """The incident window ``[now - window_days, now)``."""
    return now - timedelta(days=params.window_days), now


def store_demand(store: Store, layout_id: int, *, params: StaffingParams, now: datetime
                 ) -> tuple[pd.DataFrame, pd.Series]:
    """Demand per grid of a stored layout and the incident counts per grid, for the window ending at ``now``.

    Returns
    -------
    tuple
        (:func:`grid_demand` frame with ``incidents`` and ``incident_handling_hours`` columns added, incident counts
        per grid code). Cache this per layout and window: it is the part of the report that reads incidents.
    """
    grids = pd.DataFrame(store.layout_grids(layout_id).drop(columns="geometry"))
    start, end = window(now, params)
    inc = store.grid_incident_hours(layout_id, start=start, end=end).set_index("grid_code")
    demand = grid_demand(grids, inc["handling_hours"], params)
    counts = inc["incidents"].reindex(demand["grid_code"].to_numpy()).fillna(0).astype("int64")
    demand["incidents"] = counts.to_numpy()
    demand["incident_handling_hours"] = inc["handling_hours"].reindex(demand["grid_code"].to_numpy()).fillna(
        0.0).to_numpy()
    return demand, counts


def staffing_report(store: Store, layout_id: int, *, params: StaffingParams, now: datetime,
                    assignments: pd.DataFrame | None = None) -> StaffingReport:
    """The staffing report of a stored layout.

    Parameters
    ----------
    store
        The database.
    layout_id
        The layout whose grids count.
    params
        The model.
    now
        End of the incident window (naive local time).
    assignments
        Assignments to use instead of the stored ones (the page's unsaved edits).

    Returns
    -------
    StaffingReport
    """
    demand, counts = store_demand(store, layout_id, params=params, now=now)
    roster = store.workers()
    if assignments is None:
        assignments = store.assignments(layout_id)
    return report(demand, assignments, roster, params, incidents=counts)


__all__ = [
    "ROLES", "STATUSES", "HiringNeed", "StaffingParams", "StaffingReport", "coverage", "grid_demand", "grid_supply",
    "hiring_need", "report", "staffing_report", "staffing_table", "store_demand", "window", "worker_loads",
]
