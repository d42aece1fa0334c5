"""Figure builders of the dashboard, without a browser, on the hand-checked tiny district (tests/fixtures.py)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pandas as pd
import plotly.io as pio
import pytest

from dashboards import figures
from dashboards.i18n import STRINGS, lang_from_search, t
from gridgov import metrics
from gridgov.store import Store
from tests.fixtures import NOW

JUNE = datetime(2026, 6, 1)


def _grids(store: Store) -> pd.DataFrame:
    gdf = store.layout_grids(store.current_layout_id() or 0)
    return pd.DataFrame(gdf.drop(columns="geometry"))


def _june_stats(store: Store, **filters: object) -> pd.DataFrame:
    return store.grid_stats(store.current_layout_id() or 0, start=JUNE, end=NOW, now=NOW, **filters)


def test_geojson_has_one_feature_per_grid_with_rounded_coordinates(tiny_store: Store) -> None:
    gdf = tiny_store.layout_grids(tiny_store.current_layout_id() or 0)
    gj = figures.to_geojson(gdf, id_column="grid_code")
    assert [f["id"] for f in gj["features"]] == ["G1", "G2", "G3", "G4"]
    coords = json.loads(json.dumps(gj))["features"][0]["geometry"]["coordinates"][0]
    assert all(round(c, 6) == c for xy in coords for c in xy)
    assert all(len(repr(c).split(".")[1]) <= 6 for xy in coords for c in xy)


def test_geojson_refuses_projected_coordinates(tiny_store: Store) -> None:
    gdf = tiny_store.layout_grids(tiny_store.current_layout_id() or 0).to_crs(32651)
    with pytest.raises(ValueError, match="EPSG:4326"):
        figures.to_geojson(gdf, id_column="grid_code")


def test_density_frame_matches_metrics_and_hand_values(tiny_store: Store) -> None:
    grids = _grids(tiny_store)
    stats = _june_stats(tiny_store)
    frame = figures.density_frame(grids, stats, basis="km2")
    assert frame["grid_code"].tolist() == ["G1", "G2", "G3", "G4"]
    # June: G1 ids 1+2, G2 id3, G3 id4 (id5 is April), G4 id6; every grid is 20,000 m² = 0.02 km².
    assert frame["reported"].tolist() == [2, 1, 1, 1]
    assert frame["density"].tolist() == pytest.approx([100.0, 50.0, 50.0, 50.0])
    expected = metrics.density(frame["reported"], area_m2=frame["area_m2"], population=frame["population"])
    assert frame["density"].tolist() == pytest.approx(expected.tolist())


def test_map_has_one_location_per_grid_and_z_is_the_density(tiny_store: Store) -> None:
    grids = _grids(tiny_store)
    gdf = tiny_store.layout_grids(tiny_store.current_layout_id() or 0)
    geojson = figures.to_geojson(gdf, id_column="grid_code")
    frame = figures.density_frame(grids, _june_stats(tiny_store), basis="residents")
    layers = figures.boundary_layers(grids_source="/geo/grids.geojson", communities_source="/geo/c.geojson",
                                     streets_source="/geo/s.geojson")
    fig = figures.density_map(geojson, frame, basis="residents", view=figures.map_view(tiny_store.district_bounds()),
                              layers=layers)
    assert len(fig.data) == 1
    trace = fig.data[0]
    assert trace.type == "choroplethmap"
    assert list(trace.locations) == ["G1", "G2", "G3", "G4"]
    assert len(trace.geojson["features"]) == 4
    # Per 1,000 residents: G1 2/600, G2 1/300, G3 has no residents (no colour), G4 1/60.
    expected = metrics.density(frame["reported"], area_m2=frame["area_m2"], population=frame["population"],
                               basis="residents")
    assert trace.z[2] is None and math.isnan(expected.iloc[2])
    assert [trace.z[i] for i in (0, 1, 3)] == pytest.approx([expected.iloc[i] for i in (0, 1, 3)])
    assert [trace.z[i] for i in (0, 1, 3)] == pytest.approx([2 / 600 * 1000, 1 / 300 * 1000, 1 / 60 * 1000])
    assert trace.customdata[2][1] == t("no_residents")
    # Hover: what no filter changes (community, households) is the text; this window's count and density the data.
    assert [s.split("<br>")[0] for s in trace.text] == grids["community_code"].tolist()
    assert [s.split("<br>")[1] for s in trace.text] == [f"Households: {h:,}" for h in grids["households"]]
    assert [row[0] for row in trace.customdata] == ["2", "1", "1", "1"]
    assert trace.customdata[0][1] == figures.fmt_num(2 / 600 * 1000)
    assert "%{text}" in trace.hovertemplate and "%{customdata[1]}" in trace.hovertemplate
    assert fig.layout.map.style == "white-bg"
    assert len(fig.layout.map.layers) == 5
    assert fig.layout.map.layers[figures.LAYER_BASEMAP].visible is False
    assert fig.layout.map.layers[figures.LAYER_STREETS].line.width > fig.layout.map.layers[
        figures.LAYER_COMMUNITIES].line.width
    pio.to_json(fig, validate=True)  # serialisable as Dash will send it


def test_map_as_dict_sends_the_same_json_as_the_figure(tiny_store: Store) -> None:
    # The Overview hands dcc.Graph the dict form (written ~10x faster by Dash); the browser must get the same map.
    from plotly.io.json import to_json_plotly

    gdf = tiny_store.layout_grids(tiny_store.current_layout_id() or 0)
    geojson = figures.to_geojson(gdf, id_column="grid_code")
    before = json.dumps(geojson)
    frame = figures.density_frame(_grids(tiny_store), _june_stats(tiny_store), basis="km2")
    kwargs = {"lang": "zh", "view": figures.map_view(tiny_store.district_bounds()),
              "layers": figures.boundary_layers(grids_source="/geo/g.geojson", communities_source="/geo/c.geojson",
                                                streets_source="/geo/s.geojson")}
    as_dict = figures.density_map_dict(geojson, frame, **kwargs)
    as_figure = figures.density_map(geojson, frame, **kwargs)
    assert json.loads(to_json_plotly(as_dict)) == json.loads(to_json_plotly(as_figure))
    assert json.loads(to_json_plotly(as_dict))["data"][0]["geojson"] == json.loads(before)
    assert json.dumps(geojson) == before, "the context's GeoJSON is shared by every page and must not change"


def test_geojson_arrays_keep_every_ring_and_refuse_other_geometries() -> None:
    from plotly.io.json import to_json_plotly

    square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    hole = [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.2]]
    gj = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "A", "properties": {}, "geometry": {"type": "Polygon",
                                                                      "coordinates": [square, hole]}},
        {"type": "Feature", "id": "B", "properties": {}, "geometry": {
            "type": "MultiPolygon", "coordinates": [[square], [[[5.5, 5.5], [6.0, 5.5], [6.0, 6.0], [5.5, 5.5]]]]}},
    ]}
    arrays = figures.geojson_arrays(gj)
    assert arrays["features"][0]["geometry"]["coordinates"][1].shape == (4, 2)
    assert json.loads(to_json_plotly(arrays)) == gj
    point = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "P", "properties": {}, "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}}]}
    with pytest.raises(ValueError, match="Point for feature 'P'"):
        figures.geojson_arrays(point)


def test_context_cache_builds_once_per_context(tiny_store: Store) -> None:
    from dashboards.context import load_context
    from gridgov.config import Settings

    settings = Settings(db_path=tiny_store.location, now=NOW)
    ctx = load_context(settings, tiny_store)
    built: list[str] = []
    first = ctx.cached(("map", "en"), lambda: built.append("en") or {"lang": "en"})
    assert ctx.cached(("map", "en"), lambda: built.append("again") or {}) is first
    assert ctx.cached(("map", "zh"), lambda: built.append("zh") or {"lang": "zh"}) == {"lang": "zh"}
    assert built == ["en", "zh"]
    # A reloaded context (after the current layout changed) starts empty: nothing of the old layout survives.
    fresh = load_context(settings, tiny_store, revision=1)
    assert fresh.cached(("map", "en"), lambda: {"lang": "en", "new": True}) == {"lang": "en", "new": True}


def test_basemap_layers_are_tiles_under_the_offline_style() -> None:
    blank = figures.basemap_layer("blank")
    assert blank["visible"] is False and blank["below"] == "traces"
    osm = figures.basemap_layer("open-street-map")
    assert osm["visible"] is True and osm["sourcetype"] == "raster"
    assert all(url.startswith("https://") and "{z}" in url for url in osm["source"])
    with pytest.raises(ValueError, match="basemap"):
        figures.basemap_layer("satellite")


def test_grids_outside_the_chosen_area_get_no_colour(tiny_store: Store) -> None:
    grids = _grids(tiny_store)
    in_area = grids["community_code"] == "990100001002"
    frame = figures.density_frame(grids, _june_stats(tiny_store), in_area=in_area)
    values = figures.density_trace_values(frame, basis="km2")
    assert values["z"][:2] == [None, None]
    assert values["z"][2:] == pytest.approx([50.0, 50.0])
    assert values["zmin"] == 0.0 and values["zmax"] == pytest.approx(50.0)


def test_colour_range_caps_at_the_95th_percentile() -> None:
    dens = pd.Series([1.0] * 99 + [1000.0])
    lo, hi = figures.color_range(dens)
    assert lo == 0.0 and hi < 100.0
    assert figures.color_range(pd.Series([0.0, 0.0])) == (0.0, 1.0)
    assert figures.color_range(pd.Series([float("nan")])) == (0.0, 1.0)


def test_kpi_cards_show_the_hand_computed_figures(tiny_store: Store) -> None:
    frame = figures.density_frame(_grids(tiny_store), _june_stats(tiny_store))
    items = {i["key"]: i for i in figures.kpi_items(metrics.kpis(frame), window_days=9.5)}
    # Open: id3, id4; overdue: id3; closed in June: id1 (on time), id2 (late), id6 (on time).
    assert items["open"]["value"] == "2"
    assert items["overdue"]["value"] == "1" and items["overdue"]["tone"] == "alert"
    assert items["overdue"]["note"] == "50.0% of open cases"
    assert items["reported"]["value"] == "5"
    assert items["on_time"]["value"] == "66.7%"
    assert items["on_time"]["note"] == "of 3 closed in window"


def test_kpi_placeholders_show_no_numbers() -> None:
    items = figures.kpi_placeholders("en")
    assert [i["key"] for i in items] == ["open", "overdue", "reported", "on_time"]
    assert {i["value"] for i in items} == {"—"}


def test_kpi_cards_filter_by_class(tiny_store: Store) -> None:
    frame = figures.density_frame(_grids(tiny_store), _june_stats(tiny_store, klass="component"))
    items = {i["key"]: i["value"] for i in figures.kpi_items(metrics.kpis(frame), window_days=9.5)}
    # Components in June: only the street light id4 (open, not overdue).
    assert items == {"open": "1", "overdue": "0", "reported": "1", "on_time": "—"}


def test_empty_data_gives_zeros_and_empty_states(tiny_store: Store) -> None:
    grids = _grids(tiny_store)
    # No incident of this category at all: grid_stats returns no rows.
    empty = _june_stats(tiny_store, categories=["bench"])
    assert empty.empty
    frame = figures.density_frame(grids, empty)
    assert frame["reported"].tolist() == [0, 0, 0, 0]
    values = figures.density_trace_values(frame, basis="km2")
    assert values["z"] == [0.0, 0.0, 0.0, 0.0] and (values["zmin"], values["zmax"]) == (0.0, 1.0)
    items = {i["key"]: i for i in figures.kpi_items(metrics.kpis(frame), window_days=31, lang="zh")}
    assert [items[k]["value"] for k in ("open", "overdue", "reported", "on_time")] == ["0", "0", "0", "—"]
    assert items["on_time"]["note"] == t("kpi_on_time_none", "zh")
    bar = figures.category_bar(pd.DataFrame(columns=["code", "name_zh", "name_en", "n"]))
    assert len(bar.data) == 0 and bar.layout.annotations[0].text == t("empty_window")
    assert figures.open_case_rows(pd.DataFrame(), now=NOW) == []


def test_category_bar_puts_the_most_frequent_on_top(tiny_store: Store) -> None:
    counts = tiny_store.grid_category_counts(tiny_store.current_layout_id() or 0, "G1", start=JUNE, end=NOW)
    counts = pd.concat([counts, pd.DataFrame([{"code": "noise", "name_zh": "噪声扰民", "name_en": "Noise nuisance",
                                               "class": "event", "n": 7}])], ignore_index=True)
    fig = figures.category_bar(counts, lang="en")
    assert list(fig.data[0].y) == ["Exposed garbage", "Noise nuisance"]  # drawn bottom-up: last is on top
    assert list(fig.data[0].x) == [2, 7]
    assert figures.category_bar(counts, lang="zh").data[0].y[-1] == "噪声扰民"


def test_open_cases_sorted_by_due_time_with_overdue_flag(tiny_store: Store) -> None:
    layout_id = tiny_store.current_layout_id() or 0
    g2 = figures.open_case_rows(tiny_store.grid_open_cases(layout_id, "G2"), now=NOW)
    assert [(r["case"], r["due"], r["overdue"]) for r in g2] == [("T3", "2026-06-09 17:00", True)]
    assert g2[0]["left"] == "overdue 19 h"
    g3 = figures.open_case_rows(tiny_store.grid_open_cases(layout_id, "G3"), now=NOW)
    assert g3[0]["overdue"] is False and g3[0]["left"] == "in 46 h"
    cases = pd.DataFrame({
        "incident_id": [1, 2], "external_id": [None, "B"], "name_zh": ["甲", "乙"], "name_en": ["A", "B"],
        "status": ["reported", "handled"], "due_at": [NOW + timedelta(days=3), NOW - timedelta(hours=2)],
    })
    rows = figures.open_case_rows(cases, now=NOW, lang="zh")
    assert [r["case"] for r in rows] == ["B", "#1"]
    assert rows[0]["left"] == "超期 2 小时" and rows[1]["left"] == "剩余 3 天"
    assert g2[0]["just_overdue"] is False and rows[0]["just_overdue"] is False  # 19 h and 2 h ago
    # Half an hour past its deadline, B has just become overdue: the case list flags it.
    fresh = figures.open_case_rows(cases, now=NOW - timedelta(hours=1, minutes=30), lang="en")
    assert [r["just_overdue"] for r in fresh] == [True, False]
    assert rows[0]["status"] == "已处置"


def test_map_view_fits_the_bounds() -> None:
    bounds = (121.40, 31.20, 121.45, 31.23)
    view = figures.map_view(bounds)
    assert view["center"]["lon"] == pytest.approx(121.425)
    assert 31.20 < view["center"]["lat"] < 31.23
    assert 12 < view["zoom"] < 15
    assert figures.map_view(bounds, width_px=1320, height_px=1160)["zoom"] == pytest.approx(view["zoom"] + 1, abs=0.01)
    assert figures.map_view(None)["zoom"] == 1.0


def test_window_bounds() -> None:
    assert figures.window_bounds("7", None, None, now=NOW) == (NOW - timedelta(days=7), NOW)
    assert figures.window_bounds(None, None, None, now=NOW) == (NOW - timedelta(days=30), NOW)
    assert figures.window_bounds("custom", "2026-05-01", "2026-05-31", now=NOW) == (
        datetime(2026, 5, 1), datetime(2026, 6, 1))
    # A custom range reaching today stops at now.
    assert figures.window_bounds("custom", "2026-06-01", "2026-06-10", now=NOW) == (datetime(2026, 6, 1), NOW)


def test_formatting() -> None:
    assert figures.fmt_int(1234567) == "1,234,567"
    assert figures.fmt_int(None) == "—"
    assert figures.fmt_num(12345.678) == "12,345.7"
    assert figures.fmt_pct(0.8766) == "87.7%"
    assert figures.bilingual("井盖", "Manhole cover") == "井盖 / Manhole cover"
    assert figures.bilingual("井盖", float("nan")) == "井盖"  # type: ignore[arg-type]


def test_every_string_has_both_languages() -> None:
    for key, entry in STRINGS.items():
        assert set(entry) == {"en", "zh"}, key
    assert lang_from_search("?lang=zh") == "zh"
    assert lang_from_search("?x=1") == "en"
