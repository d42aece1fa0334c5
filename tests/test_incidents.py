"""Categories and SLA deadlines in working hours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridgov.config import WorkCalendar
from gridgov.errors import InputError
from gridgov.incidents import CLASSES, due_times, load_categories


def _due(times: list[str], hours: list[float], cal: WorkCalendar | None = None) -> list[str]:
    out = due_times(np.array(times, dtype="datetime64[us]"), np.array(hours), cal or WorkCalendar())
    return [str(t.astype("datetime64[m]")) for t in out]


def test_shipped_taxonomy_covers_both_classes() -> None:
    cats = load_categories()
    assert len(cats) >= 24
    assert set(cats["class"]) == set(CLASSES)
    by_code = cats.set_index("code")
    assert by_code.loc["exposed_garbage", "sla_hours"] == 4
    assert by_code.loc["illegal_construction", "sla_hours"] == 160  # 20 working days
    assert by_code["name_zh"].str.len().min() > 0 and by_code["name_en"].str.len().min() > 0


def test_due_within_the_same_day() -> None:
    # Friday 2026-11-27
    assert _due(["2026-11-27T09:00", "2026-11-27T10:30"], [4, 2]) == ["2026-11-27T13:00", "2026-11-27T12:30"]


def test_due_carries_over_the_weekend() -> None:
    assert _due(["2026-11-27T16:00"], [4]) == ["2026-11-30T12:00"]


def test_report_outside_working_time_starts_next_working_minute() -> None:
    # Before opening, after closing, on Saturday.
    assert _due(["2026-11-27T07:00", "2026-11-27T18:00", "2026-11-28T10:00"], [1, 1, 1]) == [
        "2026-11-27T10:00", "2026-11-30T10:00", "2026-11-30T10:00"]


def test_deadline_exactly_at_closing_stays_that_day() -> None:
    assert _due(["2026-11-27T09:00", "2026-11-26T13:00"], [8, 12]) == ["2026-11-27T17:00", "2026-11-27T17:00"]


def test_twenty_working_days_and_holidays() -> None:
    assert _due(["2026-11-27T13:00"], [160]) == ["2026-12-25T13:00"]
    cal = WorkCalendar(holidays=("2026-11-30",))
    assert _due(["2026-11-27T16:00"], [4], cal) == ["2026-12-01T12:00"]


def test_custom_working_day() -> None:
    cal = WorkCalendar(day_start="08:30", day_end="17:30", weekmask="1111110")
    assert _due(["2026-11-27T17:00"], [1], cal) == ["2026-11-28T09:00"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"day_start": "9"}, "day_start"), ({"day_end": "08:00"}, "day_end"), ({"weekmask": "11111"}, "weekmask")],
)
def test_bad_calendar_names_the_field(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(InputError, match=field):
        WorkCalendar(**kwargs)


def test_city_category_file_is_validated(tmp_path: Path) -> None:
    f = tmp_path / "cats.csv"
    f.write_text("code,name_zh,name_en,class,sla_hours,handling_minutes\n"
                 "a,甲,A,event,4,10\n"
                 "b,乙,B,thing,4,10\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"row 3, field 'class'"):
        load_categories(f)
    f.write_text("code,name_zh,name_en,class,sla_hours,handling_minutes\n"
                 "a,甲,A,event,-1,10\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"row 2, field 'sla_hours'"):
        load_categories(f)
    f.write_text("code,name_zh,name_en,class,sla_hours,handling_minutes\n"
                 "a,甲,A,event,4,10\nA,乙,B,event,4,10\n", encoding="utf-8")
    with pytest.raises(InputError, match="duplicate code"):
        load_categories(f)
