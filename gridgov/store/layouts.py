"""Layouts: the unit → grid mapping, grid geometries and statistics, worker assignments."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import geopandas as gpd
import pandas as pd
import pyarrow as pa

from gridgov.errors import StoreError
from gridgov.store.connection import Connection, first_row, geo_arrow, upsert

_GRID_COLUMNS = ["grid_code", "community_code", "street_code", "n_units", "area_m2", "households", "population"]


class LayoutsMixin(Connection):
    """Queries on ``layout``, ``layout_unit``, ``layout_grid``, ``worker`` and ``assignment``."""

    def save_layout(self, name: str, *, unit_grid: pd.DataFrame, grids: gpd.GeoDataFrame, status: str = "scenario",
                    params: dict[str, Any] | None = None, parent_id: int | None = None,
                    created_at: datetime | None = None) -> int:
        """Store a layout in one transaction and return its ``layout_id``.

        Parameters
        ----------
        name
            Unique layout name.
        unit_grid
            Columns ``unit_id, grid_code``: every unit once.
        grids
            One row per grid with ``grid_code, community_code, street_code, n_units, area_m2, households,
            population`` and geometry (EPSG:4326).
        status
            ``current`` (the previous current one is archived), ``scenario`` or ``archived``.
        params
            How the layout was made (stored as JSON).
        parent_id
            The layout it was derived from.
        created_at
            When it was drawn (naive local time); default now. The demo dates its layout from ``as_of`` so that
            the same seed gives identical tables.
        """
        if status not in ("current", "scenario", "archived"):
            raise StoreError(f"layout status must be current, scenario or archived, got {status!r}")
        mapping = pa.Table.from_pandas(pd.DataFrame(unit_grid[["unit_id", "grid_code"]]), preserve_index=False)
        grid_table = geo_arrow(grids, _GRID_COLUMNS)
        with self.transaction() as con:
            if first_row(con.execute("SELECT 1 FROM layout WHERE name = ?", [name])):
                raise StoreError(f"a layout named {name!r} already exists; choose another name")
            row = first_row(con.execute("SELECT coalesce(max(layout_id), 0) + 1 FROM layout"))
            layout_id = int(row[0]) if row else 1
            if status == "current":
                con.execute("UPDATE layout SET status = 'archived' WHERE status = 'current'")
            con.execute(
                "INSERT INTO layout VALUES (?, ?, ?, ?, ?, ?)",
                [layout_id, name, status, json.dumps(params or {}),
                 created_at or datetime.now().replace(microsecond=0), parent_id],
            )
            con.register("_lu", mapping)
            con.execute("INSERT INTO layout_unit SELECT ?, unit_id, grid_code FROM _lu ORDER BY unit_id",
                        [layout_id])
            con.unregister("_lu")
            con.register("_lg", grid_table)
            con.execute(
                "INSERT INTO layout_grid SELECT ?, grid_code, community_code, street_code, n_units, area_m2, "
                "households, population, ST_GeomFromWKB(wkb) FROM _lg ORDER BY grid_code",
                [layout_id],
            )
            con.unregister("_lg")
        return layout_id

    def layouts(self) -> pd.DataFrame:
        """All layouts with their grid counts, newest first."""
        return self.df(
            "SELECT l.layout_id, l.name, l.status, l.created_at, l.parent_id, l.params, "
            "(SELECT count(*) FROM layout_grid g WHERE g.layout_id = l.layout_id) AS n_grids "
            "FROM layout l ORDER BY l.layout_id DESC"
        )

    def current_layout_id(self) -> int | None:
        """The ``layout_id`` of the current layout, or None before the first one."""
        row = first_row(self.con.execute("SELECT layout_id FROM layout WHERE status = 'current'"))
        return int(row[0]) if row else None

    def layout_id(self, name: str) -> int:
        """The ``layout_id`` of a layout by name."""
        row = first_row(self.con.execute("SELECT layout_id FROM layout WHERE name = ?", [name]))
        if not row:
            raise StoreError(f"no layout named {name!r}; `gridgov scenarios` lists them")
        return int(row[0])

    def layout_grids(self, layout_id: int) -> gpd.GeoDataFrame:
        """Grids of a layout with their statistics, ordered by code."""
        return self.gdf(
            "SELECT grid_code, community_code, street_code, n_units, area_m2, households, population, "
            "ST_AsWKB(geom) AS wkb FROM layout_grid WHERE layout_id = ? ORDER BY grid_code",
            [layout_id],
        )

    def layout_units(self, layout_id: int) -> pd.DataFrame:
        """``unit_id, grid_code`` of a layout."""
        return self.df("SELECT unit_id, grid_code FROM layout_unit WHERE layout_id = ? ORDER BY unit_id",
                       [layout_id])

    def write_workers(self, workers: pd.DataFrame) -> None:
        """Insert or replace roster entries (``worker_id, name, phone, hours_per_week, base_community, active``)."""
        cols = ["worker_id", "name", "phone", "hours_per_week", "base_community", "active"]
        table = pa.Table.from_pandas(pd.DataFrame(workers[cols]), preserve_index=False)
        with self.transaction() as con:
            con.register("_w", table)
            con.execute(upsert("worker", ("worker_id",), tuple(cols), f"SELECT {', '.join(cols)} FROM _w"))
            con.unregister("_w")

    def workers(self) -> pd.DataFrame:
        """The roster ordered by ``worker_id``."""
        return self.df("SELECT * FROM worker ORDER BY worker_id")

    def write_assignments(self, layout_id: int, assignments: pd.DataFrame) -> None:
        """Replace a layout's assignments (``grid_code, worker_id, role, manual``)."""
        table = pa.Table.from_pandas(
            pd.DataFrame(assignments[["grid_code", "worker_id", "role", "manual"]]), preserve_index=False
        )
        with self.transaction() as con:
            con.execute("DELETE FROM assignment WHERE layout_id = ?", [layout_id])
            con.register("_a", table)
            con.execute("INSERT INTO assignment SELECT ?, grid_code, worker_id, role, manual FROM _a", [layout_id])
            con.unregister("_a")

    def assignments(self, layout_id: int) -> pd.DataFrame:
        """Assignments of a layout joined with worker names and hours."""
        return self.df(
            "SELECT a.grid_code, a.worker_id, a.role, a.manual, w.name, w.hours_per_week, w.active "
            "FROM assignment a JOIN worker w USING (worker_id) WHERE a.layout_id = ? "
            "ORDER BY a.grid_code, a.role DESC, a.worker_id",
            [layout_id],
        )

