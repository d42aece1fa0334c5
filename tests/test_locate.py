"""The raster point → polygon lookup gives exactly shapely's answer: on and near boundaries, in holes, irregular.

Most tests also check that the fast path did the work: points a hair off a boundary are decided by the locator's own
exact test in numpy, not handed to shapely, so the comparison with shapely tests that code and not shapely itself.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

import gridgov.locate as locate_module
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


class _Counting:
    """Counts the points a locator hands to shapely (its reference path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.points = 0
        original = PointLocator._exact_positions

        def counted(loc: PointLocator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
            self.points += len(x)
            return original(loc, x, y)

        monkeypatch.setattr(PointLocator, "_exact_positions", counted)


def _lon_lat_lattice(side: int) -> tuple[list[shapely.Geometry], np.ndarray]:
    polys = [box(350_000 + c * 100, 3_455_000 + r * 100, 350_100 + c * 100, 3_455_100 + r * 100)
             for r in range(side) for c in range(side)]
    return list(gpd.GeoSeries(polys, crs=UTM).to_crs(4326).values), np.arange(1, side * side + 1)


def test_points_a_hair_off_lattice_edges_are_decided_without_shapely(monkeypatch: pytest.MonkeyPatch) -> None:
    geoms, ids = _lon_lat_lattice(8)
    loc = PointLocator(geoms, ids[::-1].copy())  # lowest id in the last unit: no "first polygon wins" shortcut
    rng = np.random.default_rng(11)
    bx, by = _boundary_points(geoms, 20_000, rng, jitter=1e-10)  # 1e-10 degrees: about 10 micrometres
    off_x, off_y = bx[len(bx) // 2:], by[len(by) // 2:]  # the second half: the jittered copies
    counter = _Counting(monkeypatch)
    got = loc.locate(off_x, off_y)
    assert counter.points < 0.01 * len(off_x)
    np.testing.assert_array_equal(got, _shapely_answer(geoms, ids[::-1], off_x, off_y))


def test_points_exactly_on_edges_and_shared_vertices_take_the_lowest_id() -> None:
    geoms, ids = _lon_lat_lattice(5)
    loc = PointLocator(geoms, ids[::-1].copy())
    verts = np.unique(shapely.get_coordinates(np.asarray(geoms, dtype=object)), axis=0)  # shared by up to 4 units
    a = shapely.get_coordinates(np.asarray(geoms, dtype=object))
    mid = (a[:-1] + a[1:]) / 2  # midpoints of edges (and a few chords): exactly on the edge or not, shapely says
    x = np.concatenate([verts[:, 0], mid[:, 0]])
    y = np.concatenate([verts[:, 1], mid[:, 1]])
    expect = _shapely_answer(geoms, ids[::-1], x, y)
    np.testing.assert_array_equal(loc.locate(x, y), expect)
    # A vertex shared by four units goes to the lowest of their ids.
    inner = shapely.get_coordinates(geoms[12])[0]
    owners = [int(i) for g, i in zip(geoms, ids[::-1], strict=True) if shapely.intersects(g, shapely.Point(inner))]
    assert len(owners) == 4
    assert loc.locate(np.array([inner[0]]), np.array([inner[1]]))[0] == min(owners)


def test_a_polygon_covering_boundary_cells_wins_where_no_lower_id_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overlaps: a big unit under small ones. Where the small ones' edges cross a cell, the big one is the default."""
    small = [box(1 + 2 * i, 1, 2 + 2 * i, 2) for i in range(4)]
    big = box(0, 0, 9, 3)
    rng = np.random.default_rng(12)
    for big_id in (9, 0):  # under the small units (higher id), then over them (lowest id)
        polys, ids = [*small, big], np.array([1, 2, 3, 4, big_id])
        loc = PointLocator(polys, ids)
        bx, by = _boundary_points(polys, 3000, rng, jitter=1e-7)
        x = np.concatenate([bx, rng.uniform(-1, 10, 5000)])
        y = np.concatenate([by, rng.uniform(-1, 4, 5000)])
        np.testing.assert_array_equal(loc.locate(x, y), _shapely_answer(polys, ids, x, y))
        counter = _Counting(monkeypatch)
        off_x, off_y = bx[len(bx) // 2:], by[len(by) // 2:]
        np.testing.assert_array_equal(loc.locate(off_x, off_y), _shapely_answer(polys, ids, off_x, off_y))
        assert counter.points < 0.01 * len(off_x)


def test_invalid_and_non_polygon_geometries_match_shapely() -> None:
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # self-intersecting: the even-odd rule need not hold
    overlapping_parts = MultiPolygon([box(3, 0, 5, 2), box(4, 1, 6, 3)])  # invalid multipolygon
    line = shapely.LineString([(0, 3), (6, 3)])
    polys = [bowtie, overlapping_parts, line, box(1, 1, 5, 4)]
    ids = np.array([4, 3, 1, 2])
    rng = np.random.default_rng(13)
    bx, by = _boundary_points([bowtie, overlapping_parts, box(1, 1, 5, 4)], 1000, rng, jitter=1e-9)
    x = np.concatenate([bx, rng.uniform(-1, 7, 5000), np.linspace(0, 6, 61)])
    y = np.concatenate([by, rng.uniform(-1, 5, 5000), np.full(61, 3.0)])
    np.testing.assert_array_equal(PointLocator(polys, ids).locate(x, y), _shapely_answer(polys, ids, x, y))


def test_empty_and_missing_geometries_contain_nothing() -> None:
    polys = [box(0, 0, 1, 1), Polygon(), None, box(1, 0, 2, 1)]
    loc = PointLocator(polys, [5, 1, 2, 6])
    assert loc.locate(np.array([0.5, 1.0, 1.5, 3.0]), np.array([0.5, 0.5, 0.5, 0.5])).tolist() == [5, 5, 6, -1]


def test_threads_and_chunks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locate_module, "CHUNK", 997)  # many steps, and a split that falls mid-step
    polys, ids = _irregular_units(seed=14)
    loc = PointLocator(polys, ids)
    rng = np.random.default_rng(14)
    bx, by = _boundary_points(polys, 2000, rng, jitter=1e-6)
    x = np.concatenate([bx, rng.uniform(-50, 1050, 8000), [np.nan]])
    y = np.concatenate([by, rng.uniform(-50, 850, 8000), [1.0]])
    one = loc.locate(x, y)
    np.testing.assert_array_equal(one, loc.locate(x, y, threads=2))
    np.testing.assert_array_equal(one, loc.locate(x, y, threads=3))
    np.testing.assert_array_equal(one, _shapely_answer(polys, ids, x, y))
    with pytest.raises(InputError, match="`threads` must be >= 1"):
        loc.locate(x, y, threads=0)


def test_raster_memory_is_reported() -> None:
    polys, ids = _irregular_units(seed=15)
    assert PointLocator(polys, ids, max_cells=0).raster_nbytes == 0
    small = PointLocator(polys, ids, max_cells=10_000)
    large = PointLocator(polys, ids, max_cells=100_000)
    assert 10_000 * 4 <= small.raster_nbytes < large.raster_nbytes
    assert large.near_boundary_share() < small.near_boundary_share()


def test_edges_shared_either_way_round_and_on_the_same_side_match_shapely(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rings wound either way (GIS files mix them), and two units sharing an edge from the same side (overlap)."""
    geoms, ids = _lon_lat_lattice(6)
    # A triangle inside unit 0 on its south edge, on the district's rim: that edge has two units, both north of it.
    south_west, south_east = shapely.get_coordinates(geoms[0])[[3, 4]]
    centre = shapely.get_coordinates(geoms[0].centroid)[0]
    wedge = Polygon([south_west, south_east, centre])
    rng = np.random.default_rng(16)
    flip = rng.random(len(geoms)) < 0.5
    geoms = [shapely.reverse(g) if f else g for g, f in zip(geoms, flip, strict=True)]
    polys, all_ids = [*geoms, wedge], np.append(ids + 1, 1)  # the wedge has the lowest id
    loc = PointLocator(polys, all_ids)
    bx, by = _boundary_points(polys, 20_000, rng, jitter=1e-10)
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(polys, dtype=object))
    x = np.concatenate([bx, rng.uniform(minx, maxx, 20_000)])
    y = np.concatenate([by, rng.uniform(miny, maxy, 20_000)])
    np.testing.assert_array_equal(loc.locate(x, y), _shapely_answer(polys, all_ids, x, y))
    counter = _Counting(monkeypatch)
    off_x, off_y = bx[len(bx) // 2:], by[len(by) // 2:]
    np.testing.assert_array_equal(loc.locate(off_x, off_y), _shapely_answer(polys, all_ids, off_x, off_y))
    assert counter.points < 0.01 * len(off_x)
