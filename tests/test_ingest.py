"""Validated incident import: reject reasons, mapping, formats, CRS, idempotency, atomicity, CLI, LA 311."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point

import gridgov.ingest as ingest_mod
from gridgov.errors import InputError
from gridgov.incidents import load_categories
from gridgov.ingest import REASONS, ingest_file, ingest_frame, make_rules, validate
from gridgov.store import Store
from tests.fixtures import UTM, unit_box, unit_center_lonlat

HEADER = ["external_id", "reported_at", "category", "lon", "lat", "status", "closed_at", "source"]
FAR = (116.40, 39.90)  # Beijing: nowhere near the tiny district


def _row(ext: str | None, unit: int | None = 1, *, reported: str = "2026-06-10 10:00",
         category: str = "exposed_garbage", status: str = "", closed: str = "", source: str = "",
         lonlat: tuple[object, object] | None = None) -> list[object]:
    lon, lat = lonlat if lonlat is not None else unit_center_lonlat(unit) if unit else ("", "")
    return [ext or "", reported, category, lon, lat, status, closed, source]


def _write_csv(path: Path, rows: list[list[object]], header: list[str] = HEADER, **kwargs: str) -> Path:
    with path.open("w", newline="", encoding=kwargs.get("encoding", "utf-8")) as fh:
        writer = csv.writer(fh, delimiter=kwargs.get("delimiter", ","))
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _counts(store: Store) -> dict[str, int]:
    return {t: int(store.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
            for t in ("incident", "reject", "import_batch")}


def _imported(store: Store, batch_id: int) -> pd.DataFrame:
    return store.df("SELECT * FROM incident WHERE batch_id = ? ORDER BY incident_id", [batch_id])


# ---------------------------------------------------------------------------------------------------------------
# Reject reasons and accepted rows
# ---------------------------------------------------------------------------------------------------------------
def test_every_reject_reason_is_stored_with_its_row_number(tiny_store: Store, tmp_path: Path) -> None:
    rows = [
        _row("A1", 1),                                                           # 1 accepted
        _row("A2", lonlat=("", 31.22)),                                          # 2 missing_coordinates
        _row("A3", lonlat=("east", 31.22)),                                      # 3 bad_coordinates
        _row("A4", 1, reported=""),                                              # 4 missing_reported_at
        _row("A5", 1, reported="yesterday"),                                     # 5 bad_reported_at
        _row("A6", 1, closed="2026-13-45 10:00"),                                # 6 bad_closed_at
        _row("A7", 1, closed="2026-06-10 09:00"),                                # 7 closed_before_reported
        _row("A8", 1, category=""),                                              # 8 missing_category
        _row("A9", 1, category="spaceship landing"),                             # 9 unknown_category
        _row("A10", 1, status="limbo"),                                          # 10 unknown_status
        _row("A11", 1, status="open", closed="2026-06-10 12:00"),                # 11 open_with_closed_at
        _row("A12", lonlat=FAR),                                                 # 12 outside_district
        _row("A1", 2),                                                           # 13 duplicate in the file
        _row("T1", 2, source="fixture"),                                         # 14 duplicate of a stored one
        _row("A15", 1, lonlat=(1000.0, 31.22)),                                  # 15 bad_coordinates (range)
    ]
    path = _write_csv(tmp_path / "bad.csv", rows)
    result = ingest_file(tiny_store, path)

    assert (result.rows_in, result.accepted, result.rejected, result.duplicates) == (15, 1, 14, 2)
    assert result.rows_in == result.accepted + result.rejected
    rejects = tiny_store.rejects(result.batch_id)
    got = dict(zip(rejects["row_no"], rejects["reason"], strict=True))
    assert got == {
        2: "missing_coordinates", 3: "bad_coordinates", 4: "missing_reported_at", 5: "bad_reported_at",
        6: "bad_closed_at", 7: "closed_before_reported", 8: "missing_category", 9: "unknown_category",
        10: "unknown_status", 11: "open_with_closed_at", 12: "outside_district", 13: "duplicate_external_id",
        14: "duplicate_external_id", 15: "bad_coordinates",
    }
    assert set(got.values()) == set(REASONS)
    assert result.rejected_by_reason["duplicate_external_id"] == 2
    fields = dict(zip(rejects["row_no"], rejects["field"], strict=True))
    assert fields[2] == "lon" and fields[5] == "reported_at" and fields[9] == "category"
    assert fields[12] == "lon,lat" and fields[13] == "external_id"
    # The raw source row is kept, values as they were in the file.
    raw5 = json.loads(rejects.loc[rejects["row_no"] == 5, "raw"].iloc[0])
    assert raw5["reported_at"] == "yesterday" and raw5["external_id"] == "A5"
    assert result.sample_rejects[0]["row_no"] == 2
    assert "row 5, field 'reported_at'" in result.summary()


def test_accepted_rows_get_unit_due_time_and_status(tiny_store: Store, tmp_path: Path) -> None:
    rows = [
        # Wednesday 10:00 + 4 working hours (exposed garbage) → 14:00 the same day.
        _row("B1", 3, reported="2026-06-10 10:00", category="exposed_garbage"),
        # Friday 16:00 + 8 working hours (noise) → 1 h on Friday, 7 h on Monday → Monday 16:00.
        _row("B2", 6, reported="2026-06-12 16:00", category="noise", closed="2026-06-15 09:30"),
        _row("B3", 8, reported="2026-06-12 16:00", category="noise", status="办结", closed="2026-06-13 10:00"),
        _row("B4", 2, category="noise", status="处置中"),
        _row("B5", 4, category="noise", status="In_Progress"),
        _row("B6", 5, category="noise", status="cancelled"),
    ]
    result = ingest_file(tiny_store, _write_csv(tmp_path / "ok.csv", rows))
    assert result.accepted == 6 and result.rejected == 0
    got = _imported(tiny_store, result.batch_id).set_index("external_id")
    assert got["unit_id"].to_dict() == {"B1": 3, "B2": 6, "B3": 8, "B4": 2, "B5": 4, "B6": 5}
    assert got.loc["B1", "due_at"] == datetime(2026, 6, 10, 14, 0)
    assert got.loc["B2", "due_at"] == datetime(2026, 6, 15, 16, 0)
    assert got["status"].to_dict() == {"B1": "reported", "B2": "closed", "B3": "closed", "B4": "dispatched",
                                       "B5": "dispatched", "B6": "cancelled"}
    assert got.loc["B2", "closed_at"] == datetime(2026, 6, 15, 9, 30)
    assert (got["source"] == "import").all()
    assert got["lon"].loc["B1"] == pytest.approx(unit_center_lonlat(3)[0])


def test_category_matched_on_code_chinese_and_english_names_ignoring_case(tiny_store: Store, tmp_path: Path) -> None:
    rows = [_row("C1", category="NOISE"), _row("C2", category="暴露垃圾"), _row("C3", category="  exposed GARBAGE "),
            _row("C4", category="Street  Light"), _row("C5", category="illegal_parking")]
    result = ingest_file(tiny_store, _write_csv(tmp_path / "cats.csv", rows))
    got = _imported(tiny_store, result.batch_id).set_index("external_id")["category_code"].to_dict()
    assert got == {"C1": "noise", "C2": "exposed_garbage", "C3": "exposed_garbage", "C4": "street_light",
                   "C5": "illegal_parking"}


def test_category_map_and_catch_all(tiny_store: Store, tmp_path: Path) -> None:
    cmap = tmp_path / "types.csv"
    cmap.write_text("# our city's hotline types\ncity_type,code\nBig Rubbish,bulky_waste\n夜间施工,噪声扰民\n",
                    encoding="utf-8")
    rows = [_row("D1", category="big rubbish"), _row("D2", category="夜间施工"), _row("D3", category="UFO sighting")]
    path = _write_csv(tmp_path / "city.csv", rows)

    strict = ingest_file(tiny_store, path, category_map=cmap, source="strict")
    assert (strict.accepted, strict.rejected_by_reason) == (2, {"unknown_category": 1})
    assert _imported(tiny_store, strict.batch_id)["category_code"].tolist() == ["bulky_waste", "noise"]

    path2 = _write_csv(tmp_path / "city2.csv", [*rows, _row("D4", category="")])
    lenient = ingest_file(tiny_store, path2, category_map=cmap, other="other", source="lenient")
    got = _imported(tiny_store, lenient.batch_id).set_index("external_id")["category_code"].to_dict()
    assert got == {"D1": "bulky_waste", "D2": "noise", "D3": "other"}
    # A row that names no category at all is not a "type we don't know": it stays rejected.
    assert lenient.rejected_by_reason == {"missing_category": 1}


def test_map_renames_source_columns(tiny_store: Store, tmp_path: Path) -> None:
    header = ["工单编号", "受理时间", "问题类型", "经度", "纬度", "地址", "联系电话"]
    lon, lat = unit_center_lonlat(7)
    rows = [["GD-1", "2026/06/10 10:05", "违章停车", lon, lat, "某路1号", "013800000000"]]
    path = _write_csv(tmp_path / "cn.csv", rows, header=header)
    mapping = ["工单编号=external_id", "受理时间=reported_at", "问题类型=category", "经度=lon", "纬度=lat",
               "地址=address", "联系电话=reporter_phone"]
    result = ingest_file(tiny_store, path, mapping=mapping, source="12345")
    got = _imported(tiny_store, result.batch_id).iloc[0]
    assert (got["external_id"], got["category_code"], got["unit_id"]) == ("GD-1", "illegal_parking", 7)
    assert got["reported_at"] == datetime(2026, 6, 10, 10, 5)
    assert got["reporter_phone"] == "013800000000"  # leading zero kept: CSV values stay text
    assert got["address"] == "某路1号" and got["source"] == "12345"


def test_csv_in_utm_with_crs_option(tiny_store: Store, tmp_path: Path) -> None:
    rows = []
    for i, unit in enumerate((1, 4, 8), start=1):
        c = unit_box(unit).centroid
        rows.append([f"U{i}", "2026-06-10 10:00", "noise", c.x, c.y, "", "", ""])
    path = _write_csv(tmp_path / "utm.csv", rows)
    result = ingest_file(tiny_store, path, crs="EPSG:32651")
    got = _imported(tiny_store, result.batch_id)
    assert got["unit_id"].tolist() == [1, 4, 8]
    assert got["lon"].iloc[0] == pytest.approx(unit_center_lonlat(1)[0], abs=1e-9)
    # Without --crs the metre values are not longitudes.
    again = ingest_file(tiny_store, _write_csv(tmp_path / "utm2.csv", [["V" + r[0], *r[1:]] for r in rows]))
    assert again.rejected_by_reason == {"bad_coordinates": 3}


def test_time_formats(tiny_store: Store, tmp_path: Path) -> None:
    values = {
        "F1": ("2026/06/10 10:00", datetime(2026, 6, 10, 10, 0)),
        "F2": ("2026-06-10T10:00:00+08:00", datetime(2026, 6, 10, 10, 0)),
        "F3": ("2026年6月10日 10:00", datetime(2026, 6, 10, 10, 0)),
        "F4": ("20260610100000", datetime(2026, 6, 10, 10, 0)),
        "F5": ("2026-06-10 10:00:00.25", datetime(2026, 6, 10, 10, 0, 0, 250000)),
        "F6": ("2026-6-9 8:05", datetime(2026, 6, 9, 8, 5)),
        "F7": ("2026-06-10", datetime(2026, 6, 10)),
        "F8": ("1781000000", None),  # epoch seconds are refused: UTC, and the district's zone is unknown
        "F9": ("2026-02-30 10:00", None),
    }
    rows = [_row(k, reported=v) for k, (v, _) in values.items()]
    result = ingest_file(tiny_store, _write_csv(tmp_path / "times.csv", rows))
    got = _imported(tiny_store, result.batch_id).set_index("external_id")["reported_at"].to_dict()
    assert got == {k: pd.Timestamp(t) for k, (_, t) in values.items() if t is not None}
    assert result.rejected_by_reason == {"bad_reported_at": 2}


_ISO_PARTS = st.tuples(st.integers(0, 2200), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
                       st.integers(0, 61), st.integers(0, 61))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(parts=st.lists(_ISO_PARTS, min_size=1, max_size=40), valid_share=st.floats(0, 1), seed=st.integers(0, 10**6))
def test_fast_iso_times_equal_the_strptime_path(tiny_store: Store, monkeypatch: pytest.MonkeyPatch,
                                                parts: list[tuple[int, ...]], valid_share: float, seed: int) -> None:
    """`YYYY-MM-DD hh:mm:ss` goes through Arrow's cast parser; results must equal strptime's, impossible ones too."""
    rng = np.random.default_rng(seed)
    texts = [f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}" for y, mo, d, h, mi, s in parts]
    # Mostly plausible values as well, so that chunks where every row is valid take the shortcut.
    base = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 400 * 86_400, len(texts)), unit="s")
    texts = [t if rng.random() > valid_share else b.strftime("%Y-%m-%d %H:%M:%S")
             for t, b in zip(texts, base, strict=True)]
    frame = pd.DataFrame([_row(f"T{i}", 1 + i % 8, reported=t, closed=texts[-1 - i] if i % 3 == 0 else "")
                          for i, t in enumerate(texts)], columns=HEADER)
    rules = make_rules(tiny_store.categories())
    units = tiny_store.units()
    fast = validate(frame, rules, units)
    monkeypatch.setattr(ingest_mod, "_parse_iso_seconds", lambda arr, out, todo: None)
    slow = validate(frame, rules, units)
    pd.testing.assert_frame_equal(fast.accepted, slow.accepted)
    pd.testing.assert_frame_equal(fast.rejects, slow.rejects)


def test_leap_seconds_and_impossible_dates_next_to_good_ones(tiny_store: Store, tmp_path: Path) -> None:
    rows = [_row("L1", reported="2026-06-10 10:00:00"), _row("L2", reported="2026-02-29 10:00:00"),
            _row("L3", reported="2026-06-10 23:59:60"), _row("L4", reported="2026-06-11 08:30:00")]
    result = ingest_file(tiny_store, _write_csv(tmp_path / "leap.csv", rows))
    got = _imported(tiny_store, result.batch_id).set_index("external_id")["reported_at"].to_dict()
    # strptime reads second 60 as the next minute; 29 February 2026 does not exist.
    assert got == {"L1": pd.Timestamp("2026-06-10 10:00"), "L3": pd.Timestamp("2026-06-11 00:00"),
                   "L4": pd.Timestamp("2026-06-11 08:30")}
    assert result.rejected_by_reason == {"bad_reported_at": 1}


def test_boundary_point_goes_to_lowest_unit(tiny_store: Store, tmp_path: Path) -> None:
    units = tiny_store.units().set_index("unit_id").geometry
    corner = set(units[1].exterior.coords) & set(units[2].exterior.coords) & set(units[6].exterior.coords)
    (lon, lat), = corner
    rows = [_row("E1", lonlat=(lon, lat)), _row("E2", lonlat=(lon, lat))]
    result = ingest_file(tiny_store, _write_csv(tmp_path / "edge.csv", rows))
    assert _imported(tiny_store, result.batch_id)["unit_id"].tolist() == [1, 1]


def test_gb18030_tab_separated(tiny_store: Store, tmp_path: Path) -> None:
    header = ["external_id", "reported_at", "category", "lon", "lat", "description"]
    lon, lat = unit_center_lonlat(2)
    rows = [["G1", "2026-06-10 10:00", "乱涂写", lon, lat, "墙上有涂鸦\n两处"]]
    path = _write_csv(tmp_path / "gbk.txt", rows, header=header, encoding="gb18030", delimiter="\t")
    result = ingest_file(tiny_store, path)
    got = _imported(tiny_store, result.batch_id).iloc[0]
    assert (got["category_code"], got["description"]) == ("graffiti", "墙上有涂鸦\n两处")


def test_custom_preset_file(tiny_store: Store, tmp_path: Path) -> None:
    (tmp_path / "types.csv").write_text("Rubbish heap,exposed_garbage\n", encoding="utf-8")
    preset = tmp_path / "mycity.toml"
    preset.write_text(
        'source = "mycity"\ncategory_map = "types.csv"\nother = "other"\ntime_format = "%d/%m/%Y %H:%M"\n'
        '[columns]\nCase = "external_id"\nOpened = "reported_at"\nType = "category"\nX = "lon"\nY = "lat"\n'
        'State = "status"\nNotThere = "description"\n'
        '[status]\n"With crew" = "dispatched"\n',
        encoding="utf-8",
    )
    lon, lat = unit_center_lonlat(5)
    rows = [["P1", "10/06/2026 09:30", "rubbish heap", lon, lat, "with crew"],
            ["P2", "2026-06-10 09:30", "pothole", lon, lat, "open"]]
    path = _write_csv(tmp_path / "mycity.csv", rows, header=["Case", "Opened", "Type", "X", "Y", "State"])
    result = ingest_file(tiny_store, path, preset=str(preset))
    got = _imported(tiny_store, result.batch_id).set_index("external_id")
    assert got.loc["P1", "reported_at"] == datetime(2026, 6, 10, 9, 30)  # day first, as the preset says
    assert got["category_code"].to_dict() == {"P1": "exposed_garbage", "P2": "other"}
    assert got["status"].to_dict() == {"P1": "dispatched", "P2": "reported"}
    assert set(got["source"]) == {"mycity"}
    assert tiny_store.import_batches().iloc[0]["source"] == "mycity"
    # Command-line options win over the preset.
    again = ingest_file(tiny_store, _write_csv(tmp_path / "mycity2.csv", rows[1:], header=["Case", "Opened", "Type",
                                                                                            "X", "Y", "State"]),
                        preset=str(preset), source="override", other="noise")
    assert _imported(tiny_store, again.batch_id)[["source", "category_code"]].values.tolist() == [
        ["override", "noise"]]
    bad = tmp_path / "bad.toml"
    bad.write_text('[columns]\nCase = "case_number"\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        ingest_file(tiny_store, path, preset=str(bad))
    assert err.value.field == "--preset" and "case_number" in str(err.value)


def test_canonical_preset_needs_no_mapping(tiny_store: Store, tmp_path: Path) -> None:
    result = ingest_file(tiny_store, _write_csv(tmp_path / "c.csv", [_row("CP1", 6)]), preset="canonical")
    assert result.accepted == 1 and _imported(tiny_store, result.batch_id)["unit_id"].tolist() == [6]


# ---------------------------------------------------------------------------------------------------------------
# Other formats
# ---------------------------------------------------------------------------------------------------------------
def _points_frame(units: list[int], crs: str = "EPSG:4326") -> gpd.GeoDataFrame:
    pts = gpd.GeoSeries([Point(unit_center_lonlat(u)) for u in units], crs=4326).to_crs(crs)
    return gpd.GeoDataFrame({
        "case_no": [f"P{i}" for i in range(1, len(units) + 1)],
        "reported_at": ["2026-06-10 10:00"] * len(units),
        "category": ["noise"] * len(units),
    }, geometry=pts.values, crs=crs)


def test_parquet_with_typed_columns(tiny_store: Store, tmp_path: Path) -> None:
    lonlat = np.array([unit_center_lonlat(u) for u in (1, 2, 3)])
    df = pd.DataFrame({
        "external_id": [101, 102, 103],
        "reported_at": pd.to_datetime(["2026-06-10 10:00", "2026-06-10 11:00", None]),
        "category": ["noise", "Graffiti", "noise"],
        "lon": lonlat[:, 0], "lat": lonlat[:, 1],
    })
    path = tmp_path / "inc.parquet"
    df.to_parquet(path)
    result = ingest_file(tiny_store, path)
    got = _imported(tiny_store, result.batch_id)
    assert got["external_id"].tolist() == ["101", "102"]
    assert got["reported_at"].tolist() == [pd.Timestamp("2026-06-10 10:00"), pd.Timestamp("2026-06-10 11:00")]
    assert result.rejected_by_reason == {"missing_reported_at": 1}


def test_geojson_points(tiny_store: Store, tmp_path: Path) -> None:
    gdf = _points_frame([1, 5, 8])
    gdf.loc[2, "geometry"] = Point(*FAR)
    path = tmp_path / "inc.geojson"
    gdf.to_file(path, driver="GeoJSON")
    result = ingest_file(tiny_store, path, mapping=["case_no=external_id"])
    assert _imported(tiny_store, result.batch_id)["unit_id"].tolist() == [1, 5]
    rejects = tiny_store.rejects(result.batch_id)
    assert rejects[["row_no", "field", "reason"]].values.tolist() == [[3, "geometry", "outside_district"]]
    raw = json.loads(rejects["raw"].iloc[0])
    assert raw["case_no"] == "P3" and raw["geometry"].startswith("POINT")


def test_geopackage_in_utm_is_reprojected(tiny_store: Store, tmp_path: Path) -> None:
    gdf = _points_frame([2, 3, 6, 7], crs=UTM)
    gdf["reported_at"] = pd.to_datetime(["2026-06-10 10:00"] * 4)  # a real datetime field in the GeoPackage
    gdf.loc[3, "geometry"] = unit_box(7)  # a polygon is not a point
    path = tmp_path / "inc.gpkg"
    gdf.to_file(path, driver="GPKG")
    result = ingest_file(tiny_store, path, mapping={"case_no": "external_id"})
    got = _imported(tiny_store, result.batch_id)
    assert got["unit_id"].tolist() == [2, 3, 6]
    assert got["reported_at"].tolist() == [pd.Timestamp("2026-06-10 10:00")] * 3
    assert result.rejected_by_reason == {"bad_coordinates": 1}


def test_ingest_frame_geodataframe_is_idempotent(tiny_store: Store) -> None:
    gdf = _points_frame([4, 8], crs=UTM)
    first = ingest_frame(tiny_store, gdf, mapping={"case_no": "external_id"}, source="live")
    assert first.accepted == 2 and not first.already_imported
    again = ingest_frame(tiny_store, gdf, mapping={"case_no": "external_id"}, source="live")
    assert again.already_imported and again.batch_id == first.batch_id and again.accepted == 0


# ---------------------------------------------------------------------------------------------------------------
# Idempotency and atomicity
# ---------------------------------------------------------------------------------------------------------------
def test_reimport_of_the_same_file_changes_nothing(tiny_store: Store, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "a.csv", [_row("R1", 1), _row("R2", 2), _row("R3", lonlat=FAR)])
    first = ingest_file(tiny_store, path)
    before = _counts(tiny_store)
    again = ingest_file(tiny_store, path)
    assert _counts(tiny_store) == before
    assert again.already_imported and again.batch_id == first.batch_id
    assert (again.rows_in, again.accepted, again.rejected, again.duplicates) == (3, 0, 0, 3)
    assert "already imported" in again.summary()
    # Same content under another name is the same file.
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    assert ingest_file(tiny_store, copy).already_imported
    assert _counts(tiny_store) == before


def test_second_file_with_overlapping_ids_adds_only_new_ones(tiny_store: Store, tmp_path: Path) -> None:
    first = ingest_file(tiny_store, _write_csv(tmp_path / "jan.csv", [_row("X1", 1), _row("X2", 2)]))
    second = ingest_file(tiny_store, _write_csv(tmp_path / "feb.csv", [_row("X2", 2), _row("X3", 3)]))
    assert (second.accepted, second.duplicates, second.rejected) == (1, 1, 1)
    assert _imported(tiny_store, second.batch_id)["external_id"].tolist() == ["X3"]
    assert second.batch_id == first.batch_id + 1
    msg = second.sample_rejects[0]["message"]
    assert msg == "external id 'X2' was imported before for source 'import'"
    # The same id from another source is another case.
    other = ingest_file(tiny_store, _write_csv(tmp_path / "other.csv", [_row("X1", 1)]), source="other-system")
    assert other.accepted == 1


def test_duplicates_across_chunks_are_caught(tiny_store: Store, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_mod, "CHUNK_ROWS", 2)
    rows = [_row("K1"), _row("K2"), _row("K3"), _row("K1"), _row("K4")]
    result = ingest_file(tiny_store, _write_csv(tmp_path / "k.csv", rows))
    assert (result.accepted, result.duplicates) == (4, 1)
    rej = tiny_store.rejects(result.batch_id)
    assert rej[["row_no", "reason"]].values.tolist() == [[4, "duplicate_external_id"]]
    assert result.sample_rejects[0]["message"] == "external id 'K1' is taken by an earlier row of this file"
    assert json.loads(rej["raw"].iloc[0])["external_id"] == "K1"


def _messy_rows(rows: int, seed: int, units: gpd.GeoSeries) -> list[list[object]]:
    """A seeded file with every kind of trouble: every reject reason, ids repeated a few rows later (so across chunk
    boundaries) and ids of the stored fixture incidents, many time formats, padded and odd-case values, Chinese
    names, points on shared unit edges, and quotes, commas and newlines in text."""
    rng = np.random.default_rng(seed)
    cats = load_categories()
    categories = [*cats["code"], *cats["name_zh"], *cats["name_en"], "  NOISE ", "Street  Light", "spaceship", ""]
    statuses = ["", "", "closed", "办结", "处置中", "In_Progress", "open", "limbo", "cancelled", " Reported "]
    corners = [pt for geom in units for pt in geom.exterior.coords[:-1]]
    base = np.datetime64("2026-01-01T00:00:00") + rng.integers(0, 300 * 86_400, rows).astype("timedelta64[s]")
    out: list[list[object]] = []
    for i in range(rows):
        t = pd.Timestamp(base[i])
        kind = rng.integers(0, 14)
        reported = [t.strftime("%Y-%m-%d %H:%M:%S"), t.strftime("%Y-%m-%d %H:%M"), t.strftime("%Y/%m/%d %H:%M"),
                    t.strftime("%Y-%m-%dT%H:%M:%S+08:00"), t.strftime("%Y年%m月%d日 %H:%M"),
                    t.strftime("%Y%m%d%H%M%S"), t.strftime("%Y-%m-%d"), "2026-02-30 10:00:00", "yesterday", "",
                    "2026-06-10 23:59:60", t.strftime("%Y-%m-%d %H:%M:%S.25"), f" {t:%Y-%m-%d %H:%M:%S} ",
                    "2026-06-1x 10:00:00"][kind]
        closed = ""
        if rng.random() < 0.4:
            closed = (t + pd.Timedelta(hours=float(rng.integers(-5, 200)))).strftime("%Y-%m-%d %H:%M:%S")
        elif rng.random() < 0.02:
            closed = "2026-13-45 10:00"
        where = rng.random()
        if where < 0.03:
            lon, lat = corners[rng.integers(0, len(corners))]
        elif where < 0.05:
            lon, lat = FAR
        elif where < 0.06:
            lon, lat = ["", "east", 1000.0][rng.integers(0, 3)], 31.22
        else:
            x0, y0, x1, y1 = units.iloc[rng.integers(0, len(units))].bounds
            lon, lat = round(rng.uniform(x0, x1), 7), round(rng.uniform(y0, y1), 7)
        ext = f"X{i}" if rng.random() > 0.05 else f"X{max(i - int(rng.integers(1, 30)), 0)}"
        source = ""
        if rng.random() < 0.02:
            ext, source = f"T{rng.integers(1, 7)}", "fixture"
        elif rng.random() < 0.1:
            source = "hotline"
        if rng.random() < 0.02:
            ext = ""
        text = ['市民反映, "噪声"\n夜间施工', "plain", "", "  padded  "][rng.integers(0, 4)]
        out.append([ext, reported, categories[rng.integers(0, len(categories))], lon, lat,
                    statuses[rng.integers(0, len(statuses))], closed, source, text])
    return out


@pytest.mark.parametrize("seed", [3, 11])
def test_pipelined_import_equals_one_chunk_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     seed: int) -> None:
    """Reading and validating ahead on threads, in small chunks, stores exactly what one chunk in one thread does."""
    from tests.fixtures import build_tiny

    stores = {name: build_tiny(tmp_path / f"{name}.duckdb") for name in ("serial", "pipelined")}
    path = _write_csv(tmp_path / "messy.csv", _messy_rows(3_000, seed, stores["serial"].units().geometry),
                      header=[*HEADER, "description"])
    results, tables = {}, {}
    for name, (chunk_rows, depth) in {"serial": (100_000, 0), "pipelined": (97, 2)}.items():
        monkeypatch.setattr(ingest_mod, "CHUNK_ROWS", chunk_rows)
        monkeypatch.setattr(ingest_mod, "PIPELINE_DEPTH", depth)
        store = stores[name]
        results[name] = ingest_file(store, path)
        tables[name] = (_imported(store, results[name].batch_id).drop(columns=["batch_id"]),
                        store.rejects(results[name].batch_id))
        store.close()
    serial, pipelined = results["serial"], results["pipelined"]
    assert set(serial.rejected_by_reason) == set(REASONS)  # the file exercises every check
    assert serial.duplicates > 50 and serial.accepted > 1_000
    assert (pipelined.accepted, pipelined.rejected, pipelined.duplicates) == (serial.accepted, serial.rejected,
                                                                              serial.duplicates)
    assert pipelined.rejected_by_reason == serial.rejected_by_reason
    assert pipelined.sample_rejects == serial.sample_rejects
    pd.testing.assert_frame_equal(tables["pipelined"][0], tables["serial"][0])
    pd.testing.assert_frame_equal(tables["pipelined"][1], tables["serial"][1])


def test_a_failure_while_validating_ahead_stops_the_import_and_its_threads(tiny_store: Store, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_mod, "CHUNK_ROWS", 2)
    path = _write_csv(tmp_path / "v.csv", [_row(f"V{i}", 1 + i % 8) for i in range(20)])
    before = _counts(tiny_store)
    real = ingest_mod._check
    seen: list[int] = []

    def failing(frame: object, *args: object, first_row_no: int, **kwargs: object) -> object:
        seen.append(first_row_no)
        if first_row_no == 7:  # the fourth chunk, while earlier ones are being staged
            raise RuntimeError("validator fell over")
        return real(frame, *args, first_row_no=first_row_no, **kwargs)

    monkeypatch.setattr(ingest_mod, "_check", failing)
    with pytest.raises(RuntimeError, match="validator fell over"):
        ingest_file(tiny_store, path)
    assert _counts(tiny_store) == before
    assert seen == [1, 3, 5, 7]  # nothing validated past the failure
    assert not [t.name for t in threading.enumerate() if t.name.startswith("gridgov-ingest")]
    monkeypatch.setattr(ingest_mod, "_check", real)
    assert ingest_file(tiny_store, path).accepted == 20


def test_a_rejected_row_does_not_block_its_corrected_resend(tiny_store: Store, tmp_path: Path) -> None:
    ingest_file(tiny_store, _write_csv(tmp_path / "v1.csv", [_row("Z1", reported="soon")]))
    fixed = ingest_file(tiny_store, _write_csv(tmp_path / "v2.csv", [_row("Z1")]))
    assert fixed.accepted == 1


def _tables(store: Store) -> set[str]:
    return {r[0] for r in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_failure_mid_batch_leaves_nothing(tiny_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_mod, "CHUNK_ROWS", 2)
    path = _write_csv(tmp_path / "crash.csv", [_row(f"M{i}", 1 + i % 8) for i in range(7)] + [_row("M9", lonlat=FAR)])
    before, tables = _counts(tiny_store), _tables(tiny_store)
    real = Store.stage_incidents
    calls = {"n": 0}

    def flaky(self: Store, incidents: pd.DataFrame) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(self, incidents)

    monkeypatch.setattr(Store, "stage_incidents", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest_file(tiny_store, path)
    assert calls["n"] == 3
    assert _counts(tiny_store) == before and _tables(tiny_store) == tables
    monkeypatch.setattr(Store, "stage_incidents", real)
    # The file's hash was not claimed: it imports cleanly afterwards.
    result = ingest_file(tiny_store, path)
    assert (result.accepted, result.rejected) == (7, 1)


def test_failure_while_publishing_rolls_back_the_whole_batch(tiny_store: Store, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_csv(tmp_path / "pub.csv", [_row("N1"), _row("N2", lonlat=FAR)])
    before = _counts(tiny_store)

    def broken(self: Store, batch: dict[str, object], **kwargs: object) -> None:
        raise RuntimeError("power cut")  # after incidents and rejects were copied in the same transaction

    monkeypatch.setattr(Store, "record_import_batch", broken)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_file(tiny_store, path)
    assert _counts(tiny_store) == before


_CRASH_SCRIPT = """
import os, sys
import gridgov.ingest as ingest
from gridgov.store import Store
ingest.CHUNK_ROWS = 2
real = Store.stage_incidents
calls = []
def dying(self, incidents):
    calls.append(1)
    if len(calls) == 2:
        os._exit(3)  # the process dies mid-import: no except, no finally, no close
    return real(self, incidents)
Store.stage_incidents = dying
ingest.ingest_file(Store(sys.argv[1]), sys.argv[2])
"""


def test_a_crash_mid_import_leaves_no_partial_batch(tiny_store: Store, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "kill.csv", [_row(f"C{i}", 1 + i % 8) for i in range(6)])
    db = tiny_store.location
    before = _counts(tiny_store)
    tiny_store.close()
    proc = subprocess.run([sys.executable, "-c", _CRASH_SCRIPT, str(db), str(path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stderr
    with Store(db) as store:
        assert _counts(store) == before
        result = ingest_file(store, path)
        assert (result.accepted, result.rejected) == (6, 0)
        assert "import_stage_incident" not in _tables(store)


def test_malformed_csv_is_an_input_error_and_writes_nothing(tiny_store: Store, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "broken.csv", [_row("Q1"), _row("Q2")])
    with path.open("a", encoding="utf-8") as fh:
        fh.write("Q3,2026-06-10 10:00\n")
    before = _counts(tiny_store)
    with pytest.raises(InputError, match="not well-formed CSV"):
        ingest_file(tiny_store, path)
    assert _counts(tiny_store) == before


# ---------------------------------------------------------------------------------------------------------------
# Bad invocation
# ---------------------------------------------------------------------------------------------------------------
def test_bad_options_name_the_option(tiny_store: Store, tmp_path: Path) -> None:
    good = _write_csv(tmp_path / "g.csv", [_row("O1")])
    cases: list[tuple[dict[str, object], Path, str, int | None]] = [
        ({}, tmp_path / "missing.csv", "FILE", None),
        ({}, good.with_suffix(".xlsx"), "FILE", None),
        ({"mapping": ["no_equals_sign"]}, good, "--map", None),
        ({"mapping": ["x=colour"]}, good, "--map", None),
        ({"mapping": ["nosuchcol=description"]}, good, "--map", None),
        ({"preset": "atlantis"}, good, "--preset", None),
        ({"other": "not_a_code"}, good, "--other", None),
        ({"crs": "EPSG:999999"}, good, "--crs", None),
    ]
    good.with_suffix(".xlsx").write_bytes(b"PK")
    for kwargs, path, option, row in cases:
        with pytest.raises(InputError) as err:
            ingest_file(tiny_store, path, **kwargs)  # type: ignore[arg-type]
        assert err.value.field == option, (kwargs, str(err.value))
        assert err.value.row == row
    cmap = tmp_path / "bad_map.csv"
    cmap.write_text("Big Rubbish,bulky_waste\nSmall Rubbish,tiny_waste\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        ingest_file(tiny_store, good, category_map=cmap)
    assert (err.value.field, err.value.row) == ("--category-map", 2)
    assert "row 2, field '--category-map'" in str(err.value)
    no_time = _write_csv(tmp_path / "nt.csv", [["O2", "noise", 121.4, 31.2]], header=["id", "category", "lon", "lat"])
    with pytest.raises(InputError) as err:
        ingest_file(tiny_store, no_time)
    assert err.value.field == "reported_at"
    assert _counts(tiny_store)["import_batch"] == 0


# ---------------------------------------------------------------------------------------------------------------
# Pure validation (no database)
# ---------------------------------------------------------------------------------------------------------------
def test_validate_without_a_database() -> None:
    units = gpd.GeoDataFrame({"unit_id": [1, 2]}, geometry=[unit_box(1), unit_box(2)], crs=UTM).to_crs(4326)
    rules = make_rules(load_categories(), mapping={"id": "external_id"})
    (x1, y1), (x2, y2) = unit_center_lonlat(1), unit_center_lonlat(2)
    frame = pd.DataFrame({
        "id": ["a", "b", "a", None],
        "reported_at": ["2026-06-10 10:00", "2026-06-10 10:00", "2026-06-10 11:00", "2026-06-10 12:00"],
        "category": ["noise", "noise", "noise", "noise"],
        "lon": [x1, x2, x1, "?"], "lat": [y1, y2, y1, y1],
    })
    out = validate(frame, rules, units, first_row_no=10)
    assert out.accepted["row_no"].tolist() == [10, 11]
    assert out.accepted["unit_id"].tolist() == [1, 2]
    assert out.rejects[["row_no", "field", "reason"]].values.tolist() == [
        [12, "id", "duplicate_external_id"], [13, "lon", "bad_coordinates"]]
    assert "'?'" in out.rejects["message"].iloc[1]


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------
def test_cli_ingest_json(tiny_store: Store, tmp_path: Path) -> None:
    db = tiny_store.location
    path = _write_csv(tmp_path / "cli.csv", [_row("L1", 1), _row("L2", lonlat=FAR), _row("T2", 2, source="fixture")])
    tiny_store.close()
    cmd = [sys.executable, "-m", "gridgov.cli", "ingest", str(path), "--db", str(db), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {k: out[k] for k in ("rows_in", "accepted", "rejected", "duplicates", "already_imported")} == {
        "rows_in": 3, "accepted": 1, "rejected": 2, "duplicates": 1, "already_imported": False}
    assert out["rejected_by_reason"] == {"duplicate_external_id": 1, "outside_district": 1}
    assert isinstance(out["batch_id"], int) and len(out["sha256"]) == 64
    again = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout)
    assert again["already_imported"] and again["batch_id"] == out["batch_id"]
    bad = subprocess.run([*cmd[:-1], "--map", "oops"], capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "--map" in bad.stderr


# ---------------------------------------------------------------------------------------------------------------
# Real data: MyLA311 with the la311 preset
# ---------------------------------------------------------------------------------------------------------------
def test_la311_preset_imports_the_real_sample(la311_dir: Path, tmp_path: Path) -> None:
    from tests.la311 import council_units

    nc = gpd.read_file(la311_dir / "la_neighborhood_councils_2020_wgs84.geojson")
    assert nc.crs is not None and nc.crs.to_epsg() == 4326
    units = council_units(la311_dir)
    with Store(tmp_path / "la.duckdb") as store:
        store.write_categories(load_categories())
        store.write_units(units)
        result = ingest_file(store, la311_dir / "la311_2020-01_seed.csv", preset="la311")
        assert result.rows_in == 10_000
        # README: 99.9 % have coordinates and 98.4 % of those fall inside an NC polygon.
        assert result.rejected_by_reason.get("missing_coordinates") == 11
        assert 100 <= result.rejected_by_reason.get("outside_district", 0) <= 200
        assert set(result.rejected_by_reason) <= {"missing_coordinates", "outside_district"}
        assert result.accepted == result.rows_in - result.rejected and result.accepted > 9_750
        inc = store.df("SELECT * FROM incident")
        assert (inc["source"] == "myla311").all() and inc["external_id"].is_unique
        counts = inc["category_code"].value_counts()
        assert counts.index[0] == "bulky_waste" and counts["graffiti"] > 2_500
        assert set(inc["status"]) <= {"reported", "registered", "closed", "cancelled"}
        assert (inc["closed_at"].dropna() >= inc.loc[inc["closed_at"].notna(), "reported_at"]).all()
        assert (inc["due_at"] > inc["reported_at"]).all()
        # The record's own NC number agrees with the unit we found for nearly all of them.
        raw = pd.read_csv(la311_dir / "la311_2020-01_seed.csv", dtype=str, usecols=["srnumber", "nc"])
        joined = inc.merge(raw, left_on="external_id", right_on="srnumber")
        joined["unit_nc"] = units.set_index("unit_id").loc[joined["unit_id"], "community_code"].to_numpy()
        assert (joined["unit_nc"] == joined["nc"]).mean() > 0.95
        assert ingest_file(store, la311_dir / "la311_2020-01_seed.csv", preset="la311").already_imported
