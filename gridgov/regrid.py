"""Units and responsibility-grid layouts for a stored place: build units, regrid, export.

This module orchestrates :mod:`gridgov.units`, :mod:`gridgov.planning` and :mod:`gridgov.codes` over a
:class:`gridgov.store.Store`; it holds no SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import shapely

from gridgov import codes as grid_codes
from gridgov import units as unitlib
from gridgov.errors import InputError, StoreError
from gridgov.geo import WGS84, metric_crs_for
from gridgov.planning import GridLayout, plan_layout

if TYPE_CHECKING:
    from gridgov.planning.plan import Cancel
    from gridgov.store import Store

Progress = Callable[[str, float], None]
DEMAND_WINDOW_DAYS = 365
METRIC_KEYS = ("n_grids", "max_over_mean", "cv", "contiguous", "polsby_popper_median", "households_moved_share",
               "seconds")
EXPORT_FORMATS = ("geojson", "gpkg", "parquet")


def _district_and_communities(store: Store) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    areas = store.admin_areas()
    if len(areas) == 0:
        raise StoreError("the store has no admin areas; load them with `gridgov areas import FILE --level ...`")
    districts = areas[areas["level"] == "district"]
    communities = areas[areas["level"] == "community"]
    base = districts if len(districts) else (areas[areas["level"] == "street"] if len(
        areas[areas["level"] == "street"]) else communities)
    district = gpd.GeoDataFrame({"code": [str(base["code"].iloc[0])]},
                                geometry=[shapely.union_all(base.geometry.to_numpy())], crs=WGS84)
    return district, (communities.reset_index(drop=True) if len(communities) else None)


def build_store_units(store: Store, *, size: float = 100.0, shape: str = "square", population: Path | None = None,
                      pop_col: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Cover the stored district with unit grids, compute their adjacency and store both in one transaction.

    Parameters
    ----------
    store
        A writable store with admin areas.
    size
        Cell side in metres (> 0).
    shape
        ``square`` or ``hex``.
    population
        Optional GIS file (polygons or points, any CRS) whose ``pop_col`` is shared out to the units by area.
    pop_col
        Column of ``population`` to share out; ``households`` fills households, any other name fills population.

    Returns
    -------
    dict
        ``n_units``, ``n_edges``, ``components``, ``households``, ``population``, ``metric_crs``.

    Raises
    ------
    StoreError
        When layouts already refer to the stored units (rebuilding would orphan them).
    """
    if store.current_layout_id() is not None or len(store.layouts()):
        raise StoreError("the store already has layouts drawn on its units; rebuilding units would orphan them — "
                         "use a new database file")
    district, communities = _district_and_communities(store)
    metric = store.meta().get("metric_crs") or metric_crs_for(district)
    if progress:
        progress("units", 0.1)
    units = unitlib.build_units(district, size=size, shape=shape,  # type: ignore[arg-type]
                                communities=communities, metric_crs=metric)
    if population is not None:
        if not pop_col:
            raise InputError("--population needs --pop-col naming the column to share out", field="pop_col")
        from gridgov.areas import _read

        layer = _read(Path(population), None)
        into = "households" if pop_col == "households" else "population"
        units = unitlib.interpolate_population(units, layer, column=pop_col, into=into, metric_crs=metric)
    if progress:
        progress("adjacency", 0.6)
    graph = unitlib.adjacency(units, metric_crs=metric)
    units = units.to_crs(WGS84) if units.crs is None or units.crs.to_epsg() != 4326 else units
    for col in ("households", "population"):
        units[col] = units[col].astype("int64")
    store.replace_units_and_graph(units, graph.nodes(), graph.edges(), crs=str(metric))
    if progress:
        progress("done", 1.0)
    return {"n_units": len(units), "n_edges": int(graph.n_edges), "components": len(graph.components()),
            "households": int(units["households"].sum()), "population": int(units["population"].sum()),
            "metric_crs": str(metric)}


def unit_graph(store: Store) -> unitlib.UnitGraph:
    """The stored unit graph; computed from the units (and stored, unless the store is read-only) when missing."""
    frames = store.unit_graph_frames()
    if frames is not None:
        nodes, edges, crs = frames
        return unitlib.UnitGraph.from_frames(nodes, edges, crs=crs)
    units = store.units()
    if len(units) == 0:
        raise StoreError("the store has no units; build them with `gridgov units build`")
    metric = store.meta().get("metric_crs") or metric_crs_for(units)
    graph = unitlib.adjacency(units, metric_crs=metric)
    if not store.read_only:  # a reader computes it for itself; the next writer stores it
        store.write_unit_graph(graph.nodes(), graph.edges(), crs=str(metric))
    return graph


def _incident_hours(store: Store) -> tuple[pd.Series | None, float]:
    """Handling hours per unit over the last 12 months of incidents, and the window in weeks.

    The window is the 12 months up to the latest report, or the span of the reports when that is shorter (three days
    of history make hours per week of three days, not of a year in which 362 days had no incidents); at least a day.
    """
    span = store.incident_time_range()
    if span is None:
        return None, 1.0
    end = pd.Timestamp(span[1]) + pd.Timedelta(microseconds=1)
    start = max(end - timedelta(days=DEMAND_WINDOW_DAYS), pd.Timestamp(span[0]))
    days = max((end - start) / pd.Timedelta(days=1), 1.0)
    counts = store.unit_incident_counts(start=start.to_pydatetime(), end=end.to_pydatetime())
    if len(counts) == 0:
        return None, 1.0
    minutes = store.categories().set_index("code")["handling_minutes"].astype(float)
    unknown = sorted(set(counts["category_code"]) - set(minutes.index))
    if unknown:
        raise InputError(f"unknown category code(s) {', '.join(unknown[:5])}; add them to the category table",
                         field="category_code")
    hours = counts["category_code"].map(minutes).to_numpy() * counts["n"].to_numpy() / 60.0
    per_unit = pd.Series(hours, index=counts["unit_id"].to_numpy()).groupby(level=0).sum()
    return per_unit.rename("incident_hours").rename_axis("unit_id"), days / 7.0


def unit_weights(store: Store) -> pd.DataFrame:
    """The stored units (no geometry) with their ``demand`` weight: incident handling hours of the last 12 months
    plus households (:func:`gridgov.units.demand_weights`), the weight ``regrid`` balances by default."""
    table = store.unit_table()
    hours, weeks = _incident_hours(store)
    table["demand"] = unitlib.demand_weights(table, incident_hours=hours, weeks=weeks).to_numpy()
    return table


def _parse_range(households: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(households, tuple):
        lo, hi = households
    else:
        try:
            lo_s, hi_s = str(households).split("-", 1)
            lo, hi = float(lo_s), float(hi_s)
        except ValueError:
            raise InputError(f"must be MIN-MAX, e.g. 300-500, got {households!r}", field="households") from None
    if not 0 < lo < hi:
        raise InputError(f"must satisfy 0 < MIN < MAX, got {lo:g}-{hi:g}", field="households")
    return lo, hi


def _majority_community(units: pd.DataFrame, unit_grid: pd.Series) -> pd.Series:
    """Community of each grid: the one holding most of its units (ties: the smallest code)."""
    frame = pd.DataFrame({"grid": unit_grid.reindex(units["unit_id"]).to_numpy(),
                          "community_code": units["community_code"].to_numpy()})
    counts = frame.groupby(["grid", "community_code"]).size().reset_index(name="n")
    counts = counts.sort_values(["grid", "n", "community_code"], ascending=[True, False, True])
    return counts.drop_duplicates("grid").set_index("grid")["community_code"]


def regrid(store: Store, *, name: str, n_grids: int | None = None, households: str | tuple[float, float] | None = None,
           weight: str = "demand", tolerance: float = 0.10, respect: str = "community", minimal_change: bool = False,
           seed: int = 0, progress: Progress | None = None, cancel: Cancel | None = None) -> dict[str, Any]:
    """Plan a new layout of the stored units and save it; the first layout of a store becomes current.

    Parameters
    ----------
    store
        A writable store with units.
    name
        Unique layout name.
    n_grids
        Grid count (count mode).
    households
        ``"MIN-MAX"`` households per grid (range mode; balances households).
    weight
        ``demand`` (incident handling hours of the last 12 months plus households) or ``households``.
    tolerance
        Largest grid load as a share above the mean (count mode).
    respect
        ``community``, ``street`` or ``none``: the border grids never cross.
    minimal_change
        Start from the current layout and move as little as possible.
    seed
        Seed of the planner's random choices.
    progress
        ``progress(phase, fraction)`` callback.
    cancel
        A ``threading.Event`` (or a callable returning True) that stops planning with
        :class:`gridgov.planning.PlanCancelled`; nothing is saved then.

    Returns
    -------
    dict
        The plan metrics (``n_grids, max_over_mean, cv, contiguous, polsby_popper_median, households_moved_share,
        seconds`` …) plus ``name``, ``layout_id`` and ``status``.
    """
    t0 = time.perf_counter()
    if weight not in ("demand", "households"):
        raise InputError(f"must be 'demand' or 'households', got {weight!r}", field="weight")
    if respect not in ("community", "street", "none"):
        raise InputError(f"must be community, street or none, got {respect!r}", field="respect")
    if (n_grids is None) == (households is None) and not (minimal_change and households is None):
        raise InputError("give exactly one of --n-grids and --households", field="n_grids")
    if name in set(store.layouts()["name"]):
        raise StoreError(f"a layout named {name!r} already exists; choose another name")
    units_gdf = store.units()
    if len(units_gdf) == 0:
        raise StoreError("the store has no units; build them with `gridgov units build`")
    graph = unit_graph(store)
    table = pd.DataFrame(units_gdf.drop(columns="geometry"))
    target = None
    if households is not None:
        target = _parse_range(households)
        weight = "households"
    if weight == "demand":
        table["demand"] = unit_weights(store).set_index("unit_id")["demand"].reindex(table["unit_id"]).to_numpy()
    plan_units = table
    plan_respect = "none" if respect == "none" else "community"
    streets = store.admin_areas("community").set_index("code")["parent_code"]
    if respect == "street":
        plan_units = table.assign(community_code=table["community_code"].map(streets).fillna(table["community_code"]))

    current_id = store.current_layout_id()
    start = None
    if current_id is not None:
        cur = store.layout_units(current_id)
        start = pd.Series(cur["grid_code"].to_numpy(), index=cur["unit_id"].to_numpy())
    if minimal_change and start is None:
        raise StoreError("--minimal-change needs a current layout; run regrid without it first")
    incident_counts = None
    if current_id is not None:
        counts = store.unit_incident_counts()
        if len(counts):
            incident_counts = counts.groupby("unit_id")["n"].sum()
    plan = plan_layout(plan_units, graph=graph, n_grids=n_grids, target=target, weight=weight,
                       tolerance=tolerance, respect=plan_respect, start=start,  # type: ignore[arg-type]
                       minimal_change=minimal_change, incidents=incident_counts, seed=seed, progress=progress,
                       cancel=cancel)

    layout: GridLayout = plan.layout
    grids = layout.dissolve(units_gdf)
    grids["community_code"] = grids["grid"].map(_majority_community(table, layout.unit_grid)).to_numpy()
    new_codes = _codes(grids, start, layout, table)
    grids["grid_code"] = grids["grid"].map(new_codes)
    grids["street_code"] = grids["community_code"].map(streets)
    grids["households"] = grids["households"].astype("int64")
    grids["population"] = grids["population"].astype("int64")
    grids["n_units"] = grids["n_units"].astype("int64")
    unit_grid = pd.DataFrame({"unit_id": layout.unit_grid.index.to_numpy(),
                              "grid_code": layout.unit_grid.map(new_codes).to_numpy()})
    status = "current" if current_id is None else "scenario"
    metrics = plan.metrics.as_dict()
    params = {**{k: v for k, v in plan.params.items() if k != "target"}, "households": households,
              "respect": respect, "method": "gridgov regrid"}
    layout_id = store.save_layout(name, unit_grid=unit_grid, grids=grids.drop(columns=["grid"]), status=status,
                                  params={**params, "metrics": metrics}, parent_id=current_id)
    metrics["seconds"] = round(time.perf_counter() - t0, 3)
    return {**metrics, "name": name, "layout_id": layout_id, "status": status}


def _codes(grids: gpd.GeoDataFrame, start: pd.Series | None, layout: GridLayout,
           table: pd.DataFrame) -> pd.Series:
    """15-digit code of each planner grid label: reissued against the current layout when one exists."""
    if start is not None:
        old = pd.DataFrame({"unit_id": start.index.to_numpy(), "grid_code": start.to_numpy()})
        new = pd.DataFrame({"unit_id": layout.unit_grid.index.to_numpy(), "grid_code": layout.unit_grid.to_numpy()})
        out = grid_codes.reissue_codes(old, new, grids, households=table.set_index("unit_id")["households"])
        return pd.Series(out.reindex(grids["grid"].to_numpy()).to_numpy(dtype=object), index=grids["grid"].to_numpy())
    fresh = grid_codes.assign_grid_codes(grids)
    return pd.Series(fresh.to_numpy(dtype=object), index=grids["grid"].to_numpy())


def export_layout(store: Store, name: str, path: Path | str, *, fmt: str) -> dict[str, Any]:
    """Write a layout's grids (code, community, households, population, area, demand, n_units) to a file.

    When a current layout exists and differs from this one, the old → new mapping is written next to the file as
    ``<stem>_mapping.csv``.

    Parameters
    ----------
    store
        An open store.
    name
        Layout name.
    path
        Output file.
    fmt
        ``geojson``, ``gpkg`` or ``parquet``.

    Returns
    -------
    dict
        ``path``, ``n_grids`` and ``mapping`` (its path or None).
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}", field="format")
    path = Path(path)
    layout_id = store.layout_id(name)
    grids = store.layout_grids(layout_id)
    lu = store.layout_units(layout_id)
    table = unit_weights(store)
    demand = table.set_index("unit_id")["demand"].groupby(lu.set_index("unit_id")["grid_code"]).sum()
    grids["demand"] = grids["grid_code"].map(demand).fillna(0.0).round(3).to_numpy()
    grids["layout"] = name
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        grids.to_parquet(path)
    else:
        if path.exists():
            path.unlink()
        grids.to_file(path, driver="GeoJSON" if fmt == "geojson" else "GPKG")
    mapping_path = None
    current_id = store.current_layout_id()
    if current_id is not None and current_id != layout_id:
        old = store.layout_units(current_id)
        mapping = _mapping(old, lu, table)
        mapping_path = path.with_name(f"{path.stem}_mapping.csv")
        mapping.to_csv(mapping_path, index=False)
    return {"path": str(path), "n_grids": len(grids), "mapping": str(mapping_path) if mapping_path else None}


def _mapping(old: pd.DataFrame, new: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Old → new grid mapping with each new grid's unit and household shares (each summing to 1 per new grid)."""
    return grid_codes.code_mapping(old, new, households=table.set_index("unit_id")["households"])
