"""GridLayout: which responsibility grid every unit belongs to, held both ways and validated on construction."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse import csgraph

from gridgov.errors import InputError
from gridgov.units import UnitGraph

_SHOW = 5


def _ids(values: ArrayLike) -> str:
    vals = list(np.asarray(values).tolist())
    more = f" … ({len(vals)} in all)" if len(vals) > _SHOW else ""
    return ", ".join(str(v) for v in vals[:_SHOW]) + more


class GridLayout:
    """A complete, non-overlapping, contiguous assignment of units to grids.

    A layout that breaks a rule cannot be built: every unit of the graph is in exactly one grid, every grid is one
    connected piece (through shared edges or added links), and, when ``communities`` is given, no grid spans two
    communities. Layouts are immutable; :meth:`with_moves` and :meth:`relabel` return new ones.

    Parameters
    ----------
    graph
        The units and their adjacency.
    unit_grid
        Grid label of each unit: a Series indexed by ``unit_id`` or a mapping ``unit_id → grid``. Labels are any
        hashable values (grid numbers, grid codes).
    communities
        Community code of each unit (Series or mapping by ``unit_id``) to check that grids stay inside communities.

    Raises
    ------
    InputError
        Naming the units or grids that break a rule.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> from gridgov.units import adjacency
    >>> units = gpd.GeoDataFrame({"unit_id": [1, 2, 3]},
    ...     geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 100)], crs=32651)
    >>> layout = GridLayout(adjacency(units), {1: "A", 2: "A", 3: "B"})
    >>> layout.n_grids, layout.units_of("A").tolist()
    (2, [1, 2])
    >>> GridLayout(adjacency(units), {1: "A", 2: "B", 3: "A"})
    Traceback (most recent call last):
    ...
    gridgov.errors.InputError: field 'unit_grid': grid 'A' is in 2 pieces: units 3 are cut off from units 1
    """

    __slots__ = ("_codes", "_graph", "_grids", "_members")

    def __init__(self, graph: UnitGraph, unit_grid: pd.Series | Mapping[int, Hashable], *,
                 communities: pd.Series | Mapping[int, Any] | None = None) -> None:
        series = unit_grid if isinstance(unit_grid, pd.Series) else pd.Series(dict(unit_grid), dtype=object)
        self._graph = graph
        self._codes, self._grids = _encode(graph, series)
        self._check_contiguous()
        if communities is not None:
            self._check_communities(communities)
        order = np.argsort(self._codes, kind="stable")
        splits = np.flatnonzero(np.diff(self._codes[order])) + 1
        self._members = tuple(graph.unit_ids[part] for part in np.split(order, splits))
        for arr in self._members:
            arr.setflags(write=False)
        self._codes.setflags(write=False)

    @classmethod
    def _trusted(cls, graph: UnitGraph, codes: NDArray[np.int64], grids: tuple[Hashable, ...], *,
                 communities: NDArray[Any] | None = None) -> GridLayout:
        """Build from grid indices in graph order (still fully validated)."""
        series = pd.Series(np.asarray(grids, dtype=object)[codes], index=graph.unit_ids)
        comm = pd.Series(communities, index=graph.unit_ids) if communities is not None else None
        return cls(graph, series, communities=comm)

    # -- validation -----------------------------------------------------------------------------------------------

    def _check_contiguous(self) -> None:
        g = self._graph
        n = g.n_units
        rows = np.repeat(np.arange(n), np.diff(g.indptr))
        cols = g.indices
        same = self._codes[rows] == self._codes[cols]
        mat = sparse.coo_matrix((np.ones(int(same.sum())), (rows[same], cols[same])), shape=(n, n))
        ncomp, comp = csgraph.connected_components(mat, directed=False)
        if ncomp == len(self._grids):
            return
        pieces = pd.DataFrame({"grid": self._codes, "comp": comp, "unit": g.unit_ids})
        per_grid = pieces.groupby("grid")["comp"].nunique()
        bad = int(per_grid[per_grid > 1].index[0])
        sub = pieces[pieces["grid"] == bad]
        sizes = sub.groupby("comp")["unit"].agg(list).sort_values(key=lambda s: -s.str.len())
        main, stray = sizes.iloc[0], [u for part in sizes.iloc[1:] for u in part]
        raise InputError(f"grid {self._grids[bad]!r} is in {len(sizes)} pieces: units {_ids(sorted(stray))} are cut "
                         f"off from units {_ids(sorted(main))}", field="unit_grid")

    def _check_communities(self, communities: pd.Series | Mapping[int, Any]) -> None:
        comm = communities if isinstance(communities, pd.Series) else pd.Series(dict(communities))
        values = comm.reindex(self._graph.unit_ids).to_numpy(dtype=object)
        if pd.isna(values).any():
            missing = self._graph.unit_ids[pd.isna(values)]
            raise InputError(f"units {_ids(missing)} have no community", field="communities")
        frame = pd.DataFrame({"grid": self._codes, "community": values.astype(str)})
        per_grid = frame.groupby("grid")["community"].unique()
        for grid, comms in per_grid.items():
            if len(comms) > 1:
                raise InputError(f"grid {self._grids[int(grid)]!r} spans communities {', '.join(sorted(comms))}; "
                                 "a grid must stay inside one community", field="unit_grid")

    # -- reading --------------------------------------------------------------------------------------------------

    @property
    def graph(self) -> UnitGraph:
        """The units and adjacency the layout was checked against."""
        return self._graph

    @property
    def grids(self) -> tuple[Hashable, ...]:
        """Grid labels, sorted when they can be."""
        return self._grids

    @property
    def n_grids(self) -> int:
        """Number of grids."""
        return len(self._grids)

    @property
    def grid_index(self) -> NDArray[np.int64]:
        """Position in :attr:`grids` of each unit's grid, in graph order (read-only)."""
        return self._codes

    @property
    def unit_grid(self) -> pd.Series:
        """Grid label of each unit, indexed by ``unit_id``."""
        return pd.Series(np.asarray(self._grids, dtype=object)[self._codes], index=pd.Index(self._graph.unit_ids,
                                                                                             name="unit_id"),
                         name="grid")

    def grid_of(self, unit_id: int) -> Hashable:
        """The grid a unit belongs to."""
        return self._grids[int(self._codes[self._graph.positions([unit_id])[0]])]

    def units_of(self, grid: Hashable) -> NDArray[np.int64]:
        """Unit ids of one grid, ascending."""
        try:
            i = self._grids.index(grid)
        except ValueError:
            raise InputError(f"no grid {grid!r} in this layout", field="grid") from None
        return self._members[i]

    def to_frame(self) -> pd.DataFrame:
        """``unit_id, grid`` rows (the form ``Store.save_layout`` takes once grids have codes)."""
        return self.unit_grid.reset_index()

    def equals(self, other: GridLayout) -> bool:
        """Same units in the same grids under the same labels."""
        return bool(self.unit_grid.equals(other.unit_grid))

    def loads(self, weights: pd.Series | ArrayLike) -> pd.Series:
        """Sum of a per-unit quantity over each grid.

        Parameters
        ----------
        weights
            Series indexed by ``unit_id``, or values in graph order.
        """
        w = _per_unit(self._graph, weights)
        return pd.Series(np.bincount(self._codes, weights=w, minlength=self.n_grids),
                         index=pd.Index(self._grids, name="grid"))

    def shapes(self) -> pd.DataFrame:
        """Units, area, perimeter and Polsby–Popper compactness (4πA/P²) of every grid, in the metric CRS.

        The perimeter is the units' perimeters less twice the boundary they share inside the grid, which is the
        perimeter of the grid's dissolved geometry when the units tile the ground.
        """
        g = self._graph
        k = self.n_grids
        rows = np.repeat(np.arange(g.n_units), np.diff(g.indptr))
        internal = self._codes[rows] == self._codes[g.indices]
        area = np.bincount(self._codes, weights=g.area_m2, minlength=k)
        perim = np.bincount(self._codes, weights=g.perimeter_m, minlength=k)
        perim -= np.bincount(self._codes[rows[internal]], weights=g.shared_m[internal], minlength=k)
        pp = np.divide(4.0 * np.pi * area, perim**2, out=np.zeros(k), where=perim > 0)
        return pd.DataFrame({"n_units": np.bincount(self._codes, minlength=k), "area_m2": area,
                             "perimeter_m": perim, "polsby_popper": pp}, index=pd.Index(self._grids, name="grid"))

    # -- new layouts ----------------------------------------------------------------------------------------------

    def with_moves(self, moves: Mapping[int, Hashable], *,
                   communities: pd.Series | Mapping[int, Any] | None = None) -> GridLayout:
        """A new layout with some units moved to other (or new) grids; validated like any layout."""
        series = self.unit_grid.astype(object)
        for unit, grid in moves.items():
            if unit not in series.index:
                raise InputError(f"unit {unit!r} is not in the layout", field="moves")
            series.loc[unit] = grid
        return GridLayout(self._graph, series, communities=communities)

    def relabel(self, mapping: Mapping[Hashable, Hashable]) -> GridLayout:
        """A new layout with grids renamed (labels not in ``mapping`` are kept); names must stay distinct."""
        new = [mapping.get(g, g) for g in self._grids]
        if len(set(new)) != len(new):
            raise InputError("two grids would get the same label", field="mapping")
        return GridLayout(self._graph, pd.Series(np.asarray(new, dtype=object)[self._codes],
                                                 index=self._graph.unit_ids))

    def dissolve(self, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Grid geometries (EPSG:4326) with ``n_units``, ``area_m2``, ``perimeter_m``, ``polsby_popper`` and the sums
        of ``households`` and ``population`` (and the community when the units have one).

        Parameters
        ----------
        units
            The unit GeoDataFrame (any CRS) with ``unit_id``.
        """
        if units.crs is None:
            raise InputError("has no CRS; set it first", field="units")
        frame = units.set_index("unit_id").reindex(self._graph.unit_ids)
        if frame.geometry.isna().any():
            raise InputError("lack some of the layout's units", field="units")
        frame = frame.assign(grid=np.asarray(self._grids, dtype=object)[self._codes])
        agg: dict[str, Any] = {c: "sum" for c in ("households", "population") if c in frame.columns}
        if "community_code" in frame.columns:
            agg["community_code"] = "first"
        geo = gpd.GeoDataFrame(frame[[*agg, "grid"]], geometry=frame.geometry.to_crs(4326).values, crs=4326)
        out = geo.dissolve(by="grid", aggfunc=agg if agg else "first", sort=False)
        out = out.reindex(list(self._grids))
        shapes = self.shapes()
        for col in ("n_units", "area_m2", "perimeter_m", "polsby_popper"):
            out[col] = shapes[col].to_numpy()
        return out.rename_axis("grid").reset_index()


def _encode(graph: UnitGraph, series: pd.Series) -> tuple[NDArray[np.int64], tuple[Hashable, ...]]:
    """Grid index of each unit in graph order and the grid labels, after checking the mapping is a partition."""
    index = series.index
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()
        raise InputError(f"units {_ids(dup)} are listed more than once (a unit belongs to exactly one grid)",
                         field="unit_grid")
    known = pd.Index(graph.unit_ids)
    unknown = index.difference(known)
    if len(unknown):
        raise InputError(f"units {_ids(unknown)} are not units of the district", field="unit_grid")
    values = series.reindex(graph.unit_ids)
    missing = values.isna().to_numpy()
    if missing.any():
        raise InputError(f"units {_ids(graph.unit_ids[missing])} are in no grid (every unit needs one)",
                         field="unit_grid")
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # labels of mixed types cannot be sorted
        codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), tuple(uniques.tolist())


def _per_unit(graph: UnitGraph, values: pd.Series | ArrayLike) -> NDArray[np.float64]:
    if isinstance(values, pd.Series):
        out = values.reindex(graph.unit_ids).to_numpy(dtype=float)
        if np.isnan(out).any():
            raise InputError(f"no value for units {_ids(graph.unit_ids[np.isnan(out)])}", field="weights")
        return out
    arr = np.asarray(values, dtype=float)
    if arr.shape != (graph.n_units,):
        raise InputError(f"must have one value per unit ({graph.n_units}), got {arr.shape}", field="weights")
    return arr
