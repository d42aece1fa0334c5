"""The raster point → polygon lookup gives exactly shapely's answer: on and near boundaries, in holes, irregular."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from gridgov.errors import InputError
from gridgov.locate import PointLocator
from tests.fixtures import UTM


def _shapely_answer(polygons: list[shapely.Geometry], ids: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The reference: lowest id among the polygons that ``intersects`` each point (boundary included)."""
    pts = shapely.points(x, y)
    none = np.iinfo(np.int64).max
    out = np.full(len(x), none, dtype="int64")
    for geom, uid in zip(polygons, ids, strict=True):
        hit = shapely.intersects(geom, pts) & np.isfinite(x) & np.isfinite(y)
        out = np.where(hit & (uid < out), uid, out)
    return np.where(out == none, -1, out)


def _boundary_points(polygons: list[shapely.Geometry], n: int, rng: np.random.Generator,
                     jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on the rings (vertices and interpolated) and points a hair off them."""
    rings = shapely.boundary(np.asarray(polygons, dtype=object))
    lengths = shapely.length(rings)
    pick = rng.integers(0, len(polygons), n)
    on = shapely.line_interpolate_point(rings[pick], rng.uniform(0, 1, n) * lengths[pick])
    xy = shapely.get_coordinates(on)
    verts = shapely.get_coordinates(rings)
    xy = np.vstack([xy, verts])
    off = xy + rng.normal(0, jitter, xy.shape)
    both = np.vstack([xy, off])
    return both[:, 0], both[:, 1]


def _irregular_units(seed: int) -> tuple[list[shapely.Geometry], np.ndarray]:
    """A Voronoi coverage clipped to a square, a hole punched in one unit and an island unit in the hole."""
    rng = np.random.default_rng(seed)
    frame = box(0, 0, 1000, 800)
    seeds = shapely.multipoints(rng.uniform([0, 0], [1000, 800], (60, 2)))
    voronoi = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame))
    cells = [shapely.intersection(c, frame) for c in voronoi]
    cells = [c for c in cells if not c.is_empty]
    big = int(np.argmax([c.area for c in cells]))
    centre = cells[big].representative_point()
    hole = centre.buffer(min(15.0, cells[big].exterior.distance(centre) / 2), quad_segs=3)
    cells[big] = cells[big].difference(hole)
    cells.append(hole.buffer(-2.0, quad_segs=3))  # an island in the hole, not touching it
    ids = rng.permutation(np.arange(100, 100 + len(cells)))
    return cells, ids


def test_squares_on_edges_and_corners_take_the_lowest_id() -> None:
    polys = [box(c, r, c + 1, r + 1) for r in range(4) for c in range(4)]
    ids = np.array([16 - i for i in range(16)])  # lowest id top right, to beat any "first polygon" shortcut
    loc = PointLocator(polys, ids)
    grid = np.arange(0, 4.001, 0.25)
    x, y = (a.ravel() for a in np.meshgrid(grid, grid))
    np.testing.assert_array_equal(loc.locate(x, y), _shapely_answer(polys, ids, x, y))
    assert loc.raster_shape is not None


def test_irregular_units_with_a_hole_and_an_island_match_shapely() -> None:
    polys, ids = _irregular_units(seed=1)
    loc = PointLocator(polys, ids)
    assert loc.raster_shape is not None and loc.near_boundary_share() < 0.5
    rng = np.random.default_rng(2)
    bx, by = _boundary_points(polys, 3000, rng, jitter=1e-6)
    ux, uy = rng.uniform(-50, 1050, 20_000), rng.uniform(-50, 850, 20_000)
    x, y = np.concatenate([bx, ux]), np.concatenate([by, uy])
    got = loc.locate(x, y)
    np.testing.assert_array_equal(got, _shapely_answer(polys, ids, x, y))
    np.testing.assert_array_equal(got, loc.locate(x, y, exact_only=True))
    # The hole belongs to no unit but the island; the island's own ring is part of it.
    hole_unit, island = polys[-1], int(ids[-1])
    inner = shapely.get_coordinates(hole_unit.exterior)[0]
    assert loc.locate(np.array([inner[0]]), np.array([inner[1]]))[0] == island


def test_multipolygons_and_overlaps_match_shapely() -> None:
    polys = [
        MultiPolygon([box(0, 0, 2, 2), box(5, 5, 6, 6)]),
        Polygon([(1, 1), (4, 1), (4, 4), (1, 4)], holes=[[(2, 2), (3, 2), (3, 3), (2, 3)]]),
        box(2.5, 2.5, 5.5, 5.5),  # overlaps the hole's edge and the far part of the multipolygon
    ]
    ids = np.array([3, 1, 2])
    rng = np.random.default_rng(3)
    bx, by = _boundary_points(polys, 2000, rng, jitter=1e-9)
    x = np.concatenate([bx, rng.uniform(-1, 7, 5000)])
    y = np.concatenate([by, rng.uniform(-1, 7, 5000)])
    np.testing.assert_array_equal(PointLocator(polys, ids).locate(x, y), _shapely_answer(polys, ids, x, y))


def test_lon_lat_units_from_a_utm_lattice_match_shapely() -> None:
    """The store's case: square UTM units reprojected to lon/lat are slightly rotated quadrilaterals."""
    polys = [box(350_000 + c * 100, 3_455_000 + r * 100, 350_100 + c * 100, 3_455_100 + r * 100)
             for r in range(6) for c in range(6)]
    units = gpd.GeoSeries(polys, crs=UTM).to_crs(4326)
    geoms = list(units.values)
    ids = np.arange(1, len(geoms) + 1)
    rng = np.random.default_rng(4)
    bx, by = _boundary_points(geoms, 3000, rng, jitter=1e-9)
    minx, miny, maxx, maxy = units.total_bounds
    x = np.concatenate([bx, rng.uniform(minx - 1e-3, maxx + 1e-3, 20_000)])
    y = np.concatenate([by, rng.uniform(miny - 1e-3, maxy + 1e-3, 20_000)])
    np.testing.assert_array_equal(PointLocator(geoms, ids).locate(x, y), _shapely_answer(geoms, ids, x, y))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), cells=st.sampled_from([1, 16, 256, 4096]),
       jitter=st.sampled_from([0.0, 1e-12, 1e-7, 1e-3]))
def test_any_resolution_gives_the_exact_answer(seed: int, cells: int, jitter: float) -> None:
    polys, ids = _irregular_units(seed % 1000)
    rng = np.random.default_rng(seed)
    bx, by = _boundary_points(polys, 300, rng, jitter=jitter)
    x = np.concatenate([bx, rng.uniform(-10, 1010, 300)])
    y = np.concatenate([by, rng.uniform(-10, 810, 300)])
    loc = PointLocator(polys, ids, cells_per_polygon=cells)
    np.testing.assert_array_equal(loc.locate(x, y), loc.locate(x, y, exact_only=True))


def test_reference_path_equals_shapely_and_bad_points_are_outside() -> None:
    polys, ids = _irregular_units(seed=5)
    loc = PointLocator(polys, ids)
    x = np.array([np.nan, 10.0, np.inf, -1e300, 500.0])
    y = np.array([10.0, np.nan, 10.0, 1e300, 400.0])
    got = loc.locate(x, y)
    assert got[:4].tolist() == [-1, -1, -1, -1]
    assert got[4] == _shapely_answer(polys, ids, x[4:], y[4:])[0]


def test_no_polygons_and_no_raster() -> None:
    empty = PointLocator([], [])
    assert empty.locate(np.array([0.0]), np.array([0.0])).tolist() == [-1]
    flat = PointLocator([box(0, 0, 1, 1)], [5], max_cells=0)
    assert flat.raster_shape is None and flat.near_boundary_share() == 1.0
    assert flat.locate(np.array([1.0, 2.0]), np.array([0.5, 0.5])).tolist() == [5, -1]


def test_raster_waits_for_enough_points_and_answers_alike() -> None:
    polys, ids = _irregular_units(seed=6)
    loc = PointLocator(polys, ids, raster_after=1000)
    rng = np.random.default_rng(6)
    x, y = rng.uniform(-10, 1010, 600), rng.uniform(-10, 810, 600)
    first = loc.locate(x, y)
    assert loc.raster_shape is None  # 600 points so far: exact test only
    second = loc.locate(x, y)
    assert loc.raster_shape is not None  # 1,200: built before answering
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, _shapely_answer(polys, ids, x, y))


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(InputError, match="`ids`"):
        PointLocator([box(0, 0, 1, 1)], [1, 2])
    with pytest.raises(InputError, match="`cells_per_polygon` must be > 0"):
        PointLocator([box(0, 0, 1, 1)], [1], cells_per_polygon=0)
    with pytest.raises(InputError, match="`x` and `y`"):
        PointLocator([box(0, 0, 1, 1)], [1]).locate(np.zeros(2), np.zeros(3))
