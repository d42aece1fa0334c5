"""Categories and incidents: bulk writes and the reads behind the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from gridgov.incidents import OPEN_STATUSES
from gridgov.store.connection import Connection, first_row, in_ids, local_setting, upsert

INCIDENT_COLUMNS: tuple[str, ...] = (
    "source", "external_id", "category_code", "reported_at", "due_at", "status", "dispatched_at", "handled_at",
    "closed_at", "lon", "lat", "unit_id", "address", "description", "reporter_name", "reporter_phone", "batch_id",
)
_TIME_COLUMNS = ("reported_at", "due_at", "dispatched_at", "handled_at", "closed_at")
_ARROW_TYPES = {**{c: pa.timestamp("us") for c in _TIME_COLUMNS},
                "lon": pa.float64(), "lat": pa.float64(), "unit_id": pa.int32(), "batch_id": pa.int32()}
_OPEN = list(OPEN_STATUSES)
#: Columns of ``open_case`` (migration 006): what the open and overdue counts and the case lists filter on.
OPEN_CASE_COLUMNS: tuple[str, ...] = ("incident_id", "unit_id", "category_code", "reported_at", "due_at")
_OPEN_CASE_SELECT = ", ".join(OPEN_CASE_COLUMNS)
#: Bits of group-key range up to which DuckDB aggregates into a flat array instead of a hash table. Its default (12)
#: is below the unit ids of a district (16 bits for 40,000 units); per-unit counts in a flat array take a third to a
#: sixth of the time of the hash table (1–2 ms instead of 3–8 ms per scan at 10 M incidents). The array is sized by
#: the ids' actual range; 18 bits let it serve unit ids up to 262,143 (a few MB per thread).
_UNIT_KEY_BITS = 18


def add_open_cases(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Copy the open cases among newly written incidents into ``open_case``, in the caller's transaction.

    Parameters
    ----------
    con
        Cursor of the transaction that wrote the incidents.
    relation
        Name of the registered relation that was just inserted into ``incident`` (it has the columns of
        :data:`OPEN_CASE_COLUMNS` and ``status``). Only the store's own constant names come here.
    """
    con.execute(f"INSERT INTO open_case SELECT {_OPEN_CASE_SELECT} FROM {relation} WHERE list_contains(?, status)",
                [_OPEN])


def _incident_arrow(df: pd.DataFrame) -> pa.Table:
    out = pd.DataFrame(index=df.index)
    for col in INCIDENT_COLUMNS:
        if col in df.columns:
            out[col] = df[col]
        else:
            out[col] = None
    table = pa.Table.from_pandas(out, preserve_index=False)
    # Typed as the table's columns even when a frame's column is all empty (Arrow's null type), which PostgreSQL
    # would not cast into an integer or a time.
    for col, typ in _ARROW_TYPES.items():
        idx = table.schema.get_field_index(col)
        table = table.set_column(idx, col, table.column(col).cast(typ))
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
            con.execute(upsert("category", ("code",), tuple(cols), f"SELECT {', '.join(cols)} FROM _c"))
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
            add_open_cases(tx, "_inc")
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
        params = {"layout": layout_id, "start": start, "end": end, "now": now,
                  "cats": self._category_codes(categories, klass)}
        # Three narrow scans, each counted per unit before the join to the layout's grids: the window's reports and
        # closures are found through the zone maps of reported_at/closed_at (rows arrive roughly in time order);
        # open cases come from open_case, a few percent of the rows, rather than from the status of every case.
        # The category filter is a constant list (resolved first), which DuckDB evaluates inside the scan where a
        # semi-join on the category table could not be. Per-unit counts go into a flat array (_UNIT_KEY_BITS).
        # Measured at 10 M incidents in docs/benchmarks.md.
        con = self.con
        with local_setting(con, "perfect_ht_threshold", _UNIT_KEY_BITS):
            return con.execute(
                """
                WITH hits AS (
                    SELECT unit_id, count(*) AS reported, 0 AS open, 0 AS overdue, 0 AS closed, 0 AS closed_on_time
                    FROM incident
                    WHERE reported_at >= $start AND reported_at < $end AND list_contains($cats, category_code)
                    GROUP BY unit_id
                    UNION ALL
                    SELECT unit_id, 0, count(*), count(*) FILTER (WHERE due_at < $now), 0, 0
                    FROM open_case
                    WHERE reported_at <= $now AND list_contains($cats, category_code)
                    GROUP BY unit_id
                    UNION ALL
                    SELECT unit_id, 0, 0, 0, count(*), count(*) FILTER (WHERE closed_at <= due_at)
                    FROM incident
                    WHERE closed_at >= $start AND closed_at < $end AND list_contains($cats, category_code)
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

    def _category_codes(self, categories: list[str] | None, klass: str | None) -> list[str]:
        """Codes of the category table that pass the filters (every code without filters), in code order."""
        rows = self.con.execute(
            "SELECT code FROM category WHERE ($cats IS NULL OR list_contains($cats, code)) "
            "AND ($klass IS NULL OR class = $klass) ORDER BY code",
            _filters(categories, klass),
        ).fetchall()
        return [str(r[0]) for r in rows]

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
            GROUP BY c.code, c.name_zh, c.name_en, c.class ORDER BY n DESC, c.code
            """,
            params,
        ).df()

    def grid_open_cases(self, layout_id: int, grid_code: str, *, categories: list[str] | None = None,
                        klass: str | None = None, limit: int = 500) -> pd.DataFrame:
        """Open cases of one grid, soonest deadline first.

        Returns
        -------
        pandas.DataFrame
            ``incident_id, external_id, category_code, name_zh, name_en, status, reported_at, due_at, address,
            description, lon, lat``; at most ``limit`` rows.
        """
        con = self.con
        # Two steps: the grid's open cases from open_case, then their other columns from incident by a constant id
        # list. A join or IN (subquery) against incident reads every row of it (~0.4 s of CPU at 10 M incidents);
        # a constant list is answered from the incident_id zone maps in about 10 ms.
        picked = con.execute(
            """
            SELECT o.incident_id
            FROM open_case o
            JOIN layout_unit lu ON lu.unit_id = o.unit_id AND lu.layout_id = $layout AND lu.grid_code = $grid
            JOIN category c ON c.code = o.category_code
            WHERE ($cats IS NULL OR list_contains($cats, o.category_code)) AND ($klass IS NULL OR c.class = $klass)
            ORDER BY o.due_at, o.incident_id
            LIMIT $limit
            """,
            {"layout": layout_id, "grid": grid_code, "limit": limit, **_filters(categories, klass)},
        ).fetchall()
        ids = [int(r[0]) for r in picked]
        # MATERIALIZED: inlined into the join with category, the id list stops being a scan filter and the whole
        # table is read again.
        return con.execute(
            f"""
            WITH i AS MATERIALIZED (
                SELECT incident_id, external_id, category_code, status, reported_at, due_at, address, description,
                       lon, lat
                FROM incident
                WHERE {in_ids('incident_id', len(ids))}
            )
            SELECT i.incident_id, i.external_id, i.category_code, c.name_zh, c.name_en, i.status,
                   i.reported_at, i.due_at, i.address, i.description, i.lon, i.lat
            FROM i
            JOIN category c ON c.code = i.category_code
            ORDER BY i.due_at, i.incident_id
            """,
            ids,
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
            "open": int(one("SELECT count(*) FROM open_case WHERE reported_at <= ?", [now])),
            "overdue": int(one("SELECT count(*) FROM open_case WHERE due_at < ? AND reported_at <= ?", [now, now])),
        }
