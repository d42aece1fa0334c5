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


# -- re-issue: old → new mapping and codes that survive ----------------------------------------------------------------

GRID_CODE_DIGITS = COMMUNITY_DIGITS + SEQUENCE_DIGITS
_SHOW = 5


def _ids(values: list[object]) -> str:
    more = f" … ({len(values)} in all)" if len(values) > _SHOW else ""
    return ", ".join(str(v) for v in values[:_SHOW]) + more


def _unit_table(table: pd.DataFrame, name: str) -> pd.Series:
    """``grid_code`` of each unit, indexed by ``unit_id``, after checking the table is one row per unit."""
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"must be a DataFrame with unit_id and grid_code, got {type(table).__name__}", field=name)
    missing = [c for c in ("unit_id", "grid_code") if c not in table.columns]
    if missing:
        raise InputError(f"has no column {', '.join(missing)}; give one row per unit with unit_id and grid_code",
                         field=name)
    if bool(table["unit_id"].isna().any()) or bool(table["grid_code"].isna().any()):
        raise InputError("has empty unit_id or grid_code values", field=name)
    dup = table["unit_id"][table["unit_id"].duplicated()]
    if len(dup):
        raise InputError(f"lists units more than once: {_ids(dup.unique().tolist())}", field=name)
    return pd.Series(table["grid_code"].to_numpy(dtype=object), index=pd.Index(table["unit_id"], name="unit_id"))


def _per_unit(values: pd.Series, units: pd.Index, name: str, *, required: bool) -> NDArray[np.float64]:
    """Non-negative per-unit numbers aligned with ``units``; units not listed count 0 unless ``required``."""
    if not isinstance(values, pd.Series):
        raise InputError(f"must be a Series indexed by unit_id, got {type(values).__name__}", field=name)
    if not values.index.is_unique:
        raise InputError("index repeats some unit_id values", field=name)
    extra = values.index.difference(units)
    if len(extra):
        raise InputError(f"lists units not in the layouts: {_ids(extra.tolist())}", field=name)
    aligned = pd.to_numeric(values, errors="coerce").reindex(units)
    lacking = units[aligned.isna().to_numpy()]
    if required and len(lacking):
        raise InputError(f"missing for units {_ids(lacking.tolist())}; give a number (0 if none) for every unit",
                         field=name)
    out = aligned.fillna(0.0).to_numpy(dtype="float64")
    if bool((out < 0).any()):
        raise InputError(f"must be ≥ 0, got {float(out.min())}", field=name)
    return out


def _joined(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One row per unit: ``unit_id, old_grid, new_grid``, checking both layouts cover the same units."""
    old_of = _unit_table(old, "old")
    new_of = _unit_table(new, "new")
    only_new = new_of.index.difference(old_of.index)
    if len(only_new):
        raise InputError(f"has units the old layout lacks: {_ids(only_new.tolist())}; both layouts must cover the "
                         "same units", field="new")
    only_old = old_of.index.difference(new_of.index)
    if len(only_old):
        raise InputError(f"lacks units of the old layout: {_ids(only_old.tolist())}; both layouts must cover the "
                         "same units", field="new")
    units = new_of.index
    return pd.DataFrame({"unit_id": units, "old_grid": old_of.reindex(units).to_numpy(dtype=object),
                         "new_grid": new_of.to_numpy(dtype=object)})


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Rows sorted by labels, falling back to their text when a column mixes types (e.g. ints and codes)."""
    try:
        return frame.sort_values(by, kind="stable").reset_index(drop=True)
    except TypeError:
        return frame.sort_values(by, key=lambda s: s.astype(str), kind="stable").reset_index(drop=True)


def code_mapping(old: pd.DataFrame, new: pd.DataFrame, *, households: pd.Series,
                 incidents: pd.Series | None = None) -> pd.DataFrame:
    """The old→new mapping table: where each new grid's units and households come from.

    Every pair of a new grid and an old grid that share units gives one row. The shares are those of the *new* grid:
    per new grid, ``unit_share`` and ``household_share`` each sum to 1. A new grid without households takes its
    household shares from its unit shares, so they still sum to 1.

    Parameters
    ----------
    old, new
        One row per unit with ``unit_id`` and ``grid_code``; ``new`` may carry provisional labels. Both must list
        the same units.
    households
        Households of each unit, indexed by ``unit_id``; every unit needs a value (0 if none).
    incidents
        Incidents of each unit, indexed by ``unit_id`` (units not listed count 0); adds ``incidents`` and
        ``incident_share`` columns (shares of the new grid's incidents, following unit shares when it has none).

    Returns
    -------
    pandas.DataFrame
        ``new_grid, old_grid, units, households, unit_share, household_share`` (plus the incident columns), sorted
        by ``new_grid`` then ``old_grid``.

    Raises
    ------
    InputError
        When the layouts cover different units (``new``), a table lacks a column or repeats a unit (``old``/``new``),
        or households are missing or negative (``households``).

    Examples
    --------
    >>> old = pd.DataFrame({"unit_id": [1, 2, 3], "grid_code": ["A", "A", "B"]})
    >>> new = pd.DataFrame({"unit_id": [1, 2, 3], "grid_code": [7, 8, 8]})
    >>> m = code_mapping(old, new, households=pd.Series([10, 30, 60], index=[1, 2, 3]))
    >>> m[["new_grid", "old_grid", "units", "households"]].values.tolist()
    [[7, 'A', 1, 10], [8, 'A', 1, 30], [8, 'B', 1, 60]]
    >>> m["household_share"].round(3).tolist()
    [1.0, 0.333, 0.667]
    """
    table = _joined(old, new)
    units = pd.Index(table["unit_id"])
    table["households"] = _per_unit(households, units, "households", required=True)
    weights = ["households"]
    if incidents is not None:
        table["incidents"] = _per_unit(incidents, units, "incidents", required=False)
        weights.append("incidents")
    table["units"] = 1
    pairs = table.groupby(["new_grid", "old_grid"], sort=False, dropna=False)[["units", *weights]].sum()
    pairs = pairs.reset_index()
    totals = pairs.groupby("new_grid", sort=False)[["units", *weights]].transform("sum")
    pairs["unit_share"] = pairs["units"] / totals["units"]
    for col in weights:
        share = col.removesuffix("s") + "_share"
        total = totals[col].to_numpy()
        by_weight = np.divide(pairs[col].to_numpy(), total, out=np.zeros(len(pairs)), where=total > 0)
        pairs[share] = np.where(total > 0, by_weight, pairs["unit_share"].to_numpy())
    pairs["units"] = pairs["units"].astype("int64")
    for col in weights:
        if bool((pairs[col] == np.round(pairs[col])).all()):
            pairs[col] = pairs[col].astype("int64")
    columns = ["new_grid", "old_grid", "units", "households", "unit_share", "household_share"]
    if incidents is not None:
        columns += ["incidents", "incident_share"]
    return _sorted(pairs[columns], ["new_grid", "old_grid"])


def _grid_labels(grids: gpd.GeoDataFrame) -> pd.Index:
    """Labels of the new grids: the ``grid`` column of :meth:`GridLayout.dissolve`, else the index."""
    labels = pd.Index(grids["grid"] if "grid" in grids.columns else grids.index)
    if not labels.is_unique:
        raise InputError(f"repeat grid labels: {_ids(labels[labels.duplicated()].unique().tolist())}", field="grids")
    return labels


def _old_codes(codes: pd.Series) -> None:
    """Check the old layout carries real 15-digit codes (the ones that may be kept)."""
    text = codes.astype(str)
    bad = ~text.str.fullmatch(rf"\d{{{GRID_CODE_DIGITS}}}")
    if bool(bad.any()):
        raise InputError(f"grid codes must be {GRID_CODE_DIGITS} digits, got {text[bad].iloc[0]!r}; give the "
                         "issued codes (see assign_grid_codes)", field="old")


def _kept(mapping: pd.DataFrame, old_units: pd.Series, old_households: pd.Series, community: pd.Series,
          threshold: float) -> dict[object, str]:
    """New label → old code for the grids that are essentially unchanged (see :func:`reissue_codes`)."""
    m = mapping.copy()
    old_hh = old_households.reindex(m["old_grid"]).to_numpy(dtype="float64")
    old_n = old_units.reindex(m["old_grid"]).to_numpy(dtype="float64")
    # A grid without households is judged by its units, on both sides.
    old_share = np.where(old_hh > 0, np.divide(m["households"].to_numpy(dtype="float64"), old_hh,
                                               out=np.zeros(len(m)), where=old_hh > 0), m["units"] / old_n)
    # Shares are ratios of counts; the tolerance keeps 9 of 10 households at 0.9 from failing on rounding.
    eps = 1e-9
    same_community = (m["old_grid"].astype(str).str[:COMMUNITY_DIGITS].to_numpy()
                      == community.reindex(m["new_grid"]).to_numpy(dtype=object))
    ok = (old_share >= threshold - eps) & (m["household_share"].to_numpy() >= threshold - eps) & same_community
    kept: dict[object, str] = {}
    taken: set[str] = set()
    # With threshold > 0.5 a grid can pass with at most one partner on either side; the guard keeps that explicit.
    for new_grid, old_grid in zip(m.loc[ok, "new_grid"], m.loc[ok, "old_grid"], strict=True):
        code = str(old_grid)
        if new_grid not in kept and code not in taken:
            kept[new_grid] = code
            taken.add(code)
    return kept


def _free_sequences(n: int, *, kept: set[int], retired: set[int], community: str) -> list[int]:
    """``n`` sequence numbers for fresh grids: above every number used so far, then gaps, then retired numbers."""
    used = kept | retired
    top = max(used, default=0)
    above = list(range(top + 1, MAX_GRIDS_PER_COMMUNITY + 1))
    gaps = [s for s in range(1, top) if s not in used]
    again = sorted(retired - kept)
    free = (above + gaps + again)[:n]
    if len(free) < n:
        raise InputError(f"community {community} would need {len(kept) + n} grids; a 3-digit sequence allows at most "
                         f"{MAX_GRIDS_PER_COMMUNITY}", field="new")
    return free


def reissue_codes(old: pd.DataFrame, new: pd.DataFrame, grids: gpd.GeoDataFrame, *, households: pd.Series,
                  keep_threshold: float = 0.90) -> pd.Series:
    """Final 15-digit codes of a re-issued layout: unchanged grids keep their old code, the others get fresh ones.

    A new grid keeps an old grid's code when all of these hold:

    * at least ``keep_threshold`` of the old grid's households are in the new grid,
    * at least ``keep_threshold`` of the new grid's households come from that old grid (so neither half of a
      50/50 split, nor a merge of two grids, keeps a code),
    * the new grid lies in the old grid's community (the first 12 digits of the old code).

    Grids without households are judged by their units instead. Every other grid gets a fresh sequence number in
    its community, in reading order (as :func:`assign_grid_codes`), after the highest sequence the community used
    in the old layout: a retired code is not handed to a different area while numbers remain. Only when the
    numbers above are exhausted are gaps, then retired numbers, reused; a code held by a kept grid never is. The
    result depends only on the inputs, so re-running on the same layout gives the same codes.

    Parameters
    ----------
    old
        The issued layout: one row per unit with ``unit_id`` and its 15-digit ``grid_code``.
    new
        The new layout: one row per unit with ``unit_id`` and ``grid_code`` (provisional labels are fine).
    grids
        One row per new grid, with a CRS, labelled by a ``grid`` column (as :meth:`GridLayout.dissolve` gives) or by
        the index, and its 12-digit ``community_code``.
    households
        Households of each unit, indexed by ``unit_id``; every unit needs a value.
    keep_threshold
        Share of households (both ways) above which a grid counts as unchanged; in ``(0.5, 1]``.

    Returns
    -------
    pandas.Series
        ``grid_code`` strings indexed by the new labels (index name ``grid``), unique, 15 digits each.

    Raises
    ------
    InputError
        Naming the argument: layouts over different units (``new``), old codes that are not 15 digits (``old``),
        missing households (``households``), grids that do not match the new labels or lack a community code or
        CRS (``grids``), a threshold out of range (``keep_threshold``), or a community beyond 999 grids (``new``).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> old = pd.DataFrame({"unit_id": [1, 2, 3], "grid_code": ["990100001001001"] * 2 + ["990100001001002"]})
    >>> new = pd.DataFrame({"unit_id": [1, 2, 3], "grid_code": ["x", "y", "y"]})
    >>> grids = gpd.GeoDataFrame({"grid": ["x", "y"], "community_code": ["990100001001"] * 2},
    ...                          geometry=[box(0, 0, 100, 100), box(100, 0, 300, 100)], crs="EPSG:32651")
    >>> reissue_codes(old, new, grids, households=pd.Series([95, 5, 40], index=[1, 2, 3])).to_dict()
    {'x': '990100001001001', 'y': '990100001001003'}
    """
    if not 0.5 < keep_threshold <= 1.0:
        raise InputError(f"must be in (0.5, 1] so a code goes to at most one grid, got {keep_threshold}",
                         field="keep_threshold")
    mapping = code_mapping(old, new, households=households)
    old_of = _unit_table(old, "old")
    _old_codes(old_of)
    old_of = old_of.astype(str)
    if not isinstance(grids, gpd.GeoDataFrame):
        raise InputError(f"must be a GeoDataFrame of the new grids, got {type(grids).__name__}", field="grids")
    if "community_code" not in grids.columns:
        raise InputError("have no column 'community_code'", field="grids")
    labels = _grid_labels(grids)
    new_labels = pd.Index(pd.unique(mapping["new_grid"]))
    lacking = new_labels.difference(labels)
    if len(lacking):
        raise InputError(f"lack new grids {_ids(lacking.tolist())}; give one row per grid of `new`", field="grids")
    surplus = labels.difference(new_labels)
    if len(surplus):
        raise InputError(f"have grids not in `new`: {_ids(surplus.tolist())}", field="grids")
    try:
        fresh_codes = assign_grid_codes(grids)
    except InputError as err:
        raise InputError(str(err), field="grids") from err
    community = pd.Series(fresh_codes.str[:COMMUNITY_DIGITS].to_numpy(), index=labels)

    unit_hh = _per_unit(households, pd.Index(old_of.index), "households", required=True)
    old_households = pd.Series(unit_hh, index=old_of.index).groupby(old_of).sum()
    old_units = old_of.value_counts()
    mapping["old_grid"] = mapping["old_grid"].astype(str)
    kept = _kept(mapping, old_units, old_households, community, keep_threshold)

    # Reading order inside each community, from assign_grid_codes on the whole new layout; fresh grids keep it.
    rank = pd.Series(fresh_codes.str[COMMUNITY_DIGITS:].astype(int).to_numpy(), index=labels)
    old_seqs = pd.Series(old_of.unique())
    out = pd.Series(index=labels, dtype=object, name="grid_code")
    for label, code in kept.items():
        out.loc[label] = code
    for comm in sorted(set(community)):
        members = community.index[(community == comm).to_numpy()]
        fresh = [g for g in members if g not in kept]
        if not fresh:
            continue
        fresh.sort(key=lambda g: int(rank[g]))
        held = {int(c[COMMUNITY_DIGITS:]) for c in kept.values() if c[:COMMUNITY_DIGITS] == comm}
        retired = {int(c[COMMUNITY_DIGITS:]) for c in old_seqs if c[:COMMUNITY_DIGITS] == comm}
        seqs = _free_sequences(len(fresh), kept=held, retired=retired, community=comm)
        for label, seq in zip(fresh, seqs, strict=True):
            out.loc[label] = f"{comm}{seq:0{SEQUENCE_DIGITS}d}"
    out = out.reindex(new_labels)
    out.index.name = "grid"
    return out
