"""Replay past incidents on a grid layout: weekly workload per grid and a forecast on-time rate.

The question a planner asks of a candidate layout is "had these been the grids last half-year, how would the work
have fallen, and how many cases would have been closed in time?". Incidents keep their unit, so replaying history on
any layout is a join; this module adds the workload figures and a deliberately simple capacity model, calibrated
on the current layout against what was recorded. ``docs/replay.md`` describes the model and its calibration error.

The capacity model
------------------
Each grid is one first-come-first-served queue. Its server works at ``case_share × supply / week_hours``
worker-hours per working hour, where ``supply`` is the weekly hours of the workers assigned to the grid
(:func:`gridgov.staffing.grid_supply`; a grid without a worker gets ``office_hours`` from its community office) and
``week_hours`` the working hours of a calendar week. A case needs its category's handling time of work and waits for
the cases before it in its grid (Lindley's recursion), in working time: nights, weekends and holidays do not count,
as for SLA deadlines. Beyond that wait, closing a case takes what it took in the record where nobody waited: the
*lag* of its category, the recorded working time from report to close in the grids whose workers had the most
hours to spare (the lighter half by load). The forecast chance that a case closes in time is the share of its
category's recorded lags that fit between its report, plus its wait, and its deadline; the forecast on-time rate is
the mean of those chances. ``case_share`` (the share of worker hours that goes to cases rather than patrol, visits
and office work) is the one fitted number: on the current layout it is chosen so that the forecast on-time rate of
an earlier stretch of the window equals the recorded one; the calibration error is measured on the later stretch,
which the fit does not see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from gridgov.config import WorkCalendar
from gridgov.errors import InputError

if TYPE_CHECKING:
    from gridgov.store import Store

_REQUIRED = ("unit_id", "category_code", "reported_at", "due_at", "closed_at", "handling_minutes")
#: Bounds of the fitted case share. Above 1 the recorded closing is faster than the assigned hours allow (other
#: staff, or handling times set too long); the calibration says so rather than hiding it.
CASE_SHARE_RANGE = (0.001, 1000.0)


@dataclass(frozen=True)
class ReplayParams:
    """How a replay is run.

    Parameters
    ----------
    months
        Length of the replayed window, ending at "now" (30.4-day months).
    warmup_days
        Cases reported this long before the window are simulated first so the queues do not start empty; they are
        not counted.
    holdout_share
        The later part of the window that calibration does not see and is measured on.
    office_hours
        Weekly hours a community office gives a grid with no worker.
    min_closed
        Grids with fewer closed cases than this are left out of the per-grid calibration error.
    """

    months: int = 6
    warmup_days: int = 28
    holdout_share: float = 1 / 3
    office_hours: float = 4.0
    min_closed: int = 20

    def __post_init__(self) -> None:
        if self.months < 1:
            raise InputError(f"must be at least 1, got {self.months}", field="months")
        if self.warmup_days < 0:
            raise InputError(f"must be 0 or more, got {self.warmup_days}", field="warmup_days")
        if not 0 < self.holdout_share < 1:
            raise InputError(f"must be between 0 and 1, got {self.holdout_share}", field="holdout_share")
        if self.office_hours < 0:
            raise InputError(f"must be 0 or more, got {self.office_hours}", field="office_hours")

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The replayed window ``[start, end)`` ending at ``now``."""
        return now - timedelta(days=round(30.4 * self.months)), now


@dataclass(frozen=True)
class ReplayResult:
    """A replay of one window on one layout.

    Attributes
    ----------
    grids
        One row per grid: ``grid_code, cases, closed, weekly_hours_mean, weekly_hours_p90, capacity_hours``
        (hours per week serving cases), ``forecast_on_time`` (share of the grid's closed cases forecast on time),
        ``recorded_on_time`` (share recorded on time; the same cases), ``set_aside`` (cases that could no longer
        make their deadline when their turn came), ``mean_wait_hours`` (working hours the other cases waited for
        the ones before them).
    forecast_on_time, recorded_on_time
        Over all closed cases of the window (None when none closed).
    case_share
        The share of worker hours the model gave to cases.
    start, end, weeks
        The window and its number of weeks.
    seconds
        Time the replay took.
    """

    grids: pd.DataFrame
    forecast_on_time: float | None
    recorded_on_time: float | None
    case_share: float
    start: datetime
    end: datetime
    weeks: float
    seconds: float


@dataclass(frozen=True)
class Calibration:
    """The fitted case share and how well the model then reproduces history on the current layout.

    Attributes
    ----------
    model
        The fitted case share and lags; pass it to :func:`replay` for any layout.
    fit_period, holdout_period
        The earlier stretch of the window (fitted) and the later one (measured).
    fit_recorded, fit_forecast
        On-time rates on the fitted stretch (equal unless the fit hit :data:`CASE_SHARE_RANGE`).
    recorded, forecast
        On-time rates on the held-out stretch.
    error_points
        ``(forecast - recorded) × 100`` on the held-out stretch: the calibration error.
    grid_error_points
        Mean absolute per-grid error on the held-out stretch, weighted by closed cases, over grids with at least
        ``min_closed`` of them.
    cases
        Closed cases on the held-out stretch.
    at_bound
        True when the fit stopped at a bound of :data:`CASE_SHARE_RANGE`.
    """

    model: ReplayModel
    fit_period: tuple[datetime, datetime]
    holdout_period: tuple[datetime, datetime]
    fit_recorded: float
    fit_forecast: float
    recorded: float
    forecast: float
    error_points: float
    grid_error_points: float | None
    cases: int
    at_bound: bool = False
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------------------
# Working time
# --------------------------------------------------------------------------------------------------------------------

def working_minutes(times: pd.Series | NDArray[np.datetime64], calendar: WorkCalendar,
                    epoch: np.datetime64) -> NDArray[np.float64]:
    """Working minutes from midnight of ``epoch`` to each time (negative before it).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array(["2026-11-27T10:30", "2026-11-30T09:15"], dtype="datetime64[us]")  # Friday, Monday
    >>> working_minutes(t, WorkCalendar(), np.datetime64("2026-11-27")).tolist()
    [90.0, 495.0]
    """
    t = np.asarray(pd.to_datetime(np.asarray(times)), dtype="datetime64[us]")
    holidays = np.array(calendar.holidays, dtype="datetime64[D]")
    day = t.astype("datetime64[D]")
    minute = (t - day) / np.timedelta64(1, "m")
    workday = np.is_busday(day, weekmask=calendar.weekmask, holidays=holidays)
    days_before = np.busday_count(np.datetime64(epoch, "D"), day, weekmask=calendar.weekmask, holidays=holidays)
    into = np.where(workday, np.clip(minute - calendar.start_minute, 0, calendar.day_minutes), 0.0)
    return days_before.astype(np.float64) * calendar.day_minutes + into


def week_hours(calendar: WorkCalendar) -> float:
    """Working hours in a calendar week (holidays aside)."""
    return calendar.weekmask.count("1") * calendar.day_minutes / 60.0


# --------------------------------------------------------------------------------------------------------------------
# The queue
# --------------------------------------------------------------------------------------------------------------------

def finish_times(grid: NDArray[np.int64], arrival: NDArray[np.float64],
                 work: NDArray[np.float64]) -> NDArray[np.float64]:
    """When each case is done: one first-come-first-served queue per grid (Lindley's recursion, vectorised).

    ``C_i = max(A_i, C_{i-1}) + s_i`` unrolls to ``C_i = S_i + max_{j ≤ i}(A_j − S_{j−1})`` with ``S`` the running
    sum of service times in the grid, so a grouped running maximum does the whole queue at once.

    Parameters
    ----------
    grid
        Queue of each case.
    arrival
        When each case arrives (any time unit; working minutes here).
    work
        Service time of each case in the same unit (``inf`` for a queue with no server).

    Returns
    -------
    numpy.ndarray
        Finish time of each case, in input order.

    Examples
    --------
    >>> finish_times(np.array([0, 0, 0, 1]), np.array([0.0, 1.0, 10.0, 0.0]), np.array([5.0, 5.0, 1.0, 2.0])).tolist()
    [5.0, 10.0, 11.0, 2.0]
    """
    order = np.lexsort((arrival, grid))
    g, a, s = grid[order], arrival[order], work[order]
    running = pd.Series(s).groupby(g).cumsum().to_numpy()
    slack = pd.Series(a - (running - s)).groupby(g).cummax().to_numpy()
    out = np.empty_like(running)
    out[order] = running + slack
    return out


@dataclass(frozen=True)
class _Cases:
    """Cases of a window, prepared once and replayed under several case shares."""

    grid: NDArray[np.int64]  # grid index of each case
    category: NDArray[np.object_]
    arrival: NDArray[np.float64]  # working minutes
    due: NDArray[np.float64]
    closed_wm: NDArray[np.float64]  # working minutes; nan when not closed
    handling: NDArray[np.float64]  # minutes of work
    closed: NDArray[np.bool_]
    recorded_on_time: NDArray[np.bool_]
    counted: NDArray[np.bool_]  # inside the window (not warm-up)
    reported_at: NDArray[np.datetime64]
    groups: dict[str, NDArray[np.int64]]  # case positions per category
    order: NDArray[np.int64]  # cases by grid, then arrival
    by_step: NDArray[np.int64]  # positions in ``order``: every grid's first case, then every grid's second, …
    steps: list[int]  # how many grids have a j-th case, for each j


def _prepare(incidents: pd.DataFrame, unit_grid: pd.Series, codes: NDArray[np.object_], start: datetime,
             calendar: WorkCalendar) -> _Cases:
    missing = [c for c in _REQUIRED if c not in incidents.columns]
    if missing:
        raise InputError(f"incidents lack column(s) {', '.join(missing)}", field="incidents")
    code_index = pd.Series(np.arange(codes.size), index=pd.Index(codes))
    grid_code = unit_grid.reindex(incidents["unit_id"].to_numpy()).to_numpy()
    grid = code_index.reindex(grid_code).to_numpy()
    keep = ~pd.isna(grid)
    inc = incidents.loc[keep]
    epoch = np.datetime64(pd.Timestamp(start).normalize().date(), "D")
    reported = np.asarray(pd.to_datetime(inc["reported_at"]), dtype="datetime64[us]")
    closed_at = pd.to_datetime(inc["closed_at"])
    closed = closed_at.notna().to_numpy()
    due_at = pd.to_datetime(inc["due_at"])
    closed_wm = np.full(closed.shape, np.nan)
    closed_wm[closed] = working_minutes(closed_at.to_numpy()[closed], calendar, epoch)
    grid_i = grid[keep].astype(np.int64)
    arrival = working_minutes(reported, calendar, epoch)
    category = inc["category_code"].to_numpy(dtype=object)
    cat_codes, cat_index = np.unique(category.astype(str), return_inverse=True)
    by_cat = np.argsort(cat_index, kind="stable")
    bounds = np.searchsorted(cat_index[by_cat], np.arange(cat_codes.size + 1))
    order = np.lexsort((arrival, grid_i))
    g = grid_i[order]
    first = np.concatenate(([0], np.cumsum(np.bincount(g, minlength=codes.size))[:-1]))
    step_of = np.arange(g.size) - first[g]
    return _Cases(
        grid=grid_i,
        category=category,
        groups={str(c): by_cat[bounds[i]:bounds[i + 1]] for i, c in enumerate(cat_codes)},
        order=order,
        by_step=np.lexsort((g, step_of)),
        steps=np.bincount(step_of).tolist() if g.size else [],
        arrival=arrival,
        due=working_minutes(due_at.to_numpy(), calendar, epoch),
        closed_wm=closed_wm,
        handling=inc["handling_minutes"].to_numpy(dtype=np.float64),
        closed=closed,
        recorded_on_time=(closed & (closed_at <= due_at).to_numpy()),
        counted=reported >= np.datetime64(pd.Timestamp(start).to_datetime64(), "us"),
        reported_at=reported,
    )


def _rates(capacity: pd.Series, codes: NDArray[np.object_], case_share: float, calendar: WorkCalendar,
           office_hours: float) -> NDArray[np.float64]:
    supply = capacity.reindex(codes).fillna(0.0).to_numpy(dtype=np.float64)
    supply = np.where(supply > 0, supply, office_hours)
    return case_share * supply / week_hours(calendar)


def _waits(cases: _Cases, rate: NDArray[np.float64]) -> NDArray[np.float64]:
    """Working minutes each case waits for the ones before it in its grid; ``inf`` for a case set aside.

    Cases are taken in arrival order; a case that can no longer be done by its deadline when its turn comes is set
    aside (it is late whatever happens, and is done when the grid has nothing that can still make it), so it does
    not hold up the cases behind it. All grids advance together, one case each per step, so the loop runs as many
    times as the busiest grid has cases, each step a few array operations over the grids.
    """
    r = rate[cases.grid]
    work = np.full(r.shape, np.inf)
    np.divide(cases.handling, r, out=work, where=r > 0)
    order, by_step = cases.order, cases.by_step
    g = cases.grid[order]
    k = int(rate.size)
    arrival, due, w = cases.arrival[order], cases.due[order], work[order]
    wait_sorted = np.full(g.size, np.inf)
    free = np.full(k, -np.inf)
    pos = 0
    for n in cases.steps:
        idx = by_step[pos:pos + n]
        pos += n
        grids = g[idx]
        begin = np.maximum(free[grids], arrival[idx])
        done = begin + w[idx]
        serve = done <= due[idx]
        wait_sorted[idx[serve]] = begin[serve] - arrival[idx[serve]]
        free[grids[serve]] = done[serve]
    out = np.empty_like(wait_sorted)
    out[order] = wait_sorted
    return out


@dataclass(frozen=True)
class LagModel:
    """Recorded working minutes from report to close where nobody waited, per category (sorted)."""

    by_category: dict[str, NDArray[np.float64]]
    pooled: NDArray[np.float64]

    def chance(self, groups: dict[str, NDArray[np.int64]], room: NDArray[np.float64]) -> NDArray[np.float64]:
        """Share of each case's category lags that fit in ``room`` working minutes (the pooled lags for categories
        with too few records); ``groups`` holds the case positions of each category."""
        out = np.empty(room.shape)
        for cat, idx in groups.items():
            lags = self.by_category.get(cat, self.pooled)
            out[idx] = np.searchsorted(lags, room[idx], side="right") / max(lags.size, 1)
        return out


def _lags(cases: _Cases, mask: NDArray[np.bool_], light: NDArray[np.bool_], *, min_cases: int = 30) -> LagModel:
    """Lags of the closed cases under ``mask`` in the light grids."""
    pick = mask & cases.closed & light[cases.grid]
    if pick.sum() < min_cases:  # too few light-grid records: use every grid's
        pick = mask & cases.closed
    lag = np.maximum(cases.closed_wm[pick] - cases.arrival[pick], 0.0)
    cats = cases.category[pick]
    by = {str(c): np.sort(lag[cats == c]) for c in pd.unique(cats) if (cats == c).sum() >= min_cases}
    return LagModel(by_category=by, pooled=np.sort(lag))


def _chances(cases: _Cases, rate: NDArray[np.float64], lags: LagModel) -> NDArray[np.float64]:
    wait = _waits(cases, rate)
    return lags.chance(cases.groups, cases.due - cases.arrival - wait)


# --------------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReplayModel:
    """What calibration fits on the current layout and every replay of a scenario uses."""

    case_share: float
    lags: LagModel


def replay(incidents: pd.DataFrame, unit_grid: pd.Series, capacity: pd.Series, *, start: datetime, end: datetime,
           model: ReplayModel, calendar: WorkCalendar | None = None,
           params: ReplayParams | None = None) -> ReplayResult:
    """Replay the cases reported in ``[start, end)`` on a layout.

    Parameters
    ----------
    incidents
        ``unit_id, category_code, reported_at, due_at, closed_at, handling_minutes`` (cancelled cases left out),
        from ``warmup_days`` before ``start`` onwards (:meth:`Store.replay_incidents`).
    unit_grid
        Grid code of each unit id (the layout).
    capacity
        Weekly hours of assigned workers per grid code (:func:`gridgov.staffing.grid_supply`); grids missing or at 0
        get the office hours.
    model
        From :func:`calibrate` on the current layout.
    calendar, params
        Working time and replay settings.
    """
    t0 = time.perf_counter()
    calendar = calendar or WorkCalendar()
    params = params or ReplayParams()
    codes = np.asarray(sorted(pd.unique(unit_grid.dropna())), dtype=object)
    cases = _prepare(incidents, unit_grid, codes, start, calendar)
    rate = _rates(capacity, codes, model.case_share, calendar, params.office_hours)
    wait = _waits(cases, rate)
    chance = model.lags.chance(cases.groups, cases.due - cases.arrival - wait)
    counted = cases.counted & (cases.reported_at < np.datetime64(pd.Timestamp(end).to_datetime64(), "us"))
    k = codes.size
    weeks = max((pd.Timestamp(end) - pd.Timestamp(start)) / pd.Timedelta(days=7), 1e-9)
    n_weeks = max(1, int(np.ceil(weeks)))
    week = ((cases.reported_at[counted] - np.datetime64(pd.Timestamp(start).to_datetime64(), "us"))
            // np.timedelta64(7, "D")).astype(np.int64)
    hours = np.bincount(cases.grid[counted] * n_weeks + np.minimum(week, n_weeks - 1),
                        weights=cases.handling[counted] / 60.0, minlength=k * n_weeks).reshape(k, n_weeks)
    full = int(np.floor(weeks)) or n_weeks  # a last partial week would understate its load
    closed = counted & cases.closed

    def per_grid(values: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        return np.bincount(cases.grid[mask], weights=values[mask], minlength=k)

    n_cases = per_grid(np.ones(cases.grid.size), counted)
    n_closed = per_grid(np.ones(cases.grid.size), closed)
    served = np.isfinite(wait)
    wait_h = np.where(served, wait / 60.0, 0.0)
    n_served = per_grid(served.astype(float), counted)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({
            "grid_code": codes,
            "cases": n_cases.astype(np.int64),
            "closed": n_closed.astype(np.int64),
            "weekly_hours_mean": hours[:, :full].mean(axis=1),
            "weekly_hours_p90": np.quantile(hours[:, :full], 0.9, axis=1),
            "capacity_hours": rate * week_hours(calendar),
            "forecast_on_time": np.where(n_closed > 0, per_grid(chance, closed) / n_closed, np.nan),
            "recorded_on_time": np.where(n_closed > 0, per_grid(cases.recorded_on_time.astype(float), closed)
                                         / n_closed, np.nan),
            "set_aside": (n_cases - n_served).astype(np.int64),
            "mean_wait_hours": np.where(n_served > 0, per_grid(wait_h, counted) / n_served, np.nan),
        })
    n = int(closed.sum())
    return ReplayResult(grids=table, forecast_on_time=float(chance[closed].mean()) if n else None,
                        recorded_on_time=float(cases.recorded_on_time[closed].mean()) if n else None,
                        case_share=model.case_share, start=start, end=end, weeks=float(weeks),
                        seconds=time.perf_counter() - t0)


def calibrate(incidents: pd.DataFrame, unit_grid: pd.Series, capacity: pd.Series, *, start: datetime,
              end: datetime, calendar: WorkCalendar | None = None,
              params: ReplayParams | None = None) -> Calibration:
    """Fit the model on the earlier part of ``[start, end)`` of the current layout; measure it on the rest.

    The lags come from the fitted stretch's closed cases in the grids with the lighter half of loads (handling
    hours per assigned hour). The forecast on-time rate grows with the case share, so a bracketing root search (on
    its logarithm) finds the share at which the forecast of the fitted stretch equals the recorded rate; the same
    model then forecasts the held-out stretch, whose difference from the record is the calibration error.

    Raises
    ------
    InputError
        When either stretch has no closed case to compare with.
    """
    calendar = calendar or WorkCalendar()
    params = params or ReplayParams()
    codes = np.asarray(sorted(pd.unique(unit_grid.dropna())), dtype=object)
    cases = _prepare(incidents, unit_grid, codes, start, calendar)
    split = pd.Timestamp(start) + (pd.Timestamp(end) - pd.Timestamp(start)) * (1 - params.holdout_share)
    split_t = np.datetime64(split.to_datetime64(), "us")
    end_t = np.datetime64(pd.Timestamp(end).to_datetime64(), "us")
    in_fit = cases.counted & (cases.reported_at < split_t)
    fit = in_fit & cases.closed
    hold = (cases.reported_at >= split_t) & (cases.reported_at < end_t) & cases.closed
    if not fit.any() or not hold.any():
        raise InputError(f"no closed cases to calibrate on between {start:%Y-%m-%d} and {end:%Y-%m-%d} "
                         f"({int(fit.sum())} before {split:%Y-%m-%d}, {int(hold.sum())} after)", field="incidents")
    supply = np.maximum(_rates(capacity, codes, 1.0, calendar, params.office_hours), 1e-9)
    load = np.bincount(cases.grid[in_fit], weights=cases.handling[in_fit], minlength=codes.size) / supply
    # Without any assigned worker every grid has the same office hours: load then says nothing about spare hours,
    # and every grid's record is a lag sample.
    light = load <= np.median(load) if np.ptp(supply) > 0 else np.ones(codes.size, dtype=bool)
    lags = _lags(cases, in_fit, light)
    recorded_fit = float(cases.recorded_on_time[fit].mean())

    def forecast(share: float) -> NDArray[np.float64]:
        return _chances(cases, _rates(capacity, codes, share, calendar, params.office_hours), lags)

    lo, hi = float(np.log(CASE_SHARE_RANGE[0])), float(np.log(CASE_SHARE_RANGE[1]))
    f_lo = float(forecast(np.exp(lo))[fit].mean()) - recorded_fit
    f_hi = float(forecast(np.exp(hi))[fit].mean()) - recorded_fit
    notes: list[str] = []
    at_bound = False
    if f_lo >= 0:
        share, at_bound = float(np.exp(lo)), True
    elif f_hi <= 0:
        share, at_bound = float(np.exp(hi)), True
    else:
        # Regula falsi with the Illinois step on the log share: a few replays instead of bisection's twenty.
        side = 0
        x = hi
        for _ in range(40):
            x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
            f_x = float(forecast(np.exp(x))[fit].mean()) - recorded_fit
            if abs(f_x) < 2e-4 or hi - lo < 1e-4:
                break
            if f_x < 0:
                lo, f_lo = x, f_x
                if side == -1:
                    f_hi /= 2
                side = -1
            else:
                hi, f_hi = x, f_x
                if side == 1:
                    f_lo /= 2
                side = 1
        share = float(np.exp(x))
    if at_bound:
        notes.append(f"the case share stopped at its bound {share:g}: the model cannot reach the recorded on-time "
                     f"rate {recorded_fit:.1%} with these hours")
    elif np.ptp(supply) == 0:
        notes.append(f"no grid has a worker assigned, so every grid gets the same case hours; fitted: "
                     f"{share * float(supply[0]) * week_hours(calendar):.0f} h a week per grid")
    elif share > 1:
        notes.append(f"the fitted case share {share:.2f} is above 1: cases were closed faster than the assigned hours "
                     "allow (other staff help, or handling times are set too long)")
    chance = forecast(share)
    recorded = float(cases.recorded_on_time[hold].mean())
    predicted = float(chance[hold].mean())
    n_g = np.bincount(cases.grid[hold], minlength=codes.size)
    f_g = np.bincount(cases.grid[hold], weights=chance[hold], minlength=codes.size)
    r_g = np.bincount(cases.grid[hold], weights=cases.recorded_on_time[hold].astype(float), minlength=codes.size)
    big = n_g >= params.min_closed
    grid_error = (float(np.sum(np.abs(f_g[big] - r_g[big]))) / float(n_g[big].sum()) * 100.0) if big.any() else None
    return Calibration(
        model=ReplayModel(case_share=share, lags=lags), fit_period=(start, split.to_pydatetime()),
        holdout_period=(split.to_pydatetime(), end), fit_recorded=recorded_fit,
        fit_forecast=float(chance[fit].mean()), recorded=recorded, forecast=predicted,
        error_points=(predicted - recorded) * 100.0, grid_error_points=grid_error, cases=int(hold.sum()),
        at_bound=at_bound, notes=notes,
    )


# --------------------------------------------------------------------------------------------------------------------
# From the store
# --------------------------------------------------------------------------------------------------------------------

def _inputs(store: Store, layout_id: int, *, window: tuple[datetime, datetime], params: ReplayParams,
            assignments: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    from gridgov import staffing

    start, end = window
    incidents = store.replay_incidents(start - timedelta(days=params.warmup_days), end)
    units = store.layout_units(layout_id)
    unit_grid = pd.Series(units["grid_code"].to_numpy(), index=units["unit_id"].to_numpy())
    if assignments is None:
        assignments = store.assignments(layout_id)
    supply = staffing.grid_supply(assignments, store.workers(), staffing.StaffingParams())
    capacity = pd.Series(supply["supply_hours"].to_numpy(), index=supply["grid_code"].to_numpy())
    return incidents, unit_grid, capacity


def calibrate_store(store: Store, *, now: datetime, calendar: WorkCalendar | None = None,
                    params: ReplayParams | None = None,
                    window: tuple[datetime, datetime] | None = None) -> Calibration:
    """:func:`calibrate` on the store's current layout and its workers, over ``params.months`` up to ``now`` (or
    over ``window``)."""
    params = params or ReplayParams()
    layout_id = store.current_layout_id()
    if layout_id is None:
        raise InputError("the store has no current layout to calibrate on", field="layout")
    start, end = window or params.window(now)
    incidents, unit_grid, capacity = _inputs(store, layout_id, window=(start, end), params=params, assignments=None)
    return calibrate(incidents, unit_grid, capacity, start=start, end=end, calendar=calendar, params=params)


def replay_store(store: Store, layout_id: int, *, now: datetime, model: ReplayModel,
                 calendar: WorkCalendar | None = None, params: ReplayParams | None = None,
                 assignments: pd.DataFrame | None = None,
                 window: tuple[datetime, datetime] | None = None) -> ReplayResult:
    """:func:`replay` of a stored layout over ``params.months`` up to ``now`` (or ``window``); ``assignments``
    (e.g. an automatic assignment of today's roster to a scenario) replace the layout's own."""
    params = params or ReplayParams()
    start, end = window or params.window(now)
    incidents, unit_grid, capacity = _inputs(store, layout_id, window=(start, end), params=params,
                                             assignments=assignments)
    return replay(incidents, unit_grid, capacity, start=start, end=end, model=model, calendar=calendar,
                  params=params)
