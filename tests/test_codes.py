"""Grid codes: 15 digits, unique, numbered in reading order inside each community."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from gridgov.codes import assign_grid_codes, reading_order
from gridgov.errors import InputError

UTM = "EPSG:32651"
X0, Y0 = 350_000.0, 3_455_000.0
COMM_A, COMM_B = "990100001001", "990100001002"


def _hand_layout() -> gpd.GeoDataFrame:
    """Two communities drawn by hand (metres from X0, Y0)::

        community A (x 0–400)                 community B (x 500–900)
        y 200–300:  a1  a2  a3(10 m lower)    b1 (500–700, 150–300)   b2 (700–900, 160–300)
        y 0–200:    a4 (0–150)  a5 (150–400)  b3 (500–900, 0–150)

    Reading order in A: a1 a2 a3 (one row: a3 sits only 10 m lower), then a4 a5; in B: b1 b2, then b3.
    """
    shapes = {
        "a1": (0, 200, 100, 300), "a2": (100, 200, 200, 300), "a3": (200, 190, 400, 290),
        "a4": (0, 0, 150, 200), "a5": (150, 0, 400, 190),
        "b1": (500, 150, 700, 300), "b2": (700, 160, 900, 300), "b3": (500, 0, 900, 150),
    }
    return gpd.GeoDataFrame(
        {"name": list(shapes), "community_code": [COMM_A if k[0] == "a" else COMM_B for k in shapes]},
        geometry=[box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2) for x1, y1, x2, y2 in shapes.values()],
        crs=UTM,
    )


EXPECTED = {
    "a1": COMM_A + "001", "a2": COMM_A + "002", "a3": COMM_A + "003", "a4": COMM_A + "004", "a5": COMM_A + "005",
    "b1": COMM_B + "001", "b2": COMM_B + "002", "b3": COMM_B + "003",
}


def test_codes_follow_reading_order_inside_each_community() -> None:
    grids = _hand_layout()
    codes = assign_grid_codes(grids)
    assert codes.index.equals(grids.index)
    assert dict(zip(grids["name"], codes, strict=True)) == EXPECTED
    assert codes.str.fullmatch(r"\d{15}").all()
    assert codes.is_unique
    assert (codes.str[:12] == grids["community_code"]).all()


def test_codes_do_not_depend_on_row_order_or_crs() -> None:
    grids = _hand_layout()
    shuffled = grids.iloc[np.random.default_rng(3).permutation(len(grids))]
    again = assign_grid_codes(shuffled)
    assert dict(zip(shuffled["name"], again, strict=True)) == EXPECTED
    in_lonlat = grids.to_crs(4326)
    assert dict(zip(in_lonlat["name"], assign_grid_codes(in_lonlat), strict=True)) == EXPECTED


def test_codes_are_stable_on_rerun() -> None:
    grids = _hand_layout()
    pd.testing.assert_series_equal(assign_grid_codes(grids), assign_grid_codes(grids.copy()))


def test_custom_community_column() -> None:
    grids = _hand_layout().rename(columns={"community_code": "comm"})
    assert assign_grid_codes(grids, community_col="comm").tolist() == list(EXPECTED.values())


@pytest.mark.parametrize("bad", ["99010000100", "99010000100A", "9901000010011", None])
def test_community_code_must_have_12_digits(bad: str | None) -> None:
    grids = _hand_layout()
    grids.loc[0, "community_code"] = bad
    with pytest.raises(InputError, match="12 digits") as err:
        assign_grid_codes(grids)
    assert err.value.field == "community_code"


def test_more_than_999_grids_in_a_community_is_refused() -> None:
    n = 1000
    grids = gpd.GeoDataFrame({"community_code": [COMM_A] * n},
                             geometry=[box(X0 + i * 10, Y0, X0 + i * 10 + 10, Y0 + 10) for i in range(n)], crs=UTM)
    with pytest.raises(InputError, match="999"):
        assign_grid_codes(grids)
    assert assign_grid_codes(grids.iloc[:999]).str[-3:].tolist() == [f"{i:03d}" for i in range(1, 1000)]


def test_missing_crs_or_column_is_refused() -> None:
    grids = _hand_layout()
    with pytest.raises(InputError, match="CRS"):
        assign_grid_codes(grids.set_crs(None, allow_override=True))
    with pytest.raises(InputError) as err:
        assign_grid_codes(grids.drop(columns="community_code"))
    assert err.value.field == "community_code"


def test_reading_order_rows_start_at_the_northernmost_point() -> None:
    # Three points side by side within one band height, then one far south; then a band of one.
    x = [30.0, 10.0, 20.0, 0.0]
    y = [100.0, 98.0, 96.0, 0.0]
    assert reading_order(x, y, band=5.0).tolist() == [1, 2, 0, 3]
    assert reading_order(x, y, band=3.0).tolist() == [1, 0, 2, 3]
    with pytest.raises(InputError):
        reading_order(x, y, band=0.0)
