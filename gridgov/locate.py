"""Point → polygon lookup for millions of points: a raster shortcut with an exact fallback.

Most points lie well inside one polygon. :class:`PointLocator` lays a raster over the polygons once; a cell that no
polygon boundary (outer ring or hole) comes near is *pure*: every point in it lies in the same polygons, so its
answer is read from the raster with two multiplications. Only points in cells near a boundary go to the exact
test (shapely ``STRtree`` with ``predicate="intersects"``), so the answer is always the exact one, boundary included.

Why the raster is exact. The boundaries are cut into pieces no longer than a quarter cell (``shapely.segmentize``),
so every boundary point lies within an eighth of a cell of a vertex; each vertex marks the cells of the four corners
of a square of half-side a quarter cell around it, which covers every cell that boundary point touches (its own
cell and, on a cell edge, the next one). Connected pure cells (sharing an edge) lie in one set of polygons, since
leaving that set means crossing a boundary; one exact lookup per connected region labels all its cells.

The locator works in the polygons' own planar coordinates (degrees for EPSG:4326); it does not reproject.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from gridgov.errors import InputError

#: Raster cells aimed at per polygon (about 64 across a square one): finer cells send fewer points to the exact test.
CELLS_PER_POLYGON = 4096
#: Upper bound of raster cells (4 bytes each for the label, 1 for the boundary mask).
MAX_CELLS = 8_000_000

_OUTSIDE = -1
_NEAR_BOUNDARY = -2


class PointLocator:
    """Finds the polygon containing each point; a point in several (shared edge, corner, overlap) gets the lowest id.

    Parameters
    ----------
    polygons
        Polygons or multipolygons, all in one planar CRS (the points' CRS).
    ids
        Integer id of each polygon (same length).
    cells_per_polygon, max_cells
        Raster resolution: about ``cells_per_polygon * len(polygons)`` cells, at most ``max_cells``. ``max_cells=0``
        turns the raster off (every point takes the exact test).
    raster_after
        Build the raster only once this many points have been looked up (counting the call that crosses it), so that
        a few lookups do not pay for it; ``0`` builds it at once.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> loc = PointLocator([box(0, 0, 1, 1), box(1, 0, 2, 1)], [7, 3])
    >>> loc.locate(np.array([0.5, 1.0, 1.5, 5.0]), np.array([0.5, 0.5, 0.5, 0.5])).tolist()
    [7, 3, 3, -1]
    """

    def __init__(self, polygons: ArrayLike, ids: ArrayLike, *, cells_per_polygon: int = CELLS_PER_POLYGON,
                 max_cells: int = MAX_CELLS, raster_after: int = 0) -> None:
        geoms = np.asarray(polygons, dtype=object)
        self.ids: NDArray[np.int64] = np.asarray(ids, dtype="int64")
        if geoms.shape != self.ids.shape:
            raise InputError(f"`ids` must give one id per polygon: {len(self.ids)} ids for {len(geoms)} polygons",
                             field="ids")
        if cells_per_polygon <= 0:
            raise InputError(f"`cells_per_polygon` must be > 0, got {cells_per_polygon}", field="cells_per_polygon")
        self._tree = shapely.STRtree(geoms)
        self._geoms = geoms
        self._grid: NDArray[np.int32] | None = None
        self._x0 = self._y0 = self._cell = 0.0
        self._target_cells = min(max_cells, cells_per_polygon * len(geoms)) if len(geoms) else 0
        self._raster_after = raster_after
        self._seen = 0
        self._built = False
        self._maybe_build(0)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def raster_shape(self) -> tuple[int, int] | None:
        """``(rows, columns)`` of the raster, or None while (or when) every point takes the exact test."""
        return None if self._grid is None else (int(self._grid.shape[0]), int(self._grid.shape[1]))

    def near_boundary_share(self) -> float:
        """Share of raster cells whose points take the exact test (0 to 1; 1 without a raster)."""
        if self._grid is None:
            return 1.0
        return float(np.mean(self._grid == _NEAR_BOUNDARY))

    # -- building ------------------------------------------------------------------------------------------------
    def _maybe_build(self, points: int) -> None:
        self._seen += points
        if self._built or self._target_cells <= 0 or self._seen < self._raster_after:
            return
        self._built = True
        self._build(self._target_cells)

    def _build(self, target_cells: int) -> None:
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(self._geoms))
        width, height = maxx - minx, maxy - miny
        if not (np.isfinite([width, height]).all() and width > 0 and height > 0):
            return
        cell = float(np.sqrt(width * height / target_cells))
        # One cell of margin on each side, so that every boundary vertex and its square fall inside the raster.
        x0, y0 = minx - cell, miny - cell
        nx = int(np.ceil(width / cell)) + 3
        ny = int(np.ceil(height / cell)) + 3
        near = np.zeros((ny, nx), dtype=bool)
        rings = shapely.segmentize(shapely.boundary(self._geoms), max_segment_length=cell / 4)
        xy = shapely.get_coordinates(rings)
        half = cell / 4
        cols = [np.clip(np.floor((xy[:, 0] + dx - x0) / cell), 0, nx - 1).astype("int32") for dx in (-half, half)]
        rows = [np.clip(np.floor((xy[:, 1] + dy - y0) / cell), 0, ny - 1).astype("int32") for dy in (-half, half)]
        del xy
        for iy in rows:
            for ix in cols:
                near[iy, ix] = True
        del cols, rows
        regions, count = ndimage.label(~near)
        del near
        # Any one cell per region will do (repeated indices: one of the writes wins); region 0 is the boundary band.
        flat = regions.ravel()
        sample = np.zeros(count + 1, dtype="int64")
        sample[flat] = np.arange(flat.size, dtype="int32")
        cy, cx = np.divmod(sample[1:], nx)
        # One exact lookup per region, at the centre of a cell of it (far from every boundary).
        by_region = np.full(count + 1, _NEAR_BOUNDARY, dtype="int32")
        by_region[1:] = self._exact_positions(x0 + (cx + 0.5) * cell, y0 + (cy + 0.5) * cell)
        grid = by_region[regions]
        self._grid, self._x0, self._y0, self._cell = grid, x0, y0, cell

    # -- lookup --------------------------------------------------------------------------------------------------
    def _exact_positions(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int32]:
        """Position (in ``ids``) of the lowest-id polygon containing each finite point, ``-1`` for none."""
        out = np.full(len(x), _OUTSIDE, dtype="int32")
        if not len(x):
            return out
        hit_pt, hit_geom = self._tree.query(shapely.points(x, y), predicate="intersects")
        if not len(hit_pt):
            return out
        order = np.lexsort((self.ids[hit_geom], hit_pt))
        first_pt, first = np.unique(hit_pt[order], return_index=True)
        out[first_pt] = hit_geom[order][first]
        return out

    def locate(self, x: ArrayLike, y: ArrayLike, *, exact_only: bool = False) -> NDArray[np.int64]:
        """Id of the polygon containing each point, ``-1`` where none does (or the point is not finite).

        Parameters
        ----------
        x, y
            Point coordinates in the polygons' CRS.
        exact_only
            Skip the raster and test every point exactly (the reference the raster is tested against).

        Returns
        -------
        numpy.ndarray
            ``int64`` ids; a point on the boundary of several polygons gets the lowest id.
        """
        x = np.asarray(x, dtype="float64")
        y = np.asarray(y, dtype="float64")
        if x.shape != y.shape:
            raise InputError(f"`x` and `y` differ in length ({len(x)} and {len(y)})", field="y")
        pos = np.full(x.shape, _OUTSIDE, dtype="int32")
        finite = np.isfinite(x) & np.isfinite(y)
        if not exact_only:
            self._maybe_build(len(x))
        grid = self._grid
        if grid is None or exact_only:
            todo = np.flatnonzero(finite)
        else:
            ny, nx = grid.shape
            with np.errstate(invalid="ignore"):
                fx = np.floor((x - self._x0) / self._cell)
                fy = np.floor((y - self._y0) / self._cell)
            inside = finite & (fx >= 0) & (fx < nx) & (fy >= 0) & (fy < ny)
            cells = np.flatnonzero(inside)
            pos[cells] = grid[fy[cells].astype("int64"), fx[cells].astype("int64")]
            todo = cells[pos[cells] == _NEAR_BOUNDARY]
            pos[todo] = _OUTSIDE
        if len(todo) and len(self.ids):
            pos[todo] = self._exact_positions(x[todo], y[todo])
        out = np.full(x.shape, -1, dtype="int64")
        found = pos >= 0
        out[found] = self.ids[pos[found]]
        return out
