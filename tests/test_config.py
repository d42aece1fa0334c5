"""Settings from the environment and a TOML file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from gridgov.config import DEFAULT_DB, Settings, WorkCalendar
from gridgov.errors import InputError


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GRIDGOV_DB", "GRIDGOV_CONFIG", "GRIDGOV_NOW"):
        monkeypatch.delenv(var, raising=False)
    s = Settings.from_env()
    assert s.db_path == DEFAULT_DB
    assert (s.host, s.port) == ("127.0.0.1", 8050)
    assert s.calendar == WorkCalendar()


def test_env_and_argument_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDGOV_DB", str(tmp_path / "env.duckdb"))
    monkeypatch.setenv("GRIDGOV_NOW", "2026-06-30T18:00")
    assert Settings.from_env().db_path == tmp_path / "env.duckdb"
    assert Settings.from_env().clock() == datetime(2026, 6, 30, 18, 0)
    assert Settings.from_env(db_path=tmp_path / "arg.duckdb").db_path == tmp_path / "arg.duckdb"


def test_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "city.toml"
    cfg.write_text('standard_week_hours = 37.5\n[calendar]\nday_start = "08:30"\nday_end = "17:30"\n'
                   'holidays = ["2026-10-01"]\n', encoding="utf-8")
    monkeypatch.setenv("GRIDGOV_CONFIG", str(cfg))
    monkeypatch.delenv("GRIDGOV_DB", raising=False)
    s = Settings.from_env()
    assert s.standard_week_hours == 37.5
    assert s.calendar.day_minutes == 9 * 60 and s.calendar.holidays == ("2026-10-01",)
    cfg.write_text("colour = 'red'\n", encoding="utf-8")
    with pytest.raises(InputError, match="colour"):
        Settings.from_env()


def test_bad_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDGOV_NOW", "yesterday")
    with pytest.raises(InputError, match="GRIDGOV_NOW"):
        Settings.from_env()
    with pytest.raises(InputError, match="port"):
        Settings(port=0)
