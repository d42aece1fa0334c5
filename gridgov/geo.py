"""Geometry helpers: the local metric CRS, edge adjacency of polygons, connected parts, points inside polygons.

Everything here is vectorised with shapely 2 and numpy. Functions that measure lengths or areas expect planar
coordinates (a metric CRS such as the local UTM zone); the ones that only test topology work in any CRS.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray

from gridgov.errors import InputError

WGS84 = "EPSG:4326"


def utm_crs(lon: float, lat: float) -> str:
    """The WGS 84 / UTM zone that contains a point, as an ``EPSG:`` string.

    The regular 6° zones are used everywhere (the Norway and Svalbard exceptions are not applied: they only matter
    north of 56° N).

    Parameters
    ----------
    lon, lat
        Longitude and latitude in degrees (EPSG:4326). UTM is defined between 80° S and 84° N.

    Returns
    -------
    str
        ``"EPSG:326zz"`` north of the equator, ``"EPSG:327zz"`` south of it.

    Raises
    ------
    InputError
        When the point is outside the UTM range.

    Examples
    --------
    >>> utm_crs(121.47, 31.23)
    'EPSG:32651'
    >>> utm_crs(-118.25, 34.05)
    'EPSG:32611'
    """
    if not np.isfinite(lon) or not -180.0 <= lon <= 180.0:
        raise InputError(f"must be a longitude between -180 and 180, got {lon}", field="lon")
    if not np.isfinite(lat) or not -80.0 <= lat <= 84.0:
        raise InputError(f"must be a latitude between -80 and 84 (the UTM range), got {lat}", field="lat")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def metric_crs_for(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> str:
    """The local UTM zone of a layer, chosen from the centre of its bounds.

    Parameters
    ----------
    gdf
        A GeoDataFrame or GeoSeries with a CRS set and at least one non-empty geometry.

    Returns
    -------
    str
        An ``EPSG:`` string usable by :meth:`geopandas.GeoDataFrame.to_crs`.

    Raises
    ------
    InputError
        When the layer has no CRS or no geometry.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> metric_crs_for(gpd.GeoSeries([Point(121.4, 31.2), Point(121.5, 31.3)], crs=4326))
    'EPSG:32651'
    """
    if gdf.crs is None:
        raise InputError("the layer has no CRS; set it first, e.g. gdf.set_crs(4326)", field="crs")
    geoms = gdf.geometry if isinstance(gdf, gpd.GeoDataFrame) else gdf
    if len(geoms) == 0 or bool(geoms.is_empty.all()):
        raise InputError("the layer has no geometry to take a centre from", field="geometry")
    minx, miny, maxx, maxy = geoms.total_bounds
    if not gdf.crs.is_geographic or gdf.crs.to_epsg() != 4326:
        to_wgs84 = pyproj.Transformer.from_crs(gdf.crs, WGS84, always_xy=True)
        minx, miny, maxx, maxy = to_wgs84.transform_bounds(minx, miny, maxx, maxy)
    return utm_crs((minx + maxx) / 2.0, (miny + maxy) / 2.0)


def shared_edges(geoms: ArrayLike, *, min_shared: float = 0.0) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Pairs of polygons that share an edge, with the length they share.

    Parameters
    ----------
    geoms
        Polygons (a shapely array, list or GeoSeries).
    min_shared
        Shortest shared boundary, in CRS units, that counts. ``0`` accepts any shared stretch of positive length and
        rejects corner-only contact.

    Returns
    -------
    tuple of numpy.ndarray
        ``(k, 2)`` int64 index pairs ``i < j`` (positions in ``geoms``, sorted) and the ``k`` shared lengths.
    """
    arr = np.asarray(geoms.values if isinstance(geoms, gpd.GeoSeries) else geoms, dtype=object)
    empty = (np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float64))
    if arr.size == 0:
        return empty
    tree = shapely.STRtree(arr)
    left, right = tree.query(arr, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if left.size == 0:
        return empty
    bounds = shapely.boundary(arr)
    shared = shapely.length(shapely.intersection(bounds[left], bounds[right]))
    keep = shared > min_shared
    pairs = np.column_stack([left[keep], right[keep]]).astype(np.int64)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], np.asarray(shared[keep], dtype=np.float64)[order]


def rook_adjacency(geoms: ArrayLike, *, min_shared: float = 0.0) -> NDArray[np.int64]:
    """Pairs of polygons that share an edge (rook adjacency), not just a corner.

    Parameters
    ----------
    geoms
        Polygons (a shapely array, list or GeoSeries).
    min_shared
        Shortest shared boundary, in CRS units, that makes two polygons neighbours. ``0`` accepts any shared
        stretch of positive length and rejects corner-only contact.

    Returns
    -------
    numpy.ndarray
        ``(k, 2)`` int64 array of index pairs ``i < j`` (positions in ``geoms``), sorted.

    Examples
    --------
    >>> import shapely
    >>> squares = shapely.box([0, 1, 1], [0, 0, 1], [1, 2, 2], [1, 1, 2])
    >>> rook_adjacency(squares).tolist()
    [[0, 1], [1, 2]]
    """
    return shared_edges(geoms, min_shared=min_shared)[0]


def connected_components(n: int, edges: NDArray[np.integer]) -> NDArray[np.int64]:
    """Label the connected components of an undirected graph.

    Parameters
    ----------
    n
        Number of nodes (``0 … n-1``).
    edges
        ``(k, 2)`` array of node pairs.

    Returns
    -------
    numpy.ndarray
        Component label of each node: ``0, 1, …`` numbered in order of each component's smallest node.

    Examples
    --------
    >>> import numpy as np
    >>> connected_components(5, np.array([[0, 2], [3, 4]])).tolist()
    [0, 1, 0, 2, 2]
    """
    parent = np.arange(n, dtype=np.int64)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = int(parent[root])
        while parent[i] != root:  # path compression keeps later finds short
            parent[i], i = root, int(parent[i])
        return root

    for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2):
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    _, labels = np.unique(roots, return_inverse=True)
    return labels.astype(np.int64)


def points_in_polygons(polygons: ArrayLike, counts: ArrayLike, rng: np.random.Generator, *,
                       max_rounds: int = 200) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Uniform random points strictly inside polygons, a given number in each.

    Points are drawn in each polygon's bounding box and the ones falling outside (or on the boundary) are drawn
    again, all polygons at once; a full rectangle accepts every draw.

    Parameters
    ----------
    polygons
        Polygons (planar coordinates; in lon/lat the density is uniform in degrees, not in metres).
    counts
        How many points each polygon gets (same length, ``>= 0``).
    rng
        The random generator (the only source of randomness).
    max_rounds
        Give up after this many redraws (a polygon with almost no area in its bounding box).

    Returns
    -------
    tuple of numpy.ndarray
        ``x, y`` of ``sum(counts)`` points: those of polygon 0 first, then polygon 1, and so on.

    Raises
    ------
    InputError
        When a polygon with a positive count is empty or rejects every draw.
    """
    polys = np.asarray(polygons, dtype=object)
    n_per = np.asarray(counts, dtype=np.int64)
    if polys.shape != n_per.shape:
        raise InputError(f"counts has {n_per.size} values for {polys.size} polygons", field="counts")
    if (n_per < 0).any():
        raise InputError("must all be >= 0", field="counts")
    owner = np.repeat(np.arange(polys.size), n_per)
    if owner.size and bool(shapely.is_empty(polys[n_per > 0]).any()):
        raise InputError("an empty polygon cannot hold points", field="polygons")
    bounds = shapely.bounds(polys)
    shapely.prepare(polys)
    x = np.empty(owner.size)
    y = np.empty(owner.size)
    todo = np.arange(owner.size)
    for _ in range(max_rounds):
        if todo.size == 0:
            break
        b = bounds[owner[todo]]
        tx = b[:, 0] + rng.random(todo.size) * (b[:, 2] - b[:, 0])
        ty = b[:, 1] + rng.random(todo.size) * (b[:, 3] - b[:, 1])
        ok = shapely.contains_xy(polys[owner[todo]], tx, ty)
        x[todo[ok]], y[todo[ok]] = tx[ok], ty[ok]
        todo = todo[~ok]
    if todo.size:
        raise InputError(f"{todo.size} point(s) could not be placed inside polygon {int(owner[todo[0]])}",
                         field="polygons")
    return x, y


def to_wgs84(geoms: ArrayLike, crs: str | pyproj.CRS) -> NDArray[np.object_]:
    """Reproject shapely geometries from ``crs`` to lon/lat (EPSG:4326).

    Identical input coordinates give identical output coordinates, so polygons that share edges keep sharing them.

    Parameters
    ----------
    geoms
        Shapely geometries in ``crs``.
    crs
        Their CRS.

    Returns
    -------
    numpy.ndarray
        The geometries in EPSG:4326 (object array).
    """
    transformer = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)

    def _fn(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), _fn), dtype=object)
