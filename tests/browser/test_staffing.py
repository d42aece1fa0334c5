"""The Staffing & coverage page in headless Chromium: reassign a worker to an uncovered grid, see its gap change in
the table and on the map at once, save, reload, and find the change stored.

The test changes data, so it runs its own server on its own copy of the small demo database.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dashboards import ids
from dashboards.staffing_figures import changed_grids
from gridgov import staffing
from gridgov.store import Store
from tests.browser.conftest import (
    ARTIFACTS,
    CHROMEDRIVER,
    CHROMIUM,
    DEMO_NOW,
    Server,
    console_errors,
    copy_db,
    login,
    pick_option,
    save_screenshot,
    start_server,
    wait_for,
)

pytestmark = pytest.mark.browser

# A component's props as the Dash renderer holds them (after every Patch was applied).
_PROPS_JS = """
const s = window.store && window.store.getState();
if (!s || !s.paths || !s.paths.strs[arguments[0]]) { return null; }
let node = s.layout;
for (const k of s.paths.strs[arguments[0]]) { node = node[k]; }
return node && node.props ? node.props[arguments[1]] : null;
"""
# The two map traces as the browser holds them.
_MAP_JS = """
const gd = document.querySelector('#st-map .js-plotly-plot');
if (!gd || !gd.data || gd.data.length < 2) { return null; }
return {locations: gd.data[0].locations, z: gd.data[0].z, uncovered: gd.data[1].locations || [],
        style: gd._fullLayout.map ? gd._fullLayout.map.style : null, legend: gd.data[1].name,
        showlegend: gd._fullData[1].showlegend};
"""
_MAP_READY_JS = """
const gd = document.querySelector('#st-map .js-plotly-plot');
if (!gd || !gd._fullLayout || !gd._fullLayout.map) { return false; }
const m = gd._fullLayout.map._subplot.map;
return m.loaded() && m.areTilesLoaded();
"""
# Where a lon/lat falls on the map canvas, from maplibre's own projection (pixels from the canvas centre).
_PROJECT_JS = """
const gd = document.querySelector('#st-map .js-plotly-plot');
const map = gd._fullLayout.map._subplot.map;
const p = map.project([arguments[0], arguments[1]]);
const r = map.getCanvas().getBoundingClientRect();
return [p.x - r.width / 2, p.y - r.height / 2];
"""


@dataclass
class _Plan:
    """What the test does and what the library says must follow."""

    grid: str
    worker: str
    point: tuple[float, float]
    gap_before: float
    gap_after: float
    share_after: float
    n_grids: int


def _plan(db: Path) -> _Plan:
    """An uncovered grid of the demo and a free worker; the gap the page must show once they are paired."""
    now = datetime.fromisoformat(DEMO_NOW)
    params = staffing.StaffingParams()
    with Store(db, read_only=True) as store:
        layout_id = store.current_layout_id()
        assert layout_id is not None
        grids = store.layout_grids(layout_id)
        demand, counts = staffing.store_demand(store, layout_id, params=params, now=now)
        roster = store.workers()
        saved = store.assignments(layout_id)[["grid_code", "worker_id", "role", "manual"]]
    before = staffing.report(demand, saved, roster, params, incidents=counts)
    uncovered = before.table[before.table["status"] == "uncovered"]
    assert len(uncovered), "the demo leaves some grids without a primary worker"
    grid = str(uncovered["grid_code"].iloc[0])
    free = before.workers[before.workers["n_grids"] == 0]
    assert len(free), "the demo has active workers without a grid (floaters)"
    worker = str(free["worker_id"].iloc[0])
    edited = pd.concat([saved, pd.DataFrame([{"grid_code": grid, "worker_id": worker, "role": "primary",
                                              "manual": True}])], ignore_index=True)
    after = staffing.report(demand, edited, roster, params, incidents=counts).table.loc[grid]
    assert after["status"] != "uncovered"
    point = grids.loc[grids["grid_code"] == grid].geometry.representative_point().iloc[0]
    return _Plan(grid=grid, worker=worker, point=(point.x, point.y),
                 gap_before=float(uncovered["gap_hours"].iloc[0]), gap_after=float(after["gap_hours"]),
                 share_after=float(after["gap_share"]), n_grids=len(grids))


@pytest.fixture
def own_server(small_demo_db: Path, tmp_path: Path) -> Iterator[Server]:
    """A server on a private copy of the small demo (this test saves assignments)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium/chromedriver not installed (scripts/install-test-deps.sh)")
    server = start_server(copy_db(small_demo_db, tmp_path / "staffing"))
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(server.log, ARTIFACTS / "server-staffing.log")


def _props(driver: Any, component: str, prop: str) -> Any:
    return driver.execute_script(_PROPS_JS, component, prop)


def _row(driver: Any, grid: str) -> dict[str, Any] | None:
    rows = _props(driver, ids.ST_TABLE, "data") or []
    return next((r for r in rows if r.get("id") == grid), None)


def _wait_loaded(driver: Any, n_grids: int) -> None:
    wait_for(driver, lambda d: len(_props(d, ids.ST_TABLE, "data") or []) == n_grids, timeout=60,
             message="the grid table")
    wait_for(driver, lambda d: (m := d.execute_script(_MAP_JS)) and any(v is not None for v in m["z"]),
             message="the gap map with coloured grids")
    wait_for(driver, lambda d: d.execute_script(_MAP_READY_JS), message="the map to finish drawing")


def _click_map(driver: Any, lon: float, lat: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("css selector", "#st-map canvas.maplibregl-canvas")
    # The page is taller than the window: offsets from the canvas itself stay right wherever it is scrolled to.
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
    dx, dy = driver.execute_script(_PROJECT_JS, lon, lat)
    ActionChains(driver).move_to_element_with_offset(canvas, int(dx), int(dy)).click().perform()


def test_reassign_save_and_reload(small_demo_db: Path, own_server: Server, browser: Any) -> None:
    plan = _plan(small_demo_db)
    login(browser, own_server, "manager")
    browser.get(own_server.url("/staffing"))
    _wait_loaded(browser, plan.n_grids)

    fig = browser.execute_script(_MAP_JS)
    assert fig["style"] == "white-bg", "the offline blank basemap"
    assert plan.grid in fig["uncovered"], "the uncovered grid is drawn by the uncovered trace"
    assert fig["showlegend"] and fig["legend"].startswith("Uncovered"), "and named in the legend"
    index = fig["locations"].index(plan.grid)
    assert fig["z"][index] is None, "an uncovered grid has no gap colour of its own"
    row = _row(browser, plan.grid)
    assert row is not None and row["status_key"] == "uncovered"
    assert row["gap"] == pytest.approx(round(plan.gap_before, 1))
    assert row["primary"] == "—"
    assert "clean" in browser.find_element("id", ids.ST_UNSAVED).get_attribute("class")
    assert browser.find_element("id", ids.ST_SAVE).get_attribute("disabled")
    cards = {k: browser.find_element("css selector", f"#st-kpi-{k} .kpi-value").text for k in ("coverage", "gap")}
    assert cards["coverage"].endswith("%") and cards["coverage"] != "100.0%"

    # Pick the grid on the map, then a free worker as its primary.
    _click_map(browser, *plan.point)
    wait_for(browser, lambda d: d.find_element("id", ids.ST_EDITOR).text.strip() == plan.grid,
             message=f"the editor on grid {plan.grid}")
    wait_for(browser, lambda d: _props(d, ids.ST_PRIMARY, "disabled") is False, message="the primary dropdown")
    pick_option(browser, ids.ST_PRIMARY, plan.worker)

    # The table row and the map trace change without a reload.
    row = wait_for(browser, lambda d: (r := _row(d, plan.grid)) and r["status_key"] != "uncovered" and r,
                   message="the grid's row to show its new worker")
    assert row["gap"] == pytest.approx(round(plan.gap_after, 1))
    assert plan.worker in row["primary"]
    assert row["edited"] == "●", "the unsaved row is marked"
    fig = wait_for(browser, lambda d: (m := d.execute_script(_MAP_JS)) and m["z"][index] is not None and m,
                   message="the map colour of the grid")
    assert fig["z"][index] == pytest.approx(plan.share_after)
    assert plan.grid not in fig["uncovered"]
    wait_for(browser, lambda d: "dirty" in d.find_element("id", ids.ST_UNSAVED).get_attribute("class"),
             message="the unsaved-changes banner")
    assert plan.grid in browser.find_element("id", ids.ST_UNSAVED).text
    wait_for(browser, lambda d: d.find_element("css selector", "#st-kpi-coverage .kpi-value").text
             != cards["coverage"], message="the coverage KPI to change")
    wait_for(browser, lambda d: plan.worker in d.find_element("id", ids.ST_DETAIL_BODY).text,
             message="the grid detail listing the new worker")
    wait_for(browser, lambda d: d.execute_script(_MAP_READY_JS), message="the map to finish drawing")
    save_screenshot(browser, "staffing-edit.png")

    browser.find_element("id", ids.ST_SAVE).click()
    wait_for(browser, lambda d: "clean" in d.find_element("id", ids.ST_UNSAVED).get_attribute("class"),
             message="the banner to say all changes are saved")
    wait_for(browser, lambda d: (r := _row(d, plan.grid)) and r["edited"] == "", message="the row mark to clear")

    browser.refresh()
    _wait_loaded(browser, plan.n_grids)
    row = _row(browser, plan.grid)
    assert row is not None and plan.worker in row["primary"], "the saved primary survives a reload"
    assert row["gap"] == pytest.approx(round(plan.gap_after, 1))
    assert plan.grid not in browser.execute_script(_MAP_JS)["uncovered"]
    assert not console_errors(browser), console_errors(browser)

    own_server.stop()
    with Store(own_server.db, read_only=True) as store:
        stored = store.assignments(store.current_layout_id() or 0)
    mine = stored[stored["grid_code"] == plan.grid]
    assert mine[["worker_id", "role"]].values.tolist() == [[plan.worker, "primary"]]
    assert bool(mine["manual"].iloc[0]), "a grid set on the page is kept by automatic assignment"


def test_street_filter_chinese_and_small_screen(small_demo_db: Path, own_server: Server, browser: Any) -> None:
    with Store(small_demo_db, read_only=True) as store:
        grids = store.layout_grids(store.current_layout_id() or 0)
    street = str(grids["street_code"].iloc[0])
    in_street = int((grids["street_code"] == street).sum())
    assert 0 < in_street < len(grids)

    login(browser, own_server, "manager")
    browser.get(own_server.url(f"/staffing?lang=zh&street={street}"))
    _wait_loaded(browser, in_street)
    assert browser.find_element("css selector", "#st-kpi-coverage .kpi-label").text.strip() == "网格覆盖率"
    assert browser.find_element("id", ids.ST_SAVE).text.strip() == "保存"
    switch = browser.find_element("css selector", ".lang-link").get_attribute("href")
    assert "lang=en" in switch and f"street={street}" in switch, "switching language keeps the street"
    fig = browser.execute_script(_MAP_JS)
    outside = [c for c, s in zip(grids["grid_code"], grids["street_code"], strict=True) if s != street]
    locs = fig["locations"]
    assert all(fig["z"][locs.index(c)] is None for c in outside), "grids of other streets are not coloured"
    save_screenshot(browser, "staffing-zh.png")

    # Auto-fill on a street redoes that street's grids only; Discard brings the saved state back.
    browser.find_element("id", ids.ST_AUTO).click()
    wait_for(browser, lambda d: "dirty" in d.find_element("id", ids.ST_UNSAVED).get_attribute("class"),
             message="Auto-fill to leave unsaved changes")
    base, edits = _props(browser, ids.ST_BASE, "data"), _props(browser, ids.ST_EDITS, "data")
    street_of = dict(zip(grids["grid_code"], grids["street_code"], strict=True))
    changed = changed_grids(base, edits)
    assert changed and {street_of[c] for c in changed} == {street}, "only the chosen street's grids change"
    assert "自动补位" in browser.find_element("id", ids.ST_MESSAGE).text
    browser.find_element("id", ids.ST_DISCARD).click()
    wait_for(browser, lambda d: "clean" in d.find_element("id", ids.ST_UNSAVED).get_attribute("class"),
             message="Discard to restore the saved state")
    assert _props(browser, ids.ST_EDITS, "data") == base

    browser.set_window_size(390, 844)
    browser.get(own_server.url("/staffing"))
    _wait_loaded(browser, len(grids))
    # Nothing may stick out sideways on a phone.
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
    save_screenshot(browser, "staffing-mobile.png")
    assert overflow <= 1, f"the page is {overflow} px wider than a 390 px screen"
    # The quick picks name the grids most in need; picking one brings the editor into view.
    pick = browser.find_element("css selector", ".st-pick")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", pick)
    code = pick.find_element("css selector", ".mono").text.strip()
    pick.click()
    wait_for(browser, lambda d: d.find_element("id", ids.ST_EDITOR).text.strip() == code, message="the editor")
    wait_for(browser, lambda d: d.execute_script(
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return r.top >= 0 && r.top < window.innerHeight / 2;", ids.ST_DETAIL), message="the editor in view")
    save_screenshot(browser, "staffing-mobile-editor.png")
    assert not console_errors(browser), console_errors(browser)
