"""Hierarchical grid codes: district (6) · street (3) · community (3) · grid sequence (3) = 15 digits.

The 6-digit district code follows GB/T 2260, streets and communities add three digits each (GB/T 10114 style), and a
responsibility grid adds a 3-digit sequence inside its community, numbered in reading order: bands from north to south,
west to east inside a band (see :func:`reading_order`).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from gridgov.errors import InputError
from gridgov.geo import metric_crs_for

COMMUNITY_DIGITS = 12
SEQUENCE_DIGITS = 3
MAX_GRIDS_PER_COMMUNITY = 10**SEQUENCE_DIGITS - 1
#: Band height as a share of the typical grid side (square root of the community's median grid area).
BAND_SHARE = 0.5


def reading_order(x: ArrayLike, y: ArrayLike, *, band: float) -> NDArray[np.int64]:
    """Order points like text on a page: rows from north to south, west to east inside a row.

    A row starts at the northernmost point not yet numbered and takes every remaining point less than ``band``
    south of it; those are numbered west to east (ties: north first, then input order), and the next row starts.
    Anchoring each row at its own top point means a row never splits grids that sit side by side.

    Parameters
    ----------
    x, y
        Coordinates (y grows northwards, as in every projected CRS and in lon/lat).
    band
        Row height in the units of ``x, y`` (``> 0``).

    Returns
    -------
    numpy.ndarray
        Positions into ``x``/``y`` in reading order.

    Examples
    --------
    >>> reading_order([0, 10, 0, 10], [10, 9, 0, 0], band=5).tolist()
    [0, 1, 2, 3]
    """
    xs = np.asarray(x, dtype="float64")
    ys = np.asarray(y, dtype="float64")
    if not band > 0:
        raise InputError(f"must be > 0, got {band}", field="band")
    if xs.shape != ys.shape:
        raise InputError("x and y differ in length", field="y")
    # North first, then west: the first remaining element always starts the next row.
    remaining = np.lexsort((np.arange(xs.size), xs, -ys))
    out: list[NDArray[np.int64]] = []
    while remaining.size:
        top = ys[remaining[0]]
        in_row = ys[remaining] > top - band
        row = remaining[in_row]
        out.append(row[np.lexsort((np.arange(row.size), -ys[row], xs[row]))])
        remaining = remaining[~in_row]
    return np.concatenate(out).astype(np.int64) if out else np.empty(0, dtype=np.int64)


def assign_grid_codes(grids: gpd.GeoDataFrame, *, community_col: str = "community_code") -> pd.Series:
    """Give every grid its 15-digit code: community code + 3-digit sequence in reading order.

    Inside each community the grids are numbered ``001, 002, …`` by :func:`reading_order` of their centroids,
    with a band height of half the community's typical grid side (the square root of its median grid area): grids
    whose centroids are within half a grid of the northernmost unnumbered one form a row, numbered west to east.
    The result depends only on the geometries and community codes, so re-running on the same layout gives the same
    codes whatever the row order (grids with identical centroids keep their input order).

    Parameters
    ----------
    grids
        One row per grid with a CRS set; a geographic CRS is projected to the local UTM zone first.
    community_col
        Column holding each grid's 12-digit community code.

    Returns
    -------
    pandas.Series
        ``grid_code`` strings aligned with ``grids.index``.

    Raises
    ------
    InputError
        When the column is missing, a community code is not 12 digits, a geometry is empty, the layer has no CRS,
        or a community has more than 999 grids.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> g = gpd.GeoDataFrame({"community_code": ["990100001001"] * 3},
    ...                      geometry=[box(0, 0, 100, 100), box(0, 100, 100, 200), box(100, 100, 200, 200)],
    ...                      crs="EPSG:32651")
    >>> assign_grid_codes(g).tolist()
    ['990100001001003', '990100001001001', '990100001001002']
    """
    if community_col not in grids.columns:
        raise InputError(f"grids have no column {community_col!r}", field=community_col)
    if grids.crs is None:
        raise InputError("grids have no CRS; set it first, e.g. grids.set_crs(4326)", field="crs")
    communities = grids[community_col].astype("string")
    bad = communities.isna() | ~communities.str.fullmatch(rf"\d{{{COMMUNITY_DIGITS}}}").fillna(False)
    if bool(bad.any()):
        first = grids[community_col][bad].iloc[0]
        raise InputError(f"community codes must be {COMMUNITY_DIGITS} digits, got {first!r}", field=community_col)
    sizes = communities.value_counts()
    if len(sizes) and int(sizes.max()) > MAX_GRIDS_PER_COMMUNITY:
        worst = sizes.idxmax()
        raise InputError(f"community {worst} has {int(sizes.max())} grids; a 3-digit sequence allows at most "
                         f"{MAX_GRIDS_PER_COMMUNITY} — split the community first", field=community_col)
    geoms = grids.geometry
    if bool((geoms.isna() | geoms.is_empty).any()):
        raise InputError("every grid needs a non-empty geometry", field="geometry")
    if not grids.crs.is_projected:
        geoms = geoms.to_crs(metric_crs_for(grids))
    centroids = geoms.centroid
    cx = centroids.x.to_numpy()
    cy = centroids.y.to_numpy()
    area = geoms.area.to_numpy()
    comm = communities.to_numpy(dtype=object)
    seq = np.zeros(len(grids), dtype=np.int64)
    for code in sorted(set(comm)):
        members = np.flatnonzero(comm == code)
        side = float(np.sqrt(np.median(area[members])))
        band = BAND_SHARE * side if side > 0 else 1.0
        order = reading_order(cx[members], cy[members], band=band)
        seq[members[order]] = np.arange(1, members.size + 1)
    codes = [f"{c}{s:0{SEQUENCE_DIGITS}d}" for c, s in zip(comm, seq, strict=True)]
    return pd.Series(codes, index=grids.index, name="grid_code", dtype="object")
