"""Point → polygon lookup for millions of points: a raster, and an exact vectorised test in cells near a boundary.

:class:`PointLocator` lays a raster over the polygons once. A cell that no polygon boundary (outer ring or hole) can
reach is *pure*: every point in it lies in the same polygons, so its answer is read from the raster. A cell that a
boundary crosses keeps a short list of *candidates* (the polygons whose boundary crosses it, lowest id first), the
boundary segments of each that cross the cell, and whether each candidate contains the cell's centre ``c``. A point
``p`` in that cell lies inside a candidate exactly when the centre does and the segment ``p–c`` crosses the
candidate's boundary an even number of times (or the centre does not and it crosses an odd number of times). That
needs only the segments inside the cell, tested for all points at once in numpy. Most boundary cells of a coverage
are *split*: one edge shared by two polygons runs right through the cell, and the side of its line is the answer.

Why the answer equals shapely's ``intersects`` (boundary included, lowest id first):

* Every geometric decision is a sign of the orientation determinant computed in doubles and kept only when it is
  larger than Shewchuk's forward error bound for that determinant, so a kept sign is the exact sign. A point whose
  decision is too close to call -- a point on a boundary, on a segment's line, or in line with a vertex and the
  centre -- goes to shapely (``STRtree`` with ``predicate="intersects"``), as does every point in a cell whose centre
  is itself too close to a boundary to call, and every point near a polygon that is not a valid polygon or
  multipolygon (for which the even-odd rule need not agree with GEOS).
* Which segments cross a cell is decided with a margin of a sixteenth of a cell, so a point's computed cell may be off
  by rounding without losing a segment; which polygons contain a cell's centre comes from a scan line through the
  centres of each row of cells (half-open crossing rule, exact comparisons), and a centre within rounding distance of
  a crossing sends its cell to shapely.
* A polygon that contains a boundary cell without crossing it (overlapping polygons) is the cell's default: the
  answer where no lower-id candidate contains the point.

The locator works in the polygons' own planar coordinates (degrees for EPSG:4326); it does not reproject.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from gridgov.errors import InputError

#: Raster cells aimed at per polygon (about 64 across a square one): finer cells send fewer points to the exact test.
CELLS_PER_POLYGON = 4096
#: Upper bound of raster cells (4 bytes each, plus the tables of the cells a boundary crosses).
MAX_CELLS = 8_000_000
#: Points taken per step, so that the temporaries of a step stay in the processor's cache.
CHUNK = 1 << 17

_OUTSIDE = -1
_NONE = np.iinfo(np.int32).max
# Shewchuk's bound on the rounding error of the 2-D orientation determinant in doubles, (3 + 16 eps) eps times the
# sum of the magnitudes of its two products, doubled for margin; a determinant beyond it has its exact sign.
_CCW_BOUND = 2.0 * (3.0 + 16.0 * 2.0**-53) * 2.0**-53
# Added to the bound so that determinants small enough to have lost precision to underflow count as undecided.
_TINY = 1e-290


def _orientation(ax: NDArray[np.float64], ay: NDArray[np.float64], bx: NDArray[np.float64],
                 by: NDArray[np.float64], px: NDArray[np.float64], py: NDArray[np.float64]) -> NDArray[np.int8]:
    """Exact sign of the turn ``a → b → p``: +1 left, -1 right, 0 when collinear or too close to call in doubles."""
    left = ax - px
    left *= by - py
    right = ay - py
    right *= bx - px
    bound = np.abs(left)
    bound += np.abs(right)
    bound *= _CCW_BOUND
    bound += _TINY
    left -= right
    sign = (left > bound).view(np.int8)
    np.negative(bound, out=bound)
    return sign - (left < bound).view(np.int8)


def _ranges(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Concatenated ``range(start, start + count)`` for each pair, and the pair each value came from."""
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    values = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(starts.astype(np.int64) - offsets, counts)
    return values, owner


def _member(values: NDArray[np.int64], sorted_keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Whether each value is among ``sorted_keys`` (sorted ascending); a binary search, not a hash table."""
    if not len(sorted_keys):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


class PointLocator:
    """Finds the polygon containing each point; a point in several (shared edge, corner, overlap) gets the lowest id.

    Parameters
    ----------
    polygons
        Polygons or multipolygons, all in one planar CRS (the points' CRS). Other or invalid geometries are allowed
        and answered exactly, but points near them always take shapely's test.
    ids
        Integer id of each polygon (same length).
    cells_per_polygon, max_cells
        Raster resolution: about ``cells_per_polygon * len(polygons)`` cells, at most ``max_cells``. ``max_cells=0``
        turns the raster off (every point takes shapely's test).
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
        # ids with -1 in front: position p of a polygon (or -1 for none) reads its answer at p + 1.
        self._answer = np.concatenate([[-1], self.ids]).astype("int64")
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
        """``(rows, columns)`` of the raster, or None while (or when) every point takes shapely's test."""
        return None if self._grid is None else (int(self._grid.shape[0]), int(self._grid.shape[1]))

    @property
    def raster_nbytes(self) -> int:
        """Bytes held by the raster and the tables of its boundary cells (0 without a raster)."""
        if self._grid is None:
            return 0
        return int(sum(a.nbytes for a in (self._grid, *self._tables())))

    def near_boundary_share(self) -> float:
        """Share of raster cells that a boundary crosses, whose points take an exact test (0 to 1; 1 without one)."""
        if self._grid is None:
            return 1.0
        return float(np.mean(self._grid <= -2))

    # -- building ------------------------------------------------------------------------------------------------
    def _maybe_build(self, points: int) -> None:
        self._seen += points
        if self._built or self._target_cells <= 0 or self._seen < self._raster_after:
            return
        self._built = True
        self._build(self._target_cells)

    def _tables(self) -> tuple[NDArray, ...]:  # type: ignore[type-arg]
        return (self._seg, self._near_start, self._near_default, self._near_fallback, self._near_cx,
                self._near_cy, self._pair_seg, self._pair_side, self._pair_through, self._pair_entry, self._entry_pos,
                self._entry_inside, self._split_seg, self._split_side, self._split_pos)

    def _build(self, target_cells: int) -> None:
        geoms = self._geoms
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms))
        width, height = maxx - minx, maxy - miny
        if not (np.isfinite([width, height]).all() and width > 0 and height > 0):
            return
        scale = max(abs(minx), abs(maxx), abs(miny), abs(maxy), width, height)
        cell = float(np.sqrt(width * height / target_cells))
        if cell < 1e-9 * scale:  # cells this small against the coordinates would be lost to rounding
            return
        # Two empty cells of margin on each side: points beyond the raster are clamped onto them and read "outside".
        x0, y0 = minx - 2 * cell, miny - 2 * cell
        nx = int(np.ceil(width / cell)) + 5
        ny = int(np.ceil(height / cell)) + 5
        xcs = x0 + (np.arange(nx) + 0.5) * cell
        ycs = y0 + (np.arange(ny) + 0.5) * cell
        n = len(geoms)
        pos_of_rank = np.argsort(self.ids, kind="stable").astype(np.int32)
        rank_of_pos = np.empty(n, dtype=np.int64)
        rank_of_pos[pos_of_rank] = np.arange(n)

        kind = shapely.get_type_id(geoms)
        empty = (kind < 0) | shapely.is_empty(geoms)
        regular = np.isin(kind, (3, 6)) & ~empty & shapely.is_valid(geoms)
        irregular = np.flatnonzero(~regular & ~empty)

        seg, seg_rank = _segments(geoms, np.flatnonzero(regular), rank_of_pos)
        ax, ay, bx, by = seg
        fallback = np.zeros(ny * nx, dtype=bool)

        # Which polygons contain each cell centre: a scan line through each row of centres.
        inside_cell, inside_rank, unsure_cell = _scan_rows(seg, seg_rank, n, xcs, ycs, 1e-12 * scale)
        fallback[unsure_cell] = True
        rank_grid = np.full(ny * nx, _NONE, dtype=np.int32)
        np.minimum.at(rank_grid, inside_cell, inside_rank.astype(np.int32))

        # Which segments can reach each cell (with a sixteenth of a cell to spare).
        pair_cell, pair_seg = _cells_of_segments(seg, x0, y0, cell, nx, ny)
        order = np.argsort(pair_cell * max(len(ax), 1) + pair_seg, kind="stable")
        pair_cell, pair_seg = pair_cell[order], pair_seg[order]
        near = np.zeros(ny * nx, dtype=bool)
        near[pair_cell] = True
        for g in irregular:  # every point near an irregular geometry takes shapely's test
            gx0, gy0, gx1, gy1 = shapely.bounds(geoms[g])
            c0, c1 = (int(np.clip(np.floor((v - x0) / cell), 0, nx - 1)) for v in (gx0 - cell, gx1 + cell))
            r0, r1 = (int(np.clip(np.floor((v - y0) / cell), 0, ny - 1)) for v in (gy0 - cell, gy1 + cell))
            block = (np.arange(r0, r1 + 1)[:, None] * nx + np.arange(c0, c1 + 1)[None, :]).ravel()
            fallback[block] = True
            near[block] = True
        fallback &= near

        # Candidates: one entry per (cell, polygon) whose boundary reaches the cell, lowest id first.
        pair_rank = seg_rank[pair_seg]
        entry_key = pair_cell * n + pair_rank
        first = np.ones(len(entry_key), dtype=bool)
        first[1:] = entry_key[1:] != entry_key[:-1]
        entry_keys = entry_key[first]
        keep_near = near[inside_cell]
        inside_keys = np.sort(inside_cell[keep_near] * n + inside_rank[keep_near])
        entry_inside = _member(entry_keys, inside_keys)
        # A polygon containing a boundary cell without a boundary in it: the cell's default answer.
        hidden = inside_keys[~_member(inside_keys, entry_keys)]
        default_rank = np.full(ny * nx, _NONE, dtype=np.int64)
        np.minimum.at(default_rank, hidden // n, hidden % n)
        # Candidates ranked after the default never win.
        useful = (entry_keys % n) < default_rank[entry_keys // n]
        pair_useful = useful[np.cumsum(first) - 1]
        pair_cell, pair_seg, pair_rank = pair_cell[pair_useful], pair_seg[pair_useful], pair_rank[pair_useful]
        entry_keys, entry_inside = entry_keys[useful], entry_inside[useful]

        # Cells left without candidates are pure after all (their answer is the default, or none).
        has_pairs = np.zeros(ny * nx, dtype=bool)
        has_pairs[pair_cell] = True
        boundary = has_pairs | fallback
        pure_rank = np.where(near & ~boundary, default_rank, rank_grid)
        grid = np.full(ny * nx, _OUTSIDE, dtype=np.int32)
        known = pure_rank < _NONE
        grid[known] = pos_of_rank[pure_rank[known]]

        near_cells = np.flatnonzero(boundary)
        grid[near_cells] = -2 - np.arange(len(near_cells), dtype=np.int32)
        near_cx = xcs[near_cells % nx]
        near_cy = ycs[near_cells // nx]
        # Side of each segment the centre is on; a centre on a segment's line sends its cell to shapely.
        pair_j = -2 - grid[pair_cell]
        pair_side = _orientation(ax[pair_seg], ay[pair_seg], bx[pair_seg], by[pair_seg], near_cx[pair_j],
                                 near_cy[pair_j])
        near_fallback = fallback[near_cells]
        near_fallback[pair_j[pair_side == 0]] = True
        pair_through = _passes_through(ax[pair_seg], ay[pair_seg], bx[pair_seg], by[pair_seg],
                                       x0 + (pair_cell % nx) * cell, y0 + (pair_cell // nx) * cell, cell)
        near_start = np.zeros(len(near_cells) + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair_j, minlength=len(near_cells)), out=near_start[1:])
        entry_first = np.ones(len(pair_cell), dtype=bool)
        entry_first[1:] = (pair_cell[1:] != pair_cell[:-1]) | (pair_rank[1:] != pair_rank[:-1])
        pair_entry = (np.cumsum(entry_first) - 1).astype(np.int32)
        default = default_rank[near_cells]
        near_default = np.full(len(near_cells), _OUTSIDE, dtype=np.int32)
        has_default = default < _NONE
        near_default[has_default] = pos_of_rank[default[has_default]]

        self._seg = np.ascontiguousarray(seg.T)  # one row (ax, ay, bx, by) per segment: one gather per lookup
        self._split_seg, self._split_side, self._split_pos = _split_cells(
            self._seg, near_start, near_fallback, pair_seg, pair_side, pair_through, pair_entry, entry_inside,
            pos_of_rank[entry_keys % n])
        self._near_start = near_start
        self._near_default = near_default
        self._near_fallback = near_fallback
        self._near_cx, self._near_cy = near_cx, near_cy
        self._pair_seg = pair_seg.astype(np.int32)
        self._pair_side = pair_side
        self._pair_through = pair_through
        self._pair_entry = pair_entry
        self._entry_pos = pos_of_rank[entry_keys % n]
        self._entry_inside = entry_inside
        self._grid = grid.reshape(ny, nx)
        self._x0, self._y0, self._cell = x0, y0, cell

    # -- lookup --------------------------------------------------------------------------------------------------
    def _exact_positions(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int32]:
        """Position (in ``ids``) of the lowest-id polygon containing each finite point, ``-1`` for none (shapely)."""
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

    def locate(self, x: ArrayLike, y: ArrayLike, *, exact_only: bool = False, threads: int = 1) -> NDArray[np.int64]:
        """Id of the polygon containing each point, ``-1`` where none does (or the point is not finite).

        Parameters
        ----------
        x, y
            Point coordinates in the polygons' CRS.
        exact_only
            Skip the raster and test every point with shapely (the reference the raster is tested against).
        threads
            Threads that share the points (numpy releases the GIL); the answer does not depend on it.

        Returns
        -------
        numpy.ndarray
            ``int64`` ids; a point on the boundary of several polygons gets the lowest id.
        """
        x = np.ascontiguousarray(x, dtype="float64")
        y = np.ascontiguousarray(y, dtype="float64")
        if x.shape != y.shape:
            raise InputError(f"`x` and `y` differ in length ({len(x)} and {len(y)})", field="y")
        if threads < 1:
            raise InputError(f"`threads` must be >= 1, got {threads}", field="threads")
        shape = x.shape
        x, y = x.ravel(), y.ravel()
        if not exact_only:
            self._maybe_build(len(x))
        if self._grid is None or exact_only:
            out = np.full(x.shape, -1, dtype="int64")
            todo = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        else:
            out = np.empty(x.shape, dtype="int64")
            bounds = np.linspace(0, len(x), min(threads, max(1, len(x) // CHUNK)) + 1).astype(np.int64)
            spans = list(pairwise(bounds.tolist()))
            if len(spans) > 1:
                with ThreadPoolExecutor(len(spans)) as pool:
                    parts = list(pool.map(lambda s: self._locate_span(x, y, out, *s), spans))
            else:
                parts = [self._locate_span(x, y, out, *s) for s in spans]
            todo = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if len(todo) and len(self.ids):
            out[todo] = self._answer[self._exact_positions(x[todo], y[todo]) + 1]
        return out.reshape(shape)

    def _locate_span(self, x: NDArray[np.float64], y: NDArray[np.float64], out: NDArray[np.int64], start: int,
                     stop: int) -> NDArray[np.int64]:
        """Write the answers of points ``start:stop`` into ``out``; return the points left for shapely."""
        assert self._grid is not None
        ny, nx = self._grid.shape
        flat_grid = self._grid.ravel()
        inv = 1.0 / self._cell
        todo: list[NDArray[np.int64]] = []
        for s in range(start, stop, CHUNK):
            e = min(s + CHUNK, stop)
            xs, ys = x[s:e], y[s:e]
            # Column and row, clamped onto the raster's empty margin (NaN and infinities land there too).
            u = xs - self._x0
            u *= inv
            np.fmax(u, 0.0, out=u)
            np.fmin(u, nx - 1, out=u)
            v = ys - self._y0
            v *= inv
            np.fmax(v, 0.0, out=v)
            np.fmin(v, ny - 1, out=v)
            flat = v.astype(np.int64)
            flat *= nx
            flat += u.astype(np.int64)
            val = flat_grid.take(flat)
            near = np.flatnonzero(val <= -2)
            if len(near):
                pos, unsure = self._near(xs[near], ys[near], -2 - val[near])
                val[near] = pos
                if unsure.any():
                    todo.append(s + near[unsure])
            np.take(self._answer, val + 1, out=out[s:e])
        return np.concatenate(todo) if todo else np.zeros(0, dtype=np.int64)

    def _near(self, px: NDArray[np.float64], py: NDArray[np.float64],
              j: NDArray[np.int32]) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
        """Exact positions of points in boundary cells ``j``; and which points are left for shapely."""
        pos = np.full(len(px), _OUTSIDE, dtype=np.int32)
        unsure_pt = self._near_fallback[j]
        split_seg = self._split_seg[j]
        split = np.flatnonzero(split_seg >= 0)
        if len(split):
            # One shared segment splits the cell between two polygons: the side of its line decides.
            js = j[split]
            sx = self._seg[split_seg[split]].T
            s1 = _orientation(sx[0], sx[1], sx[2], sx[3], px[split], py[split])
            pos[split] = np.where(s1 == self._split_side[js], self._split_pos[0, js], self._split_pos[1, js])
            unsure_pt[split] = s1 == 0
        ok = np.flatnonzero(~unsure_pt & (split_seg < 0))
        if not len(ok):
            return pos, unsure_pt
        jj = j[ok]
        start = self._near_start[jj]
        count = self._near_start[jj + 1] - start
        pair, rep = _ranges(start, count)
        sx = self._seg[self._pair_seg[pair]].T
        qx, qy = px[ok][rep], py[ok][rep]
        s1 = _orientation(sx[0], sx[1], sx[2], sx[3], qx, qy)
        unsure = s1 == 0
        # The point is across the segment's line from the centre. Where the segment runs right through the cell,
        # p–c crosses the segment itself; elsewhere that takes two more orientations.
        cross = s1 == -self._pair_side[pair]
        across = np.flatnonzero(cross & ~self._pair_through[pair])
        if len(across):
            ax, ay, bx, by = sx[:, across]
            rx, ry = qx[across], qy[across]
            owner = jj[rep[across]]
            cx, cy = self._near_cx[owner], self._near_cy[owner]
            s2 = _orientation(rx, ry, cx, cy, ax, ay)
            s3 = _orientation(rx, ry, cx, cy, bx, by)
            cross[across] = (s2 * s3) < 0
            unsure[across] |= (s2 == 0) | (s3 == 0)
        entry = self._pair_entry[pair]
        run_first = np.ones(len(pair), dtype=bool)
        run_first[1:] = (entry[1:] != entry[:-1]) | (rep[1:] != rep[:-1])
        runs = np.flatnonzero(run_first)
        parity = np.logical_xor.reduceat(cross, runs)
        run_entry = entry[runs]
        inside = self._entry_inside[run_entry] ^ parity
        best_of_run = np.where(inside, run_entry, _NONE)
        run_point = rep[runs]
        point_first = np.ones(len(runs), dtype=bool)
        point_first[1:] = run_point[1:] != run_point[:-1]
        best = np.minimum.reduceat(best_of_run, np.flatnonzero(point_first))
        found = best < _NONE
        answer = self._near_default[jj]
        answer[found] = self._entry_pos[best[found]]
        pos[ok] = answer
        point_start = np.cumsum(count) - count
        unsure_pt[ok] = np.logical_or.reduceat(unsure, point_start)
        return pos, unsure_pt


def _segments(geoms: NDArray[np.object_], regular: NDArray[np.int64],
              rank_of_pos: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Boundary segments ``(4, n)`` (ax, ay, bx, by) of the regular polygons, ordered by their polygon's rank."""
    if not len(regular):
        return np.zeros((4, 0)), np.zeros(0, dtype=np.int64)
    parts, part_of = shapely.get_parts(geoms[regular], return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    xy, vertex_ring = shapely.get_coordinates(rings, return_index=True)
    same = vertex_ring[1:] == vertex_ring[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    rank = rank_of_pos[regular[part_of[ring_of[vertex_ring[:-1][same]]]]]
    # Zero-length segments add nothing to a boundary (their point ends the next segment) and no crossing.
    real = (a != b).any(axis=1)
    a, b, rank = a[real], b[real], rank[real]
    order = np.argsort(rank, kind="stable")
    seg = np.ascontiguousarray(np.column_stack([a[order], b[order]]).T)
    return seg, rank[order]


def _split_cells(seg: NDArray[np.float64], near_start: NDArray[np.int64], near_fallback: NDArray[np.bool_],
                 pair_seg: NDArray[np.int64], pair_side: NDArray[np.int8], pair_through: NDArray[np.bool_],
                 pair_entry: NDArray[np.int32], entry_inside: NDArray[np.bool_],
                 entry_pos: NDArray[np.int32]) -> tuple[NDArray[np.int32], NDArray[np.int8], NDArray[np.int32]]:
    """Boundary cells that one shared edge splits between two polygons (most cells of a coverage).

    Such a cell has two candidates, each with one segment running right through it, the same segment (either way
    round), and the centre inside exactly one of them: a point on the centre's side of the line lies in that one, a
    point across it in the other, and no other polygon matters. Returns per boundary cell the segment (-1 for other
    cells), the centre's side of it, and the positions of the polygon on the centre's side (row 0) and across (row
    1).
    """
    count = np.diff(near_start)
    first = near_start[:-1]
    candidate = np.flatnonzero((count == 2) & ~near_fallback)
    p0, p1 = first[candidate], first[candidate] + 1
    e0, e1 = pair_entry[p0], pair_entry[p1]
    s0, s1 = seg[pair_seg[p0]], seg[pair_seg[p1]]
    same = (s0 == s1).all(axis=1)  # rings wound the same way apart: the edge in the same direction
    reversed_ = (s0[:, :2] == s1[:, 2:]).all(axis=1) & (s0[:, 2:] == s1[:, :2]).all(axis=1)
    split = ((e0 != e1) & pair_through[p0] & pair_through[p1] & (entry_inside[e0] != entry_inside[e1])
             & (same | reversed_))
    cells, p0, p1, e0, e1 = candidate[split], p0[split], p1[split], e0[split], e1[split]
    centre_in_0 = entry_inside[e0]
    own = np.where(centre_in_0, p0, p1)
    split_seg = np.full(len(count), -1, dtype=np.int32)
    split_seg[cells] = pair_seg[own]
    split_side = np.zeros(len(count), dtype=np.int8)
    split_side[cells] = pair_side[own]
    split_pos = np.full((2, len(count)), _OUTSIDE, dtype=np.int32)
    split_pos[0, cells] = np.where(centre_in_0, entry_pos[e0], entry_pos[e1])
    split_pos[1, cells] = np.where(centre_in_0, entry_pos[e1], entry_pos[e0])
    return split_seg, split_side, split_pos


def _passes_through(ax: NDArray[np.float64], ay: NDArray[np.float64], bx: NDArray[np.float64],
                    by: NDArray[np.float64], left: NDArray[np.float64], bottom: NDArray[np.float64],
                    cell: float) -> NDArray[np.bool_]:
    """Whether each segment certainly runs right through its cell (widened by 1/64 of a cell), ends outside.

    Then inside the cell the segment and its line are the same set, so a path inside the cell crosses one exactly
    when it crosses the other. Certain when both ends lie outside the cell, the bounding boxes overlap, and the line
    has cell corners strictly on both sides: a segment that missed the cell would lie wholly before (or after) the
    stretch of its line inside the cell, hence wholly beyond one side of the cell, and its bounding box could not
    overlap the cell's.
    """
    pad = cell / 64
    x_lo, y_lo = left - pad, bottom - pad
    x_hi, y_hi = left + (cell + pad), bottom + (cell + pad)
    a_out = (ax < x_lo) | (ax > x_hi) | (ay < y_lo) | (ay > y_hi)
    b_out = (bx < x_lo) | (bx > x_hi) | (by < y_lo) | (by > y_hi)
    overlap = ((np.minimum(ax, bx) <= x_hi) & (np.maximum(ax, bx) >= x_lo) & (np.minimum(ay, by) <= y_hi)
               & (np.maximum(ay, by) >= y_lo))
    left_of = np.zeros(len(ax), dtype=bool)
    right_of = np.zeros(len(ax), dtype=bool)
    for cx, cy in ((x_lo, y_lo), (x_hi, y_lo), (x_lo, y_hi), (x_hi, y_hi)):
        side = _orientation(ax, ay, bx, by, cx, cy)
        left_of |= side > 0
        right_of |= side < 0
    return a_out & b_out & overlap & left_of & right_of


def _scan_rows(seg: NDArray[np.float64], seg_rank: NDArray[np.int64], n: int, xcs: NDArray[np.float64],
               ycs: NDArray[np.float64], tolerance: float) -> tuple[NDArray[np.int64], ...]:
    """Cells whose centre each polygon contains (flat cell, rank), and cells whose centre is too close to call.

    Along the line through a row of centres, each segment whose y-range holds the line half-open (``min <= y <
    max``) crosses it once; a polygon's crossings pair up into the intervals it covers (even-odd over its rings).
    """
    ax, ay, bx, by = seg
    nx = len(xcs)
    lo, hi = np.minimum(ay, by), np.maximum(ay, by)
    rows, s = _ranges(np.searchsorted(ycs, lo, "left"), np.searchsorted(ycs, hi, "left") - np.searchsorted(
        ycs, lo, "left"))
    yc = ycs[rows]
    xc = ax[s] + (yc - ay[s]) * (bx[s] - ax[s]) / (by[s] - ay[s])
    # A centre this close to a crossing may sit on either side of it after rounding.
    near_lo = np.searchsorted(xcs, xc - tolerance, "left")
    near_hi = np.searchsorted(xcs, xc + tolerance, "right")
    close = near_hi > near_lo
    unsure_cell = rows[close] * nx + near_lo[close]
    key = rows * n + seg_rank[s]
    order = np.lexsort((xc, key))
    key, xc = key[order], xc[order]
    start_key, x_in, x_out = key[0::2], xc[0::2], xc[1::2]
    c0 = np.searchsorted(xcs, x_in, "right")
    c1 = np.searchsorted(xcs, x_out, "left")
    row, rank = np.divmod(start_key, n)
    cols, span = _ranges(c0, np.maximum(c1 - c0, 0))
    return (row * nx)[span] + cols, rank[span], unsure_cell


def _cells_of_segments(seg: NDArray[np.float64], x0: float, y0: float, cell: float, nx: int,
                       ny: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every (flat cell, segment) where the segment comes within a sixteenth of a cell of the cell; a few more."""
    ax, ay, bx, by = seg
    slack = cell / 16
    lo, hi = np.minimum(ay, by), np.maximum(ay, by)
    r0 = np.clip(np.floor((lo - slack - y0) / cell), 0, ny - 1).astype(np.int64)
    r1 = np.clip(np.floor((hi + slack - y0) / cell), 0, ny - 1).astype(np.int64)
    rows, s = _ranges(r0, r1 - r0 + 1)
    # The stretch of the segment inside the row's band (widened by the slack), then the columns it spans.
    band_lo = np.maximum(y0 + rows * cell - slack, lo[s])
    band_hi = np.minimum(y0 + (rows + 1) * cell + slack, hi[s])
    flat = ay[s] == by[s]
    dy = np.where(flat, 1.0, by[s] - ay[s])
    slope = (bx[s] - ax[s]) / dy
    xa = np.where(flat, np.minimum(ax[s], bx[s]), ax[s] + (band_lo - ay[s]) * slope)
    xb = np.where(flat, np.maximum(ax[s], bx[s]), ax[s] + (band_hi - ay[s]) * slope)
    c0 = np.clip(np.floor((np.minimum(xa, xb) - slack - x0) / cell), 0, nx - 1).astype(np.int64)
    c1 = np.clip(np.floor((np.maximum(xa, xb) + slack - x0) / cell), 0, nx - 1).astype(np.int64)
    cols, rs = _ranges(c0, c1 - c0 + 1)
    return rows[rs] * nx + cols, s[rs]
