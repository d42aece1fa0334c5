"""The Overview page in a real headless Chromium: map, KPIs, a filter change, a grid click, screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dashboards import ids
from dashboards.figures import BASEMAPS
from gridgov.store import Store
from tests.browser.conftest import DEMO_NOW, Server, console_errors, login, save_screenshot, wait_for

pytestmark = pytest.mark.browser

# Summary of the density trace as the browser holds it (after Dash applied every Patch).
_FIGURE_JS = """
const gd = document.querySelector('#ov-map .js-plotly-plot');
if (!gd || !gd.data || !gd._fullLayout) { return null; }
const tr = gd.data[0];
return {
  type: tr.type,
  locations: tr.locations,
  feature_ids: (tr.geojson && tr.geojson.features) ? tr.geojson.features.map(f => f.id) : null,
  colored: (tr.z || []).filter(v => v !== null && v !== undefined).length,
  style: gd._fullLayout.map ? gd._fullLayout.map.style : null,
  layers: gd.layout.map && gd.layout.map.layers ? gd.layout.map.layers.length : 0,
};
"""
_CANVAS_JS = "return document.querySelectorAll('#ov-map canvas.maplibregl-canvas').length;"
# Screen position of a lon/lat on the map, from maplibre's own projection.
_PROJECT_JS = """
const gd = document.querySelector('#ov-map .js-plotly-plot');
const map = gd._fullLayout.map._subplot.map;
const p = map.project([arguments[0], arguments[1]]);
const r = map.getCanvas().getBoundingClientRect();
return [r.left + p.x, r.top + p.y, map.loaded()];
"""


def _kpi(driver: Any, key: str) -> str:
    return driver.find_element("css selector", f"#kpi-{key} .kpi-value").text.strip()


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace("%", "").replace(".", "").isdigit()


def _current_grids(db: Path) -> tuple[list[str], dict[str, tuple[float, float]]]:
    with Store(db, read_only=True) as store:
        layout_id = store.current_layout_id()
        assert layout_id is not None, "the demo database has no current layout"
        grids = store.layout_grids(layout_id)
    points = grids.geometry.representative_point()
    return grids["grid_code"].tolist(), {c: (p.x, p.y) for c, p in zip(grids["grid_code"], points, strict=True)}


def _click_at(driver: Any, x: float, y: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    body = driver.find_element("tag name", "body")
    # Offsets of move_to_element are from the element's centre; the body spans the whole window.
    rect = body.rect
    ActionChains(driver).move_to_element_with_offset(body, int(x - rect["width"] / 2),
                                                     int(y - rect["height"] / 2)).click().perform()


def test_overview_map_filters_and_detail(small_demo_db: Path, demo_server: Server, browser: Any) -> None:
    codes, points = _current_grids(small_demo_db)
    login(browser, demo_server, "manager")
    browser.get(demo_server.url("/"))

    fig = wait_for(browser, lambda d: (f := d.execute_script(_FIGURE_JS)) and f["colored"] > 0 and f,
                   timeout=60, message="the density map with coloured grids")
    assert fig["type"] == "choroplethmap"
    assert len(fig["locations"]) == len(codes), "one polygon per grid of the current layout"
    assert sorted(fig["locations"]) == sorted(codes)
    assert sorted(fig["feature_ids"]) == sorted(codes), "one GeoJSON feature per grid, id = grid code"
    assert fig["style"] == "white-bg", "the default basemap is the offline blank style"
    assert fig["layers"] == 5, "basemap tiles, grid outlines, community and street borders, selection"
    wait_for(browser, lambda d: d.execute_script(_CANVAS_JS) >= 1, message="the maplibre canvas")

    for key in ("open", "overdue", "reported", "on_time"):
        wait_for(browser, lambda d, k=key: _is_number(_kpi(d, k)), message=f"a number in KPI card {key}")
    before = {k: _kpi(browser, k) for k in ("open", "reported")}
    assert int(before["reported"].replace(",", "")) > 0, "the small demo has incidents in the last 30 days"
    wait_for(browser, lambda d: d.execute_script(
        "const m = document.querySelector('#ov-map .js-plotly-plot')._fullLayout.map._subplot.map;"
        "return m.loaded() && m.areTilesLoaded();"), message="the map to finish drawing")
    save_screenshot(browser, "overview.png")

    # An online basemap: with internet its tiles show; without, the page says so and falls back to blank. Either
    # way the map must keep redrawing afterwards (the filter change below checks that).
    browser.find_element("css selector", f"#{ids.OV_BASEMAP} input[value='carto-positron']").click()
    outcome = wait_for(browser, lambda d: ("online" if d.execute_script(
        "return document.querySelector('#ov-map .js-plotly-plot').layout.map.layers[0].visible") is True
        else "offline" if d.find_element("id", ids.OV_BASEMAP_NOTE).text.strip() else None),
        timeout=20, message="the online basemap or the offline note")
    browser.find_element("css selector", f"#{ids.OV_BASEMAP} input[value='blank']").click()
    wait_for(browser, lambda d: d.execute_script(
        "return document.querySelector('#ov-map .js-plotly-plot').layout.map.layers[0].visible") is False,
        message=f"the blank basemap again (after {outcome})")
    wait_for(browser, lambda d: not d.find_element("id", ids.OV_BASEMAP_NOTE).text.strip(),
             message="the offline note to clear once blank is chosen")

    # Filter: events only. Every KPI is for the filtered categories, so the counts must drop.
    browser.find_element("css selector", f"#{ids.OV_CLASS} input[value='event']").find_element(
        "xpath", "./ancestor::label").click()
    wait_for(browser, lambda d: _kpi(d, "reported") != before["reported"], message="the reported KPI to change")
    after = {k: _kpi(browser, k) for k in ("open", "reported")}
    assert int(after["reported"].replace(",", "")) < int(before["reported"].replace(",", ""))
    assert int(after["open"].replace(",", "")) <= int(before["open"].replace(",", ""))

    # Click the grid with the most open cases so the detail panel has a table to show.
    with Store(small_demo_db, read_only=True) as store:
        import datetime as dt

        now = dt.datetime.fromisoformat(DEMO_NOW)
        stats = store.grid_stats(store.current_layout_id() or 0, start=now - dt.timedelta(days=30), end=now,
                                 now=now, klass="event")
    target = str(stats.sort_values(["open", "grid_code"], ascending=[False, True]).iloc[0]["grid_code"])
    lon, lat = points[target]
    x, y, _ = browser.execute_script(_PROJECT_JS, lon, lat)
    _click_at(browser, x, y)
    code = wait_for(browser, lambda d: (els := d.find_elements("css selector", "#ov-detail .detail-code"))
                    and els[0].text.strip(), message="the detail panel after clicking a grid")
    assert code == target, f"clicked {target} at ({x:.0f}, {y:.0f}) but the panel shows {code}"
    wait_for(browser, lambda d: d.find_elements("css selector", "#ov-detail table.cases tbody tr"),
             message="the open-cases table of the clicked grid")
    wait_for(browser, lambda d: d.find_elements("css selector", "#ov-detail .bar-graph .js-plotly-plot"),
             message="the by-category bar chart")
    save_screenshot(browser, "overview-detail.png")

    # The close button empties the panel again.
    browser.find_element("css selector", "#ov-detail .btn-close").click()
    wait_for(browser, lambda d: not d.find_elements("css selector", "#ov-detail .detail-code"),
             message="the detail panel to close")
    # The basemap probe may fail offline; that is expected and handled above.
    probes = [spec["probe"] for spec in BASEMAPS.values() if spec["probe"]]
    severe = [m for m in console_errors(browser) if "favicon" not in m and not any(p in m for p in probes)]
    assert not severe, f"browser console errors: {severe}"


def test_overview_in_chinese(demo_server: Server, browser: Any) -> None:
    login(browser, demo_server, "manager")
    browser.get(demo_server.url("/?lang=zh"))
    wait_for(browser, lambda d: _is_number(_kpi(d, "reported")), timeout=60, message="KPI numbers")
    assert browser.find_element("css selector", "#kpi-open .kpi-label").text.strip() == "在办案件"
    assert browser.find_element("css selector", ".lang-link").text.strip() == "English"
    wait_for(browser, lambda d: d.execute_script(
        "const m = document.querySelector('#ov-map .js-plotly-plot')._fullLayout.map._subplot.map;"
        "return m.loaded() && m.areTilesLoaded();"), message="the map to finish drawing")
    save_screenshot(browser, "overview-zh.png")
