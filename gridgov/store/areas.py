"""Admin areas, unit grids and key/value metadata."""

from __future__ import annotations

import duckdb
import geopandas as gpd
import pandas as pd

from gridgov.store.connection import Connection, first_row, geo_arrow, upsert
from gridgov.store.revision import SESSION_SECRET_KEY

#: Set one ``meta`` entry (key, value), replacing its value.
META_UPSERT = upsert("meta", ("key",), ("key", "value"), "VALUES (?, ?)")


def insert_units(con: duckdb.DuckDBPyConnection, units: gpd.GeoDataFrame) -> None:
    """Append units (columns of ``AreasMixin.write_units``, EPSG:4326) inside the caller's transaction."""
    table = geo_arrow(units, ["unit_id", "community_code", "land_use", "area_m2", "households", "population"])
    con.register("_units", table)
    con.execute(
        "INSERT INTO unit SELECT unit_id, community_code, land_use, area_m2, households, population, "
        "ST_GeomFromWKB(wkb) FROM _units ORDER BY unit_id"
    )
    con.unregister("_units")


class AreasMixin(Connection):
    """Queries on ``meta``, ``admin_area`` and ``unit``."""

    def set_meta(self, values: dict[str, str]) -> None:
        """Insert or replace metadata entries (district name, metric CRS, demo seed …)."""
        with self.transaction() as con:
            for key, value in values.items():
                con.execute(META_UPSERT, [key, str(value)])

    def meta(self) -> dict[str, str]:
        """All metadata entries but the session secret (which ``gridgov info`` would otherwise print)."""
        return dict(self.con.execute("SELECT key, value FROM meta WHERE key <> ? ORDER BY key",
                                     [SESSION_SECRET_KEY]).fetchall())

    def write_admin_areas(self, areas: gpd.GeoDataFrame, *, replace: bool = False) -> None:
        """Store admin areas (columns ``code, name, level, parent_code, area_m2``, optional ``name_en``; EPSG:4326).

        Parameters
        ----------
        areas
            One row per district, street or community.
        replace
            Drop every stored area first.
        """
        if "name_en" not in areas.columns:
            areas = areas.assign(name_en=None)
        table = geo_arrow(areas, ["code", "name", "name_en", "level", "parent_code", "area_m2"])
        with self.transaction() as con:
            if replace:
                con.execute("DELETE FROM admin_area")
            con.register("_areas", table)
            con.execute(
                "INSERT INTO admin_area SELECT code, name, name_en, level, parent_code, area_m2, ST_GeomFromWKB(wkb) "
                "FROM _areas"
            )
            con.unregister("_areas")

    def admin_areas(self, level: str | None = None) -> gpd.GeoDataFrame:
        """Admin areas, optionally of one level, ordered by code."""
        return self.gdf(
            "SELECT code, name, name_en, level, parent_code, area_m2, ST_AsWKB(geom) AS wkb FROM admin_area "
            "WHERE ? IS NULL OR level = ? ORDER BY code",
            [level, level],
        )

    def write_units(self, units: gpd.GeoDataFrame, *, replace: bool = False) -> None:
        """Store unit grids (columns ``unit_id, community_code, land_use, area_m2, households, population``)."""
        with self.transaction() as con:
            if replace:
                con.execute("DELETE FROM unit")
            insert_units(con, units)

    def units(self) -> gpd.GeoDataFrame:
        """All unit grids ordered by ``unit_id``."""
        return self.gdf(
            "SELECT unit_id, community_code, land_use, area_m2, households, population, ST_AsWKB(geom) AS wkb "
            "FROM unit ORDER BY unit_id"
        )

    def unit_table(self) -> pd.DataFrame:
        """Unit attributes without geometry (cheap)."""
        return self.df(
            "SELECT unit_id, community_code, land_use, area_m2, households, population FROM unit ORDER BY unit_id"
        )

    def district_bounds(self) -> tuple[float, float, float, float] | None:
        """``(min_lon, min_lat, max_lon, max_lat)`` of all admin areas, or None when there are none."""
        row = first_row(self.con.execute(
            "SELECT min(ST_XMin(geom)), min(ST_YMin(geom)), max(ST_XMax(geom)), max(ST_YMax(geom)) "
            "FROM admin_area"
        ))
        if row is None or row[0] is None:
            return None
        return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
