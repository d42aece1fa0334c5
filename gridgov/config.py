"""Settings: where the database lives, the working calendar and dashboard defaults.

Settings are frozen. They come from keyword arguments, from the environment
(``GRIDGOV_DB``, ``GRIDGOV_CONFIG``, ``GRIDGOV_NOW``) and from an optional TOML file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gridgov.errors import GridgovError, InputError

DEFAULT_DB = Path("var") / "gridgov.duckdb"


def _parse_hhmm(value: str, name: str) -> int:
    try:
        hh, mm = value.split(":")
        minutes = int(hh) * 60 + int(mm)
    except ValueError:
        raise InputError(f"must look like HH:MM, got {value!r}", field=name) from None
    if not 0 <= minutes <= 24 * 60:
        raise InputError(f"must be a time of day between 00:00 and 24:00, got {value!r}", field=name)
    return minutes


@dataclass(frozen=True)
class WorkCalendar:
    """Working time used for SLA deadlines.

    Parameters
    ----------
    day_start, day_end
        Start and end of the working day, ``"HH:MM"`` local time.
    weekmask
        Seven characters ``1``/``0`` from Monday to Sunday: which days are working days.
    holidays
        ISO dates (``YYYY-MM-DD``) that are not working days.
    """

    day_start: str = "09:00"
    day_end: str = "17:00"
    weekmask: str = "1111100"
    holidays: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        start = _parse_hhmm(self.day_start, "day_start")
        end = _parse_hhmm(self.day_end, "day_end")
        if end <= start:
            raise InputError(f"must be later than day_start {self.day_start}, got {self.day_end}", field="day_end")
        if len(self.weekmask) != 7 or set(self.weekmask) - {"0", "1"} or "1" not in self.weekmask:
            raise InputError(
                f"must be 7 characters of 0/1 (Monday first) with at least one 1, got {self.weekmask!r}",
                field="weekmask",
            )

    @property
    def start_minute(self) -> int:
        """Minutes after midnight when the working day starts."""
        return _parse_hhmm(self.day_start, "day_start")

    @property
    def day_minutes(self) -> int:
        """Length of one working day in minutes."""
        return _parse_hhmm(self.day_end, "day_end") - self.start_minute


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one gridgov deployment.

    Parameters
    ----------
    db_path
        Where the store lives: a DuckDB file (created with its folder on first use; also ``duckdb:///path``) or a
        ``postgresql://user@host:port/database`` URL (kept as text; see docs/scaling.md).
    categories_path
        A city's own category/SLA table; ``None`` uses ``geodata/categories.csv``.
    calendar
        Working time for SLA deadlines.
    standard_week_hours
        Hours of one full-time worker per week (FTE).
    now
        A fixed clock for "open/overdue now"; ``None`` uses the wall clock.
    host, port
        Where the dashboard listens.
    staffing
        Parameters of the staffing model (TOML table ``[staffing]``), checked by
        :class:`gridgov.staffing.StaffingParams`; what it leaves out keeps its default.
    """

    db_path: Path | str = DEFAULT_DB
    categories_path: Path | None = None
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    standard_week_hours: float = 40.0
    now: datetime | None = None
    host: str = "127.0.0.1"
    port: int = 8050
    staffing: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "db_path", store_location(self.db_path))
        if self.categories_path is not None:
            object.__setattr__(self, "categories_path", Path(self.categories_path))
        if self.standard_week_hours <= 0:
            raise InputError(f"must be > 0, got {self.standard_week_hours}", field="standard_week_hours")
        if not 0 < self.port < 65536:
            raise InputError(f"must be a TCP port 1-65535, got {self.port}", field="port")
        if self.staffing:
            from gridgov.staffing import StaffingParams

            StaffingParams.from_mapping(dict(self.staffing))

    def clock(self) -> datetime:
        """The time the dashboard calls "now" (naive local time)."""
        return self.now if self.now is not None else datetime.now().replace(microsecond=0)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, *, db_path: Path | str | None = None, **overrides: Any) -> Settings:
        """Build settings from ``GRIDGOV_CONFIG`` (TOML), then ``GRIDGOV_DB``/``GRIDGOV_NOW``, then arguments.

        Parameters
        ----------
        db_path
            Database file; wins over the environment.
        **overrides
            Any other :class:`Settings` field.
        """
        values: dict[str, Any] = {}
        cfg = os.environ.get("GRIDGOV_CONFIG")
        if cfg:
            values.update(_read_toml(Path(cfg)))
        if os.environ.get("GRIDGOV_DB"):
            values["db_path"] = os.environ["GRIDGOV_DB"]
        if os.environ.get("GRIDGOV_NOW"):
            values["now"] = _parse_now(os.environ["GRIDGOV_NOW"], "GRIDGOV_NOW")
        if db_path is not None:
            values["db_path"] = db_path
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def store_location(location: Path | str) -> Path | str:
    """A store location as settings keep it: a :class:`~pathlib.Path` for a DuckDB file, the URL text for
    PostgreSQL (a ``Path`` would fold its ``//``).

    Examples
    --------
    >>> store_location("duckdb:///srv/g.duckdb")
    PosixPath('/srv/g.duckdb')
    >>> store_location("postgresql://gridgov@db:5432/city")
    'postgresql://gridgov@db:5432/city'
    """
    from gridgov.store.connection import parse_location

    try:
        return parse_location(location)[1]
    except GridgovError as exc:
        raise InputError(str(exc), field="db_path") from None


def _parse_now(value: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"must be an ISO date-time like 2026-11-27T10:00, got {value!r}", field=name) from None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise InputError(f"config file {path} does not exist", field="GRIDGOV_CONFIG")
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    out: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(Settings)}
    for key, value in raw.items():
        if key == "calendar":
            cal = dict(value)
            if "holidays" in cal:
                cal["holidays"] = tuple(str(d) for d in cal["holidays"])
            out["calendar"] = WorkCalendar(**cal)
        elif key == "now":
            out["now"] = value if isinstance(value, datetime) else _parse_now(str(value), "now")
        elif key in known:
            out[key] = value
        else:
            raise InputError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}", field=key)
    return out
