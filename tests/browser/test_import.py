"""The Import page in headless Chromium, signed in as a manager: upload a small CSV with some bad rows and two
points outside the district, import it, and see the statistics, the rejects by reason and the outside-point map;
then the Overview shows the new cases.

The test changes data, so it runs its own server on its own copy of the small demo database.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
from tests.test_import_page import _small_csv

pytestmark = pytest.mark.browser

_TRACE_JS = """
const gd = document.querySelector('#im-outside-map .js-plotly-plot');
if (!gd || !gd.data || !gd.data.length) { return null; }
return {rows: Array.from(gd.data[0].customdata || []), lon: Array.from(gd.data[0].lon || []),
        layers: gd.layout.map.layers.length};
"""


@pytest.fixture(scope="module")
def import_server(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on a private copy of the small demo (this test imports cases)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium/chromedriver not installed (scripts/install-test-deps.sh)")
    server = start_server(copy_db(small_demo_db, tmp_path_factory.mktemp("import")))
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(server.log, ARTIFACTS / "server-import.log")


def _text(driver: Any, element_id: str) -> str:
    return str(driver.find_element("id", element_id).text)


def test_upload_import_and_see_the_statistics(small_demo_db: Path, tmp_path: Path, import_server: Server,
                                              browser: Any) -> None:
    with Store(copy_db(small_demo_db, tmp_path / "facts")) as store:  # the served copy is locked by the server
        data, expected = _small_csv(store)
    csv = tmp_path / "calls.csv"
    csv.write_bytes(data)

    login(browser, import_server, "manager")
    browser.get(import_server.url("/import"))
    wait_for(browser, lambda d: d.find_elements("css selector", "#im-upload input[type=file]"),
             message="the upload box")
    assert "Import" in [a.text for a in browser.find_elements("css selector", ".nav-link")]
    browser.find_element("css selector", "#im-upload input[type=file]").send_keys(str(csv))
    wait_for(browser, lambda d: "ready to import" in _text(d, "im-file-note"), message="the file to arrive")
    browser.find_element("id", "im-start").click()
    wait_for(browser, lambda d: "Imported calls.csv as batch" in _text(d, "im-result"), timeout=60,
             message="the import to finish")
    assert "5 accepted, 6 rejected" in _text(browser, "im-result")

    wait_for(browser, lambda d: d.find_elements("id", "im-kpi-accepted"), message="the statistics")
    cards = {k: _text(browser, f"im-kpi-{k}").split("\n")[1] for k in ("rows_in", "accepted", "rejected",
                                                                         "duplicates")}
    assert cards == {"rows_in": "11", "accepted": "5", "rejected": "6", "duplicates": "1"}
    for code, n in expected["by_reason"].items():
        row = _text(browser, f"im-reason-{code}")
        assert row.startswith(code) and f" {n} " in f" {row} ", row
    first = browser.find_elements("css selector", "#im-first tbody tr")
    assert [int(tr.text.split()[0]) for tr in first] == expected["first_rows"]

    trace = wait_for(browser, lambda d: d.execute_script(_TRACE_JS), message="the outside-district map")
    assert sorted(trace["rows"]) == sorted(expected["outside"]) and trace["layers"] == 1
    assert "2 rejected point(s) lie outside the district." in _text(browser, "im-map-note")
    save_screenshot(browser, "import-stats.png")

    # The same file again: already imported, nothing changed.
    browser.find_element("css selector", "#im-upload input[type=file]").send_keys(str(csv))
    wait_for(browser, lambda d: "ready to import" in _text(d, "im-file-note"), message="the file to arrive again")
    browser.find_element("id", "im-start").click()
    wait_for(browser, lambda d: "already imported" in _text(d, "im-result"), timeout=60,
             message="the re-import notice")
    assert "nothing changed" in _text(browser, "im-result")
    assert not console_errors(browser), console_errors(browser)


def test_chinese_page_on_a_phone(import_server: Server, browser: Any) -> None:
    browser.set_window_size(390, 844)
    login(browser, import_server, "manager", lang="zh")
    browser.get(import_server.url("/import?lang=zh"))
    wait_for(browser, lambda d: d.find_elements("id", "im-start"), message="the import form")
    assert browser.find_element("id", "im-start").text.strip() == "开始导入"
    assert "数据导入" in [a.text for a in browser.find_elements("css selector", ".nav-link")]
    # The batch of the first test is shown, with its map, in Chinese.
    trace = wait_for(browser, lambda d: d.execute_script(_TRACE_JS), message="the outside-district map")
    assert len(trace["rows"]) == 2
    assert "共有 2 个拒收点位位于辖区之外。" in _text(browser, "im-map-note")
    assert "点位不在辖区任何单元网格内" in _text(browser, "im-reason-outside_district")
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
    save_screenshot(browser, "import-mobile-zh.png")
    assert overflow <= 1, f"the page is {overflow} px wider than a 390 px screen"
    assert not console_errors(browser), console_errors(browser)
