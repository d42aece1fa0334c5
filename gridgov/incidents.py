"""Incident categories, lifecycle states and SLA deadlines counted in working hours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gridgov import datasets
from gridgov.config import WorkCalendar
from gridgov.errors import InputError

#: Lifecycle of a case in digital city management (GB/T 30428): report → register → dispatch → handle →
#: feedback/verify → close. ``handled`` is the worker's feedback awaiting verification.
STATUSES: tuple[str, ...] = ("reported", "registered", "dispatched", "handled", "closed", "cancelled")
OPEN_STATUSES: tuple[str, ...] = ("reported", "registered", "dispatched", "handled")
CLASSES: tuple[str, ...] = ("component", "event")

#: Allowed next states for each state (live updates enforce these).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "reported": ("registered", "dispatched", "cancelled"),
    "registered": ("dispatched", "cancelled"),
    "dispatched": ("handled", "cancelled"),
    "handled": ("closed", "dispatched"),
    "closed": (),
    "cancelled": (),
}

CATEGORY_COLUMNS: tuple[str, ...] = ("code", "name_zh", "name_en", "class", "sla_hours", "handling_minutes")


def load_categories(path: Path | str | None = None) -> pd.DataFrame:
    """Read and validate a category table.

    Parameters
    ----------
    path
        CSV with columns ``code, name_zh, name_en, class, sla_hours, handling_minutes``;
        ``None`` reads the shipped ``geodata/categories.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per category, in file order.

    Raises
    ------
    InputError
        Naming the row and column of the first bad value.
    """
    src = Path(path) if path is not None else datasets.path("categories.csv")
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    missing = [c for c in CATEGORY_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{src} lacks column(s) {', '.join(missing)}", field=missing[0])
    df = df[list(CATEGORY_COLUMNS)].copy()
    for i, rec in enumerate(df.itertuples(index=False), start=2):
        if not rec.code or rec.code != rec.code.strip():
            raise InputError(f"empty or padded code {rec.code!r} in {src}", field="code", row=i)
        if rec[3] not in CLASSES:
            raise InputError(f"class must be one of {CLASSES}, got {rec[3]!r} in {src}", field="class", row=i)
        for col in ("sla_hours", "handling_minutes"):
            try:
                value = float(getattr(rec, col))
            except ValueError:
                value = float("nan")
            if not value > 0:
                raise InputError(f"must be a number > 0, got {getattr(rec, col)!r} in {src}", field=col, row=i)
    dup = df["code"][df["code"].str.lower().duplicated()]
    if len(dup):
        raise InputError(f"duplicate code {dup.iloc[0]!r} in {src}", field="code", row=int(dup.index[0]) + 2)
    df["sla_hours"] = df["sla_hours"].astype(float)
    df["handling_minutes"] = df["handling_minutes"].astype(float)
    return df.reset_index(drop=True)


def due_times(reported_at: pd.Series | np.ndarray, sla_hours: pd.Series | np.ndarray,
              calendar: WorkCalendar) -> np.ndarray:
    """Deadline of each case: ``sla_hours`` working hours after it was reported.

    A case reported outside working time starts its clock at the next working minute. A deadline that falls exactly
    at the end of a working day stays on that day (17:00, not 09:00 the next working day).

    Parameters
    ----------
    reported_at
        Report times (naive local time).
    sla_hours
        Time limit of each case in working hours (same length).
    calendar
        Working days and hours.

    Returns
    -------
    numpy.ndarray
        ``datetime64[us]`` deadlines.

    Examples
    --------
    >>> import numpy as np
    >>> from gridgov.config import WorkCalendar
    >>> t = np.array(["2026-11-27T16:00"], dtype="datetime64[us]")  # a Friday
    >>> str(due_times(t, np.array([4.0]), WorkCalendar())[0])
    '2026-11-30T12:00:00.000000'
    """
    t = np.asarray(pd.to_datetime(np.asarray(reported_at)), dtype="datetime64[us]")
    hours = np.asarray(sla_hours, dtype="float64")
    if t.shape != hours.shape:
        raise InputError("reported_at and sla_hours differ in length", field="sla_hours")
    holidays = np.array(calendar.holidays, dtype="datetime64[D]")
    start = calendar.start_minute
    length = calendar.day_minutes
    day = t.astype("datetime64[D]")
    minute = (t - day).astype("timedelta64[m]").astype("int64")
    workday = np.is_busday(day, weekmask=calendar.weekmask, holidays=holidays)
    rolled = np.busday_offset(day, 0, roll="forward", weekmask=calendar.weekmask, holidays=holidays)
    into_day = np.where(workday, np.clip(minute - start, 0, length), 0)
    # Past the end of a working day counts as the start of the next one.
    after_close = workday & (minute - start >= length)
    rolled = np.where(after_close, np.busday_offset(day, 1, roll="forward", weekmask=calendar.weekmask,
                                                    holidays=holidays), rolled)
    into_day = np.where(after_close, 0, into_day)
    total = into_day + np.round(hours * 60).astype("int64")
    days_on = np.where(total > 0, -(-total // length) - 1, 0)
    rest = total - days_on * length
    due_day = np.busday_offset(rolled, days_on, roll="forward", weekmask=calendar.weekmask, holidays=holidays)
    minutes = (start + rest).astype("timedelta64[m]")
    return due_day.astype("datetime64[us]") + minutes.astype("timedelta64[us]")


def is_open(status: pd.Series) -> pd.Series:
    """True where a status is still open (not closed or cancelled)."""
    return status.isin(OPEN_STATUSES)
