"""My grids in headless Chromium on a phone-sized window (390×844): a grid worker signs in, sees only their grids'
cases, marks one handled with a note and sees it leave the open list; the folium export holds exactly their grids and
open cases.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dashboards import ids
from dashboards.cases import my_grids, my_open_cases
from gridgov.auth import get_user
from gridgov.store import Store
from tests.browser.conftest import (
    ARTIFACTS,
    CHROMEDRIVER,
    CHROMIUM,
    DEMO_NOW,
    Server,
    copy_db,
    login,
    save_screenshot,
    start_server,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = (390, 844)
#: A whole mainland mobile number (masked ones read 138****1234) standing on its own: not digits inside a longer
#: number, a coordinate or an identifier (folium names every element with a random hex id, which now and then holds
#: a run such as 16688961851).
PHONE_RE = r"(?<![\w.])1[3-9]\d{9}(?![\w.])"


@pytest.fixture
def worker_server(small_demo_db: Path, tmp_path: Path) -> Iterator[Server]:
    """A server on a private copy of the small demo (the test changes a case)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium/chromedriver not installed (scripts/install-test-deps.sh)")
    server = start_server(copy_db(small_demo_db, tmp_path / "worker"))
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(server.log, ARTIFACTS / "server-worker.log")


def _expected(db: Path, username: str) -> tuple[list[str], set[int], list[str]]:
    """The user's grids, open cases and the full reporter phones of those cases."""
    with Store(db, read_only=True) as store:
        user = get_user(store, username)
        assert user is not None
        layout_id = store.current_layout_id()
        grids = my_grids(store, user, layout_id)
        cases = set(my_open_cases(store, user, layout_id)["incident_id"].astype(int))
        people = store.incidents(("reporter_phone",))
    phones = people.loc[people["incident_id"].isin(cases), "reporter_phone"].dropna().astype(str).tolist()
    return grids, cases, [p for p in phones if len(p) >= 8]


def _listed(driver: Any) -> list[int]:
    found = []
    for button in driver.find_elements("css selector", f"#{ids.WK_LIST} button"):
        found.append(int(json.loads(button.get_attribute("id"))["index"]))
    return found


def _download(driver: Any, server: Server, path: str) -> str:
    # The browser's session cookie, reused by a plain HTTP client (headless Chromium keeps downloads to itself).
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    req = urllib.request.Request(server.url(path), headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
        assert "attachment" in resp.headers["Content-Disposition"]
        return resp.read().decode("utf-8")


def test_worker_handles_a_case_on_a_phone(small_demo_db: Path, worker_server: Server, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    grids, cases, phones = _expected(small_demo_db, "worker1")
    assert grids and len(cases) >= 2, "the demo's worker1 needs grids with open cases"
    browser.set_window_size(*PHONE)
    login(browser, worker_server, "worker1")
    assert browser.current_url.endswith("/my-grids")
    wait_for(browser, lambda d: len(_listed(d)) == len(cases), timeout=60, message="worker1's open cases")
    listed = _listed(browser)
    assert set(listed) == cases  # only their grids' cases, every one of them
    title = browser.find_element(By.ID, ids.WK_TITLE).text
    assert all(code in title for code in grids)
    # The nav offers this page only; the page is usable without sideways scrolling.
    nav = [a.get_attribute("textContent") for a in browser.find_elements(By.CSS_SELECTOR, f"#{ids.NAV} a")]
    assert nav == ["My grids"]
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    wait_for(browser, lambda d: d.execute_script(
        "const g = document.getElementById(arguments[0]).querySelector('.js-plotly-plot');"
        "return g && g.data && g.data.reduce((n, t) => n + (t.lon ? t.lon.length : 0), 0);", ids.WK_MAP),
        message="the pins on the map")
    save_screenshot(browser, "worker-phone-list.png")

    first = listed[0]
    button = browser.execute_script("return document.getElementById(arguments[0]);",
                                    json.dumps({"index": first, "type": ids.WK_CASE}, separators=(",", ":")))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    sheet = wait_for(browser, lambda d: (e := d.find_element(By.ID, ids.WK_DETAIL)) and "open" in
                     e.get_attribute("class") and e, message="the case detail sheet")
    detail = sheet.text
    assert "Reporter" in detail and "Due" in detail
    assert not re.search(PHONE_RE, detail) and not any(p in detail for p in phones), "a full phone reached a worker"
    save_screenshot(browser, "worker-phone-detail.png")

    # "Handled" without a note is refused where the worker is looking: in the sheet.
    browser.find_element(By.ID, ids.WK_HANDLE).click()
    wait_for(browser, lambda d: "Say what was done" in d.find_element(By.ID, ids.WK_SHEET_MESSAGE).text,
             message="the missing-note warning in the sheet")
    assert first in _listed(browser)
    save_screenshot(browser, "worker-phone-note-needed.png")
    browser.find_element(By.ID, ids.WK_NOTE).send_keys("Cleared it; photo in the app.")
    browser.find_element(By.ID, ids.WK_HANDLE).click()
    wait_for(browser, lambda d: first not in _listed(d) and len(_listed(d)) == len(cases) - 1,
             message="the handled case to leave the list")
    message = browser.find_element(By.ID, ids.WK_MESSAGE).text
    assert "handled" in message
    assert "open" not in browser.find_element(By.ID, ids.WK_DETAIL).get_attribute("class")
    save_screenshot(browser, "worker-phone-handled.png")

    page = _download(browser, worker_server, "/my-grids/map.html")
    assert page.startswith("<!DOCTYPE html>") and "leaflet" in page.lower()
    shown_grids = set(re.findall(r'"grid_code":\s*"(\d+)"', page))
    assert shown_grids == set(grids)
    shown_cases = {int(c) for c in re.findall(r'data-case=\\?"(\d+)\\?"', page)}
    assert shown_cases == cases - {first}
    assert page.count("L.circleMarker(") == len(cases) - 1
    assert not re.search(PHONE_RE, page) and not any(p in page for p in phones)

    # The case's history says who did it, when and what (read once the server has let go of the file).
    worker_server.stop()
    with Store(worker_server.db, read_only=True) as store:
        events = store.incident_events(first)
        assert store.incident_row(first)["status"] == "handled"
    assert events["actor"].tolist()[-1] == "worker1"
    assert events["note"].tolist()[-1] == "Cleared it; photo in the app."
    assert events["event_at"].max() == datetime.fromisoformat(DEMO_NOW)


def test_worker_page_in_chinese(worker_server: Server, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(*PHONE)
    browser.get(worker_server.url("/my-grids?lang=zh"))
    wait_for(browser, lambda d: d.find_elements(By.NAME, "password"), message="the redirect to the login form")
    assert "登录" in browser.title
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    save_screenshot(browser, "login-phone-zh.png")
    login(browser, worker_server, "worker2", lang="zh")
    assert browser.current_url.endswith("/my-grids?lang=zh")
    wait_for(browser, lambda d: _listed(d), timeout=60, message="worker2's open cases")
    text = browser.find_element(By.CSS_SELECTOR, ".worker").text
    assert "我的网格" in text and "带走地图" in text and "截至" in text
    assert re.search(r"\d+月\d+日 周", text), "dates in Chinese form"
    nav = [a.get_attribute("textContent") for a in browser.find_elements(By.CSS_SELECTOR, f"#{ids.NAV} a")]
    assert nav == ["我的网格"]
    save_screenshot(browser, "worker-phone-zh.png")
