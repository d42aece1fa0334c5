"""Unit grids: building, attributes, adjacency (gridgov.units)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

from gridgov.errors import InputError
from gridgov.units import (
    UnitGraph,
    adjacency,
    build_units,
    demand_weights,
    from_polygons,
    incident_hours,
    interpolate_population,
)

UTM = "EPSG:32651"
X0, Y0 = 350_000.0, 3_455_000.0


def _district(geom: Polygon, crs: str = UTM) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": ["990100"]}, geometry=[geom], crs=crs)


def _metric(units: gpd.GeoDataFrame) -> gpd.GeoSeries:
    return units.to_crs(units.attrs["metric_crs"]).geometry


def _star(seed: int, radius: float, n: int = 24) -> Polygon:
    rng = np.random.default_rng(seed)
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * rng.uniform(0.55, 1.0, n)
    return Polygon(np.c_[X0 + r * np.cos(ang), Y0 + r * np.sin(ang)])


# --------------------------------------------------------------------------------------------------------------------
# build_units
# --------------------------------------------------------------------------------------------------------------------

def test_squares_on_a_rectangle_are_whole_cells_numbered_north_to_south() -> None:
    units = build_units(_district(box(X0, Y0, X0 + 300, Y0 + 200)))
    assert units.crs.to_epsg() == 4326
    assert units.attrs["metric_crs"] == UTM
    assert list(units.columns) == ["unit_id", "community_code", "land_use", "area_m2", "households", "population",
                                   "geometry"]
    assert units.unit_id.tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(units.area_m2, 10_000.0)
    cent = _metric(units).centroid
    # Row from the north first, west to east inside a row.
    assert cent.y.iloc[0] > cent.y.iloc[3] and cent.x.iloc[0] < cent.x.iloc[1] < cent.x.iloc[2]
    assert (units.community_code == "990100").all()
    assert (units.households == 0).all() and (units.land_use == "residential").all()


def test_lon_lat_district_gets_its_utm_zone() -> None:
    district = _district(box(121.40, 31.20, 121.41, 31.21), crs="EPSG:4326")
    units = build_units(district, size=200)
    assert units.attrs["metric_crs"] == "EPSG:32651"
    area = district.to_crs(32651).area.iloc[0]
    assert units.area_m2.sum() == pytest.approx(area, rel=1e-6)


def test_missing_crs_and_bad_arguments_are_refused() -> None:
    with pytest.raises(InputError, match="no CRS"):
        build_units(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]))
    with pytest.raises(InputError, match="size"):
        build_units(_district(box(X0, Y0, X0 + 100, Y0 + 100)), size=-5)
    with pytest.raises(InputError, match="shape"):
        build_units(_district(box(X0, Y0, X0 + 100, Y0 + 100)), shape="triangle")  # type: ignore[arg-type]


def test_hexagons_have_the_area_of_a_square_cell() -> None:
    units = build_units(_district(box(X0, Y0, X0 + 1000, Y0 + 1000)), shape="hex")
    assert units.area_m2.sum() == pytest.approx(1e6, rel=1e-6)
    full = units.area_m2[(units.area_m2 > 9_990) & (units.area_m2 < 10_010)]  # whole cells, not merged ones
    assert len(full) > 50
    np.testing.assert_allclose(full, 10_000.0, rtol=1e-3)
    graph = adjacency(units)
    assert np.bincount(np.diff(graph.indptr)).argmax() == 6  # inner hexagons have six neighbours


def test_slivers_join_a_neighbour_and_pieces_of_one_cell_become_separate_units() -> None:
    # A 300 × 100 strip plus a 5 m sliver to the north: the sliver is 5 % of a cell and must be merged.
    strip = shapely.union_all([box(X0, Y0, X0 + 300, Y0 + 100), box(X0, Y0 + 100, X0 + 300, Y0 + 105)])
    units = build_units(_district(strip))
    assert len(units) == 3
    assert units.area_m2.sum() == pytest.approx(31_500.0)
    # A river 20 m wide cuts the middle cell in two: each bank keeps its own unit.
    river = box(X0 + 140, Y0 - 1, X0 + 160, Y0 + 101)
    banks = shapely.difference(box(X0, Y0, X0 + 300, Y0 + 100), river)
    units = build_units(_district(banks), min_area_share=0.1)
    graph = adjacency(units)
    assert len(units) == 4
    assert [len(c) for c in graph.components()] == [2, 2]


def test_communities_by_majority_and_split_at_borders() -> None:
    district = _district(box(X0, Y0, X0 + 400, Y0 + 100))
    comms = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[box(X0, Y0, X0 + 230, Y0 + 100),
                                                              box(X0 + 230, Y0, X0 + 400, Y0 + 100)], crs=UTM)
    units = build_units(district, communities=comms)
    assert units.community_code.tolist() == ["A", "A", "B", "B"]  # the third cell is 70 % in B
    split = build_units(district, communities=comms, split_at_communities=True)
    # The third cell is cut at 230 m: 30 m (30 %) on the A side and 70 m on the B side.
    assert len(split) == 5
    geoms = _metric(split)
    for code, comm in zip(comms.code, comms.geometry, strict=True):
        inside = geoms[split.community_code == code]
        assert shapely.union_all(inside.values).symmetric_difference(comm).area < 1e-3


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shape=st.sampled_from(["square", "hex"]), share=st.floats(0.0, 0.5))
def test_units_cover_the_district_exactly_once(seed: int, shape: str, share: float) -> None:
    district = _star(seed, 900.0)
    units = build_units(_district(district), shape=shape, min_area_share=share)  # type: ignore[arg-type]
    geoms = _metric(units)
    union = shapely.union_all(geoms.values, grid_size=1e-3)
    # The union equals the district up to the millimetre snapping of cut edges and the lon/lat round trip of the
    # stored units: at most a millimetre-wide band along the boundary.
    assert union.symmetric_difference(district).area < max(1.0, 1e-3 * district.length)
    assert geoms.area.sum() == pytest.approx(district.area, abs=1.0)  # no overlaps
    assert units.unit_id.is_unique
    graph = adjacency(units)
    rows = np.repeat(np.arange(graph.n_units), np.diff(graph.indptr))
    pairs = set(zip(rows.tolist(), graph.indices.tolist(), strict=True))
    assert all((b, a) in pairs for a, b in pairs)  # symmetric


# --------------------------------------------------------------------------------------------------------------------
# from_polygons
# --------------------------------------------------------------------------------------------------------------------

def test_user_polygons_keep_ids_merge_small_ones_and_refuse_overlaps() -> None:
    blocks = gpd.GeoDataFrame(
        {"block": ["b1", "b2", "b3"], "land_use": ["residential", "commercial", "residential"]},
        geometry=[box(X0, Y0, X0 + 200, Y0 + 150), box(X0 + 200, Y0, X0 + 400, Y0 + 150),
                  box(X0 + 400, Y0, X0 + 405, Y0 + 10)],
        crs=UTM,
    )
    units = from_polygons(blocks, id_column="block", min_area_m2=100)
    assert units.source_id.tolist() == ["b1", "b2"]
    assert units.land_use.tolist() == ["residential", "commercial"]
    assert units.area_m2.sum() == pytest.approx(60_050.0)
    overlapping = blocks.assign(geometry=[box(X0, Y0, X0 + 200, Y0 + 150), box(X0 + 150, Y0, X0 + 400, Y0 + 150),
                                          box(X0 + 400, Y0, X0 + 405, Y0 + 10)])
    with pytest.raises(InputError, match="b1 and b2 overlap by 7500 m²"):
        from_polygons(overlapping, id_column="block")


def test_user_polygons_clipped_to_the_district_report_bare_ground() -> None:
    blocks = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + 200, Y0 + 100)], crs=UTM)
    units = from_polygons(blocks, district=_district(box(X0, Y0, X0 + 300, Y0 + 100)))
    assert units.attrs["uncovered_m2"] == pytest.approx(10_000.0)


# --------------------------------------------------------------------------------------------------------------------
# attributes
# --------------------------------------------------------------------------------------------------------------------

def test_population_by_areal_weighting_and_points() -> None:
    units = build_units(_district(box(X0, Y0, X0 + 300, Y0 + 100)))
    compounds = gpd.GeoDataFrame({"households": [301]}, geometry=[box(X0 + 50, Y0, X0 + 200, Y0 + 100)], crs=UTM)
    out = interpolate_population(units, compounds, column="households")
    assert out.households.tolist() == [100, 201, 0] or out.households.tolist() == [101, 200, 0]
    assert out.households.sum() == 301
    buildings = gpd.GeoDataFrame({"residents": [10.5, 4.0]},
                                 geometry=gpd.points_from_xy([X0 + 250, X0 + 260], [Y0 + 50, Y0 + 50]), crs=UTM)
    out = interpolate_population(units.to_crs(4326), buildings.to_crs(4326), column="residents", into="population")
    assert out.population.tolist() == [0, 0, 14]  # integer column: rounded keeping the total
    with pytest.raises(InputError, match="not a column"):
        interpolate_population(units, compounds, column="people")


def test_incident_hours_and_demand_weights() -> None:
    cats = pd.DataFrame({"code": ["a", "b"], "handling_minutes": [60.0, 30.0]})
    inc = pd.DataFrame({
        "unit_id": [1, 1, 2, 2, 3],
        "category_code": ["a", "b", "b", "a", "a"],
        "reported_at": pd.to_datetime(["2026-06-01", "2026-06-02", "2026-06-03", "2026-05-01", "2026-06-04"]),
        "status": ["closed", "closed", "closed", "closed", "cancelled"],
    })
    hours = incident_hours(inc, cats, start="2026-06-01", end="2026-07-01")
    assert hours.to_dict() == {1: 1.5, 2: 0.5}
    with pytest.raises(InputError, match="unknown category"):
        incident_hours(inc.assign(category_code="zzz"), cats)
    units = pd.DataFrame({"unit_id": [1, 2, 3], "households": [100, 0, 40], "area_m2": [1e4, 1e4, 2e4],
                          "land_use": ["residential", "commercial", "park"]})
    demand = demand_weights(units, incident_hours=hours, weeks=0.5, hours_per_household=0.05, hours_per_km2=10,
                            factors={"land_use": {"commercial": 2.0}})
    np.testing.assert_allclose(demand, [3 + 5 + 0.1, (1 + 0.1) * 2, 2 + 0.2])
    with pytest.raises(InputError, match="weeks"):
        demand_weights(units, weeks=0)


def test_stored_demand_spreads_incident_hours_over_the_history_it_has(tiny_store) -> None:
    """With less than a year of reports, hours per week are counted over the weeks that have reports: a store with
    ten weeks of history must not look 52/10 times quieter than it is."""
    from gridgov import regrid

    weights = regrid.unit_weights(tiny_store).set_index("unit_id")
    minutes = tiny_store.categories().set_index("code")["handling_minutes"]
    weeks = 69 / 7  # first report 2026-04-01 10:00, last 2026-06-09 10:00
    street_light_hours = 2 * minutes["street_light"] / 60  # u3: id4 and id5, no households
    assert weights.loc[3, "demand"] == pytest.approx(street_light_hours / weeks, rel=1e-6)


# --------------------------------------------------------------------------------------------------------------------
# adjacency
# --------------------------------------------------------------------------------------------------------------------

def test_rook_not_queen_with_shared_lengths() -> None:
    boxes = [(0, 0, 100, 100), (100, 0, 200, 100), (200, 100, 300, 200), (0, 100, 50, 200)]
    units = gpd.GeoDataFrame({"unit_id": [10, 20, 30, 40]},
                             geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes], crs=UTM)
    graph = adjacency(units)
    assert graph.neighbours(10).tolist() == [20, 40]
    assert graph.neighbours(30).tolist() == []  # corner contact only
    edges = graph.edges()
    assert edges.to_dict("list") == {"unit_a": [10, 10], "unit_b": [20, 40], "shared_m": [100.0, 50.0]}
    linked = graph.with_links([(20, 30)])
    assert linked.neighbours(30).tolist() == [20]
    assert len(graph.components()) == 2 and len(linked.components()) == 1
    back = UnitGraph.from_frames(linked.nodes(), linked.edges(), crs=linked.crs)
    assert back.edges().equals(linked.edges())
    info = graph.describe_components()
    assert info.loc[1, "unit_ids"] == [30] and info.loc[1, "nearest_other"] == 20


def test_adjacency_matches_geometric_intersection_on_clipped_hexagons() -> None:
    units = build_units(_district(_star(7, 800.0)), shape="hex")
    graph = adjacency(units)
    geoms = _metric(units).values
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    length = shapely.length(shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b]),
                                                 grid_size=1e-3))
    ok = length > 1.0
    expected = pd.DataFrame({"unit_a": graph.unit_ids[a[ok]], "unit_b": graph.unit_ids[b[ok]],
                             "shared_m": length[ok]}).sort_values(["unit_a", "unit_b"]).reset_index(drop=True)
    got = graph.edges().sort_values(["unit_a", "unit_b"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["unit_a", "unit_b"]], expected[["unit_a", "unit_b"]])
    np.testing.assert_allclose(got.shared_m, expected.shared_m, atol=1e-3)


def test_adjacency_with_a_gap_tolerance() -> None:
    units = gpd.GeoDataFrame({"unit_id": [1, 2]}, geometry=[box(X0, Y0, X0 + 100, Y0 + 100),
                                                             box(X0 + 100.5, Y0, X0 + 200, Y0 + 100)], crs=UTM)
    assert adjacency(units).n_edges == 0
    graph = adjacency(units, gap=1.0)
    assert graph.n_edges == 1 and graph.edges().shared_m.iloc[0] == pytest.approx(100.0, abs=2.0)


def test_duplicate_unit_ids_are_refused() -> None:
    units = gpd.GeoDataFrame({"unit_id": [1, 1]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=UTM)
    with pytest.raises(InputError, match="more than once"):
        adjacency(units)
