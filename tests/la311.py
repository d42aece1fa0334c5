"""The real Los Angeles MyLA311 sample (``../shared/data/la-311``) in a store: Neighborhood Councils as units and as
grids (one grid each, no workers), the requests imported with the ``la311`` preset.

Used by the import and replay tests and by ``benchmarks/replay.py``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgov.incidents import load_categories
from gridgov.ingest import ImportResult, ingest_file
from gridgov.store import Store

REQUESTS = "la311_2020-01_seed.csv"
COUNCILS = "la_neighborhood_councils_2020_wgs84.geojson"


def council_units(la_dir: Path) -> gpd.GeoDataFrame:
    """One unit per Neighborhood Council polygon, its community the council's id."""
    nc = gpd.read_file(la_dir / COUNCILS)
    return gpd.GeoDataFrame({
        "unit_id": np.arange(1, len(nc) + 1),
        "community_code": nc["nc_id"].fillna("unknown").astype(str).to_numpy(),
        "land_use": "residential",
        "area_m2": nc.to_crs("EPSG:3310").area.to_numpy(),
        "households": 0,
        "population": 0,
    }, geometry=nc.geometry.values, crs=4326)


def build_la311(path: Path, la_dir: Path, *, layout: bool = True) -> tuple[Store, ImportResult]:
    """A store with the councils as units, the requests imported, and (``layout``) one current grid per council
    polygon (``NC001`` … in file order: two polygons have no council id and one id has two polygons).

    The caller closes the store.
    """
    units = council_units(la_dir)
    store = Store(path)
    store.write_categories(load_categories())
    store.write_units(units)
    result = ingest_file(store, la_dir / REQUESTS, preset="la311")
    if layout:
        codes = [f"NC{u:03d}" for u in units["unit_id"]]
        grids = gpd.GeoDataFrame({
            "grid_code": codes,
            "community_code": units["community_code"].to_numpy(),
            "street_code": None,
            "n_units": 1,
            "area_m2": units["area_m2"].to_numpy(),
            "households": 0,
            "population": 0,
        }, geometry=units.geometry.values, crs=4326)
        store.save_layout("councils", unit_grid=pd.DataFrame({"unit_id": units["unit_id"], "grid_code": codes}),
                          grids=grids, status="current", created_at=datetime(2020, 1, 1))
    return store, result
