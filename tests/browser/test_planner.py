"""The Planner page in headless Chromium: run a scenario from the form (an infeasible request first, then the
engine's suggestion), see both maps, the change map and the metrics table, adopt it, find the Overview drawing the
new layout, and undo.

The test changes data, so it runs its own server on its own copy of the small demo database. What the page must
show is worked out beforehand with the library on another copy (planning is deterministic for a seed).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dashboards import ids
from dashboards.planner_figures import suggestions
from gridgov import regrid, scenarios
from gridgov.planning import InfeasiblePlan
from gridgov.store import Store
from tests.browser.conftest import (
    ARTIFACTS,
    CHROMEDRIVER,
    CHROMIUM,
    Server,
    console_errors,
    copy_db,
    login,
    save_screenshot,
    start_server,
    wait_for,
)

pytestmark = pytest.mark.browser

N_GRIDS = 12
TOLERANCE_PCT = 20  # too tight for the small demo at 12 grids: the engine says which tolerance works

# Grid codes drawn by a map's first trace, as the browser holds them.
_LOCATIONS_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd.data || !gd.data.length) { return null; }
return gd.data[0].locations || null;
"""
_VIEW_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullLayout || !gd._fullLayout.map) { return null; }
return [gd._fullLayout.map.center.lon, gd._fullLayout.map.center.lat, gd._fullLayout.map.zoom];
"""
# Records whether the progress box was ever shown (the small demo plans in well under a second).
_WATCH_PROGRESS_JS = """
window.__plProgressSeen = false;
const box = document.getElementById(arguments[0]);
new MutationObserver(function() {
    if (!box.classList.contains('idle')) { window.__plProgressSeen = true; }
}).observe(box, {attributes: true, attributeFilter: ['class']});
"""


@dataclass
class _Expected:
    original: list[str]
    adopted: list[str]
    suggestion: str


def _expected(src: Path, tmp: Path) -> _Expected:
    """Plan and adopt the same scenario with the library on a copy: the codes the Overview must draw after."""
    db = copy_db(src, tmp / "expected")
    with Store(db) as store:
        original = sorted(store.layout_grids(store.current_layout_id() or 0)["grid_code"])
        with pytest.raises(InfeasiblePlan) as info:
            regrid.regrid(store, name="probe", n_grids=N_GRIDS, tolerance=TOLERANCE_PCT / 100)
        offer = suggestions(tolerance=info.value.tolerance, n_grids=info.value.n_grids,
                            asked_tolerance=TOLERANCE_PCT / 100)[0]
        assert offer["key"].startswith("tolerance:"), offer
        pct = float(offer["key"].split(":")[1])
        regrid.regrid(store, name="Scenario 1", n_grids=N_GRIDS, tolerance=pct / 100)
        result = scenarios.adopt(store, "Scenario 1")
        adopted = sorted(store.layout_grids(result.layout_id)["grid_code"])
    assert len(adopted) == N_GRIDS and adopted != original
    return _Expected(original=original, adopted=adopted, suggestion=offer["label"])


@pytest.fixture(scope="module")
def planner_server(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on a private copy of the small demo (this test saves and adopts layouts)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium/chromedriver not installed (scripts/install-test-deps.sh)")
    server = start_server(copy_db(small_demo_db, tmp_path_factory.mktemp("planner")))
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(server.log, ARTIFACTS / "server-planner.log")


def _locations(driver: Any, graph: str) -> list[str] | None:
    return driver.execute_script(_LOCATIONS_JS, graph)


def _text(driver: Any, element_id: str) -> str:
    return str(driver.find_element("id", element_id).text)


def _set(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element("id", element_id)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value)


def _overview_codes(driver: Any, server: Server) -> list[str] | None:
    driver.get(server.url("/"))
    return wait_for(driver, lambda d: d.execute_script(
        "const gd = document.querySelector('#ov-map .js-plotly-plot');"
        "return gd && gd.data && gd.data[0].locations;"), message="the overview map")


def test_run_compare_adopt_undo(small_demo_db: Path, tmp_path: Path, planner_server: Server, browser: Any) -> None:
    expected = _expected(small_demo_db, tmp_path)
    login(browser, planner_server, "planner")  # a planner opens the Overview and the Planner
    browser.get(planner_server.url("/planner"))
    wait_for(browser, lambda d: _locations(d, ids.PL_MAP_A), message="map A (the current layout)")
    assert sorted(_locations(browser, ids.PL_MAP_A) or []) == expected.original
    wait_for(browser, lambda d: "within" in _text(d, ids.PL_CALIBRATION), message="the calibration sentence")

    # An infeasible request: the engine's reason and its suggestion as a button.
    _set(browser, ids.PL_N_GRIDS, str(N_GRIDS))
    _set(browser, ids.PL_TOLERANCE, str(TOLERANCE_PCT))
    browser.execute_script(_WATCH_PROGRESS_JS, ids.PL_PROGRESS)
    browser.find_element("id", ids.PL_RUN).click()
    button = wait_for(browser, lambda d: d.find_elements("css selector", ".btn-suggest"), timeout=60,
                      message="the infeasible message with a suggestion")[0]
    assert "cannot be met" in _text(browser, ids.PL_FORM_MSG)
    assert button.text.strip() == expected.suggestion
    save_screenshot(browser, "planner-infeasible.png")

    # The suggestion runs the scenario: progress shows, then the saved scenario becomes B.
    button.click()
    wait_for(browser, lambda d: "Saved 'Scenario 1'" in _text(d, ids.PL_FORM_MSG), timeout=60,
             message="the scenario to be saved")
    assert browser.execute_script("return window.__plProgressSeen;"), "the progress bar was shown while it ran"
    wait_for(browser, lambda d: len(_locations(d, ids.PL_MAP_B) or []) == N_GRIDS, message="map B")
    assert len(_locations(browser, ids.PL_MAP_A) or []) == len(expected.original)
    assert _locations(browser, ids.PL_MAP_CHANGE), "the change map draws the scenario's grids"
    assert "move to another grid" in _text(browser, ids.PL_CHANGE_NOTE)
    row = browser.find_element("id", "pl-metric-n_grids").text.split()
    assert row[-3:] == [str(len(expected.original)), str(N_GRIDS), f"−{len(expected.original) - N_GRIDS}"]
    assert browser.find_elements("css selector", "#pl-metrics tr.better"), "a better figure is marked"
    assert "Scenario 1" in _text(browser, ids.PL_LIST)

    # Panning one map moves the others.
    before = browser.execute_script(_VIEW_JS, ids.PL_MAP_B)
    browser.execute_script("const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
                           "window.Plotly.relayout(gd, {'map.zoom': arguments[1]});", ids.PL_MAP_A, before[2] + 1)
    wait_for(browser, lambda d: abs(d.execute_script(_VIEW_JS, ids.PL_MAP_B)[2] - (before[2] + 1)) < 1e-3
             and abs(d.execute_script(_VIEW_JS, ids.PL_MAP_CHANGE)[2] - (before[2] + 1)) < 1e-3,
             message="maps B and change to follow map A's zoom")
    browser.execute_script("const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
                           "window.Plotly.relayout(gd, {'map.zoom': arguments[1]});", ids.PL_MAP_A, before[2])
    wait_for(browser, lambda d: abs(d.execute_script(_VIEW_JS, ids.PL_MAP_CHANGE)[2] - before[2]) < 1e-3,
             message="the maps to zoom back out together")
    save_screenshot(browser, "planner-scenario.png")

    # Adopt, with a confirm step.
    browser.find_element("id", ids.PL_ADOPT).click()
    wait_for(browser, lambda d: "hidden" not in d.find_element("id", ids.PL_ADOPT_CONFIRM).get_attribute("class"),
             message="the confirm step")
    assert "Undo brings it back" in _text(browser, ids.PL_ADOPT_TEXT)
    browser.find_element("id", ids.PL_ADOPT_YES).click()
    wait_for(browser, lambda d: "is now the current layout" in _text(d, ids.PL_ADOPT_RESULT), timeout=60,
             message="the adoption result")
    assert "kept their code" in _text(browser, ids.PL_ADOPT_RESULT)
    assert "hidden" not in browser.find_element("id", ids.PL_UNDO).get_attribute("class")
    # The pair stays "before → after": A the archived layout, B the adopted one, now current (nothing to adopt).
    wait_for(browser, lambda d: "current" in _text(d, ids.PL_TITLE_B) and "archived" in _text(d, ids.PL_TITLE_A),
             message="the map titles to show the new statuses")
    wait_for(browser, lambda d: d.find_element("id", ids.PL_ADOPT).get_attribute("disabled"),
             message="Adopt to be disabled: B is current now")
    assert sorted(_locations(browser, ids.PL_MAP_B) or []) == expected.adopted
    save_screenshot(browser, "planner-adopted.png")

    # Every page reads the reloaded context: the Overview draws the adopted layout.
    codes = _overview_codes(browser, planner_server)
    assert sorted(codes or []) == expected.adopted
    save_screenshot(browser, "planner-overview-after-adopt.png")

    # Undo stays offered back on the Planner, and restores the old layout everywhere.
    browser.get(planner_server.url("/planner"))
    undo = wait_for(browser, lambda d: (b := d.find_element("id", ids.PL_UNDO)).is_displayed() and b,
                    message="the Undo button")
    assert "hand-drawn" in undo.text
    undo.click()
    wait_for(browser, lambda d: "is the current layout again" in _text(d, ids.PL_ADOPT_RESULT), timeout=60,
             message="the undo result")
    assert sorted(_overview_codes(browser, planner_server) or []) == expected.original
    assert not console_errors(browser), console_errors(browser)


def test_chinese_and_phone(planner_server: Server, browser: Any) -> None:
    browser.set_window_size(390, 844)
    login(browser, planner_server, "manager", lang="zh")
    browser.get(planner_server.url("/planner?lang=zh"))
    wait_for(browser, lambda d: _locations(d, ids.PL_MAP_A), message="map A")
    wait_for(browser, lambda d: "百分点" in _text(d, ids.PL_CALIBRATION), message="the calibration in Chinese")
    assert browser.find_element("id", ids.PL_RUN).text.strip() == "生成方案"
    assert "网格数" in _text(browser, ids.PL_METRICS)
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
    save_screenshot(browser, "planner-mobile-zh.png")
    assert overflow <= 1, f"the page is {overflow} px wider than a 390 px screen"
    assert not console_errors(browser), console_errors(browser)
