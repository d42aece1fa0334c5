"""Unit grids (单元网格): squares, hexagons or user polygons over a district, their attributes and adjacency.

A unit is the smallest piece of ground a layout assigns to a responsibility grid. Units are built in a local metric
CRS (the district's UTM zone unless told otherwise), clipped to the district boundary, and returned in EPSG:4326 with
``attrs["metric_crs"]`` naming the CRS they were measured in. Their adjacency (:func:`adjacency`) is computed once
and kept as a :class:`UnitGraph`: compressed sparse rows of neighbours with the length of boundary they share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from gridgov.errors import InputError
from gridgov.geo import metric_crs_for

#: Columns every unit table has (the ``unit`` table of the store), besides ``geometry``.
UNIT_COLUMNS: tuple[str, ...] = ("unit_id", "community_code", "land_use", "area_m2", "households", "population")

#: Coordinates are snapped to this grid (metres) when shared boundaries are measured, so that a vertex lying on a
#: neighbour's edge up to rounding still counts as shared boundary.
_SNAP_M = 1e-3

Shape = Literal["square", "hex"]


# --------------------------------------------------------------------------------------------------------------------
# CRS helpers
# --------------------------------------------------------------------------------------------------------------------

def _check_gdf(gdf: Any, name: str) -> None:
    if not isinstance(gdf, gpd.GeoDataFrame | gpd.GeoSeries):
        raise InputError(f"must be a GeoDataFrame, got {type(gdf).__name__}", field=name)
    if gdf.crs is None:
        raise InputError("has no CRS; set it first, e.g. gdf.set_crs(4326)", field=name)
    if len(gdf) == 0:
        raise InputError("is empty", field=name)


def _metric_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries, metric_crs: Any) -> pyproj.CRS:
    """The CRS to measure in: the argument, else the one the units were built in, else the local UTM zone."""
    chosen = metric_crs if metric_crs is not None else gdf.attrs.get("metric_crs")
    if chosen is None:
        chosen = metric_crs_for(gdf)
    crs = pyproj.CRS.from_user_input(chosen)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise InputError(f"must be a projected CRS in metres (e.g. the local UTM zone), got {crs.to_string()}",
                         field="metric_crs")
    return crs


def _crs_name(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def _polygon_parts(geoms: NDArray[np.object_]) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Single polygons of each geometry (lines and points left by clipping dropped), with the index they came from."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    return parts[keep], index[keep].astype(np.int64)


def _community_layer(communities: gpd.GeoDataFrame | None,
                     crs: pyproj.CRS) -> tuple[NDArray[np.object_] | None, NDArray[np.object_] | None]:
    """Valid community geometries in ``crs`` and their codes (both None without a community layer)."""
    if communities is None:
        return None, None
    _check_gdf(communities, "communities")
    return shapely.make_valid(communities.to_crs(crs).geometry.to_numpy()), _codes_of(communities)


def _codes_of(communities: gpd.GeoDataFrame) -> NDArray[np.object_]:
    for col in ("code", "community_code"):
        if col in communities.columns:
            return communities[col].astype(str).to_numpy(dtype=object)
    raise InputError("needs a 'code' (or 'community_code') column", field="communities")


# --------------------------------------------------------------------------------------------------------------------
# Building units
# --------------------------------------------------------------------------------------------------------------------

def build_units(district: gpd.GeoDataFrame, *, size: float = 100.0, shape: Shape = "square",
                communities: gpd.GeoDataFrame | None = None, min_area_share: float = 0.15,
                split_at_communities: bool = False, metric_crs: Any = None,
                land_use: str = "residential") -> gpd.GeoDataFrame:
    """Cover a district with unit grids: squares (GB/T 30428 style, 100 m by default) or hexagons.

    The lattice is laid in the metric CRS with its origin on multiples of ``size``, so the same district always gets
    the same cells. Cells are clipped to the district; a clipped cell that falls apart becomes one unit per piece;
    pieces smaller than ``min_area_share`` of a full cell join the neighbour they share the longest edge with
    (preferring one of the same community). A piece with no neighbour at all (a tiny islet) stays a unit of its own
    and shows up in :meth:`UnitGraph.components`.

    Parameters
    ----------
    district
        The district (or street) boundary: one or more polygons in any CRS (checked through ``.crs``).
    size
        Side of a square cell in metres. Hexagons get the same area (``size²``) so counts are comparable.
    shape
        ``"square"`` or ``"hex"`` (flat-topped hexagons).
    communities
        Community polygons with a ``code`` (or ``community_code``) column. Each unit gets the community that covers
        most of it; a unit outside every community gets the nearest one. ``None`` gives every unit the district's
        ``code`` when it has one, else ``""``.
    min_area_share
        Pieces smaller than this share of a full cell are merged into a neighbour (``0 <= share < 1``).
    split_at_communities
        Cut cells along community borders as well, so that every unit lies inside exactly one community.
    metric_crs
        CRS to build and measure in (projected, metres); default the district's UTM zone.
    land_use
        Value of the ``land_use`` column.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``unit_id`` (1…n, rows north to south, west to east), ``community_code``, ``land_use``,
        ``area_m2``, ``households`` (0), ``population`` (0), ``geometry``; ``attrs["metric_crs"]`` names the CRS.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> district = gpd.GeoDataFrame(geometry=[box(350_000, 3_455_000, 350_250, 3_455_200)], crs=32651)
    >>> units = build_units(district, size=100)
    >>> len(units), round(units.area_m2.sum())
    (6, 50000)
    """
    _check_gdf(district, "district")
    if not np.isfinite(size) or size <= 0:
        raise InputError(f"must be > 0, got {size}", field="size")
    if shape not in ("square", "hex"):
        raise InputError(f"must be 'square' or 'hex', got {shape!r}", field="shape")
    if not 0 <= min_area_share < 1:
        raise InputError(f"must be >= 0 and < 1, got {min_area_share}", field="min_area_share")
    crs = _metric_crs(district, metric_crs)
    boundary = shapely.union_all(shapely.make_valid(district.to_crs(crs).geometry.to_numpy()))
    if shapely.area(boundary) <= 0:
        raise InputError("has no polygon area", field="district")
    cells, row, col = _lattice(shapely.bounds(boundary), size, shape)

    comm_geoms, comm_codes = _community_layer(communities, crs)

    if split_at_communities and comm_geoms is not None:
        pieces_l, cell_l = [], []
        for geom in comm_geoms:
            p, c = _clip(cells, shapely.intersection(geom, boundary))
            pieces_l.append(p)
            cell_l.append(c)
        covered = shapely.union_all(comm_geoms)
        p, c = _clip(cells, shapely.difference(boundary, covered))
        pieces = np.concatenate([*pieces_l, p])
        cell_of = np.concatenate([*cell_l, c])
    else:
        pieces, cell_of = _clip(cells, boundary)

    cell_area = size * size
    piece_comm = _majority_community(pieces, comm_geoms, comm_codes) if comm_geoms is not None else None
    groups = _merge_groups(pieces, threshold=min_area_share * cell_area, community=piece_comm,
                           strict_community=split_at_communities)
    geoms, first = _union_groups(pieces, groups)
    # Reading order of the unit's largest piece: rows north to south, then west to east, then bigger piece first.
    host = first
    order = np.lexsort((-shapely.area(pieces[host]), col[cell_of[host]], -row[cell_of[host]]))
    geoms = geoms[order]
    default = str(district["code"].iloc[0]) if "code" in getattr(district, "columns", ()) else ""
    return _unit_frame(geoms, crs, comm_geoms, comm_codes, default_community=default, land_use=land_use)


def from_polygons(polygons: gpd.GeoDataFrame, *, district: gpd.GeoDataFrame | None = None,
                  communities: gpd.GeoDataFrame | None = None, id_column: str | None = None,
                  min_area_m2: float = 100.0, max_overlap_m2: float = 1.0, metric_crs: Any = None,
                  land_use: str = "residential") -> gpd.GeoDataFrame:
    """Make units from user polygons: street blocks, residential compounds, parcels.

    Multi-part polygons become one unit per part; polygons smaller than ``min_area_m2`` join the neighbour they share
    the longest edge with. Overlaps larger than ``max_overlap_m2`` are refused because a unit must belong to one
    place only.

    Parameters
    ----------
    polygons
        The polygons, any CRS (checked through ``.crs``).
    district
        When given, polygons are clipped to it and ``attrs["uncovered_m2"]`` tells how much of it they leave bare.
    communities
        As in :func:`build_units`.
    id_column
        A column of ``polygons`` kept as ``source_id`` (e.g. the compound's own code).
    min_area_m2
        Smallest unit area in m²; smaller pieces are merged into a neighbour.
    max_overlap_m2
        Largest overlap between two polygons that is tolerated as digitising noise.
    metric_crs
        CRS to measure in (projected, metres); default the local UTM zone.
    land_use
        Value of the ``land_use`` column when ``polygons`` has none.

    Returns
    -------
    geopandas.GeoDataFrame
        Same columns as :func:`build_units` (plus ``source_id`` when asked), EPSG:4326.

    Raises
    ------
    InputError
        When polygons overlap, naming the two rows.
    """
    _check_gdf(polygons, "polygons")
    if id_column is not None and id_column not in polygons.columns:
        raise InputError(f"is not a column of polygons (columns: {', '.join(map(str, polygons.columns))})",
                         field="id_column")
    crs = _metric_crs(polygons, metric_crs)
    raw = shapely.make_valid(polygons.to_crs(crs).geometry.to_numpy())
    uncovered = None
    if district is not None:
        _check_gdf(district, "district")
        boundary = shapely.union_all(shapely.make_valid(district.to_crs(crs).geometry.to_numpy()))
        raw = shapely.intersection(raw, boundary)
        uncovered = float(shapely.area(shapely.difference(boundary, shapely.union_all(raw))))
    pieces, src = _polygon_parts(shapely.set_precision(raw, _SNAP_M))
    if pieces.size == 0:
        raise InputError("hold no polygon area (inside the district)", field="polygons")
    _refuse_overlaps(pieces, src, polygons, id_column, max_overlap_m2)

    comm_geoms, comm_codes = _community_layer(communities, crs)
    piece_comm = _majority_community(pieces, comm_geoms, comm_codes) if comm_geoms is not None else None
    groups = _merge_groups(pieces, threshold=min_area_m2, community=piece_comm, strict_community=False)
    geoms, first = _union_groups(pieces, groups)
    cent = shapely.centroid(geoms)
    order = np.lexsort((shapely.get_x(cent), -shapely.get_y(cent)))
    geoms, first = geoms[order], first[order]
    lu = polygons["land_use"].to_numpy()[src[first]] if "land_use" in polygons.columns else land_use
    units = _unit_frame(geoms, crs, comm_geoms, comm_codes, default_community="", land_use=lu)
    if id_column is not None:
        units.insert(1, "source_id", polygons[id_column].to_numpy()[src[first]])
    if uncovered is not None:
        units.attrs["uncovered_m2"] = uncovered
    return units


def _lattice(bounds: NDArray[np.float64], size: float,
             shape: str) -> tuple[NDArray[np.object_], NDArray[np.int64], NDArray[np.int64]]:
    """Cells covering ``bounds``, with their row (south to north) and column (west to east)."""
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if shape == "square":
        x0, y0 = np.floor(minx / size) * size, np.floor(miny / size) * size
        nx, ny = int(np.ceil((maxx - x0) / size)), int(np.ceil((maxy - y0) / size))
        row, col = np.divmod(np.arange(nx * ny, dtype=np.int64), nx)
        xs, ys = x0 + col * size, y0 + row * size
        return shapely.box(xs, ys, xs + size, ys + size), row, col
    # Flat-topped hexagons of side s with area size²: columns 1.5 s apart, rows √3 s apart, odd columns raised.
    s = size * np.sqrt(2.0 / (3.0 * np.sqrt(3.0)))
    h = np.sqrt(3.0) * s
    x0, y0 = np.floor(minx / (1.5 * s)) * 1.5 * s - s, np.floor(miny / h) * h - h
    nx, ny = int(np.ceil((maxx - x0) / (1.5 * s))) + 2, int(np.ceil((maxy - y0) / h)) + 2
    row, col = np.divmod(np.arange(nx * ny, dtype=np.int64), nx)
    cx = x0 + col * 1.5 * s
    cy = y0 + row * h + (col % 2) * h / 2.0
    angles = np.deg2rad(np.arange(0, 360, 60))
    ring = np.stack([np.cos(angles) * s, np.sin(angles) * s], axis=1)
    coords = np.empty((cx.size, 7, 2))
    coords[:, :6, 0] = cx[:, None] + ring[None, :, 0]
    coords[:, :6, 1] = cy[:, None] + ring[None, :, 1]
    coords[:, 6] = coords[:, 0]
    # Millimetre coordinates make neighbouring cells share their vertices exactly.
    return shapely.polygons(np.round(coords, 3)), row, col


def _clip(cells: NDArray[np.object_], area: Any) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Pieces of ``cells`` inside ``area`` (one per connected part) and the cell each piece came from."""
    if shapely.is_empty(area) or shapely.area(area) <= 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    shapely.prepare(area)
    hit = np.flatnonzero(shapely.intersects(area, cells))
    inside = shapely.contains_properly(area, cells[hit])
    whole = hit[inside]
    edge = hit[~inside]
    # Cut pieces are snapped to the millimetre grid the cells are laid on, so that pieces cut from neighbouring cells
    # share their new vertices exactly.
    clipped, src = _polygon_parts(shapely.set_precision(shapely.intersection(cells[edge], area), _SNAP_M))
    pieces = np.concatenate([cells[whole], clipped])
    cell_of = np.concatenate([whole, edge[src]])
    return pieces, cell_of


def _shared_lengths(a: NDArray[np.object_], b: NDArray[np.object_]) -> NDArray[np.float64]:
    """Length of boundary shared by polygons ``a[i]`` and ``b[i]`` (snapped to ``_SNAP_M`` to absorb rounding)."""
    if a.size == 0:
        return np.empty(0)
    return shapely.length(shapely.intersection(shapely.boundary(a), shapely.boundary(b), grid_size=_SNAP_M))


def _merge_groups(pieces: NDArray[np.object_], *, threshold: float, community: NDArray[np.object_] | None,
                  strict_community: bool) -> NDArray[np.int64]:
    """Group label of each piece after small pieces join the neighbour they share the longest edge with."""
    n = pieces.size
    parent = np.arange(n, dtype=np.int64)
    areas = shapely.area(pieces)
    small = np.flatnonzero(areas < threshold)
    if small.size == 0 or n == 1:
        return parent
    tree = shapely.STRtree(pieces)
    left, right = tree.query(pieces[small], predicate="intersects")
    left = small[left]
    keep = left != right
    left, right = left[keep], right[keep]
    shared = _shared_lengths(pieces[left], pieces[right])
    ok = shared > 0
    left, right, shared = left[ok], right[ok], shared[ok]
    if community is not None:
        same = community[left] == community[right]
        if strict_community:
            left, right, shared = left[same], right[same], shared[same]
            same = same[same]
    else:
        same = np.ones(left.size, dtype=bool)
    # Best host per small piece: same community first, then a full-size neighbour, then the longest shared edge.
    big = areas[right] >= threshold
    order = np.lexsort((right, -shared, ~big, ~same, left))
    left, right = left[order], right[order]
    first = np.ones(left.size, dtype=bool)
    first[1:] = left[1:] != left[:-1]

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for s, t in zip(left[first].tolist(), right[first].tolist(), strict=True):
        rs, rt = find(s), find(t)
        if rs != rt:
            parent[rs] = rt
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def _union_groups(pieces: NDArray[np.object_],
                  groups: NDArray[np.int64]) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """One geometry per group and, for each, the index of its largest piece."""
    areas = shapely.area(pieces)
    order = np.lexsort((-areas, groups))
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], g_sorted.size]
    geoms = np.empty(starts.size, dtype=object)
    first = order[starts]
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if e - s == 1:
            geoms[i] = pieces[order[s]]
        else:
            merged = shapely.union_all(pieces[order[s:e]], grid_size=_SNAP_M)
            parts, _ = _polygon_parts(np.array([merged], dtype=object))
            # Pieces that only touch at a corner stay apart in the union; the unit keeps all of them.
            geoms[i] = parts[0] if parts.size == 1 else shapely.multipolygons(parts)
    return geoms, first


def _majority_community(geoms: NDArray[np.object_], comm_geoms: NDArray[np.object_] | None,
                        comm_codes: NDArray[np.object_] | None) -> NDArray[np.object_]:
    """Code of the community covering most of each geometry; the nearest community when none covers it."""
    assert comm_geoms is not None and comm_codes is not None
    out = np.full(geoms.size, None, dtype=object)
    if geoms.size == 0:
        return out
    tree = shapely.STRtree(comm_geoms)
    gi, ci = tree.query(geoms, predicate="intersects")
    if gi.size:
        inter = shapely.area(shapely.intersection(geoms[gi], comm_geoms[ci]))
        order = np.lexsort((ci, -inter, gi))
        gi, ci, inter = gi[order], ci[order], inter[order]
        first = np.r_[True, gi[1:] != gi[:-1]] & (inter > 0)
        out[gi[first]] = comm_codes[ci[first]]
    missing = np.flatnonzero(pd.isna(out))
    if missing.size:
        near = tree.nearest(geoms[missing])
        out[missing] = comm_codes[near]
    return out


def _refuse_overlaps(pieces: NDArray[np.object_], src: NDArray[np.int64], polygons: gpd.GeoDataFrame,
                     id_column: str | None, max_overlap_m2: float) -> None:
    tree = shapely.STRtree(pieces)
    a, b = tree.query(pieces, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if a.size == 0:
        return
    overlap = shapely.area(shapely.intersection(pieces[a], pieces[b], grid_size=_SNAP_M))
    bad = np.flatnonzero(overlap > max_overlap_m2)
    if bad.size:
        i = int(bad[np.argmax(overlap[bad])])
        labels = polygons[id_column].to_numpy() if id_column else np.arange(1, len(polygons) + 1)
        what = "polygons" if id_column else "rows"
        raise InputError(
            f"{what} {labels[src[a[i]]]} and {labels[src[b[i]]]} overlap by {overlap[i]:.0f} m² "
            f"({bad.size} overlapping pair(s) in all); a unit must belong to one place: fix the overlaps or raise "
            f"max_overlap_m2 above {overlap[bad].max():.0f}",
            field="polygons",
        )


def _unit_frame(geoms: NDArray[np.object_], crs: pyproj.CRS, comm_geoms: NDArray[np.object_] | None,
                comm_codes: NDArray[np.object_] | None, *, default_community: str,
                land_use: Any) -> gpd.GeoDataFrame:
    n = geoms.size
    if comm_geoms is not None:
        community = _majority_community(geoms, comm_geoms, comm_codes)
    else:
        community = np.full(n, default_community, dtype=object)
    frame = gpd.GeoDataFrame(
        {
            "unit_id": np.arange(1, n + 1, dtype=np.int64),
            "community_code": community.astype(str),
            "land_use": land_use,
            "area_m2": shapely.area(geoms),
            "households": np.zeros(n, dtype=np.int64),
            "population": np.zeros(n, dtype=np.int64),
        },
        geometry=gpd.GeoSeries(geoms, crs=crs),
    ).to_crs(4326)
    frame.attrs["metric_crs"] = _crs_name(crs)
    return frame


# --------------------------------------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------------------------------------

def interpolate_population(units: gpd.GeoDataFrame, population_layer: gpd.GeoDataFrame, *, column: str,
                           into: str | None = None, metric_crs: Any = None) -> gpd.GeoDataFrame:
    """Share a count layer (households, residents) out to units by area (areal weighting).

    A polygon's value goes to the units it overlaps in proportion to the overlapping area; the part of a polygon
    outside every unit is lost (it lies outside the district). Points (e.g. buildings with a household count) go
    wholly to the unit that contains them. Integer columns (``households``, ``population`` or an integer source)
    are rounded by largest remainders so the rounded total equals the rounded interpolated total.

    Parameters
    ----------
    units
        Unit grids with ``unit_id`` (any CRS).
    population_layer
        Polygons or points, any CRS, with a numeric ``column``.
    column
        The column to share out.
    into
        The unit column to write; default ``column``.
    metric_crs
        CRS to measure areas in; default the units' own (``attrs["metric_crs"]``) or the local UTM zone.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``units`` with ``into`` filled (0 where nothing falls).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"unit_id": [1, 2]}, geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)],
    ...                          crs=32651)
    >>> compound = gpd.GeoDataFrame({"households": [300]}, geometry=[box(50, 0, 200, 100)], crs=32651)
    >>> interpolate_population(units, compound, column="households")["households"].tolist()
    [100, 200]
    """
    _check_gdf(units, "units")
    _check_gdf(population_layer, "population_layer")
    if column not in population_layer.columns:
        cols = ", ".join(map(str, population_layer.columns))
        raise InputError(f"is not a column of population_layer (columns: {cols})", field="column")
    values = pd.to_numeric(population_layer[column], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(values) | (values < 0))[0])
        raise InputError(f"must be numbers >= 0; row {bad + 1} holds {population_layer[column].iloc[bad]!r}",
                         field=column)
    into = into or column
    crs = _metric_crs(units, metric_crs)
    ug = units.to_crs(crs).geometry.to_numpy()
    sg = population_layer.to_crs(crs).geometry.to_numpy()
    out = np.zeros(len(units))
    is_point = shapely.get_type_id(sg) == 0
    tree = shapely.STRtree(ug)
    if is_point.any():
        pi, ui = tree.query(sg[is_point], predicate="intersects")
        first = np.r_[True, pi[1:] != pi[:-1]] if pi.size else np.empty(0, dtype=bool)
        np.add.at(out, ui[first], values[is_point][pi[first]])
    if (~is_point).any():
        polys, pvals = sg[~is_point], values[~is_point]
        src_area = shapely.area(polys)
        si, ui = tree.query(polys, predicate="intersects")
        inter = shapely.area(shapely.intersection(polys[si], ug[ui]))
        share = np.divide(inter, src_area[si], out=np.zeros_like(inter), where=src_area[si] > 0)
        np.add.at(out, ui, pvals[si] * share)
    integer = into in ("households", "population") or pd.api.types.is_integer_dtype(population_layer[column])
    result = units.copy()
    result[into] = _largest_remainder(out) if integer else out
    return result


def _largest_remainder(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Round to integers keeping the (rounded) total; ties go to the earlier row."""
    floor = np.floor(values + 1e-9)
    short = round(float(values.sum() - floor.sum()))
    if short > 0:
        frac = values - floor
        order = np.lexsort((np.arange(values.size), -frac))
        floor[order[:short]] += 1
    return floor.astype(np.int64)


def incident_hours(incidents: pd.DataFrame, categories: pd.DataFrame, *, start: Any = None,
                   end: Any = None) -> pd.Series:
    """Handling hours of the incidents reported in each unit during a window.

    Parameters
    ----------
    incidents
        Columns ``unit_id``, ``category_code``, ``reported_at`` and optionally ``status`` (cancelled cases are left
        out: nobody handled them).
    categories
        The category table (``code``, ``handling_minutes``), e.g. :func:`gridgov.incidents.load_categories`.
    start, end
        Window ``[start, end)`` on ``reported_at``; ``None`` leaves that side open.

    Returns
    -------
    pandas.Series
        Hours per ``unit_id`` (only units with incidents appear).

    Raises
    ------
    InputError
        When an incident's category is not in the table.
    """
    for col in ("unit_id", "category_code", "reported_at"):
        if col not in incidents.columns:
            raise InputError("is missing from incidents", field=col)
    inc = incidents
    at = pd.to_datetime(inc["reported_at"])
    keep = pd.Series(True, index=inc.index)
    if start is not None:
        keep &= at >= pd.Timestamp(start)
    if end is not None:
        keep &= at < pd.Timestamp(end)
    if "status" in inc.columns:
        keep &= inc["status"] != "cancelled"
    inc = inc[keep]
    minutes = categories.set_index("code")["handling_minutes"].astype(float)
    unknown = sorted(set(inc["category_code"]) - set(minutes.index))
    if unknown:
        raise InputError(f"unknown category code(s) {', '.join(map(str, unknown[:5]))}; add them to the category "
                         "table", field="category_code")
    hours = inc["category_code"].map(minutes) / 60.0
    return hours.groupby(inc["unit_id"]).sum().rename("incident_hours").rename_axis("unit_id")


def demand_weights(units: pd.DataFrame, *, incident_hours: pd.Series | None = None, weeks: float = 1.0,
                   hours_per_household: float = 0.05, hours_per_km2: float = 0.0,
                   factors: Mapping[str, Mapping[Any, float]] | pd.Series | None = None) -> pd.Series:
    """Weekly demand hours of each unit: the weight responsibility grids are balanced on.

    ``demand = (incident_hours / weeks + households × hours_per_household + area_km² × hours_per_km2) × factor``

    The three terms are the documented default model (docs/planning.md): incident handling time, a household-based
    patrol and visiting load, and an area-based patrol load. Cities set the rates; a rate of 0 drops its term.

    Parameters
    ----------
    units
        Unit table with ``unit_id``, ``households`` and ``area_m2``.
    incident_hours
        Handling hours per ``unit_id`` over the window (:func:`incident_hours`); missing units count 0.
    weeks
        Length of the incident window in weeks (> 0).
    hours_per_household
        Weekly hours one household adds (visits, patrol); default 0.05 h (3 minutes).
    hours_per_km2
        Weekly patrol hours one km² adds.
    factors
        Multipliers: either a Series aligned on ``units`` (one factor per unit) or a mapping
        ``{column: {value: factor}}``, e.g. ``{"land_use": {"commercial": 1.3, "park": 0.5}}``; values not listed
        keep factor 1. Several columns multiply.

    Returns
    -------
    pandas.Series
        ``demand`` in hours per week, aligned on ``units.index``.

    Examples
    --------
    >>> import pandas as pd
    >>> units = pd.DataFrame({"unit_id": [1, 2], "households": [100, 0], "area_m2": [10_000.0, 10_000.0],
    ...                       "land_use": ["residential", "commercial"]})
    >>> demand_weights(units, incident_hours=pd.Series({2: 8.0}), weeks=4, hours_per_km2=10,
    ...                factors={"land_use": {"commercial": 1.5}}).round(2).tolist()
    [5.1, 3.15]
    """
    for col in ("unit_id", "households", "area_m2"):
        if col not in units.columns:
            raise InputError("is missing from units", field=col)
    if not weeks > 0:
        raise InputError(f"must be > 0, got {weeks}", field="weeks")
    for name, rate in (("hours_per_household", hours_per_household), ("hours_per_km2", hours_per_km2)):
        if not np.isfinite(rate) or rate < 0:
            raise InputError(f"must be >= 0, got {rate}", field=name)
    demand = units["households"].astype(float).to_numpy() * hours_per_household
    demand = demand + units["area_m2"].astype(float).to_numpy() / 1e6 * hours_per_km2
    if incident_hours is not None:
        inc = incident_hours.reindex(units["unit_id"].to_numpy()).fillna(0.0).to_numpy(dtype=float)
        if (inc < 0).any():
            raise InputError("must be >= 0", field="incident_hours")
        demand = demand + inc / weeks
    factor = np.ones(len(units))
    if isinstance(factors, pd.Series):
        factor = factors.reindex(units.index).to_numpy(dtype=float)
        if np.isnan(factor).any():
            raise InputError("must have one value per unit (aligned on the units' index)", field="factors")
    elif factors is not None:
        for col, table in factors.items():
            if col not in units.columns:
                raise InputError(f"names column {col!r}, which units lack", field="factors")
            factor = factor * units[col].map(lambda v, t=table: t.get(v, 1.0)).to_numpy(dtype=float)
    if (factor < 0).any() or not np.isfinite(factor).all():
        raise InputError("must be finite numbers >= 0", field="factors")
    return pd.Series(demand * factor, index=units.index, name="demand")


# --------------------------------------------------------------------------------------------------------------------
# Adjacency
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class UnitGraph:
    """Rook adjacency of units: neighbours share a stretch of boundary, not just a corner.

    Rows are units in ``unit_ids`` order; ``indices[indptr[i]:indptr[i+1]]`` are the positions of unit ``i``'s
    neighbours and ``shared_m`` the boundary length shared with each (0 for an added link such as a bridge).
    ``area_m2``, ``perimeter_m`` and the centroid ``x, y`` are measured in ``crs``, which is what lets grid
    compactness be computed without building grid geometries (a grid's perimeter is the sum of its units' perimeters
    less twice the boundary they share with each other).

    Parameters
    ----------
    unit_ids, indptr, indices, shared_m, area_m2, perimeter_m, x, y
        The arrays described above.
    crs
        The metric CRS the measures were taken in.
    """

    unit_ids: NDArray[np.int64]
    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    shared_m: NDArray[np.float64]
    area_m2: NDArray[np.float64]
    perimeter_m: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    crs: str

    def __post_init__(self) -> None:
        n = self.unit_ids.size
        if self.indptr.size != n + 1 or self.indptr[-1] != self.indices.size or self.shared_m.size != self.indices.size:
            raise InputError("CSR arrays do not fit together", field="graph")
        for name in ("area_m2", "perimeter_m", "x", "y"):
            if getattr(self, name).size != n:
                raise InputError(f"{name} has {getattr(self, name).size} values for {n} units", field="graph")
        if np.unique(self.unit_ids).size != n:
            raise InputError("unit_id values repeat", field="unit_id")
        for arr in (self.unit_ids, self.indptr, self.indices, self.shared_m, self.area_m2, self.perimeter_m,
                    self.x, self.y):
            arr.setflags(write=False)

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.unit_ids.size)

    @property
    def n_edges(self) -> int:
        """Number of neighbour pairs (each counted once)."""
        return int(self.indices.size // 2)

    def positions(self, unit_ids: ArrayLike) -> NDArray[np.int64]:
        """Row positions of the given unit ids (InputError naming the first unknown id)."""
        ids = np.asarray(unit_ids)
        pos = pd.Index(self.unit_ids).get_indexer(ids)
        if (pos < 0).any():
            raise InputError(f"unit {ids[pos < 0][0]!r} is not in the graph", field="unit_id")
        return pos.astype(np.int64)

    def neighbours(self, unit_id: int) -> NDArray[np.int64]:
        """Unit ids of the neighbours of one unit."""
        i = int(self.positions([unit_id])[0])
        return self.unit_ids[self.indices[self.indptr[i]:self.indptr[i + 1]]]

    def matrix(self) -> sparse.csr_matrix:
        """The symmetric sparse matrix of shared lengths (links count as a tiny positive length)."""
        data = np.where(self.shared_m > 0, self.shared_m, 1e-9)
        return sparse.csr_matrix((data, self.indices, self.indptr), shape=(self.n_units, self.n_units))

    def component_labels(self) -> NDArray[np.int64]:
        """Connected part of each unit (0 = the part with most units)."""
        _, labels = csgraph.connected_components(self.matrix(), directed=False)
        sizes = np.bincount(labels)
        # Number parts by size (largest first), ties by their smallest row, so labels do not depend on scipy.
        first_row = np.full(sizes.size, self.n_units)
        np.minimum.at(first_row, labels, np.arange(self.n_units))
        rank = np.empty(sizes.size, dtype=np.int64)
        rank[np.lexsort((first_row, -sizes))] = np.arange(sizes.size)
        return rank[labels]

    def components(self) -> list[NDArray[np.int64]]:
        """Connected parts as arrays of unit ids, largest first; more than one means islands or gaps.

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely.geometry import box
        >>> units = gpd.GeoDataFrame({"unit_id": [1, 2, 3]},
        ...     geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100), box(400, 0, 500, 100)], crs=32651)
        >>> [c.tolist() for c in adjacency(units).components()]
        [[1, 2], [3]]
        """
        labels = self.component_labels()
        order = np.argsort(labels, kind="stable")
        splits = np.flatnonzero(np.diff(labels[order])) + 1
        return [self.unit_ids[np.sort(part)] for part in np.split(order, splits)]

    def describe_components(self) -> pd.DataFrame:
        """One row per connected part: size, area and the nearest unit of another part (to add a link to).

        Returns
        -------
        pandas.DataFrame
            ``part, n_units, area_m2, unit_ids`` (sorted), ``nearest_own`` and ``nearest_other`` (unit ids of the
            closest pair of centroids between this part and the rest) and ``gap_m`` (their centroid distance).
        """
        labels = self.component_labels()
        rows = []
        xy = np.column_stack([self.x, self.y])
        for part in range(int(labels.max()) + 1 if labels.size else 0):
            own = np.flatnonzero(labels == part)
            other = np.flatnonzero(labels != part)
            near_own = near_other = None
            gap = float("nan")
            if other.size:
                dist, idx = cKDTree(xy[other]).query(xy[own])
                j = int(np.argmin(dist))
                near_own, near_other, gap = int(self.unit_ids[own[j]]), int(self.unit_ids[other[idx[j]]]), float(
                    dist[j])
            rows.append({"part": part, "n_units": own.size, "area_m2": float(self.area_m2[own].sum()),
                         "unit_ids": self.unit_ids[own].tolist(), "nearest_own": near_own,
                         "nearest_other": near_other, "gap_m": gap})
        return pd.DataFrame(rows)

    def with_links(self, pairs: Iterable[tuple[int, int]]) -> UnitGraph:
        """A copy with extra neighbour pairs (bridges, ferries, underpasses) given as unit ids.

        Links make units neighbours for contiguity without sharing boundary, so they do not change compactness.
        """
        pairs_arr = np.asarray(list(pairs), dtype=np.int64).reshape(-1, 2)
        if pairs_arr.size == 0:
            return self
        pos = self.positions(pairs_arr.ravel()).reshape(-1, 2)
        if (pos[:, 0] == pos[:, 1]).any():
            raise InputError("a link must join two different units", field="links")
        rows, cols, data = self._coo()
        rows = np.concatenate([rows, pos[:, 0], pos[:, 1]])
        cols = np.concatenate([cols, pos[:, 1], pos[:, 0]])
        data = np.concatenate([data, np.zeros(2 * len(pos))])
        return self._rebuild(rows, cols, data)

    def edges(self) -> pd.DataFrame:
        """Neighbour pairs ``unit_a < unit_b`` with ``shared_m`` (the form the store keeps)."""
        rows, cols, data = self._coo()
        a, b = self.unit_ids[rows], self.unit_ids[cols]
        keep = a < b
        return pd.DataFrame({"unit_a": a[keep], "unit_b": b[keep], "shared_m": data[keep]})

    def nodes(self) -> pd.DataFrame:
        """Per-unit measures ``unit_id, x, y, area_m2, perimeter_m`` (metric CRS)."""
        return pd.DataFrame({"unit_id": self.unit_ids, "x": self.x, "y": self.y, "area_m2": self.area_m2,
                             "perimeter_m": self.perimeter_m})

    @classmethod
    def from_frames(cls, nodes: pd.DataFrame, edges: pd.DataFrame, *, crs: str) -> UnitGraph:
        """Rebuild a graph from :meth:`nodes` and :meth:`edges` (e.g. as read back from the store)."""
        nodes = nodes.sort_values("unit_id")
        ids = nodes["unit_id"].to_numpy(dtype=np.int64)
        empty = np.empty(0, dtype=np.int64)
        base = cls(ids, np.zeros(ids.size + 1, dtype=np.int64), empty, np.empty(0), nodes["area_m2"].to_numpy(float),
                   nodes["perimeter_m"].to_numpy(float), nodes["x"].to_numpy(float), nodes["y"].to_numpy(float), crs)
        a = base.positions(edges["unit_a"].to_numpy())
        b = base.positions(edges["unit_b"].to_numpy())
        length = edges["shared_m"].to_numpy(dtype=float)
        return base._rebuild(np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([length, length]))

    def _coo(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        rows = np.repeat(np.arange(self.n_units, dtype=np.int64), np.diff(self.indptr))
        return rows, self.indices.astype(np.int64), self.shared_m.astype(float)

    def _rebuild(self, rows: NDArray[np.int64], cols: NDArray[np.int64], data: NDArray[np.float64]) -> UnitGraph:
        indptr, indices, shared = _csr(self.n_units, rows, cols, data)
        return UnitGraph(self.unit_ids.copy(), indptr, indices, shared, self.area_m2.copy(),
                         self.perimeter_m.copy(), self.x.copy(), self.y.copy(), self.crs)


def _csr(n: int, rows: NDArray[np.int64], cols: NDArray[np.int64],
         data: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """CSR arrays sorted by (row, col); a pair given twice keeps its longest shared length."""
    order = np.lexsort((-data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    first = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])] if rows.size else np.empty(0, bool)
    rows, cols, data = rows[first], cols[first], data[first]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols.astype(np.int64), data.astype(float)


def adjacency(units: gpd.GeoDataFrame, *, min_shared: float = 1.0, gap: float = 0.0, metric_crs: Any = None,
              links: Sequence[tuple[int, int]] = ()) -> UnitGraph:
    """Rook adjacency of units with the boundary length each pair shares.

    Candidate pairs come from an STR-tree; axis-aligned rectangles (unclipped square units) are measured by
    arithmetic on their bounds, every other pair by intersecting the two boundaries snapped to 1 mm.

    Parameters
    ----------
    units
        Units with a unique ``unit_id`` column, any CRS.
    min_shared
        Shortest shared boundary in metres that makes two units neighbours; corner contact (length 0) never does.
    gap
        Treat units up to this many metres apart as touching along the stretch where they are that close (user
        polygons digitised with small gaps). 0 measures exactly shared boundary only.
    metric_crs
        CRS to measure in; default the units' own (``attrs["metric_crs"]``) or the local UTM zone.
    links
        Extra neighbour pairs of unit ids (bridges, ferries) joined with no shared boundary.

    Returns
    -------
    UnitGraph
        Rows in ascending ``unit_id`` order.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"unit_id": [1, 2, 3]},
    ...     geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 100, 300, 200)], crs=32651)
    >>> g = adjacency(units)
    >>> g.neighbours(2).tolist(), g.neighbours(3).tolist()
    ([1], [])
    """
    _check_gdf(units, "units")
    if "unit_id" not in units.columns:
        raise InputError("is missing from units", field="unit_id")
    if not min_shared >= 0:
        raise InputError(f"must be >= 0, got {min_shared}", field="min_shared")
    if not gap >= 0:
        raise InputError(f"must be >= 0, got {gap}", field="gap")
    ids = units["unit_id"].to_numpy()
    if pd.Index(ids).has_duplicates:
        dup = pd.Index(ids)[pd.Index(ids).duplicated()][0]
        raise InputError(f"unit_id {dup} appears more than once", field="unit_id")
    crs = _metric_crs(units, metric_crs)
    order = np.argsort(ids, kind="stable")
    ids = ids[order].astype(np.int64)
    geoms = units.to_crs(crs).geometry.to_numpy()[order]
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    n = geoms.size
    tree = shapely.STRtree(geoms)
    if gap > 0:
        a, b = tree.query(geoms, predicate="dwithin", distance=gap)
    else:
        a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep].astype(np.int64), b[keep].astype(np.int64)
    length = np.zeros(a.size)
    bounds = shapely.bounds(geoms)
    rect = _axis_rectangles(geoms, bounds)
    fast = rect[a] & rect[b] if gap == 0 else np.zeros(a.size, dtype=bool)
    if fast.any():
        length[fast] = _rectangle_shared(bounds[a[fast]], bounds[b[fast]])
    if gap == 0 and not fast.all():
        # Polygons whose every edge is matched by an identical edge of a neighbour (the inside of a lattice, a
        # polygonised block map) are measured by matching edges; only the rest needs geometric intersection.
        seg_a, seg_b, seg_len, clean = _matched_edges(geoms)
        exact = ~fast & clean[a] & clean[b]
        if exact.any():
            key = pd.MultiIndex.from_arrays([seg_a, seg_b])
            found = key.get_indexer(pd.MultiIndex.from_arrays([a[exact], b[exact]]))
            length[exact] = np.where(found >= 0, seg_len[np.maximum(found, 0)], 0.0)
        fast |= exact
    slow = ~fast
    if slow.any():
        ga, gb = geoms[a[slow]], geoms[b[slow]]
        if gap > 0:
            ba, bb = shapely.boundary(ga), shapely.boundary(gb)
            length[slow] = 0.5 * (shapely.length(shapely.intersection(ba, shapely.buffer(gb, gap)))
                                  + shapely.length(shapely.intersection(bb, shapely.buffer(ga, gap))))
        else:
            length[slow] = _shared_lengths(ga, gb)
    ok = length > min_shared
    a, b, length = a[ok], b[ok], length[ok]
    indptr, indices, shared = _csr(n, np.concatenate([a, b]), np.concatenate([b, a]),
                                   np.concatenate([length, length]))
    cent = shapely.centroid(geoms)
    graph = UnitGraph(ids, indptr, indices, shared, shapely.area(geoms), shapely.length(geoms),
                      shapely.get_x(cent), shapely.get_y(cent), _crs_name(crs))
    return graph.with_links(links) if len(links) else graph


def _matched_edges(geoms: NDArray[np.object_]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64],
                                                        NDArray[np.bool_]]:
    """Boundary shared through identical edges (endpoints equal to 1 mm) and which polygons have no other boundary.

    Returns pairs ``a < b`` with their matched length (unique pairs) and, per polygon, whether all of its perimeter is
    matched (then every contact it has with another polygon is an identical edge and the match is exact).
    """
    parts, pidx = shapely.get_parts(geoms, return_index=True)
    rings, ridx = shapely.get_rings(parts, return_index=True)
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    q = np.round(coords / _SNAP_M).astype(np.int64)
    same = cidx[1:] == cidx[:-1]
    p0, p1 = q[:-1][same], q[1:][same]
    owner = pidx[ridx[cidx[:-1][same]]].astype(np.int64)
    seg_len = np.hypot(*(coords[1:][same] - coords[:-1][same]).T)
    swap = (p0[:, 0] > p1[:, 0]) | ((p0[:, 0] == p1[:, 0]) & (p0[:, 1] > p1[:, 1]))
    lo = np.where(swap[:, None], p1, p0)
    hi = np.where(swap[:, None], p0, p1)
    order = np.lexsort((owner, hi[:, 1], hi[:, 0], lo[:, 1], lo[:, 0]))
    lo, hi, owner, seg_len = lo[order], hi[order], owner[order], seg_len[order]
    dup = np.flatnonzero((lo[1:] == lo[:-1]).all(axis=1) & (hi[1:] == hi[:-1]).all(axis=1)
                         & (owner[1:] != owner[:-1]))
    a, b = owner[dup], owner[dup + 1]
    pa, pb = np.minimum(a, b), np.maximum(a, b)
    matched = np.zeros(geoms.size)
    np.add.at(matched, a, seg_len[dup])
    np.add.at(matched, b, seg_len[dup])
    clean = np.abs(matched - shapely.length(geoms)) <= 1e-6 * np.maximum(shapely.length(geoms), 1.0)
    if pa.size == 0:
        return pa, pb, np.empty(0), clean
    pair = pd.DataFrame({"a": pa, "b": pb, "len": seg_len[dup]}).groupby(["a", "b"], sort=True)["len"].sum()
    return (pair.index.get_level_values(0).to_numpy(np.int64), pair.index.get_level_values(1).to_numpy(np.int64),
            pair.to_numpy(float), clean)


def _axis_rectangles(geoms: NDArray[np.object_], bounds: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which geometries are single axis-aligned rectangles (their area fills their bounding box)."""
    box_area = (bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1])
    simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_coordinates(geoms) == 5)
    return simple & (np.abs(shapely.area(geoms) - box_area) <= 1e-9 * np.maximum(box_area, 1.0))


def _rectangle_shared(ba: NDArray[np.float64], bb: NDArray[np.float64]) -> NDArray[np.float64]:
    """Shared edge length of pairs of axis-aligned rectangles given by their bounds."""
    tol = 1e-6
    touch_x = (np.abs(ba[:, 2] - bb[:, 0]) <= tol) | (np.abs(bb[:, 2] - ba[:, 0]) <= tol)
    touch_y = (np.abs(ba[:, 3] - bb[:, 1]) <= tol) | (np.abs(bb[:, 3] - ba[:, 1]) <= tol)
    over_y = np.minimum(ba[:, 3], bb[:, 3]) - np.maximum(ba[:, 1], bb[:, 1])
    over_x = np.minimum(ba[:, 2], bb[:, 2]) - np.maximum(ba[:, 0], bb[:, 0])
    return np.where(touch_x, np.maximum(over_y, 0.0), 0.0) + np.where(touch_y, np.maximum(over_x, 0.0), 0.0)
