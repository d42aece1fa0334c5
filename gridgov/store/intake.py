"""Reads and writes of the intake API: clients, one new case at a time, and Open311-shaped case lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from gridgov.errors import InputError, StoreError
from gridgov.incidents import OPEN_STATUSES
from gridgov.store.connection import Connection, first_row, in_ids
from gridgov.store.incidents import INCIDENT_COLUMNS

#: The columns of a case record from ``{incidents}`` (the table, or a pre-selected part of it); ``{layout}`` is the
#: parameter of the layout whose grid codes are shown.
_REQUEST_FROM = """
    SELECT i.incident_id, i.external_id, i.source, i.category_code, c.name_en, c.name_zh, i.status, i.description,
           i.address, i.lon, i.lat, i.reported_at, i.due_at, i.closed_at,
           greatest(i.reported_at, coalesce(i.dispatched_at, i.reported_at), coalesce(i.handled_at, i.reported_at),
                    coalesce(i.closed_at, i.reported_at)) AS updated_at,
           lu.grid_code, i.unit_id
    FROM {incidents} i
    JOIN category c ON c.code = i.category_code
    LEFT JOIN layout_unit lu ON lu.unit_id = i.unit_id AND lu.layout_id = {layout}
"""
#: The ``incident`` columns :data:`_REQUEST_FROM` reads.
_REQUEST_COLUMNS = ("incident_id, external_id, source, category_code, status, description, address, lon, lat, "
                    "reported_at, due_at, dispatched_at, handled_at, closed_at, unit_id")
_REQUEST_SELECT = _REQUEST_FROM.format(incidents="incident", layout="$layout")


class IntakeMixin(Connection):
    """``api_client`` rows, single-case inserts and the case lists the API serves."""

    def insert_api_client(self, client_id: str, name: str, key_sha256: str, at: datetime) -> None:
        """Add an API client; the id must be free."""
        with self.transaction() as con:
            if first_row(con.execute("SELECT 1 FROM api_client WHERE client_id = ?", [client_id])):
                raise StoreError(f"an API client {client_id!r} already exists")
            con.execute("INSERT INTO api_client VALUES (?, ?, ?, TRUE, ?)", [client_id, name, key_sha256, at])

    def api_client(self, client_id: str) -> dict[str, Any] | None:
        """One client with its key hash, or None."""
        cols = ("client_id", "name", "key_sha256", "active", "created_at")
        row = first_row(self.con.execute(f"SELECT {', '.join(cols)} FROM api_client WHERE client_id = ?",
                                         [client_id]))
        return dict(zip(cols, row, strict=True)) if row else None

    def api_clients(self) -> pd.DataFrame:
        """All clients without their key hashes."""
        return self.df("SELECT client_id, name, active, created_at FROM api_client ORDER BY client_id")

    def set_api_client_active(self, client_id: str, active: bool) -> None:
        """Switch a client's key on or off."""
        with self.transaction() as con:
            if not first_row(con.execute("SELECT 1 FROM api_client WHERE client_id = ?", [client_id])):
                raise StoreError(f"no API client {client_id!r}")
            con.execute("UPDATE api_client SET active = ? WHERE client_id = ?", [active, client_id])

    def insert_one_incident(self, row: dict[str, Any]) -> int:
        """Insert one case (columns of :data:`INCIDENT_COLUMNS`) and return its new id. Callers serialise calls
        (ids are the next number).

        Raises
        ------
        InputError
            (field ``external_id``) when the row's source already has a case with its external id — checked inside
            the inserting transaction, so an import publishing meanwhile cannot slip the same key in between.
        """
        frame = pd.DataFrame([{c: row.get(c) for c in INCIDENT_COLUMNS}])
        with self.transaction() as con:
            external_id = row.get("external_id")
            if external_id is not None:
                taken = first_row(con.execute("SELECT incident_id FROM incident WHERE source = ? AND external_id = ?",
                                              [row.get("source"), external_id]))
                if taken is not None:
                    raise InputError(f"this client already sent external_id {str(external_id)[:40]!r} "
                                     f"(case {taken[0]})", field="external_id")
            self.insert_incidents(frame, con=con)
            got = first_row(con.execute("SELECT max(incident_id) FROM incident"))
        assert got is not None
        return int(got[0])

    def service_requests(self, layout_id: int | None, *, status: str | None = None, start: datetime | None = None,
                         end: datetime | None = None, grid: str | None = None, limit: int = 1000) -> pd.DataFrame:
        """Cases newest first, filtered by Open311 status (``open``/``closed``), report time and grid."""
        if status == "open":
            return self._open_service_requests(layout_id, start=start, end=end, grid=grid, limit=limit)
        open_statuses = list(OPEN_STATUSES)
        return self.con.execute(
            _REQUEST_SELECT + """
            WHERE ($status IS NULL OR ($status = 'open' AND list_contains($open, i.status))
                   OR ($status = 'closed' AND NOT list_contains($open, i.status)))
              AND ($start IS NULL OR i.reported_at >= $start)
              AND ($end IS NULL OR i.reported_at < $end)
              AND ($grid IS NULL OR lu.grid_code = $grid)
            ORDER BY i.reported_at DESC, i.incident_id DESC
            LIMIT $limit
            """,
            {"layout": layout_id, "status": status, "open": open_statuses, "start": start, "end": end, "grid": grid,
             "limit": limit},
        ).df()

    def _open_service_requests(self, layout_id: int | None, *, start: datetime | None, end: datetime | None,
                               grid: str | None, limit: int) -> pd.DataFrame:
        con = self.con
        # Two steps, as in grid_open_cases: the open cases' ids from open_case (a few percent of the rows, kept exact
        # by every write), then their records from incident by a constant id list, which the incident_id zone maps
        # answer without reading the status of every case.
        in_grid = "JOIN layout_unit lu ON lu.unit_id = o.unit_id AND lu.layout_id = $layout AND lu.grid_code = $grid"
        picked = con.execute(
            f"""
            SELECT o.incident_id
            FROM open_case o
            {in_grid if grid is not None else ""}
            WHERE ($start IS NULL OR o.reported_at >= $start) AND ($end IS NULL OR o.reported_at < $end)
            ORDER BY o.reported_at DESC, o.incident_id DESC
            LIMIT $limit
            """,
            {"start": start, "end": end, "limit": limit,
             **({"layout": layout_id, "grid": grid} if grid is not None else {})},
        ).fetchall()
        ids = [int(r[0]) for r in picked]
        # MATERIALIZED keeps the id list a filter of the incident scan rather than of the joins after it. The status
        # test drops a case another request closed between the two reads.
        open_statuses = list(OPEN_STATUSES)
        return con.execute(
            f"WITH picked AS MATERIALIZED (SELECT {_REQUEST_COLUMNS} FROM incident "
            f"WHERE {in_ids('incident_id', len(ids))} AND status IN ({', '.join(['?'] * len(open_statuses))}))"
            + _REQUEST_FROM.format(incidents="picked", layout="?")
            + " ORDER BY i.reported_at DESC, i.incident_id DESC",
            [*ids, *open_statuses, layout_id],
        ).df()

    def service_request(self, layout_id: int | None, incident_id: int) -> pd.DataFrame:
        """One case in the shape of :meth:`service_requests` (empty when there is none)."""
        return self.con.execute(_REQUEST_SELECT + " WHERE i.incident_id = $id",
                                {"layout": layout_id, "id": incident_id}).df()
