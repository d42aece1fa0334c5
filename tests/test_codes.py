"""Grid codes: 15 digits, unique, numbered in reading order inside each community."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from gridgov.codes import assign_grid_codes, code_mapping, reading_order, reissue_codes
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


# -- re-issue: old → new mapping and kept codes ---------------------------------------------------------------------
#
# Twelve 100 m unit squares, ids row by row from the north-west::
#
#     1  2 |  3  4        old grids: G1 = 1 2 5 6  → …001    G2 = 3 4 7 8 → …002
#     5  6 |  7  8                   G3 = 9 10    → …003    G4 = 11 12   → …004
#     -----+------
#     9 10 | 11 12

UNITS = list(range(1, 13))


def _unit_box(unit: int) -> object:
    row, col = divmod(unit - 1, 4)
    return box(X0 + col * 100, Y0 + (2 - row) * 100, X0 + (col + 1) * 100, Y0 + (3 - row) * 100)


def _layout(unit_grid: dict[int, object]) -> pd.DataFrame:
    return pd.DataFrame({"unit_id": list(unit_grid), "grid_code": list(unit_grid.values())})


def _grids(unit_grid: dict[int, object], community: dict[object, str] | None = None) -> gpd.GeoDataFrame:
    """Dissolved grid geometries labelled like :meth:`GridLayout.dissolve` (a ``grid`` column)."""
    units = gpd.GeoDataFrame({"grid": list(unit_grid.values())}, geometry=[_unit_box(u) for u in unit_grid], crs=UTM)
    out = units.dissolve(by="grid").reset_index()
    out["community_code"] = [(community or {}).get(g, COMM_A) for g in out["grid"]]
    return out


OLD_NAMES = {1: "G1", 2: "G1", 5: "G1", 6: "G1", 3: "G2", 4: "G2", 7: "G2", 8: "G2",
             9: "G3", 10: "G3", 11: "G4", 12: "G4"}
OLD_CODE = {"G1": COMM_A + "001", "G2": COMM_A + "002", "G3": COMM_A + "003", "G4": COMM_A + "004"}
OLD = _layout({u: OLD_CODE[OLD_NAMES[u]] for u in UNITS})
TENS = pd.Series(10, index=UNITS)


def test_old_fixture_codes_come_from_assign_grid_codes() -> None:
    grids = _grids(OLD_NAMES)
    assert dict(zip(grids["grid"], assign_grid_codes(grids), strict=True)) == OLD_CODE


def test_unchanged_layout_keeps_every_code_with_full_shares() -> None:
    new_names = {u: f"p{OLD_NAMES[u]}" for u in UNITS}
    mapping = code_mapping(OLD, _layout(new_names), households=TENS)
    assert list(mapping.columns) == ["new_grid", "old_grid", "units", "households", "unit_share", "household_share"]
    assert mapping["new_grid"].tolist() == ["pG1", "pG2", "pG3", "pG4"]
    assert mapping["old_grid"].tolist() == list(OLD_CODE.values())
    assert mapping["units"].tolist() == [4, 4, 2, 2]
    assert (mapping["unit_share"] == 1.0).all()
    assert (mapping["household_share"] == 1.0).all()
    codes = reissue_codes(OLD, _layout(new_names), _grids(new_names), households=TENS)
    assert codes.to_dict() == {f"p{k}": v for k, v in OLD_CODE.items()}
    # Re-issuing the old layout with its own codes as labels is the identity.
    again = reissue_codes(OLD, OLD, _grids(dict(zip(OLD["unit_id"], OLD["grid_code"], strict=True))), households=TENS)
    assert (again.index == again.to_numpy()).all()


def test_split_keeps_the_code_on_the_part_with_90_percent() -> None:
    households = TENS.copy()
    households[[1, 2, 5]] = 30  # G1 = 90 + 10: units 1 2 5 hold 90 % of it
    new_names = {**OLD_NAMES, 6: "G1b"}
    mapping = code_mapping(OLD, _layout(new_names), households=households)
    assert mapping.set_index("new_grid").loc["G1b", "old_grid"] == OLD_CODE["G1"]
    codes = reissue_codes(OLD, _layout(new_names), _grids(new_names), households=households)
    assert codes.to_dict() == {**OLD_CODE, "G1b": COMM_A + "005"}


def test_even_split_keeps_neither_code_and_numbers_halves_in_reading_order() -> None:
    new_names = {**OLD_NAMES, 3: "west", 7: "west", 4: "east", 8: "east"}
    codes = reissue_codes(OLD, _layout(new_names), _grids(new_names), households=TENS)
    assert codes["west"] == COMM_A + "005"
    assert codes["east"] == COMM_A + "006"
    assert OLD_CODE["G2"] not in codes.to_numpy()
    assert {codes[g] for g in ("G1", "G3", "G4")} == {OLD_CODE[g] for g in ("G1", "G3", "G4")}


def test_merge_gets_a_new_code() -> None:
    new_names = {**OLD_NAMES, 11: "G3", 12: "G3"}
    new_names = {u: ("south" if g == "G3" else g) for u, g in new_names.items()}
    mapping = code_mapping(OLD, _layout(new_names), households=TENS)
    south = mapping[mapping["new_grid"] == "south"]
    assert south["old_grid"].tolist() == [OLD_CODE["G3"], OLD_CODE["G4"]]
    assert south["household_share"].tolist() == [0.5, 0.5]
    codes = reissue_codes(OLD, _layout(new_names), _grids(new_names), households=TENS)
    assert codes.to_dict() == {"G1": OLD_CODE["G1"], "G2": OLD_CODE["G2"], "south": COMM_A + "005"}


def test_small_gain_keeps_the_code_but_large_one_does_not() -> None:
    households = TENS.copy()
    households[[9, 10, 12]] = 100
    households[11] = 5  # G3 takes unit 11: 5 of 205 households are new to it
    new_names = {**OLD_NAMES, 11: "G3"}
    codes = reissue_codes(OLD, _layout(new_names), _grids(new_names), households=households)
    # G3 keeps its code; G4 kept 100 of 105 households (95 %), all of its own.
    assert codes.to_dict() == OLD_CODE
    strict = reissue_codes(OLD, _layout(new_names), _grids(new_names), households=households, keep_threshold=0.99)
    # At 99 % neither passes (G3: 200 of 205 households its own; G4: 100 of 105 stay); fresh codes in reading order.
    assert strict.to_dict() == {"G1": OLD_CODE["G1"], "G2": OLD_CODE["G2"], "G3": COMM_A + "005",
                                "G4": COMM_A + "006"}


def test_grid_moved_to_another_community_gets_a_code_there() -> None:
    new_names = {u: f"p{OLD_NAMES[u]}" for u in UNITS}
    codes = reissue_codes(OLD, _layout(new_names), _grids(new_names, {"pG4": COMM_B}), households=TENS)
    assert codes["pG4"] == COMM_B + "001"
    assert codes.drop("pG4").tolist() == [OLD_CODE[g] for g in ("G1", "G2", "G3")]


def test_grids_without_households_are_judged_by_units() -> None:
    zero = pd.Series(0, index=UNITS)
    new_names = {**OLD_NAMES, 9: "G3", 10: "G3b"}
    mapping = code_mapping(OLD, _layout(new_names), households=zero)
    assert (mapping["household_share"] == mapping["unit_share"]).all()
    assert mapping.groupby("new_grid")["household_share"].sum().eq(1.0).all()
    codes = reissue_codes(OLD, _layout(OLD_NAMES), _grids(OLD_NAMES), households=zero)
    assert codes.to_dict() == OLD_CODE
    split = reissue_codes(OLD, _layout(new_names), _grids(new_names), households=zero)
    assert split["G3"] == COMM_A + "005" and split["G3b"] == COMM_A + "006"


def test_incidents_add_their_own_shares() -> None:
    new_names = {**OLD_NAMES, 6: "G2"}
    incidents = pd.Series({6: 3, 7: 1})  # units not listed have none
    mapping = code_mapping(OLD, _layout(new_names), households=TENS, incidents=incidents)
    g2 = mapping[mapping["new_grid"] == "G2"].set_index("old_grid")
    assert g2["incidents"].to_dict() == {OLD_CODE["G1"]: 3, OLD_CODE["G2"]: 1}
    assert g2["incident_share"].to_dict() == {OLD_CODE["G1"]: 0.75, OLD_CODE["G2"]: 0.25}
    g3 = mapping[mapping["new_grid"] == "G3"]
    assert g3["incident_share"].tolist() == [1.0]


def test_reissue_is_deterministic_whatever_the_row_order() -> None:
    new_names = {**OLD_NAMES, 3: "west", 7: "west", 4: "east", 8: "east", 6: "G1b"}
    first = reissue_codes(OLD, _layout(new_names), _grids(new_names), households=TENS)
    rng = np.random.default_rng(7)
    new = _layout(new_names)
    grids = _grids(new_names)
    shuffled = reissue_codes(OLD.iloc[rng.permutation(len(OLD))], new.iloc[rng.permutation(len(new))],
                             grids.iloc[rng.permutation(len(grids))], households=TENS.sample(frac=1, random_state=1))
    pd.testing.assert_series_equal(first.sort_index(), shuffled.sort_index())
    pd.testing.assert_series_equal(first, reissue_codes(OLD, _layout(new_names), _grids(new_names), households=TENS))
    assert first.is_unique and first.str.fullmatch(r"\d{15}").all()


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(InputError) as err:
        code_mapping(OLD, _layout({u: "x" for u in UNITS[:-1]}), households=TENS)
    assert err.value.field == "new"
    with pytest.raises(InputError) as err:
        code_mapping(OLD, _layout({**{u: "x" for u in UNITS}, 99: "x"}), households=TENS)
    assert err.value.field == "new"
    with pytest.raises(InputError, match="missing") as err:
        code_mapping(OLD, OLD, households=TENS.drop(5))
    assert err.value.field == "households"
    with pytest.raises(InputError) as err:
        code_mapping(OLD.rename(columns={"grid_code": "code"}), OLD, households=TENS)
    assert err.value.field == "old"
    new_names = {u: f"p{OLD_NAMES[u]}" for u in UNITS}
    with pytest.raises(InputError) as err:
        reissue_codes(OLD, _layout(new_names), _grids(new_names), households=TENS, keep_threshold=0.5)
    assert err.value.field == "keep_threshold"
    with pytest.raises(InputError) as err:
        reissue_codes(OLD, _layout(new_names), _grids(new_names).iloc[:3], households=TENS)
    assert err.value.field == "grids"
    with pytest.raises(InputError) as err:
        reissue_codes(_layout(OLD_NAMES), _layout(new_names), _grids(new_names), households=TENS)
    assert err.value.field == "old"
    with pytest.raises(InputError) as err:
        reissue_codes(OLD, _layout(new_names), _grids(new_names), households=TENS.drop(1))
    assert err.value.field == "households"


LATTICE = list(range(1, 17))  # 4 x 4 squares, ids as above with four columns


def _lattice_box(unit: int) -> object:
    row, col = divmod(unit - 1, 4)
    return box(X0 + col * 100, Y0 - row * 100, X0 + (col + 1) * 100, Y0 - (row - 1) * 100)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old_labels=st.lists(st.integers(1, 5), min_size=16, max_size=16),
       new_labels=st.lists(st.integers(0, 5), min_size=16, max_size=16),
       households=st.lists(st.integers(0, 50), min_size=16, max_size=16),
       threshold=st.sampled_from([0.6, 0.9, 1.0]))
def test_shares_sum_to_one_and_codes_are_unique_on_random_partitions(
        old_labels: list[int], new_labels: list[int], households: list[int], threshold: float) -> None:
    old = _layout({u: f"{COMM_A}{g:03d}" for u, g in zip(LATTICE, old_labels, strict=True)})
    new = _layout(dict(zip(LATTICE, new_labels, strict=True)))
    hh = pd.Series(households, index=LATTICE)
    mapping = code_mapping(old, new, households=hh)
    sums = mapping.groupby("new_grid")[["unit_share", "household_share"]].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0)
    assert mapping["units"].sum() == 16 and mapping["households"].sum() == hh.sum()
    assert not mapping.duplicated(["new_grid", "old_grid"]).any()

    units = gpd.GeoDataFrame({"grid": new_labels}, geometry=[_lattice_box(u) for u in LATTICE], crs=UTM)
    grids = units.dissolve(by="grid").reset_index().assign(community_code=COMM_A)
    codes = reissue_codes(old, new, grids, households=hh, keep_threshold=threshold)
    assert codes.is_unique and codes.str.fullmatch(r"\d{15}").all()
    assert sorted(codes.index) == sorted(set(new_labels))
    kept = codes[codes.isin(old["grid_code"])]
    for label, code in kept.items():
        pair = mapping[(mapping["new_grid"] == label) & (mapping["old_grid"] == code)]
        assert pair["household_share"].iloc[0] >= threshold - 1e-9
    assert codes.to_dict() == reissue_codes(old, new, grids, households=hh, keep_threshold=threshold).to_dict()
