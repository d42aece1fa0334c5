"""Builders of the Staffing & coverage page, without a browser, on a hand-made three-grid district.

Grids (default :class:`gridgov.staffing.StaffingParams`)::

    A  250,000 m², 1,000 households, 91 h of incidents in 13 weeks → 7 + 16 + 3.75 = 26.75 h/week
    B  100,000 m²,     0 households, no incidents                  → 4 h/week (patrol only)
    C   50,000 m²,   200 households, no incidents                  → 2 + 1.2 + 0.75 = 3.95 h/week

Workers: W1 40 h (primary of A and B, so 20 h each), W2 20 h (no grid), W3 40 h inactive (primary of C, so C is
uncovered).

The last tests call the page's layout and callbacks in-process on a copy of the small demo: the shared initial map
and the auto-assign messages in the page's language.
"""

from __future__ import annotations

import json
import shutil
import string
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.io.json import to_json_plotly

from dashboards import figures, ids
from dashboards import staffing_figures as sf
from dashboards.i18n import STRINGS, t
from gridgov import staffing, workers
from gridgov.config import Settings
from tests.dash_calls import call_as_triggered, texts

PARAMS = staffing.StaffingParams()
GRIDS = pd.DataFrame({
    "grid_code": ["A", "B", "C"], "community_code": ["c1", "c1", "c2"], "street_code": ["s1", "s1", "s2"],
    "area_m2": [250_000.0, 100_000.0, 50_000.0], "households": [1000, 0, 200],
})
ROSTER = pd.DataFrame({
    "worker_id": ["W1", "W2", "W3"], "name": ["Ann", "Bo", "Cy"], "hours_per_week": [40.0, 20.0, 40.0],
    "base_community": ["c1", "c1", "c2"], "active": [True, True, False],
})
ROWS = [
    {"grid_code": "A", "worker_id": "W1", "role": "primary", "manual": False},
    {"grid_code": "B", "worker_id": "W1", "role": "primary", "manual": False},
    {"grid_code": "C", "worker_id": "W3", "role": "primary", "manual": True},
]
NAMES = {"W1": "Ann", "W2": "Bo", "W3": "Cy"}


def _report(rows: list[dict[str, object]] = ROWS) -> staffing.StaffingReport:
    demand = staffing.grid_demand(GRIDS, pd.Series({"A": 91.0}), PARAMS)
    return staffing.report(demand, sf.assignments_frame(rows), ROSTER, PARAMS,
                           incidents=pd.Series({"A": 30, "B": 0, "C": 5}))


# -- working copy of assignments ------------------------------------------------------------------------------
def test_grid_workers_reads_primary_and_sorted_backups() -> None:
    rows = [*ROWS, {"grid_code": "A", "worker_id": "W3", "role": "backup", "manual": False},
            {"grid_code": "A", "worker_id": "W2", "role": "backup", "manual": False}]
    assert sf.grid_workers(rows, "A") == ("W1", ["W2", "W3"])
    assert sf.grid_workers(rows, "Z") == (None, [])


def test_set_grid_workers_replaces_one_grid_marks_it_manual_and_keeps_the_rest() -> None:
    new = sf.set_grid_workers(ROWS, "B", "W2", ["W1", "W2"])
    assert [r for r in new if r["grid_code"] != "B"] == [r for r in ROWS if r["grid_code"] != "B"]
    # The primary is not also a backup of the same grid.
    assert [(r["worker_id"], r["role"], r["manual"]) for r in new if r["grid_code"] == "B"] == [
        ("W2", "primary", True), ("W1", "backup", True)]
    assert sf.changed_grids(ROWS, new) == ["B"]


def test_set_grid_workers_without_a_change_returns_equal_rows() -> None:
    assert sf.set_grid_workers(ROWS, "A", "W1", []) == ROWS
    cleared = sf.set_grid_workers(ROWS, "A", None, [])
    assert [r["grid_code"] for r in cleared] == ["B", "C"]
    assert sf.changed_grids(ROWS, cleared) == ["A"]


def test_changed_grids_ignores_row_order_and_sees_role_changes() -> None:
    assert sf.changed_grids(ROWS, list(reversed(ROWS))) == []
    swapped = [dict(ROWS[0], role="backup"), *ROWS[1:]]
    assert sf.changed_grids(ROWS, swapped) == ["A"]


def test_assignment_rows_round_trip_through_a_frame() -> None:
    frame = sf.assignments_frame(list(reversed(ROWS)))
    assert list(frame.columns) == ["grid_code", "worker_id", "role", "manual"]
    assert sf.assignment_rows(frame) == ROWS
    assert sf.assignment_rows(frame.iloc[0:0]) == []


# -- map ------------------------------------------------------------------------------------------------------
def test_gap_trace_colours_covered_grids_in_the_area_by_gap_share() -> None:
    table = _report().table
    # A: 26.75 demand, 20 supply → gap 6.75, share 0.2523 (short); B: 4 − 20 = −16, share −4 (surplus); C uncovered.
    assert table["gap_hours"].tolist() == pytest.approx([6.75, -16.0, 3.95])
    values = sf.gap_trace_values(table, in_area=[True, True, True], community_names={"c1": "One"},
                                 worker_names=NAMES)
    assert values["z"][0] == pytest.approx(6.75 / 26.75)
    assert values["z"][1] == pytest.approx(-4.0)  # beyond the scale: drawn in the deepest blue
    assert values["z"][2] is None, "an uncovered grid is drawn by the uncovered trace, not coloured"
    assert (values["zmin"], values["zmax"]) == (-sf.GAP_LIMIT, sf.GAP_LIMIT)
    assert values["customdata"][0][:6] == ["One", "26.8", "20.0", "+6.8", "Short", "Ann"]
    assert values["customdata"][2][4] == "Uncovered"
    outside = sf.gap_trace_values(table, in_area=[False, True, True])
    assert outside["z"][0] is None


def test_uncovered_trace_lists_uncovered_grids_in_the_area() -> None:
    table = _report().table
    assert sf.uncovered_values(table, in_area=[True, True, True]) == {"locations": ["C"], "z": [1.0]}
    assert sf.uncovered_values(table, in_area=[True, True, False]) == {"locations": [], "z": []}


def test_staffing_map_is_offline_with_gap_and_uncovered_traces() -> None:
    table = _report().table
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": c, "properties": {}, "geometry": {"type": "Point", "coordinates": [0, 0]}}
        for c in "ABC"]}
    layers = sf.staffing_layers(grids_source="/geo/grids.geojson", communities_source="/geo/c.geojson",
                                streets_source="/geo/s.geojson")
    mask = [True, True, True]
    fig = sf.staffing_map(geojson, ["A", "B", "C"], uncovered_geojson="/geo/grids.geojson",
                          values=sf.gap_trace_values(table, in_area=mask),
                          uncovered=sf.uncovered_values(table, in_area=mask), layers=layers, lang="zh")
    assert isinstance(fig, go.Figure) and len(fig.data) == 2
    gap, unc = fig.data
    assert gap.type == unc.type == "choroplethmap"
    assert list(gap.locations) == ["A", "B", "C"] and gap.colorbar.orientation == "h"
    assert list(unc.locations) == ["C"] and unc.showlegend and unc.name == t("st_legend_uncovered", "zh")
    assert unc.geojson == "/geo/grids.geojson" and unc.marker.line.width >= 2
    assert fig.layout.map.style == "white-bg"
    assert len(fig.layout.map.layers) == sf.LAYER_WORKER + 1


def test_empty_map_has_no_colours_yet() -> None:
    fig = sf.staffing_map({"type": "FeatureCollection", "features": []}, ["A", "B"], uncovered_geojson="/x")
    assert list(fig.data[0].z) == [None, None]
    assert list(fig.data[1].locations) == []


# -- table ----------------------------------------------------------------------------------------------------
def test_table_rows_round_numbers_add_case_counts_and_mark_unsaved_grids() -> None:
    table = _report().table
    stats = pd.DataFrame({"grid_code": ["A"], "open": [4], "overdue": [1]})
    rows = sf.table_rows(table, stats, lang="zh", community_names={"c1": "一社区"}, worker_names=NAMES, edited=["B"])
    assert [r["id"] for r in rows] == ["A", "B", "C"]
    a, b, c = rows
    assert set(a) >= set(sf.TABLE_COLUMNS)
    assert (a["demand"], a["supply"], a["gap"], a["fte"]) == (26.8, 20.0, 6.8, 0.17)
    assert (a["open"], a["overdue"], b["open"]) == (4, 1, 0)
    assert a["primary"] == "Ann (W1)" and a["community"] == "一社区" and c["community"] == "c2"
    assert c["primary"] == "—", "an inactive primary supplies nothing: the grid has no primary worker"
    assert (a["status"], b["status"], c["status"]) == ("人手不足", "人手富余", "无人负责")
    assert (a["edited"], b["edited"]) == ("", "●")
    assert [spec["id"] for spec in sf.table_columns("zh")] == list(sf.TABLE_COLUMNS)


def test_changed_rows_gives_only_differing_rows_or_none_when_rows_moved() -> None:
    old = [{"id": "A", "gap": 1.0}, {"id": "B", "gap": 2.0}]
    assert sf.changed_rows(old, [{"id": "A", "gap": 1.0}, {"id": "B", "gap": 3.0}]) == {1: {"id": "B", "gap": 3.0}}
    assert sf.changed_rows(old, old) == {}
    assert sf.changed_rows(old, list(reversed(old))) is None
    assert sf.changed_rows(None, old) is None


def test_changed_positions_of_map_values() -> None:
    assert sf.changed_positions([1, None, 3], [1, 2, 3]) == [1]
    assert sf.changed_positions([1, 2], [1, 2]) == []
    assert sf.changed_positions([1, 2], [1, 2, 3]) is None
    assert sf.changed_positions(None, [1]) is None


def test_reassignment_changes_the_gap_the_table_shows() -> None:
    # W2 (20 h, no grid) takes uncovered C: C gets 20 h of supply against 3.95 of demand.
    rows = sf.set_grid_workers(ROWS, "C", "W2", [])
    before = sf.table_rows(_report().table, worker_names=NAMES)
    after = sf.table_rows(_report(rows).table, worker_names=NAMES, edited=sf.changed_grids(ROWS, rows))
    diff = sf.changed_rows(before, after)
    assert diff is not None and list(diff) == [2]
    assert (diff[2]["gap"], diff[2]["status_key"], diff[2]["primary"]) == (-16.1, "over", "Bo (W2)")


# -- KPI cards and workers ------------------------------------------------------------------------------------
def test_kpi_items_follow_the_report() -> None:
    rep = _report()
    items = {i["key"]: i for i in sf.kpi_items(rep.coverage, rep.totals, need_workers=rep.need.workers,
                                                 need_hours=rep.need.hours, overloaded=1, active=2, band=0.1)}
    assert items["coverage"]["value"] == "66.7%" and items["coverage"]["tone"] == "alert"
    # Shortfalls only: A 6.75 + C 3.95 = 10.7 h; B's 16 h surplus is not netted against them.
    assert items["gap"]["value"] == "11 h" and "16 h surplus" in items["gap"]["note"]
    assert items["hire"]["value"] == str(rep.need.workers)
    assert items["overloaded"]["value"] == "1" and items["overloaded"]["tone"] == "alert"
    calm = sf.kpi_items({"grids": 1.0}, {"gap_hours": 0.0}, need_workers=0, need_hours=0.0, overloaded=0,
                        active=3, band=0.1)
    assert all(i["tone"] == "good" for i in calm)
    assert all(i["value"] == "—" for i in sf.kpi_placeholders("zh"))


def test_worker_options_list_least_loaded_first_with_their_load() -> None:
    loads = _report().workers
    options = sf.worker_options(loads)
    assert [o["value"] for o in options] == ["W2", "W1"], "inactive W3 is not offered; free W2 first"
    assert options[0]["label"].endswith(t("st_worker_free"))
    # W1 carries all of A and B: 30.75 h on 40 h.
    assert "76.9%" in options[1]["label"] and "2 grid(s)" in options[1]["label"]
    overloaded = loads.assign(overloaded=loads["worker_id"] == "W1")
    assert sf.worker_options(overloaded)[1]["label"].endswith("⚠")
    assert sf.worker_options(loads.iloc[0:0]) == []


def test_demand_supply_bar_stacks_the_three_demand_parts() -> None:
    row = _report().table.loc["A"].to_dict()
    fig = sf.demand_supply_bar(row, lang="en")
    assert [b.x[0] for b in fig.data] == pytest.approx([7.0, 16.0, 3.75, 20.0])
    assert fig.layout.barmode == "stack"


def test_every_staffing_string_has_both_languages() -> None:
    keys = [k for k in STRINGS if k.startswith("st_") or k == "nav_staffing"]
    assert len(keys) > 50
    for key in keys:
        assert STRINGS[key].get("en") and STRINGS[key].get("zh"), key
    for status in sf.STATUSES:
        assert sf.status_label(status, "zh") != sf.status_label(status, "en")


def test_every_auto_assign_message_has_a_translation_with_the_libraries_english() -> None:
    fields = string.Formatter()
    for code, english in workers.MESSAGE_TEXTS.items():
        entry = STRINGS[f"st_auto_msg_{code}"]
        assert entry["en"] == english, code
        assert {f for _, f, _, _ in fields.parse(entry["zh"]) if f} == {f for _, f, _, _ in fields.parse(english) if f}
    assert not {k for k in STRINGS if k.startswith("st_auto_msg_")} - {f"st_auto_msg_{c}" for c in
                                                                        workers.MESSAGE_TEXTS}


def test_staffing_map_dict_is_the_figure_as_json_with_a_view_per_request() -> None:
    square = [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": c, "properties": {}, "geometry": {"type": "Polygon", "coordinates": square}}
        for c in "AB"]}
    layers = sf.staffing_layers(grids_source="/g", communities_source="/c", streets_source="/s")
    view = {"center": {"lon": 0.5, "lat": 0.5}, "zoom": 9.0}
    shared = sf.staffing_map_dict(geojson, ["A", "B"], uncovered_geojson="/g", lang="zh", view=view, layers=layers)
    fig = sf.staffing_map(geojson, ["A", "B"], uncovered_geojson="/g", lang="zh", view=view, layers=layers)
    assert json.loads(to_json_plotly(shared)) == json.loads(to_json_plotly(fig))
    before = json.loads(to_json_plotly(shared))
    near = figures.with_map_view(shared, {"center": {"lon": 0.2, "lat": 0.1}, "zoom": 12.0}, uirevision="area:s1")
    assert near["layout"]["map"]["center"] == {"lon": 0.2, "lat": 0.1} and near["layout"]["map"]["zoom"] == 12.0
    assert near["layout"]["map"]["uirevision"] == "area:s1" and near["data"] is shared["data"]
    assert json.loads(to_json_plotly(shared)) == before, "the shared figure is not modified"


# -- the page, in-process on the small demo -------------------------------------------------------------------
@pytest.fixture
def demo_app(small_demo_db: Path, tmp_path: Path) -> Iterator[dash.Dash]:
    from dashboards.app import create_app
    from dashboards.context import get_context

    db = tmp_path / "demo.duckdb"
    shutil.copy2(small_demo_db, db)
    app = create_app(Settings(db_path=db, now=datetime(2026, 7, 1, 9)))
    yield app
    get_context().store.close()


def _graph(component: Any, cid: str) -> Any:
    if getattr(component, "id", None) == cid:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and (found := _graph(child, cid)) is not None:
            return found
    return None


def _old_initial_map(lang: str, street: str | None) -> go.Figure:
    """How the page built its map before it was shared: a ``go.Figure`` per load."""
    from dashboards.context import get_context

    app_ctx, page = get_context(), sys.modules["dashboards.pages.staffing"]
    grids_url = dash.get_relative_path(app_ctx.geo_path("grids"))
    layers = sf.staffing_layers(grids_source=grids_url,
                                communities_source=dash.get_relative_path(app_ctx.geo_path("communities")),
                                streets_source=dash.get_relative_path(app_ctx.geo_path("streets")))
    bounds = app_ctx.area_bounds.get(street) if street else app_ctx.bounds
    fig = sf.staffing_map(app_ctx.grid_geojson, app_ctx.grids["grid_code"].astype(str).tolist(),
                          uncovered_geojson=grids_url, lang=lang, view=page._view(bounds), layers=layers)
    fig.update_layout(map={"uirevision": f"area:{street or ''}"})
    return fig


def test_page_map_is_built_once_per_context_and_language(demo_app: dash.Dash,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.context import get_context, reload_context

    page = sys.modules["dashboards.pages.staffing"]
    built: list[str] = []
    real = page.staffing_map_dict
    monkeypatch.setattr(page, "staffing_map_dict",
                        lambda *a, **k: built.append(k["lang"]) or real(*a, **k))
    street = str(get_context().streets["code"].iloc[0])
    en = _graph(page.layout(lang="en"), ids.ST_MAP).figure
    en_street = _graph(page.layout(lang="en", street=street), ids.ST_MAP).figure
    zh = _graph(page.layout(lang="zh"), ids.ST_MAP).figure
    assert built == ["en", "zh"]
    assert en_street["data"] is en["data"], "the polygons are shared between loads"
    # What the browser receives is what the per-load go.Figure gave, view and all.
    for fig, lang, st in ((en, "en", None), (en_street, "en", street), (zh, "zh", None)):
        assert json.loads(to_json_plotly(fig)) == json.loads(to_json_plotly(_old_initial_map(lang, st))), (lang, st)
    assert en_street["layout"]["map"]["uirevision"] == f"area:{street}"
    assert en["layout"]["map"]["center"] != en_street["layout"]["map"]["center"]
    # A reloaded context (e.g. after adopting a layout) builds its own.
    reload_context()
    page.layout(lang="en")
    assert built == ["en", "zh", "en"]


def _auto_fill(page: Any, lang: str) -> list[str]:
    base = call_as_triggered(f"{ids.ST_LANG}.data", page._load, lang)
    out = call_as_triggered(f"{ids.ST_AUTO}.n_clicks", page._edit, base, None, None, [], 1, 0, 0, base, None, lang,
                            value=1)
    return texts(out[-1])


def test_auto_fill_messages_in_the_pages_language(demo_app: dash.Dash) -> None:
    from dashboards.context import get_context

    page = sys.modules["dashboards.pages.staffing"]
    store = get_context().store
    # With the whole roster only two notes: what was assigned and the summary, both in view.
    full = _auto_fill(page, "zh")
    assert len(full) == 3 and full[1].startswith("自动分配了 ")
    assert full[2].startswith(("每个网格的工时都在", "合计每周缺"))
    # Half the roster leaves: auto-fill cannot cover the demand and says where hours are missing.
    for worker_id in store.workers()["worker_id"].iloc[::2]:
        workers.deactivate_worker(store, str(worker_id))
    zh, en = _auto_fill(page, "zh"), _auto_fill(page, "en")
    assert len(zh) == len(en) >= 4
    assert zh[0] == t("st_auto_done", "zh", n=zh[0].split()[1]) and zh[1].startswith("自动分配了 ")
    assert en[1].startswith("Assigned ") and en[2].startswith("In all, ")
    assert zh[2].startswith("合计每周缺") and any(line.startswith("工时不足：") for line in zh)
    # Not a word of the library's English on the Chinese page (grid codes and numbers are no words).
    english = [line for line in zh if any(w in line for w in ("Assigned", "Not enough", "grid(s)", "h/week", "hire"))]
    assert english == []
    # A community is named in the page's language, not by the bilingual label.
    comms = get_context().communities
    for lang, lines, names in (("zh", zh, comms["name"]), ("en", en, comms["name_en"])):
        mentioned = [n for n in names if any(n in line for line in lines)]
        labels = [lab for lab in comms["label"] if " / " in lab and any(lab in line for line in lines)]
        assert mentioned and labels == [], lang
