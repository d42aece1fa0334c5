"""Live operations in Chromium: a case posted to the intake API shows on an open My grids page and an open
Overview within 10 seconds, without a reload."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards import ids
from gridgov import intake
from gridgov.auth import get_user
from gridgov.store import Store
from tests.browser.conftest import CHROMEDRIVER, CHROMIUM, Server, copy_db, login, start_server, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def live_server(small_demo_db: Path, tmp_path: Path) -> Iterator[tuple[Server, str, tuple[float, float]]]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium/chromedriver not installed (scripts/install-test-deps.sh)")
    db = copy_db(small_demo_db, tmp_path / "live")
    with Store(db) as store:  # before the server holds the file
        key = intake.create_client(store, "hotline", "12345 hotline")
        user = get_user(store, "worker1")
        assert user is not None and user.worker_id
        layout_id = store.current_layout_id()
        held = store.assignments(layout_id)
        grid = str(held.loc[held["worker_id"] == user.worker_id, "grid_code"].iloc[0])
        lu = store.layout_units(layout_id)
        unit = int(lu.loc[lu["grid_code"] == grid, "unit_id"].iloc[0])
        units = store.units().set_index("unit_id")
        point = units.geometry.loc[unit].representative_point()
    server = start_server(db)
    try:
        yield server, key, (point.x, point.y)
    finally:
        server.stop()


def _post(server: Server, key: str, lonlat: tuple[float, float], text: str) -> int:
    body = json.dumps({"service_code": "exposed_garbage", "long": lonlat[0], "lat": lonlat[1], "description": text,
                       "requested_datetime": "2026-07-01T08:55:00"}).encode()
    req = urllib.request.Request(server.url("/api/v2/requests.json"), data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-API-Key": key})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
        return int(json.loads(resp.read())[0]["service_request_id"])


def _listed(driver: Any) -> set[int]:
    return {int(json.loads(b.get_attribute("id"))["index"])
            for b in driver.find_elements("css selector", f"#{ids.WK_LIST} button")}


def test_a_posted_case_shows_within_ten_seconds(live_server: tuple[Server, str, tuple[float, float]],
                                                browser: Any) -> None:
    from selenium.webdriver.common.by import By

    server, key, lonlat = live_server
    login(browser, server, "worker1")
    wait_for(browser, lambda d: _listed(d), timeout=60, message="worker1's open cases")
    new = _post(server, key, lonlat, "a case from the hotline")
    wait_for(browser, lambda d: new in _listed(d), timeout=10, message="the posted case on My grids")

    browser.get(server.url("/logout"))
    login(browser, server, "manager")
    wait_for(browser, lambda d: d.find_element(By.ID, ids.OV_AS_OF).text, timeout=60, message="the overview")
    before = browser.find_element(By.ID, ids.OV_KPIS).text
    _post(server, key, lonlat, "another case from the hotline")
    wait_for(browser, lambda d: d.find_element(By.ID, ids.OV_KPIS).text != before, timeout=10,
             message="the overview's counts to take the posted case")
