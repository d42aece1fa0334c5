"""Categories and incidents: bulk writes and the reads behind the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from gridgov.incidents import OPEN_STATUSES
from gridgov.store.connection import Connection, first_row

INCIDENT_COLUMNS: tuple[str, ...] = (
    "source", "external_id", "category_code", "reported_at", "due_at", "status", "dispatched_at", "handled_at",
    "closed_at", "lon", "lat", "unit_id", "address", "description", "reporter_name", "reporter_phone", "batch_id",
)
_TIME_COLUMNS = ("reported_at", "due_at", "dispatched_at", "handled_at", "closed_at")
_OPEN = list(OPEN_STATUSES)


def _incident_arrow(df: pd.DataFrame) -> pa.Table:
    out = pd.DataFrame(index=df.index)
    for col in INCIDENT_COLUMNS:
        if col in df.columns:
            out[col] = df[col]
        else:
            out[col] = None
    table = pa.Table.from_pandas(out, preserve_index=False)
    for col in _TIME_COLUMNS:
        idx = table.schema.get_field_index(col)
        table = table.set_column(idx, col, table.column(col).cast(pa.timestamp("us")))
    return table


def _filters(categories: list[str] | None, klass: str | None) -> dict[str, Any]:
    return {"cats": list(categories) if categories else None, "klass": klass or None}


class IncidentsMixin(Connection):
    """Queries on ``category``, ``incident`` and ``incident_event``."""

    def write_categories(self, categories: pd.DataFrame) -> None:
        """Insert or replace the category table."""
        cols = ["code", "name_zh", "name_en", "class", "sla_hours", "handling_minutes"]
        table = pa.Table.from_pandas(pd.DataFrame(categories[cols]), preserve_index=False)
        with self.transaction() as con:
            con.register("_c", table)
            con.execute("INSERT OR REPLACE INTO category SELECT * FROM _c")
            con.unregister("_c")

    def categories(self) -> pd.DataFrame:
        """The category table in code order."""
        return self.df("SELECT * FROM category ORDER BY class, code")

    def insert_incidents(self, incidents: pd.DataFrame, *, con: duckdb.DuckDBPyConnection | None = None) -> int:
        """Append incidents in one statement, numbering them after the highest ``incident_id``.

        Parameters
        ----------
        incidents
            Columns of :data:`INCIDENT_COLUMNS` (missing optional ones are stored as NULL), in the order ids are
            to be given.
        con
            A cursor inside a caller's open transaction; ``None`` opens one.

        Returns
        -------
        int
            Number of rows inserted.
        """
        table = _incident_arrow(incidents.reset_index(drop=True))
        cols = ", ".join(INCIDENT_COLUMNS)

        def _write(tx: duckdb.DuckDBPyConnection) -> None:
            # Ids are numbered here, in input order, rather than by row_number() in SQL: DuckDB does not promise
            # to keep the scan order of a registered table.
            row = first_row(tx.execute("SELECT coalesce(max(incident_id), 0) FROM incident"))
            first = int(row[0]) + 1 if row else 1
            ids = pa.array(np.arange(first, first + table.num_rows, dtype=np.int64))
            tx.register("_inc", table.add_column(0, "incident_id", ids))
            tx.execute(f"INSERT INTO incident (incident_id, {cols}) SELECT incident_id, {cols} FROM _inc")
            tx.unregister("_inc")

        if con is None:
            with self.transaction() as tx:
                _write(tx)
        else:
            _write(con)
        return table.num_rows

    def incidents(self, columns: tuple[str, ...] = INCIDENT_COLUMNS) -> pd.DataFrame:
        """All incidents (the given columns plus ``incident_id``) ordered by id."""
        allowed = set(INCIDENT_COLUMNS)
        bad = [c for c in columns if c not in allowed]
        if bad:
            raise ValueError(f"unknown incident column(s) {bad}; known: {sorted(allowed)}")
        return self.df(f"SELECT incident_id, {', '.join(columns)} FROM incident ORDER BY incident_id")

    def grid_stats(self, layout_id: int, *, start: datetime, end: datetime, now: datetime,
                   categories: list[str] | None = None, klass: str | None = None) -> pd.DataFrame:
        """Per-grid counts for the dashboard.

        Parameters
        ----------
        layout_id
            Layout whose grids count.
        start, end
            Time window ``[start, end)`` for reported and closed counts.
        now
            The clock for "open" and "overdue".
        categories, klass
            Optional filters: category codes, and ``component``/``event``.

        Returns
        -------
        pandas.DataFrame
            ``grid_code, reported, open, overdue, closed, closed_on_time``; grids without incidents are absent.
        """
        params = {"layout": layout_id, "start": start, "end": end, "now": now, "open": _OPEN,
                  **_filters(categories, klass)}
        # Three narrow scans instead of one pass over every incident: the window's reports and closures are found
        # through the zone maps of reported_at/closed_at (rows arrive roughly in time order), open cases through
        # the status column; each is counted per unit before the join to the layout's grids. Four to five times
        # faster than one filtered aggregate over the whole table at millions of incidents (docs/scaling.md).
        return self.con.execute(
            """
            WITH picked AS (
                SELECT code FROM category
                WHERE ($cats IS NULL OR list_contains($cats, code)) AND ($klass IS NULL OR class = $klass)
            ), hits AS (
                SELECT unit_id, count(*) AS reported, 0 AS open, 0 AS overdue, 0 AS closed, 0 AS closed_on_time
                FROM incident
                WHERE reported_at >= $start AND reported_at < $end AND category_code IN (SELECT code FROM picked)
                GROUP BY unit_id
                UNION ALL
                SELECT unit_id, 0, count(*), count(*) FILTER (WHERE due_at < $now), 0, 0
                FROM incident
                WHERE list_contains($open, status) AND reported_at <= $now
                  AND category_code IN (SELECT code FROM picked)
                GROUP BY unit_id
                UNION ALL
                SELECT unit_id, 0, 0, 0, count(*), count(*) FILTER (WHERE closed_at <= due_at)
                FROM incident
                WHERE closed_at >= $start AND closed_at < $end AND category_code IN (SELECT code FROM picked)
                GROUP BY unit_id
            )
            SELECT lu.grid_code, sum(h.reported)::BIGINT AS reported, sum(h.open)::BIGINT AS open,
                   sum(h.overdue)::BIGINT AS overdue, sum(h.closed)::BIGINT AS closed,
                   sum(h.closed_on_time)::BIGINT AS closed_on_time
            FROM hits h
            JOIN layout_unit lu ON lu.unit_id = h.unit_id AND lu.layout_id = $layout
            GROUP BY lu.grid_code
            ORDER BY lu.grid_code
            """,
            params,
        ).df()

    def grid_category_counts(self, layout_id: int, grid_code: str, *, start: datetime, end: datetime,
                             categories: list[str] | None = None, klass: str | None = None) -> pd.DataFrame:
        """Incidents reported in ``[start, end)`` in one grid, by category (``code, name_zh, name_en, n``)."""
        params = {"layout": layout_id, "grid": grid_code, "start": start, "end": end,
                  **_filters(categories, klass)}
        return self.con.execute(
            """
            SELECT c.code, c.name_zh, c.name_en, c.class, count(*) AS n
            FROM incident i
            JOIN layout_unit lu ON lu.unit_id = i.unit_id AND lu.layout_id = $layout AND lu.grid_code = $grid
            JOIN category c ON c.code = i.category_code
            WHERE i.reported_at >= $start AND i.reported_at < $end
              AND ($cats IS NULL OR list_contains($cats, i.category_code))
              AND ($klass IS NULL OR c.class = $klass)
            GROUP BY ALL ORDER BY n DESC, c.code
            """,
            params,
        ).df()

    def grid_open_cases(self, layout_id: int, grid_code: str, *, categories: list[str] | None = None,
                        klass: str | None = None, limit: int = 500) -> pd.DataFrame:
        """Open cases of one grid, soonest deadline first."""
        params = {"layout": layout_id, "grid": grid_code, "open": _OPEN, "limit": limit,
                  **_filters(categories, klass)}
        return self.con.execute(
            """
            SELECT i.incident_id, i.external_id, i.category_code, c.name_zh, c.name_en, i.status,
                   i.reported_at, i.due_at, i.address, i.description, i.lon, i.lat
            FROM incident i
            JOIN layout_unit lu ON lu.unit_id = i.unit_id AND lu.layout_id = $layout AND lu.grid_code = $grid
            JOIN category c ON c.code = i.category_code
            WHERE list_contains($open, i.status)
              AND ($cats IS NULL OR list_contains($cats, i.category_code))
              AND ($klass IS NULL OR c.class = $klass)
            ORDER BY i.due_at, i.incident_id
            LIMIT $limit
            """,
            params,
        ).df()

    def incident_time_range(self) -> tuple[datetime, datetime] | None:
        """Earliest and latest report time, or None without incidents."""
        row = first_row(self.con.execute("SELECT min(reported_at), max(reported_at) FROM incident"))
        if row is None or row[0] is None:
            return None
        return (row[0], row[1])

    def counts(self, *, now: datetime) -> dict[str, Any]:
        """Counts for ``gridgov info``."""
        con = self.con
        levels = dict(con.execute("SELECT level, count(*) FROM admin_area GROUP BY level").fetchall())

        def one(sql: str, params: list[Any] | None = None) -> Any:
            row = first_row(con.execute(sql, params or []))
            return row[0] if row else 0

        return {
            "admin_areas": {lvl: int(levels.get(lvl, 0)) for lvl in ("district", "street", "community")},
            "units": int(one("SELECT count(*) FROM unit")),
            "grids": int(one("SELECT count(*) FROM layout_grid g JOIN layout l USING (layout_id) "
                             "WHERE l.status = 'current'")),
            "layouts": int(one("SELECT count(*) FROM layout")),
            "workers": int(one("SELECT count(*) FROM worker WHERE active")),
            "incidents": int(one("SELECT count(*) FROM incident")),
            "open": int(one("SELECT count(*) FROM incident WHERE list_contains(?, status) AND reported_at <= ?",
                            [_OPEN, now])),
            "overdue": int(one("SELECT count(*) FROM incident WHERE list_contains(?, status) AND due_at < ? "
                               "AND reported_at <= ?", [_OPEN, now, now])),
        }
