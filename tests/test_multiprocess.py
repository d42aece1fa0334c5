"""The dashboard as several processes on one PostgreSQL database: real gunicorn, two workers, the small demo.

Requests go over fresh connections, so the two workers share them; gunicorn's access log names the worker (its pid)
that answered each request, found by a tag in the request's query string. Each check repeats until both workers have
answered (or a generous timeout fails it), so it does not depend on how the kernel spreads connections.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.cookiejar import CookieJar
from itertools import count
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import pytest

from dashboards.context import get_context
from gridgov import intake
from gridgov.auth import DEMO_PASSWORD
from gridgov.store import Store
from tests.conftest import DEMO_AS_OF
from tests.dash_calls import form_token
from tests.pg_cluster import ThrowawayCluster

REPO = Path(__file__).resolve().parents[1]
WORKERS = 2
#: Upper bound for what must happen "soon" (a worker noticing another's write within its ~2 s follow interval);
#: only a failing run waits this long.
PATIENCE_S = 90.0
_tags = count(1)


@dataclass
class Served:
    """A running gunicorn on a demo database."""

    base: str
    url: str
    key: str
    pids: set[int]
    access_log: Path
    lat: float
    lon: float
    answered: dict[str, int] = field(default_factory=dict)

    def worker_of(self, tag: str) -> int:
        """The pid of the worker that answered the request tagged ``tag`` (from the access log)."""
        deadline = time.monotonic() + 10
        while True:
            for line in self.access_log.read_text(errors="replace").splitlines():
                found = re.match(r"<(\d+)> \S*probe=(\w+)", line)
                if found:
                    self.answered[found.group(2)] = int(found.group(1))
            if tag in self.answered or time.monotonic() > deadline:
                return self.answered[tag]
            time.sleep(0.05)


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """An HTTP client with a cookie jar that opens a new connection for every request (as urllib does)."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()), _NoRedirect())

    def send(self, method: str, path: str, *, form: dict[str, str] | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, int]:
        """Send a request tagged for the access log; returns ``(status, body, pid of the worker that answered)``."""
        from urllib.parse import urlencode

        tag = f"t{next(_tags)}"
        sep = "&" if "?" in path else "?"
        data = None
        heads = dict(headers or {})
        if form is not None:
            data = urlencode(form).encode()
            heads["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            heads["Content-Type"] = "application/json"
        request = Request(f"{self.served.base}{path}{sep}probe={tag}", data=data, headers=heads, method=method)
        try:
            with self.opener.open(request, timeout=60) as reply:
                status, text = reply.status, reply.read().decode()
        except HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        return status, text, self.served.worker_of(tag)

    def sign_in(self, username: str) -> None:
        _, page, _ = self.send("GET", "/login")
        status, _, _ = self.send("POST", "/login", form={"username": username, "password": DEMO_PASSWORD,
                                                         "csrf_token": form_token(page)})
        assert status == 302, f"sign-in of {username} failed with {status}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gunicorn_flags() -> list[str]:
    # gunicorn >= 25 opens a control socket at one path per user: two servers at once (a parallel run) would clash.
    shown = subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True,
                           check=False).stdout
    return ["--no-control-socket"] if "--no-control-socket" in shown else []


@pytest.fixture(scope="module")
def served(pg_cluster: ThrowawayCluster, pg_template: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    """gunicorn with two workers (two threads each) on a new database holding the small demo and an API client."""
    pytest.importorskip("gunicorn")
    from gridgov.demo import build_demo_file

    name = "gridgov_multiprocess"
    url = pg_cluster.create_database(name, template=pg_template)
    build_demo_file(url, size="small", seed=0, as_of=DEMO_AS_OF, progress=False)
    with Store(url) as store:
        key = intake.create_client(store, "hotline", "12345 hotline")
        units = store.units()
    inside = units.geometry.iloc[len(units) // 2].representative_point()
    folder = tmp_path_factory.mktemp("gunicorn")
    access_log, server_log = folder / "access.log", folder / "server.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GRIDGOV_SECRET_KEY", "GRIDGOV_CONFIG")}
    env.update({"GRIDGOV_DB": url, "GRIDGOV_DEMO": "1", "GRIDGOV_NOW": f"{DEMO_AS_OF}T12:00:00"})
    with server_log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--threads", "2",
             "--bind", f"127.0.0.1:{port}", "--chdir", str(REPO), "--access-logfile", str(access_log),
             "--access-logformat", "%(p)s %(q)s %(s)s", *_gunicorn_flags(), "dashboards.wsgi:server"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            text = server_log.read_text(errors="replace")
            if text.count("app ready") >= WORKERS:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start {WORKERS} workers:\n{text[-3000:]}")
            time.sleep(0.2)
        pids = {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", text)}
        assert len(pids) == WORKERS
        yield Served(base=f"http://127.0.0.1:{port}", url=url, key=key, pids=pids, access_log=access_log,
                     lat=inside.y, lon=inside.x)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        pg_cluster.drop_database(name)


def _until_every_worker(served: Served, ask: Callable[[], tuple[Any, int]], done: Callable[[Any], bool]
                        ) -> dict[int, list[Any]]:
    """Ask repeatedly until every worker has given an answer that is ``done`` (or the patience runs out)."""
    answers: dict[int, list[Any]] = {}
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        result, pid = ask()
        answers.setdefault(pid, []).append(result)
        if all(any(done(r) for r in answers.get(p, [])) for p in served.pids):
            break
        time.sleep(0.1)
    return answers


def _poll_live(browser: Browser, seen: Any) -> tuple[tuple[int, Any], int]:
    """The Overview's live poll (``dashboards.live``): ``(status, revision)``; the revision is None when nothing
    moved since ``seen`` (the callback answers "no update")."""
    body = {"output": "ov-live-rev.data", "outputs": {"id": "ov-live-rev", "property": "data"},
            "inputs": [{"id": "ov-live", "property": "n_intervals", "value": 1}],
            "state": [{"id": "ov-live-rev", "property": "data", "value": seen}],
            "changedPropIds": ["ov-live.n_intervals"]}
    status, text, pid = browser.send("POST", "/_dash-update-component", body=body)
    value = None
    if status == 200:
        value = json.loads(text)["response"].get("ov-live-rev", {}).get("data")
    elif status != 204:
        raise AssertionError(f"the live poll failed with {status}: {text[:200]}")
    return (status, value), pid


def _post_case(served: Served, browser: Browser, external_id: str, description: str) -> tuple[int, Any, int]:
    status, text, pid = browser.send("POST", "/api/v2/requests.json", headers={"X-API-Key": served.key},
                                     body={"service_code": "noise", "lat": served.lat, "long": served.lon,
                                           "description": description, "external_id": external_id})
    return status, json.loads(text), pid


def test_a_sign_in_holds_on_every_worker(served: Served) -> None:
    stranger = Browser(served)
    status, _, _ = stranger.send("POST", "/_dash-update-component", body={})
    assert status == 401  # the callback is not public, so a 2xx below means the session cookie was accepted

    browser = Browser(served)
    browser.sign_in("manager")
    answers = _until_every_worker(served, lambda: _poll_live(browser, None), lambda r: r[0] == 200)
    assert set(answers) == served.pids
    assert all(status == 200 and value is not None for results in answers.values() for status, value in results)


def test_a_case_posted_to_one_worker_shows_on_pages_of_every_worker(served: Served) -> None:
    browser = Browser(served)
    browser.sign_in("manager")
    before = _until_every_worker(served, lambda: _poll_live(browser, None), lambda r: r[0] == 200)
    revisions = {value for results in before.values() for _, value in results}
    assert len(revisions) == 1, f"the workers disagree on the revision before any write: {revisions}"
    seen = revisions.pop()

    status, reply, posted_by = _post_case(served, browser, "MP-1", "multiprocess: one case")
    assert status == 201, reply
    case_id = reply[0]["service_request_id"]

    # A page drawn at `seen` asks again: every worker must answer with a new revision, the one that stored the case
    # and the other alike.
    after = _until_every_worker(served, lambda: _poll_live(browser, seen), lambda r: r[1] is not None)
    for pid in served.pids:
        moved = [value for _, value in after.get(pid, []) if value is not None]
        assert moved, f"worker {pid} (the case went to {posted_by}) never showed the new case"
        assert all(value > seen for value in moved)

    # And the case itself is there on both.
    fetched = _until_every_worker(
        served, lambda: _get(browser, served, f"/api/v2/requests/{case_id}.json"), lambda r: r[0] == 200)
    assert set(fetched) == served.pids
    assert all(status == 200 and body[0]["external_id"] == "MP-1" for r in fetched.values() for status, body in r)


def _get(browser: Browser, served: Served, path: str) -> tuple[tuple[int, Any], int]:
    status, text, pid = browser.send("GET", path, headers={"X-API-Key": served.key})
    return (status, json.loads(text) if status == 200 else text), pid


def test_concurrent_posts_lose_and_duplicate_nothing(served: Served) -> None:
    threads, per_thread = 6, 6
    results: list[tuple[str, int, Any, int]] = []
    lock = threading.Lock()
    rounds = 0
    # Rounds until both workers have stored cases (one round almost always suffices).
    while rounds < 5 and {pid for _, status, _, pid in results if status == 201} != served.pids:
        gate = threading.Barrier(threads)

        def run(t: int, r: int = rounds, gate: threading.Barrier = gate) -> None:
            browser = Browser(served)
            gate.wait()
            for i in range(per_thread):
                # Each thread sends its own cases, and each pair of threads also sends one external id together.
                ext = f"CC-{r}-{t}-{i}" if i else f"DUP-{r}-{t // 2}"
                status, body, pid = _post_case(served, browser, ext, f"concurrent {r} {t} {i}")
                with lock:
                    results.append((ext, status, body, pid))

        workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
        for th in workers:
            th.start()
        for th in workers:
            th.join()
        rounds += 1

    by_ext: dict[str, list[tuple[int, Any]]] = {}
    for ext, status, body, _ in results:
        by_ext.setdefault(ext, []).append((status, body))
    stored: dict[str, str] = {}
    for ext, replies in by_ext.items():
        statuses = sorted(status for status, _ in replies)
        if ext.startswith("DUP-"):
            assert statuses == [201, 400], f"{ext} sent twice at once: {replies}"
            refused = next(body for status, body in replies if status == 400)
            assert "external_id" in refused[0]["description"]
        else:
            assert statuses == [201], f"{ext}: {replies}"
        stored[ext] = next(body[0]["service_request_id"] for status, body in replies if status == 201)
    assert len(set(stored.values())) == len(stored), "two accepted cases got the same id"
    assert {pid for _, status, _, pid in results if status == 201} == served.pids

    browser = Browser(served)
    (status, listed), _ = _get(browser, served, "/api/v2/requests.json?limit=10000")
    assert status == 200
    ours = [r for r in listed if r["source"] == "hotline" and r["external_id"] in stored]
    assert sorted(r["external_id"] for r in ours) == sorted(stored)  # each exactly once: none lost, none doubled
    assert {r["external_id"]: r["service_request_id"] for r in ours} == stored


def test_a_layout_adopted_elsewhere_reaches_every_worker(served: Served) -> None:
    browser = Browser(served)
    browser.sign_in("manager")

    def grids() -> tuple[int, int]:
        status, text, pid = browser.send("GET", "/geo/grids.geojson")
        assert status == 200
        return len(json.loads(text)["features"]), pid

    before = _until_every_worker(served, grids, lambda n: True)
    assert {n for counts in before.values() for n in counts} == {16}

    # Another process (the command line) plans and adopts an 8-grid layout.
    env = {**os.environ, "GRIDGOV_DB": served.url}
    for args in (["regrid", "--name", "eight", "--n-grids", "8", "--respect", "none"], ["adopt", "eight"]):
        done = subprocess.run([sys.executable, "-m", "gridgov.cli", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr

    after = _until_every_worker(served, grids, lambda n: n == 8)
    assert all(8 in counts for counts in after.values())
    assert set(after) == served.pids


# -- the store's side, on both backends ------------------------------------------------------------------------------
def test_every_process_gets_the_secret_stored_first(store_location: Path | str) -> None:
    first = Store(store_location)
    # Two connections on PostgreSQL, as two server processes have; one DuckDB file has one writer.
    again = Store(store_location) if first.backend == "postgresql" else first
    try:
        assert first.shared_secret("a" * 64) == "a" * 64
        assert again.shared_secret("b" * 64) == "a" * 64
        assert first.is_empty(), "a stored session secret is not data"
        assert "a" * 64 not in first.meta().values(), "`gridgov info` prints meta: the secret must not be in it"
    finally:
        again.close()
        if again is not first:
            first.close()


def test_the_stamp_moves_with_case_events_and_the_current_layout(tiny_store: Store) -> None:
    from datetime import datetime

    before = tiny_store.stamp()
    assert tiny_store.stamp() == before  # reading changes nothing
    assert not tiny_store.is_empty()

    row = tiny_store.incident_row(1)
    assert row is not None
    tiny_store.record_incident_event(1, expected=row["status"], status=None, at=datetime(2026, 6, 30, 12),
                                     actor="worker1", note="seen", event="note")
    noted = tiny_store.stamp()
    assert noted.cases == before.cases + 1 and noted.static == before.static

    current = tiny_store.current_layout_id()
    assert current is not None
    tiny_store.save_layout("again", unit_grid=tiny_store.layout_units(current),
                           grids=tiny_store.layout_grids(current), status="current")
    adopted = tiny_store.stamp()
    assert adopted.layout_id == tiny_store.current_layout_id() != current
    assert adopted.static != noted.static and adopted.cases == noted.cases


# -- starting a server ---------------------------------------------------------------------------------------------
def test_serving_an_empty_postgresql_database_says_what_to_do_or_builds_the_demo(
    pg_cluster: ThrowawayCluster, pg_template: str
) -> None:
    from gridgov.config import Settings
    from gridgov.errors import GridgovError
    from gridgov.serve import prepare

    name = "gridgov_serve_empty"
    url = pg_cluster.create_database(name, template=pg_template)
    try:
        with pytest.raises(GridgovError, match=r"holds no data yet.*gridgov demo --db"):
            prepare(Settings(db_path=url))
        with Store(url) as store:
            assert store.is_empty()  # refusing wrote nothing

        prepare(Settings(db_path=url), demo_size="small", demo=True)
        with Store(url) as store:
            assert not store.is_empty()
            assert store.current_layout_id() is not None
            assert not store.users().empty  # the demo users, allowed because this is a demo
        prepare(Settings(db_path=url), demo=True)  # a second start builds nothing more
    finally:
        pg_cluster.drop_database(name)


def test_several_server_processes_are_refused_on_a_duckdb_file(tmp_path: Path) -> None:
    from gridgov.config import Settings
    from gridgov.errors import InputError
    from gridgov.serve import run

    with pytest.raises(InputError, match="postgresql://"):
        run(Settings(db_path=tmp_path / "g.duckdb"), demo=True, workers=2)
    assert not (tmp_path / "g.duckdb").exists()  # refused before building a demo


def test_the_app_is_ready_for_concurrent_callbacks_before_its_first_request(small_demo_db: Path,
                                                                           tmp_path: Path) -> None:
    # Dash finishes its setup at the first request and marks it done as it starts; a gunicorn worker's threads
    # then answered the callbacks that arrived alongside the first one with 400. create_app does the setup itself.
    import shutil

    from dashboards.app import create_app
    from gridgov.config import Settings

    db = tmp_path / "demo.duckdb"
    shutil.copy2(small_demo_db, db)
    app = create_app(Settings(db_path=db, now=datetime.fromisoformat(f"{DEMO_AS_OF}T12:00:00")))
    try:
        assert any(key.startswith("ov-live-rev.data") for key in app.callback_map)
        assert any("ov-map.figure" in key for key in app.callback_map)
    finally:
        get_context().store.close()
