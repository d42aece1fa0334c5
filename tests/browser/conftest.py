"""Fixtures for the real-browser tests: a gridgov server subprocess on a copy of a database, and headless Chromium.

Reuse in a page test::

    @pytest.mark.browser
    def test_my_page(demo_server, browser):
        browser.get(demo_server.url("/my-page"))
        wait_for(browser, lambda d: d.find_elements(By.ID, "my-id"))

``demo_server`` serves a copy of the ``small_demo_db`` fixture with the clock fixed at :data:`DEMO_NOW`; a test
that changes data should start its own server with :func:`start_server` on its own copy.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gridgov.auth import DEMO_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: The clock of every browser test: the morning after the last day of the demo year (demo built with as_of
#: 2026-06-30, statuses as of the midnight after it).
DEMO_NOW = "2026-07-01T09:00:00"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
REPO = Path(__file__).resolve().parents[2]
CHROME_ARGS = (
    "--headless=new", "--no-sandbox", "--enable-unsafe-swiftshader", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--window-size=1400,1000",
)


def _missing_browser() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        return f"{' and '.join(missing)} not installed (scripts/install-test-deps.sh installs Debian's chromium)"
    return None


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_db(src: Path, dest_dir: Path) -> Path:
    """Copy a DuckDB file (and its write-ahead log, if any) so a server can lock the copy."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    shutil.copy2(src, dest)
    wal = src.with_name(src.name + ".wal")
    if wal.exists():
        shutil.copy2(wal, dest.with_name(dest.name + ".wal"))
    return dest


@dataclass
class Server:
    """A running ``gridgov serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    db: Path
    log: Path

    def url(self, path: str = "/") -> str:
        """Absolute URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def log_text(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Terminate the process (kill it if it does not stop within 10 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_server(db: Path, *, now: str = DEMO_NOW, timeout: float = 90.0) -> Server:
    """Start ``python -m gridgov.cli serve --demo`` on ``db`` and wait until ``/healthz`` answers.

    ``--demo`` lets the demo's users (:data:`gridgov.auth.DEMO_PASSWORD`) sign in; see :func:`login`.

    Parameters
    ----------
    db
        Database file the server opens for writing (use a copy).
    now
        Value of ``GRIDGOV_NOW`` for the server.
    timeout
        Seconds to wait for the server to come up.

    Raises
    ------
    RuntimeError
        With the server's output when it exits or does not answer in time.
    """
    port = free_port()
    log = db.with_name(f"server-{port}.log")
    env = {**os.environ, "GRIDGOV_NOW": now, "PYTHONUNBUFFERED": "1"}
    env.pop("GRIDGOV_DB", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridgov.cli", "serve", "--db", str(db), "--port", str(port), "--demo"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    server = Server(proc=proc, port=port, db=db, log=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gridgov serve exited with {proc.returncode}:\n{server.log_text()}")
        try:
            with urllib.request.urlopen(server.url("/healthz"), timeout=2) as resp:
                if resp.status == 200 and resp.read() == b"ok":
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"gridgov serve did not answer /healthz within {timeout:.0f} s:\n{server.log_text()}")


@pytest.fixture(scope="module")
def demo_server(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on a private copy of the small demo database, clock at :data:`DEMO_NOW`."""
    reason = _missing_browser()
    if reason:
        pytest.skip(reason)
    db = copy_db(small_demo_db, tmp_path_factory.mktemp("served"))
    server = start_server(db)
    try:
        yield server
    finally:
        server.stop()
        # The server log is the first thing to read when a browser test fails.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(server.log, ARTIFACTS / f"server-{Path(str(small_demo_db)).stem}.log")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Selenium, with a fresh profile that is deleted afterwards."""
    reason = _missing_browser()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gridgov-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROME_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, predicate: Callable[[Any], Any], *, timeout: float = 30.0, message: str = "") -> Any:
    """Poll ``predicate(driver)`` until it returns something truthy; return that value.

    Raises
    ------
    AssertionError
        Naming ``message`` and the browser's console errors, when time runs out.
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate(driver)
            if value:
                return value
        except Exception as exc:  # stale elements and JS errors while Dash re-renders: try again
            last_exc = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message or predicate}; "
                         f"last error: {last_exc!r}; console: {console_errors(driver)}")


def login(driver: Any, server: Server, username: str, password: str = DEMO_PASSWORD, *, lang: str | None = None
          ) -> None:
    """Sign in through the ``/login`` form (signing out first) and wait until the browser has left it.

    Parameters
    ----------
    driver
        The Selenium driver.
    server
        The server to sign in to.
    username, password
        A user of the served database (the demo's users share :data:`gridgov.auth.DEMO_PASSWORD`).
    lang
        ``zh`` to use the Chinese form (the start page then opens in Chinese).
    """
    from selenium.webdriver.common.by import By

    # Through /logout, which ends any earlier session and lands on the form: switching users works too.
    driver.get(server.url("/logout" + (f"?lang={lang}" if lang else "")))
    wait_for(driver, lambda d: d.find_elements(By.NAME, "username"), message="the login form")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(driver, lambda d: "/login" not in d.current_url, message=f"sign-in of {username}")


def pick_option(driver: Any, dropdown_id: str, text: str) -> None:
    """Open a Dash 4 ``dcc.Dropdown`` and click the first option whose label contains ``text``, then close it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.find_element(By.ID, dropdown_id).click()

    def option(d: Any) -> Any:
        return next((o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option") if text in o.text), None)

    wait_for(driver, option, timeout=10, message=f"option {text!r} in #{dropdown_id}").click()
    # Multi-select menus stay open after a pick; Escape closes either kind.
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)


def console_errors(driver: Any) -> list[str]:
    """Severe messages from the browser console (JS errors, failed requests)."""
    try:
        return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    except Exception:
        return []


def save_screenshot(driver: Any, name: str) -> Path:
    """Save a PNG of the window to ``tests/artifacts/NAME`` (gitignored) and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


