"""Pure builders of the worker page and its folium export, without a server or a browser."""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd

from dashboards.fieldmap import field_map_html
from dashboards.worker_figures import URGENCY_COLORS, case_rows, fmt_when, urgency, worker_map
from gridgov.config import WorkCalendar

NOW = datetime(2026, 11, 27, 16, 0)  # a Friday afternoon
SQUARE = {"type": "Feature", "id": "G1", "properties": {},
          "geometry": {"type": "Polygon", "coordinates": [[[121.0, 31.0], [121.01, 31.0], [121.01, 31.01],
                                                           [121.0, 31.01], [121.0, 31.0]]]}}


def _cases() -> pd.DataFrame:
    return pd.DataFrame({
        "incident_id": [1, 2, 3], "external_id": ["A-1", None, "A-3"], "category_code": ["x", "x", "y"],
        "name_zh": ["暴露垃圾", "暴露垃圾", "井盖破损"],
        "name_en": ["Exposed garbage", "Exposed garbage", "Broken cover"],
        "status": ["dispatched", "reported", "registered"],
        "reported_at": pd.to_datetime(["2026-11-20 10:00", "2026-11-26 10:00", "2026-11-27 09:00"]),
        "due_at": pd.to_datetime(["2026-11-27 15:00", "2026-11-30 15:00", "2026-12-02 09:00"]),
        "address": ["玉兴路1号", "玉兴路2号", None], "description": ["", "d", None],
        "lon": [121.005, 121.006, None], "lat": [31.005, 31.006, None], "grid_code": ["G1", "G1", "G1"],
    })


def test_urgency_counts_working_days() -> None:
    due = _cases()["due_at"]
    assert urgency(due, now=NOW, calendar=WorkCalendar()).tolist() == ["overdue", "soon", "later"]


def test_dates_in_each_language() -> None:
    assert fmt_when(datetime(2026, 7, 1, 9, 0), "en") == "Wed 1 Jul 09:00"
    assert fmt_when(datetime(2026, 7, 1, 9, 0), "zh") == "7月1日 周三 09:00"
    assert fmt_when(datetime(2025, 12, 31, 17, 0), "zh", now=NOW) == "2025年12月31日 周三 17:00"
    assert fmt_when(None, "en") == "—"


def test_rows_and_map() -> None:
    rows = case_rows(_cases(), now=NOW, calendar=WorkCalendar(), lang="zh")
    assert [r["case"] for r in rows] == ["A-1", "#2", "A-3"]
    assert rows[0]["left"].startswith("超期") and rows[1]["category"] == "暴露垃圾"
    fig = worker_map([SQUARE], rows, _cases(), lang="zh")
    pins = {tuple(tr.customdata): tr.marker.color for tr in fig.data
            if tr.customdata is not None and len(tr.customdata)}
    assert pins == {(1,): URGENCY_COLORS["overdue"], (2,): URGENCY_COLORS["soon"]}  # case 3 has no location
    assert fig.layout.map.style == "white-bg"


def test_a_deadline_that_passed_within_the_hour_is_flagged_just_overdue() -> None:
    cases = _cases()
    # Case 1 was due at 15:00: at 15:40 it has just become overdue; at 17:30 it is simply overdue.
    assert [r["just_overdue"] for r in case_rows(cases, now=datetime(2026, 11, 27, 15, 40),
                                                 calendar=WorkCalendar())] == [True, False, False]
    assert [r["just_overdue"] for r in case_rows(cases, now=datetime(2026, 11, 27, 17, 30),
                                                 calendar=WorkCalendar())] == [False, False, False]
    assert [r["just_overdue"] for r in case_rows(cases, now=datetime(2026, 11, 27, 14, 59),
                                                 calendar=WorkCalendar())] == [False, False, False]


def test_field_map_has_the_grids_and_located_cases_only() -> None:
    page = field_map_html([SQUARE], _cases(), now=NOW, calendar=WorkCalendar(), lang="en", title="My grids · w")
    assert page.startswith("<!DOCTYPE html>")
    assert re.findall(r'"grid_code":\s*"(\w+)"', page) == ["G1"]
    assert sorted(re.findall(r'data-case=\\?"(\d+)\\?"', page)) == ["1", "2"]
    assert page.count("L.circleMarker(") == 2
    assert "Exposed garbage" in page and "玉兴路1号" in page and "Due Fri 27 Nov 15:00" in page
