"""Dashboard users and case lifecycle writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from gridgov.errors import StoreError
from gridgov.incidents import OPEN_STATUSES
from gridgov.store.connection import Connection, first_row, in_ids
from gridgov.store.incidents import OPEN_CASE_COLUMNS

_USER_COLUMNS = ("username", "password_hash", "role", "street_code", "worker_id", "demo_password", "created_at")


def _move_open_case(con: duckdb.DuckDBPyConnection, incident_id: int, *, was_open: bool, is_open: bool) -> None:
    """Keep ``open_case`` exact after a status change of one incident, inside the caller's transaction.

    A case that stays open keeps its row (nothing ``open_case`` holds changes with the status); one that closes or
    is cancelled loses it; one that opens again gets it back from ``incident``.
    """
    if was_open and not is_open:
        con.execute("DELETE FROM open_case WHERE incident_id = ?", [incident_id])
    elif is_open and not was_open:
        con.execute(f"INSERT INTO open_case SELECT {', '.join(OPEN_CASE_COLUMNS)} FROM incident WHERE incident_id = ?",
                    [incident_id])


class UsersMixin(Connection):
    """``app_user`` rows and status changes of incidents with their ``incident_event`` rows."""

    def users(self) -> pd.DataFrame:
        """All users without their password hashes, by name."""
        return self.df("SELECT username, role, street_code, worker_id, demo_password, created_at FROM app_user "
                       "ORDER BY username")

    def user(self, username: str) -> dict[str, Any] | None:
        """One user with the password hash, or None."""
        cur = self.con.execute(f"SELECT {', '.join(_USER_COLUMNS)} FROM app_user WHERE username = ?", [username])
        row = first_row(cur)
        return dict(zip(_USER_COLUMNS, row, strict=True)) if row else None

    def insert_user(self, fields: dict[str, Any]) -> None:
        """Add a user; the name must be free."""
        with self.transaction() as con:
            if first_row(con.execute("SELECT 1 FROM app_user WHERE username = ?", [fields["username"]])):
                raise StoreError(f"a user named {fields['username']!r} already exists")
            con.execute(f"INSERT INTO app_user ({', '.join(_USER_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [fields.get(c) for c in _USER_COLUMNS])

    def set_password_hash(self, username: str, password_hash: str, *, demo_password: bool = False) -> None:
        """Replace a user's password hash."""
        with self.transaction() as con:
            if not first_row(con.execute("SELECT 1 FROM app_user WHERE username = ?", [username])):
                raise StoreError(f"no user named {username!r}; `gridgov user list` lists them")
            con.execute("UPDATE app_user SET password_hash = ?, demo_password = ? WHERE username = ?",
                        [password_hash, demo_password, username])

    def incident_row(self, incident_id: int) -> dict[str, Any] | None:
        """``incident_id, status, unit_id, category_code, due_at`` of one incident, or None."""
        cols = ("incident_id", "status", "unit_id", "category_code", "due_at")
        row = first_row(self.con.execute(f"SELECT {', '.join(cols)} FROM incident WHERE incident_id = ?",
                                         [incident_id]))
        return dict(zip(cols, row, strict=True)) if row else None

    def incident_grid(self, incident_id: int, layout_id: int) -> str | None:
        """The grid code of a case's unit in a layout, or None."""
        row = first_row(self.con.execute(
            "SELECT lu.grid_code FROM incident i JOIN layout_unit lu ON lu.unit_id = i.unit_id "
            "WHERE i.incident_id = ? AND lu.layout_id = ?", [incident_id, layout_id]))
        return str(row[0]) if row else None

    def record_incident_event(self, incident_id: int, *, expected: str, status: str | None, at: datetime,
                              actor: str, note: str | None, event: str) -> None:
        """Move a case from ``expected`` to ``status`` (None: keep it) and log ``event`` by ``actor`` at ``at``,
        in one transaction; refused when the case is no longer in ``expected`` (someone else moved it first)."""
        stamp = {"dispatched": "dispatched_at", "handled": "handled_at", "closed": "closed_at"}
        with self.transaction() as con:
            row = first_row(con.execute("SELECT status FROM incident WHERE incident_id = ?", [incident_id]))
            if not row:
                raise StoreError(f"no incident {incident_id}")
            if row[0] != expected:
                raise StoreError(f"incident {incident_id} is {row[0]} now, not {expected}; reload and try again")
            if status is not None and status != expected:
                column = stamp.get(status)
                if column == "dispatched_at":
                    con.execute("UPDATE incident SET status = ?, dispatched_at = ? WHERE incident_id = ?",
                                [status, at, incident_id])
                elif column == "handled_at":
                    con.execute("UPDATE incident SET status = ?, handled_at = ? WHERE incident_id = ?",
                                [status, at, incident_id])
                elif column == "closed_at":
                    con.execute("UPDATE incident SET status = ?, closed_at = ? WHERE incident_id = ?",
                                [status, at, incident_id])
                else:
                    con.execute("UPDATE incident SET status = ? WHERE incident_id = ?", [status, incident_id])
                _move_open_case(con, incident_id, was_open=expected in OPEN_STATUSES,
                                is_open=status in OPEN_STATUSES)
            con.execute("INSERT INTO incident_event VALUES (?, ?, ?, ?, ?)", [incident_id, at, event, actor, note])

    def incident_reporters(self, incident_ids: list[int]) -> pd.DataFrame:
        """``incident_id, reporter_name, reporter_phone`` of the given cases (unmasked: callers mask)."""
        ids = [int(i) for i in incident_ids]
        return self.df("SELECT incident_id, reporter_name, reporter_phone FROM incident "
                       f"WHERE {in_ids('incident_id', len(ids))} ORDER BY incident_id", ids)

    def incident_events(self, incident_id: int) -> pd.DataFrame:
        """The lifecycle events of a case, oldest first."""
        return self.df("SELECT event_at, status, actor, note FROM incident_event WHERE incident_id = ? "
                       "ORDER BY event_at, rowid", [incident_id])
