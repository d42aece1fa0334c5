"""Real-world export presets: a Chinese 12345 work-order export in GCJ-02, and Open311 GeoReport CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridgov import coords
from gridgov.ingest import ingest_file, load_preset, preset_names
from gridgov.store import Store
from tests.fixtures import unit_center_lonlat


def _gcj(unit: int) -> tuple[float, float]:
    lon, lat = unit_center_lonlat(unit)
    g_lon, g_lat = coords.wgs84_to_gcj02([lon], [lat])
    return float(g_lon[0]), float(g_lat[0])


def test_gcj02_round_trip_is_under_a_centimetre_and_the_offset_is_hundreds_of_metres() -> None:
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(100, 125, 500), rng.uniform(20, 45, 500)
    g_lon, g_lat = coords.wgs84_to_gcj02(lon, lat)
    b_lon, b_lat = coords.gcj02_to_wgs84(g_lon, g_lat)
    assert np.max(np.hypot(b_lon - lon, b_lat - lat)) < 1e-7  # about a centimetre
    offset_m = np.hypot((g_lon - lon) * 111_000 * np.cos(np.radians(lat)), (g_lat - lat) * 111_000)
    assert offset_m.min() > 50 and np.median(offset_m) > 300
    assert coords.chinese_datum("GCJ-02") == "GCJ02" and coords.chinese_datum("百度") == "BD09"
    assert coords.chinese_datum("EPSG:4326") is None


def test_a_12345_export_in_gcj02_lands_in_the_right_units(tiny_store: Store, tmp_path: Path) -> None:
    rows = []
    for i, unit in enumerate([1, 2, 6, 8], start=1):
        lon, lat = _gcj(unit)
        rows.append({"工单编号": f"GD2026{i:04d}", "受理时间": f"2026-06-0{i} 09:30:00", "事项分类": "乱堆物堆料",
                     "经度": lon, "纬度": lat, "工单状态": "已办结", "办结时间": f"2026-06-0{i} 15:00:00",
                     "诉求内容": "楼道口堆放杂物", "事发地址": "测试路1号", "来电人": "王先生",
                     "联系电话": "13812345678"})
    path = tmp_path / "12345.csv"
    pd.DataFrame(rows).to_csv(path, index=False, encoding="utf-8-sig")
    assert "cn12345" in preset_names() and load_preset("cn12345").crs == "gcj02"

    result = ingest_file(tiny_store, path, preset="cn12345")
    assert result.accepted == 4 and result.rejected == 0
    inc = tiny_store.df("SELECT external_id, unit_id, category_code, status, source FROM incident "
                        "WHERE source = '12345' ORDER BY external_id")
    assert inc["unit_id"].tolist() == [1, 2, 6, 8]
    assert set(inc["category_code"]) == {"exposed_garbage"} and set(inc["status"]) == {"closed"}

    # The same points read as WGS84 are hundreds of metres off: outside this 400 m × 200 m district.
    other = tmp_path / "12345-again.csv"
    pd.DataFrame(rows).assign(备注="").to_csv(other, index=False, encoding="utf-8-sig")  # a new file to import
    wrong = ingest_file(tiny_store, other, preset="cn12345", crs="EPSG:4326", source="12345-wgs")
    assert wrong.accepted == 0 and wrong.rejected_by_reason.get("outside_district") == 4


def test_open311_georeport_csv(tiny_store: Store, tmp_path: Path) -> None:
    lon, lat = unit_center_lonlat(3)
    frame = pd.DataFrame([{
        "service_request_id": "638344", "status": "open", "service_name": "Street light",
        "service_code": "006", "description": "Light out", "requested_datetime": "2026-06-08T18:12:00+08:00",
        "address": "8TH Ave", "lat": lat, "long": lon,
    }])
    path = tmp_path / "open311.csv"
    frame.to_csv(path, index=False)
    result = ingest_file(tiny_store, path, preset="open311")
    assert result.accepted == 1, result.rejected_by_reason
    inc = tiny_store.df("SELECT unit_id, category_code, status, reported_at FROM incident WHERE source = 'open311'")
    assert inc.iloc[0]["unit_id"] == 3 and inc.iloc[0]["category_code"] == "street_light"
    assert inc.iloc[0]["status"] == "reported"
    assert inc.iloc[0]["reported_at"] == pd.Timestamp("2026-06-08 18:12:00")


@pytest.mark.parametrize("name", ["cn12345", "open311"])
def test_presets_load(name: str) -> None:
    assert load_preset(name).columns
