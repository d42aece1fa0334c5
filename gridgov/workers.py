"""Grid workers: the roster (import, add, edit, deactivate) and automatic assignment of workers to grids.

The roster file is a CSV with one worker per row; columns are found by name (English or Chinese headers, see
:data:`COLUMN_ALIASES`). Validation follows the incident importer: every row is accepted or rejected with a stable
reason code naming the field and row, rejected rows are kept in the store with their raw values, and importing the
same file again changes nothing.

Assignment: every grid of a layout has one primary worker and optionally backups; a worker's weekly hours are split
over the grids they hold by role weight (see :mod:`gridgov.staffing`). :func:`auto_assign` keeps manual
assignments and fills the rest; the method is described in ``docs/staffing.md``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridgov.errors import InputError
from gridgov.staffing import HiringNeed, StaffingParams, hiring_need, staffing_table

if TYPE_CHECKING:
    from gridgov.store import Store

#: Roster fields in store order.
ROSTER_FIELDS: tuple[str, ...] = ("worker_id", "name", "phone", "hours_per_week", "base_community", "active")
#: Header spellings accepted for each field (compared case-insensitively, spaces/dashes as underscores).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "worker_id": ("worker_id", "id", "worker", "staff_id", "工号", "编号", "人员编号"),
    "name": ("name", "worker_name", "姓名", "名字"),
    "phone": ("phone", "mobile", "tel", "telephone", "电话", "手机", "联系电话", "手机号"),
    "hours_per_week": ("hours_per_week", "weekly_hours", "hours", "hours_week", "每周工时", "周工时", "工时"),
    "base_community": ("base_community", "community", "community_code", "所属社区", "社区", "社区代码"),
    "active": ("active", "in_service", "status", "在岗", "在职", "状态"),
}
#: Reject reason codes (stable; stored in ``roster_reject.reason``). A row gets the first that applies, in this order.
REASONS: dict[str, str] = {
    "missing_id": "no worker id",
    "duplicate_id": "worker id already given earlier in the file",
    "missing_name": "no name",
    "bad_hours": "weekly hours must be a number > 0 and <= 84",
    "unknown_community": "base community is not a community code of the district",
    "bad_active": "active must be one of true/false, yes/no, 1/0, 是/否, 在岗/离岗",
    "bad_phone": "phone must be a mainland mobile (11 digits, 1[3-9]…) or a landline with area code (0xx-xxxxxxxx)",
}
MAX_HOURS = 84.0
_TRUE = {"true", "t", "yes", "y", "1", "是", "在岗", "在职", "active", "启用"}
_FALSE = {"false", "f", "no", "n", "0", "否", "离岗", "离职", "inactive", "停用"}
_PHONE = re.compile(r"^(?:\+?86)?(?:1[3-9]\d{9}|0\d{9,11})$")
_PHONE_STRIP = re.compile(r"[\s\-()]")
#: Auto-assignment adds a backup only when it lowers the worst gap share of the grids concerned by this much,
#: and never gives a worker more than this many grids: a roster of many tiny backup roles helps nobody.
_MIN_GAIN = 0.02
_MAX_GRIDS = 4
#: Nor more than this many backups to one grid: past that the grid needs its own hire (the messages say so), not a
#: crowd of part-shares that no manager would recognise as a roster.
_MAX_BACKUPS = 2
_MAX_AREA_MESSAGES = 8
#: What :func:`auto_assign` can say, by message code, in English (the CLI's wording): :class:`AssignMessage` fills in
#: the values. Codes are stable; the dashboard keeps its own translation of each (``st_auto_msg_<code>``).
MESSAGE_TEXTS: dict[str, str] = {
    "assigned": "Assigned {added} role(s) automatically ({primary} primary, {backup} backup); kept {kept_manual} "
                "manual assignment(s).",
    "no_worker": "No active worker is available for {n} grid(s): {grids}. Add workers to the roster.",
    "district_short": "Not enough hours in the district: the grids need {demand_hours:.0f} h/week, the active "
                      "workers have {worker_hours:.0f} h/week.",
    "area_hire": "Not enough hours: {n} grid(s) in {community} need {hours:.1f} h/week more; hire {workers}.",
    "area_small": "Not enough hours: {n} grid(s) in {community} need {hours:.1f} h/week more; too little for a hire "
                  "of its own (a part-timer or a neighbouring hire covers it).",
    "rest_short": "{n} more grid(s) elsewhere are short by {hours:.1f} h/week in all.",
    "hire_total": "In all, {hours:.0f} h/week are missing: hire {workers} worker(s) of {week_hours:g} h to bring "
                  "every grid within ±{band:.0%} of its demand.",
    "all_within": "Every grid is within {band:.0%} of its demand or above it.",
}


# ----------------------------------------------------------------------------------------------------------------
# roster: reading and validation
# ----------------------------------------------------------------------------------------------------------------
def _norm_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def read_roster(path: Path | str) -> pd.DataFrame:
    """Read a roster CSV (UTF-8, with or without BOM) into text columns named by :data:`ROSTER_FIELDS`.

    Parameters
    ----------
    path
        The CSV file. Columns are matched by name (:data:`COLUMN_ALIASES`); others are ignored. ``worker_id``,
        ``name`` and ``hours_per_week`` are required; ``phone``, ``base_community`` and ``active`` optional.

    Returns
    -------
    pandas.DataFrame
        One row per data row, every value as text (empty string when blank), columns of :data:`ROSTER_FIELDS`;
        ``attrs["absent"]`` lists the optional fields the file has no column for (an import leaves them alone
        for known workers).

    Raises
    ------
    InputError
        When the file is missing, not UTF-8 text, or lacks a required column (naming it).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"roster file {path} does not exist", field="FILE")
    return _parse_roster(path.read_bytes(), str(path))


def _parse_roster(data: bytes, name: str) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name} is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8", field="FILE") from None
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{name} is empty; expected a header row and one row per worker", field="FILE") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{name} is not a readable CSV: {exc}", field="FILE") from None
    headers = {_norm_header(c): c for c in raw.columns}
    out = pd.DataFrame(index=raw.index)
    absent: list[str] = []
    for fld, aliases in COLUMN_ALIASES.items():
        src = next((headers[a] for a in aliases if a in headers), None)
        if src is None:
            if fld in ("worker_id", "name", "hours_per_week"):
                raise InputError(f"{name} has no column for {fld} (accepted headers: {', '.join(aliases)}); "
                                 f"it has {list(raw.columns)}", field=fld)
            out[fld] = ""
            absent.append(fld)
        else:
            out[fld] = raw[src].astype(str).str.strip()
    out = out.reset_index(drop=True)
    out.attrs["absent"] = absent
    return out


def _parse_active(value: str) -> bool | None:
    v = value.strip().lower()
    if v == "":
        return True
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


def _parse_hours(value: str) -> float | None:
    try:
        h = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(h) or h <= 0 or h > MAX_HOURS:
        return None
    return h


def _clean_phone(value: str) -> str | None:
    """The phone as given (trimmed) when valid, ``""`` when blank, None when invalid."""
    v = value.strip()
    if not v:
        return ""
    return v if _PHONE.match(_PHONE_STRIP.sub("", v)) else None


def validate_roster(frame: pd.DataFrame, *, communities: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split roster rows into accepted workers and rejects with reasons (no database involved).

    Parameters
    ----------
    frame
        :func:`read_roster` output (text columns of :data:`ROSTER_FIELDS`).
    communities
        Community codes of the district; a non-blank base community must be one of them.

    Returns
    -------
    tuple of pandas.DataFrame
        ``accepted`` (typed :data:`ROSTER_FIELDS`; blank phone/community as None, blank active as True) and
        ``rejects`` (``row_no`` 1-based data row, ``field``, ``reason`` code of :data:`REASONS`, ``message``,
        ``raw`` the source row as JSON), both in file order.
    """
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    seen: set[str] = set()
    cols = [c for c in ROSTER_FIELDS if c in frame.columns]
    for i, rec in enumerate(frame[cols].fillna("").astype(str).to_dict(orient="records")):
        row_no = i + 1
        rec = {k: v.strip() for k, v in rec.items()}
        wid = rec.get("worker_id", "")
        hours = _parse_hours(rec.get("hours_per_week", ""))
        community = rec.get("base_community", "")
        active = _parse_active(rec.get("active", ""))
        phone = _clean_phone(rec.get("phone", ""))
        problem: tuple[str, str, str] | None = None
        if not wid:
            problem = ("worker_id", "missing_id", REASONS["missing_id"])
        elif wid in seen:
            problem = ("worker_id", "duplicate_id", f"worker id {wid!r} already given earlier in the file")
        elif not rec.get("name", ""):
            problem = ("name", "missing_name", REASONS["missing_name"])
        elif hours is None:
            problem = ("hours_per_week", "bad_hours", f"{REASONS['bad_hours']} (got {rec.get('hours_per_week')!r})")
        elif community and community not in communities:
            problem = ("base_community", "unknown_community",
                       f"{REASONS['unknown_community']} (got {community!r})")
        elif active is None:
            problem = ("active", "bad_active", f"{REASONS['bad_active']} (got {rec.get('active')!r})")
        elif phone is None:
            problem = ("phone", "bad_phone", f"{REASONS['bad_phone']} (got {rec.get('phone')!r})")
        if wid:
            seen.add(wid)
        if problem:
            fld, code, msg = problem
            rejects.append({"row_no": row_no, "field": fld, "reason": code, "message": msg,
                            "raw": json.dumps(rec, ensure_ascii=False)})
            continue
        rows.append({"worker_id": wid, "name": rec["name"], "phone": phone or None, "hours_per_week": hours,
                     "base_community": community or None, "active": bool(active)})
    # Object columns keep None for a blank phone or community (pandas would make them str with NaN).
    accepted = pd.DataFrame({
        "worker_id": pd.Series([r["worker_id"] for r in rows], dtype=object),
        "name": pd.Series([r["name"] for r in rows], dtype=object),
        "phone": pd.Series([r["phone"] for r in rows], dtype=object),
        "hours_per_week": pd.Series([r["hours_per_week"] for r in rows], dtype="float64"),
        "base_community": pd.Series([r["base_community"] for r in rows], dtype=object),
        "active": pd.Series([r["active"] for r in rows], dtype=bool),
    })
    return accepted, pd.DataFrame(rejects, columns=["row_no", "field", "reason", "message", "raw"])


@dataclass(frozen=True)
class RosterImport:
    """What one roster import did.

    Attributes
    ----------
    batch_id
        The ``roster_batch`` row (the earlier one when ``duplicate``).
    file, sha256
        The file and the hash of its bytes.
    rows_in, accepted, rejected
        Data rows read, accepted and rejected (rejects are in ``roster_reject``).
    inserted, updated, unchanged
        Accepted rows that were new workers, changed stored ones, or equal to them.
    duplicate
        The same content was imported before: nothing changed.
    rejects
        The rejected rows (``row_no, field, reason, message, raw``).
    """

    batch_id: int
    file: str
    sha256: str
    rows_in: int
    accepted: int
    rejected: int
    inserted: int
    updated: int
    unchanged: int
    duplicate: bool
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["row_no", "field", "reason", "message", "raw"]))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the first 20 rejects)."""
        return {"batch_id": self.batch_id, "file": self.file, "sha256": self.sha256, "rows_in": self.rows_in,
                "accepted": self.accepted, "rejected": self.rejected, "inserted": self.inserted,
                "updated": self.updated, "unchanged": self.unchanged, "duplicate": self.duplicate,
                "rejects": self.rejects.drop(columns="raw").head(20).to_dict(orient="records")}

    def summary(self) -> str:
        """A few lines for the terminal (no markup)."""
        if self.duplicate:
            return (f"{self.file}: already imported as roster batch {self.batch_id} (same content, sha256 "
                    f"{self.sha256[:12]}); nothing changed.")
        lines = [f"Imported roster {self.file} as batch {self.batch_id}",
                 f"  rows in   {self.rows_in:>7,}",
                 f"  accepted  {self.accepted:>7,}  (new {self.inserted:,}, changed {self.updated:,}, "
                 f"unchanged {self.unchanged:,})",
                 f"  rejected  {self.rejected:>7,}"]
        for r in self.rejects.head(10).itertuples(index=False):
            lines.append(f"    row {r.row_no}, field '{r.field}': {r.message}")
        if self.rejected > 10:
            lines.append(f"    … all rejects: roster_reject table, batch_id = {self.batch_id}")
        return "\n".join(lines)


def _communities(store: Store) -> set[str]:
    return set(store.admin_areas("community")["code"].astype(str))


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and not (isinstance(b, float) and math.isnan(b)) and float(a) == float(b)
    return bool(a == b)


def import_roster(store: Store, path: Path | str, *, at: datetime | None = None) -> RosterImport:
    """Import a roster CSV: new workers are added, known ones updated, bad rows rejected with a reason.

    Workers absent from the file are left as they are (a file may cover one street), and so are the fields of
    optional columns the file does not have. The same file content imported again changes nothing and says so.

    Parameters
    ----------
    store
        The database.
    path
        The CSV (see :func:`read_roster`).
    at
        Time recorded for the batch (naive local); default now.

    Returns
    -------
    RosterImport
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"roster file {path} does not exist", field="FILE")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    known = store.find_roster_batch(sha)
    if known is not None:
        return RosterImport(batch_id=int(known["batch_id"]), file=str(path), sha256=sha,
                            rows_in=int(known["rows_in"]), accepted=int(known["accepted"]),
                            rejected=int(known["rejected"]), inserted=0, updated=0,
                            unchanged=int(known["accepted"]), duplicate=True)
    frame = _parse_roster(data, str(path))
    accepted, rejects = validate_roster(frame, communities=_communities(store))
    stored = store.workers()
    stored_by_id = {str(r["worker_id"]): r for r in stored.to_dict(orient="records")}
    absent = [f for f in frame.attrs.get("absent", []) if f in ROSTER_FIELDS]
    inserted = updated = unchanged = 0
    write = np.zeros(len(accepted), dtype=bool)
    for i, rec in enumerate(accepted.to_dict(orient="records")):
        old = stored_by_id.get(rec["worker_id"])
        if old is None:
            inserted += 1
            write[i] = True
            continue
        for f in absent:  # a column the file does not have: keep what is stored
            value = old[f]
            accepted.at[i, f] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
        if all(_same(accepted.at[i, c], old[c]) for c in ROSTER_FIELDS):
            unchanged += 1
        else:
            updated += 1
            write[i] = True
    batch_id = store.save_roster_import(file=str(path), sha256=sha, rows_in=len(frame), workers=accepted[write],
                                        rejects=rejects, inserted=inserted, updated=updated, unchanged=unchanged,
                                        at=at or datetime.now().replace(microsecond=0))
    return RosterImport(batch_id=batch_id, file=str(path), sha256=sha, rows_in=len(frame), accepted=len(accepted),
                        rejected=len(rejects), inserted=inserted, updated=updated, unchanged=unchanged,
                        duplicate=False, rejects=rejects)


def _one_worker(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    """Validate one worker given as field values; raise InputError naming the first bad field."""
    text = {k: "" if rec.get(k) is None else str(rec[k]) for k in ROSTER_FIELDS}
    if isinstance(rec.get("active"), bool):
        text["active"] = "true" if rec["active"] else "false"
    accepted, rejects = validate_roster(pd.DataFrame([text]), communities=_communities(store))
    if len(rejects):
        r = rejects.iloc[0]
        raise InputError(str(r["message"]), field=str(r["field"]))
    return dict(accepted.iloc[0].to_dict())


def add_worker(store: Store, *, worker_id: str, name: str, hours_per_week: float, phone: str | None = None,
               base_community: str | None = None, active: bool = True) -> dict[str, Any]:
    """Add one worker to the roster (validated like a roster row); returns the stored values."""
    rec = _one_worker(store, {"worker_id": worker_id, "name": name, "phone": phone, "hours_per_week": hours_per_week,
                              "base_community": base_community, "active": active})
    store.insert_worker(rec)
    return rec


def edit_worker(store: Store, worker_id: str, **changes: Any) -> dict[str, Any]:
    """Change some fields of a worker (``name, phone, hours_per_week, base_community, active``); returns the result.

    A value of ``None`` leaves the field alone; ``""`` clears ``phone`` or ``base_community``.
    """
    old = store.worker(worker_id)
    if old is None:
        raise InputError(f"no worker {worker_id!r}; `gridgov workers list` shows the roster", field="worker_id")
    bad = [k for k in changes if k not in ROSTER_FIELDS or k == "worker_id"]
    if bad:
        raise InputError(f"cannot change {bad}; editable: {list(ROSTER_FIELDS[1:])}", field=bad[0])
    merged = dict(old)
    merged.update({k: v for k, v in changes.items() if v is not None})
    rec = _one_worker(store, merged)
    diff = {k: rec[k] for k in ROSTER_FIELDS[1:] if not _same(rec[k], old[k])}
    store.update_worker(worker_id, diff)
    return rec


def deactivate_worker(store: Store, worker_id: str, *, layout_id: int | None = None) -> list[str]:
    """Mark a worker inactive (the row and its assignments stay, but they supply nothing).

    Returns
    -------
    list of str
        Grids of the layout (default: the current one) where this worker was the primary: they now need a new
        primary and show as ``uncovered`` until they get one.
    """
    if store.worker(worker_id) is None:
        raise InputError(f"no worker {worker_id!r}; `gridgov workers list` shows the roster", field="worker_id")
    store.update_worker(worker_id, {"active": False})
    lid = layout_id if layout_id is not None else store.current_layout_id()
    if lid is None:
        return []
    a = store.assignments(lid)
    mine = a[(a["worker_id"] == worker_id) & (a["role"] == "primary")]
    return sorted(mine["grid_code"].astype(str).tolist())


# ----------------------------------------------------------------------------------------------------------------
# automatic assignment
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AssignMessage:
    """One sentence of :func:`auto_assign`'s account as a code and its values, so that a page can say it in its own
    language; ``str()`` gives the English sentence.

    Attributes
    ----------
    code
        A key of :data:`MESSAGE_TEXTS`.
    values
        The sentence's placeholders: counts (int), hours per week (float), ``band`` (a share, 0.1 = 10 %),
        ``week_hours``, ``grids`` (grid codes joined by ``", "``), and for one community ``community_code`` with
        its display name ``community``.

    Examples
    --------
    >>> str(AssignMessage("all_within", {"band": 0.1}))
    'Every grid is within 10% of its demand or above it.'
    """

    code: str
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in MESSAGE_TEXTS:
            raise ValueError(f"unknown auto-assign message code {self.code!r}; known: {', '.join(MESSAGE_TEXTS)}")

    def __str__(self) -> str:
        return MESSAGE_TEXTS[self.code].format(**self.values)


@dataclass(frozen=True)
class AssignResult:
    """The outcome of :func:`auto_assign`.

    Attributes
    ----------
    assignments
        All rows for the layout: ``grid_code, worker_id, role, manual`` (manual rows as given, rows of grids
        outside the table unchanged, automatic rows new).
    added
        Automatic rows added.
    kept_manual
        Manual rows kept (of the table's grids).
    unfilled
        Grid codes still without an active primary (only when there is no active worker to give them).
    shortfall_hours
        Hours per week still missing to bring every grid within ± band of its demand.
    notes
        What happened and what is missing, as :class:`AssignMessage` (code and values); :attr:`messages` has them
        as English sentences.
    kept_auto
        Automatic rows kept (``keep_auto``).
    removed
        Automatic rows of the table's grids that were redone (dropped).
    need
        The hiring need after assignment.
    """

    assignments: pd.DataFrame
    added: int
    kept_manual: int
    unfilled: list[str]
    shortfall_hours: float
    notes: list[AssignMessage]
    kept_auto: int = 0
    removed: int = 0
    need: HiringNeed | None = None

    @property
    def messages(self) -> list[str]:
        """:attr:`notes` as plain English sentences (what the CLI prints)."""
        return [str(note) for note in self.notes]

    def to_dict(self) -> dict[str, Any]:
        """Counts and messages as plain values (not the rows)."""
        out: dict[str, Any] = {"added": self.added, "kept_manual": self.kept_manual, "kept_auto": self.kept_auto,
                               "removed": self.removed, "unfilled": self.unfilled,
                               "shortfall_hours": round(self.shortfall_hours, 2), "messages": self.messages}
        if self.need is not None:
            out["hire_workers"] = self.need.workers
            out["hire_by_area"] = self.need.by_area.to_dict(orient="records")
        return out


class _Plan:
    """Mutable state of one auto-assignment: who holds which grids and what each grid receives."""

    def __init__(self, demand: np.ndarray, hours: np.ndarray, band: float, backup_weight: float) -> None:
        self.d = demand
        self.h = hours
        self.band = band
        self.bw = backup_weight
        self.w_total = np.zeros(hours.size)
        self.roles: list[list[tuple[int, float]]] = [[] for _ in range(hours.size)]  # grid -1: outside the table
        self.locked = np.zeros(hours.size, dtype=bool)  # holds rows we may not move (manual/kept)
        self.s = np.zeros(demand.size)
        self.on: list[set[int]] = [set() for _ in range(demand.size)]
        self.primary = np.zeros(demand.size, dtype=bool)
        self.new: list[tuple[int, int, str]] = []

    def gs(self, g: int, s: float) -> float:
        d = self.d[g]
        return (d - s) / d if d > 0 else (0.0 if s <= 0 else -1.0)

    def add(self, w: int, g: int, role: str, *, new: bool = True) -> None:
        a = 1.0 if role == "primary" else self.bw
        old, tot = self.w_total[w], self.w_total[w] + a
        if old > 0:
            for g2, b in self.roles[w]:
                if g2 >= 0:
                    self.s[g2] += self.h[w] * b * (1.0 / tot - 1.0 / old)
        if g >= 0:
            self.s[g] += self.h[w] * a / tot
            self.on[g].add(w)
            if role == "primary":
                self.primary[g] = True
        self.w_total[w] = tot
        self.roles[w].append((g, a))
        if new:
            self.new.append((g, w, role))

    def trial(self, w: int, g: int, role: str) -> tuple[float, float]:
        """(worst gap share among the affected grids before, after) if ``w`` took ``role`` in ``g``."""
        a = 1.0 if role == "primary" else self.bw
        old, tot = self.w_total[w], self.w_total[w] + a
        before = self.gs(g, self.s[g])
        after = self.gs(g, self.s[g] + self.h[w] * a / tot)
        for g2, b in self.roles[w]:
            if g2 >= 0:
                before = max(before, self.gs(g2, self.s[g2]))
                after = max(after, self.gs(g2, self.s[g2] + self.h[w] * b * (1.0 / tot - 1.0 / old)))
        return before, after

    def swap_trial(self, w: int, v: int) -> tuple[float, float]:
        """Worst gap share before/after ``w`` and ``v`` exchange all their grids."""
        delta: dict[int, float] = {}
        for who, other in ((w, v), (v, w)):
            for g, b in self.roles[who]:
                delta[g] = delta.get(g, 0.0) + (self.h[other] - self.h[who]) * b / self.w_total[who]
        before = max(self.gs(g, self.s[g]) for g in delta)
        after = max(self.gs(g, self.s[g] + x) for g, x in delta.items())
        return before, after

    def swap(self, w: int, v: int) -> None:
        for who, other in ((w, v), (v, w)):
            for g, b in self.roles[who]:
                self.s[g] += (self.h[other] - self.h[who]) * b / self.w_total[who]
        self.roles[w], self.roles[v] = self.roles[v], self.roles[w]
        self.w_total[w], self.w_total[v] = self.w_total[v], self.w_total[w]
        for g in {g for g, _ in self.roles[w]} | {g for g, _ in self.roles[v]}:
            if g >= 0:
                self.on[g].discard(v)
                self.on[g].discard(w)
                self.on[g].update(x for x in (w, v) if any(g2 == g for g2, _ in self.roles[x]))
        self.new = [(g, {w: v, v: w}.get(x, x), r) for g, x, r in self.new]


def _norm_assignments(assignments: pd.DataFrame) -> pd.DataFrame:
    if assignments is None or len(assignments) == 0:
        return pd.DataFrame({"grid_code": pd.Series(dtype=object), "worker_id": pd.Series(dtype=object),
                             "role": pd.Series(dtype=object), "manual": pd.Series(dtype=bool)})
    for c in ("grid_code", "worker_id", "role"):
        if c not in assignments.columns:
            raise InputError(f"assignments need column {c}", field=c)
    manual = (assignments["manual"].fillna(False).astype(bool).to_numpy() if "manual" in assignments.columns
              else np.zeros(len(assignments), dtype=bool))
    return pd.DataFrame({"grid_code": assignments["grid_code"].astype(str).to_numpy(dtype=object),
                         "worker_id": assignments["worker_id"].astype(str).to_numpy(dtype=object),
                         "role": assignments["role"].astype(str).to_numpy(dtype=object), "manual": manual})


def auto_assign(table_or_demand: pd.DataFrame, roster: pd.DataFrame, assignments: pd.DataFrame,
                grid_adjacency: pd.DataFrame, params: StaffingParams, *, seed: int = 0, keep_auto: bool = False,
                community_names: dict[str, str] | None = None) -> AssignResult:
    """Assign active workers to grids so that supply meets demand as evenly as possible.

    Manual rows are always kept; existing automatic rows of the table's grids are redone (or kept with
    ``keep_auto``). Then, in order (details in ``docs/staffing.md``):

    1. grids without an active primary are bundled with adjacent small grids of the same community when one worker's
       equal split still covers each of them, and bundles are matched, largest first, to unassigned workers by
       hours (shortfall counts double, surplus half) preferring the grid's community;
    2. grids left over (more grids than free workers) get, as primary, the worker of an adjacent grid (else of the
       same community, else anyone) whose taking it leaves the smallest worst gap share;
    3. local improvement: the worker of the grid with the worst gap share swaps all grids with another automatic
       worker (same community, adjacent, or a seeded sample) when that lowers the worst gap share among them;
    4. backups: grids still short by more than the band take a backup — a free worker, or a neighbouring grid's
       worker with spare hours — whenever that lowers the worst gap share among the grids concerned.

    Parameters
    ----------
    table_or_demand
        :func:`gridgov.staffing.grid_demand` or :func:`~gridgov.staffing.staffing_table` output (``grid_code,
        demand_hours``; ``community_code`` for community preferences).
    roster
        ``worker_id, hours_per_week, active`` and ``base_community``.
    assignments
        Current rows ``grid_code, worker_id, role, manual``.
    grid_adjacency
        ``grid_code_a, grid_code_b`` (e.g. ``store.grid_adjacency(layout_id)``).
    params
        The model (band, backup weight, standard week).
    seed
        Seeds tie-breaking and the sample of swap partners.
    keep_auto
        Keep existing automatic rows and only fill gaps.
    community_names
        Community code → name for messages.

    Returns
    -------
    AssignResult
    """
    rng = np.random.default_rng(seed)
    dem = table_or_demand
    for c in ("grid_code", "demand_hours"):
        if c not in dem.columns:
            raise InputError(f"auto_assign needs column {c} in the demand table", field=c)
    codes = dem["grid_code"].astype(str).to_numpy(dtype=object)
    n = codes.size
    gi = {c: i for i, c in enumerate(codes)}
    d = dem["demand_hours"].to_numpy(dtype="float64")
    comm = (dem["community_code"].astype(str).to_numpy(dtype=object) if "community_code" in dem.columns
            else np.full(n, "", dtype=object))
    names = community_names or {}

    ros = roster.drop_duplicates("worker_id", keep="last")
    ros = ros[ros["active"].fillna(False).astype(bool)]
    wid = ros["worker_id"].astype(str).to_numpy(dtype=object)
    hours = ros["hours_per_week"].to_numpy(dtype="float64")
    base = (ros["base_community"].astype(object).where(ros["base_community"].notna(), "").astype(str)
            .to_numpy(dtype=object) if "base_community" in ros.columns else np.full(wid.size, "", dtype=object))
    wi = {w: j for j, w in enumerate(wid)}
    plan = _Plan(d, hours, params.band, params.backup_weight)

    rows = _norm_assignments(assignments)
    in_table = rows["grid_code"].isin(gi).to_numpy()
    active_row = rows["worker_id"].isin(wi).to_numpy()
    manual = rows["manual"].to_numpy(dtype=bool)
    keep = manual | ~in_table | (keep_auto & active_row)
    kept = rows[keep]
    for r in kept.itertuples(index=False):
        j = wi.get(r.worker_id)
        if j is None:
            continue
        plan.add(j, gi.get(r.grid_code, -1), r.role, new=False)
        plan.locked[j] = True
    kept_manual = int((manual & in_table).sum())
    kept_auto = int((keep & ~manual & in_table).sum())
    removed = int((~keep).sum())

    nbrs: list[set[int]] = [set() for _ in range(n)]
    if grid_adjacency is not None and len(grid_adjacency):
        for a, b in zip(grid_adjacency["grid_code_a"].astype(str), grid_adjacency["grid_code_b"].astype(str),
                        strict=True):
            ia, ib = gi.get(a), gi.get(b)
            if ia is not None and ib is not None and ia != ib:
                nbrs[ia].add(ib)
                nbrs[ib].add(ia)

    need_primary = [g for g in range(n) if not plan.primary[g]]
    free = np.array([j for j in range(wid.size) if plan.w_total[j] == 0], dtype=np.int64)
    free_mask = np.zeros(wid.size, dtype=bool)
    free_mask[free] = True
    h_ref = float(np.median(hours[free])) if free.size else params.standard_week_hours

    # 1. bundles of adjacent small grids (same community) that one worker's equal split covers.
    parent = {g: g for g in need_primary}
    members = {g: [g] for g in need_primary}

    def find(g: int) -> int:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    pset = set(need_primary)
    edges = sorted({(min(a, b), max(a, b)) for a in need_primary for b in nbrs[a] if b in pset and comm[a] == comm[b]},
                   key=lambda e: (max(d[e[0]], d[e[1]]), codes[e[0]], codes[e[1]]))
    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        merged = members[ra] + members[rb]
        if len(merged) * max(d[m] for m in merged) <= h_ref:
            parent[rb] = ra
            members[ra] = merged
            del members[rb]
    bundles = sorted(members.values(), key=lambda ms: (-sum(d[m] for m in ms), min(codes[m] for m in ms)))
    leftover: list[int] = []
    jitter = rng.random(wid.size) * 1e-6
    for ms in bundles:
        if not free_mask.any():
            leftover.extend(ms)
            continue
        k = len(ms)
        dmax = max(float(d[m]) for m in ms)
        dsum = sum(float(d[m]) for m in ms)
        under = np.maximum(0.0, 1.0 - hours / (k * dmax)) if dmax > 0 else np.zeros(wid.size)
        over = np.maximum(0.0, hours - dsum) / max(dsum, 1.0)
        mismatch = base != comm[ms[0]]
        cost = 2.0 * under + 0.5 * over + 0.3 * mismatch + jitter
        cost[~free_mask] = np.inf
        j = int(np.argmin(cost))
        free_mask[j] = False
        for m in sorted(ms, key=lambda m: codes[m]):
            plan.add(j, m, "primary")

    # 2. grids left without a worker of their own share one: adjacent first, then same community, then anyone.
    unfilled: list[str] = []
    for g in sorted(leftover, key=lambda g: (-d[g], codes[g])):
        cands = {w for nb in nbrs[g] for w in plan.on[nb]}
        if not cands:
            cands = {w for w in range(wid.size) if plan.w_total[w] > 0 and base[w] == comm[g]}
        if not cands:
            cands = {w for w in range(wid.size) if plan.w_total[w] > 0}
        cands -= plan.on[g]  # a worker already backing this grid up is not made its primary as well
        if not cands:
            unfilled.append(str(codes[g]))
            continue
        best = min(sorted(cands), key=lambda w: (plan.trial(w, g, "primary")[1], jitter[w]))
        plan.add(best, g, "primary")

    # 3. local improvement: swap the worst grid's worker with a better-suited automatic or free worker.
    tried: set[int] = set()
    for _ in range(4 * n + 10):
        movable = (~plan.locked & (plan.w_total > 0)) | free_mask
        share = (d - plan.s) / np.where(d > 0, d, 1.0)
        share[d <= 0] = -np.inf
        order = [int(g) for g in np.argsort(-share, kind="stable") if share[g] > params.band and int(g) not in tried]
        if not order:
            break
        g = order[0]
        done = False
        for w in sorted(v for v in plan.on[g] if movable[v]):
            bigger = movable & (hours > hours[w])
            pool = {v for nb in nbrs[g] for v in plan.on[nb] if bigger[v]}
            pool |= set(np.flatnonzero(bigger & (base == comm[g])).tolist())
            others = np.flatnonzero(bigger)
            if others.size:
                pool |= set(rng.choice(others, size=min(40, others.size), replace=False).tolist())
            best_v, best_after = -1, math.inf
            for v in sorted(pool):
                before, after = plan.swap_trial(w, v)
                if after < before - 1e-9 and after < best_after:
                    best_v, best_after = v, after
            if best_v >= 0:
                plan.swap(w, best_v)
                free_mask[w], free_mask[best_v] = free_mask[best_v], free_mask[w]
                done = True
                break
        if not done:
            tried.add(g)

    # 4. backups where grids are still short: a free worker or a neighbour's worker with spare hours.
    by_comm: dict[Any, set[int]] = {}
    for w in range(wid.size):
        by_comm.setdefault(base[w], set()).add(w)
    for rnd in range(8):
        wide = rnd >= 2
        improved = False
        share = (d - plan.s) / np.where(d > 0, d, 1.0)
        for g in [int(x) for x in np.argsort(-share, kind="stable") if share[x] > params.band and d[x] > 0]:
            cur = plan.gs(g, plan.s[g])
            if cur <= params.band or len(plan.on[g]) > _MAX_BACKUPS:  # the primary and _MAX_BACKUPS backups
                continue
            best: tuple[float, int, int] | None = None  # (after, preference, worker)
            near = {v for nb in nbrs[g] for v in plan.on[nb]}
            if wide:  # second rounds: workers two grids away and of the same community may help too
                near |= {v for nb in nbrs[g] for nb2 in nbrs[nb] for v in plan.on[nb2]}
                near |= by_comm.get(comm[g], set())
            # Workers with kept (manual) rows are left alone: a backup would take hours from their grids.
            for w in sorted(v for v in near - plan.on[g] if not plan.locked[v]):
                if len(plan.roles[w]) >= _MAX_GRIDS:
                    continue
                before, after = plan.trial(w, g, "backup")
                if after < before - _MIN_GAIN and (best is None or (after, 1) < best[:2]):
                    best = (after, 1, w)
            if free_mask.any():
                gap = d[g] - plan.s[g]
                short_after = np.maximum(0.0, gap - hours) / d[g]
                waste = np.maximum(0.0, hours - gap) / d[g]
                cost = 2.0 * short_after + 0.5 * waste + 0.3 * (base != comm[g]) + jitter
                cost[~free_mask] = np.inf
                j = int(np.argmin(cost))
                after = plan.gs(g, plan.s[g] + hours[j])
                if best is None or after < best[0] - 0.02:
                    best = (after, 2, j)
            if best is None or best[0] >= cur - _MIN_GAIN:
                continue
            w = best[2]
            if best[1] == 2:
                free_mask[w] = False
            plan.add(w, g, "backup")
            improved = True
        if not improved and wide:
            break

    added_rows = pd.DataFrame({
        "grid_code": [str(codes[g]) for g, _, _ in plan.new],
        "worker_id": [str(wid[w]) for _, w, _ in plan.new],
        "role": [r for _, _, r in plan.new],
        "manual": [False] * len(plan.new),
    })
    out = pd.concat([kept, added_rows], ignore_index=True) if len(kept) else added_rows
    out = out.sort_values(["grid_code", "role", "worker_id"], ascending=[True, False, True], ignore_index=True)
    out["manual"] = out["manual"].astype(bool)

    unfilled = sorted(unfilled)
    table = staffing_table(dem, out, roster, params)
    need = hiring_need(table, params)
    notes = _notes(table, need, plan, hours, params, names, len(plan.new), kept_manual, unfilled)
    return AssignResult(assignments=out, added=len(plan.new), kept_manual=kept_manual, unfilled=unfilled,
                        shortfall_hours=need.hours, notes=notes, kept_auto=kept_auto, removed=removed, need=need)


def _notes(table: pd.DataFrame, need: HiringNeed, plan: _Plan, hours: np.ndarray, params: StaffingParams,
           names: dict[str, str], added: int, kept_manual: int, unfilled: list[str]) -> list[AssignMessage]:
    n_prim = sum(1 for _, _, r in plan.new if r == "primary")
    out = [AssignMessage("assigned", {"added": added, "primary": n_prim, "backup": added - n_prim,
                                      "kept_manual": kept_manual})]
    if unfilled:
        out.append(AssignMessage("no_worker", {"n": len(unfilled), "grids": ", ".join(unfilled[:10])
                                               + ("…" if len(unfilled) > 10 else "")}))
    total_demand = float(table["demand_hours"].sum())
    total_hours = float(hours.sum())
    if total_hours < (1.0 - params.band) * total_demand:
        out.append(AssignMessage("district_short", {"demand_hours": total_demand, "worker_hours": total_hours}))
    shown = 0
    rest_grids, rest_hours = 0, 0.0
    for r in need.by_area.itertuples(index=False):
        if shown >= _MAX_AREA_MESSAGES or (r.workers == 0 and r.hours < 1.0):
            rest_grids += int(r.grids_short)
            rest_hours += float(r.hours)
            continue
        code = str(r.community_code)
        values = {"n": int(r.grids_short), "community_code": code, "community": names.get(code, code),
                  "hours": float(r.hours), "workers": int(r.workers)}
        out.append(AssignMessage("area_hire" if r.workers else "area_small", values))
        shown += 1
    if rest_grids:
        out.append(AssignMessage("rest_short", {"n": rest_grids, "hours": rest_hours}))
    if need.workers:
        out.append(AssignMessage("hire_total", {"hours": float(need.hours), "workers": int(need.workers),
                                                "week_hours": float(params.standard_week_hours),
                                                "band": float(params.band)}))
    else:
        out.append(AssignMessage("all_within", {"band": float(params.band)}))
    return out


__all__ = [
    "COLUMN_ALIASES", "MESSAGE_TEXTS", "REASONS", "ROSTER_FIELDS", "AssignMessage", "AssignResult", "RosterImport",
    "add_worker", "auto_assign", "deactivate_worker", "edit_worker", "import_roster", "read_roster", "validate_roster",
]
