"""The stored unit graph (``unit_node``, ``unit_adjacency``) and per-unit incident aggregates for demand."""

from __future__ import annotations

from datetime import datetime

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow as pa

from gridgov.store.areas import META_UPSERT, insert_units
from gridgov.store.connection import Connection, first_row

_NODE_COLUMNS = ["unit_id", "x", "y", "area_m2", "perimeter_m"]
_EDGE_COLUMNS = ["unit_a", "unit_b", "shared_m"]
GRAPH_CRS_KEY = "graph_crs"


def _arrow(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    return pa.Table.from_pandas(pd.DataFrame(frame[columns]), preserve_index=False)


class GraphMixin(Connection):
    """Queries on ``unit_node`` and ``unit_adjacency``."""

    def _write_graph(self, con: duckdb.DuckDBPyConnection, nodes: pd.DataFrame, edges: pd.DataFrame, crs: str) -> None:
        con.execute("DELETE FROM unit_adjacency")
        con.execute("DELETE FROM unit_node")
        con.register("_nodes", _arrow(nodes, _NODE_COLUMNS))
        con.execute("INSERT INTO unit_node SELECT unit_id, x, y, area_m2, perimeter_m "
                    "FROM _nodes ORDER BY unit_id")
        con.unregister("_nodes")
        con.register("_edges", _arrow(edges, _EDGE_COLUMNS))
        con.execute("INSERT INTO unit_adjacency SELECT unit_a, unit_b, shared_m "
                    "FROM _edges ORDER BY unit_a, unit_b")
        con.unregister("_edges")
        con.execute(META_UPSERT, [GRAPH_CRS_KEY, crs])

    def write_unit_graph(self, nodes: pd.DataFrame, edges: pd.DataFrame, *, crs: str) -> None:
        """Replace the stored unit graph.

        Parameters
        ----------
        nodes
            ``unit_id, x, y, area_m2, perimeter_m`` (:meth:`gridgov.units.UnitGraph.nodes`).
        edges
            ``unit_a < unit_b, shared_m`` (:meth:`gridgov.units.UnitGraph.edges`).
        crs
            The metric CRS the measures are in.
        """
        with self.transaction() as con:
            self._write_graph(con, nodes, edges, crs)

    def unit_graph_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
        """``(nodes, edges, crs)`` of the stored graph, or None when none is stored or it is stale.

        The graph is stale when its node ids differ from the stored units (units rebuilt without it).
        """
        row = first_row(self.con.execute(
            "SELECT (SELECT count(*) FROM unit_node), (SELECT count(*) FROM unit), "
            "(SELECT count(*) FROM unit u JOIN unit_node n USING (unit_id)), "
            "(SELECT value FROM meta WHERE key = ?)", [GRAPH_CRS_KEY]))
        if row is None or not row[0] or row[0] != row[1] or row[2] != row[1] or row[3] is None:
            return None
        nodes = self.df("SELECT unit_id, x, y, area_m2, perimeter_m FROM unit_node ORDER BY unit_id")
        edges = self.df("SELECT unit_a, unit_b, shared_m FROM unit_adjacency ORDER BY unit_a, unit_b")
        return nodes, edges, str(row[3])

    def replace_units_and_graph(self, units: gpd.GeoDataFrame, nodes: pd.DataFrame, edges: pd.DataFrame, *,
                                crs: str) -> None:
        """Replace the units and their graph in one transaction (columns as in ``write_units``, EPSG:4326)."""
        with self.transaction() as con:
            con.execute("DELETE FROM unit")
            insert_units(con, units)
            self._write_graph(con, nodes, edges, crs)

    def unit_incident_counts(self, *, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """``unit_id, category_code, n`` of incidents reported in ``[start, end)``, cancelled ones left out."""
        return self.df(
            "SELECT unit_id, category_code, count(*) AS n FROM incident "
            "WHERE status <> 'cancelled' AND (?::TIMESTAMP IS NULL OR reported_at >= ?::TIMESTAMP) "
            "AND (?::TIMESTAMP IS NULL OR reported_at < ?::TIMESTAMP) "
            "GROUP BY unit_id, category_code ORDER BY unit_id, category_code",
            [start, start, end, end],
        )
