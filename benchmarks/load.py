"""Bounded load test on loopback: simulated users on the overview and worker callbacks plus intake POSTs.

Starts its own ``gridgov serve --demo`` on a copy of a demo database (built in a temp folder unless ``--db`` is
given), signs in ``--users`` sessions (four in five as the district manager on the overview's data callback, one in
five as a grid worker on the My grids refresh callback), each sending a request, waiting for the answer and
thinking ``--think`` seconds; meanwhile ``--posts`` intake POSTs a second go to the API. After ``--seconds`` it stops
everything and prints p50/p95/max latency and the error count per kind. Goal (issue 8): p95 < 1 s, zero errors.

    python benchmarks/load.py                       # 20 users, 50 POST/s, 60 s on the medium demo
    python benchmarks/load.py --seconds 10 --size small
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridgov.auth import DEMO_PASSWORD  # noqa: E402

NOW = "2026-07-01T09:00:00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _overview_payload(filters: dict[str, Any]) -> dict[str, Any]:
    outs = [("ov-map", "figure"), ("ov-kpis", "children"), ("ov-map-status", "children"), ("ov-as-of", "children")]
    return {"output": ".." + "...".join(f"{i}.{p}" for i, p in outs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outs],
            "inputs": [{"id": "ov-filters", "property": "data", "value": filters}],
            "state": [{"id": "ov-lang", "property": "data", "value": "en"}],
            "changedPropIds": ["ov-filters.data"]}


def _worker_payload(tick: int) -> dict[str, Any]:
    outs = [("wk-title", "children"), ("wk-summary", "children"), ("wk-map", "figure"), ("wk-list", "children")]
    return {"output": ".." + "...".join(f"{i}.{p}" for i, p in outs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outs],
            "inputs": [{"id": "wk-rev", "property": "data", "value": 0},
                       {"id": "wk-refresh", "property": "n_intervals", "value": tick},
                       {"id": "wk-live-rev", "property": "data", "value": 0}],
            "state": [{"id": "wk-lang", "property": "data", "value": "en"}],
            "changedPropIds": ["wk-refresh.n_intervals"]}


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.first_error: dict[str, str] = {}

    def add(self, kind: str, seconds: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.times.setdefault(kind, []).append(seconds)
            if not ok:
                self.errors[kind] = self.errors.get(kind, 0) + 1
                self.first_error.setdefault(kind, detail[:200])


def login_token(session: requests.Session, base: str) -> str:
    """The CSRF token of ``session``'s sign-in form (``GET /login``), to post back with the user name."""
    r = session.get(f"{base}/login", timeout=30)
    found = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    if found is None:
        raise SystemExit(f"no sign-in form at {base}/login: {r.status_code} {r.text[:200]}")
    return found.group(1)


def _session(base: str, user: str) -> requests.Session:
    s = requests.Session()
    r = s.post(f"{base}/login", data={"username": user, "password": DEMO_PASSWORD,
                                      "csrf_token": login_token(s, base)}, allow_redirects=False, timeout=30)
    if r.status_code not in (302, 303):
        raise SystemExit(f"sign-in of {user} failed: {r.status_code} {r.text[:200]}")
    return s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--posts", type=float, default=50.0, help="intake POSTs per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=1.0, help="seconds a user waits between requests")
    parser.add_argument("--size", default="medium")
    parser.add_argument("--db", type=Path, help="a demo database to copy (default: build one)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="gridgov-load-"))
    db = tmp / "load.duckdb"
    env = {**os.environ, "GRIDGOV_NOW": NOW}
    if args.db:
        shutil.copy2(args.db, db)
    else:
        subprocess.run([sys.executable, "-m", "gridgov.cli", "demo", "--db", str(db), "--size", args.size,
                        "--as-of", "2026-06-30"], check=True, cwd=REPO, env=env, capture_output=True)
    key = subprocess.run([sys.executable, "-m", "gridgov.cli", "apikey", "add", "load", "--name", "load test",
                          "--db", str(db)], check=True, cwd=REPO, env=env, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "gridgov.cli", "serve", "--demo", "--db", str(db), "--port",
                               str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    rec = Recorder()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2).text == "ok":
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            raise SystemExit("the server did not start; see " + str(tmp / "server.log"))
        points = _points(base, key)
        manager = _session(base, "manager")
        filters_reply = manager.post(f"{base}/_dash-update-component", json=_filters_payload(), timeout=30)
        filters = filters_reply.json()["response"]["ov-filters"]["data"]
        stop = time.monotonic() + args.seconds
        n_workers = max(1, args.users // 5)
        sessions = [("overview", _session(base, "manager")) for _ in range(args.users - n_workers)]
        sessions += [("worker", _session(base, f"worker{1 + i % 2}")) for i in range(n_workers)]

        def user_loop(kind: str, s: requests.Session, seed: int) -> None:
            rng = np.random.default_rng(seed)
            tick = 0
            while time.monotonic() < stop:
                tick += 1
                if kind == "overview":
                    f = dict(filters)
                    f["klass"] = [None, "event", "component"][tick % 3]
                    payload = _overview_payload(f)
                else:
                    payload = _worker_payload(tick)
                t0 = time.perf_counter()
                try:
                    r = s.post(f"{base}/_dash-update-component", json=payload, timeout=30)
                    ok, detail = r.status_code == 200, f"{r.status_code} {r.text[:120]}"
                except requests.RequestException as exc:
                    ok, detail = False, repr(exc)
                rec.add(kind, time.perf_counter() - t0, ok, detail)
                time.sleep(float(rng.uniform(0.5, 1.5)) * args.think)

        def post_one(i: int) -> None:
            lon, lat = points[i % len(points)]
            body = {"service_code": ["exposed_garbage", "noise", "illegal_parking"][i % 3], "lat": lat, "long": lon,
                    "description": f"load test {i}", "external_id": f"L{i}"}
            t0 = time.perf_counter()
            try:
                r = requests.post(f"{base}/api/v2/requests.json", json=body, headers={"X-API-Key": key}, timeout=30)
                ok, detail = r.status_code == 201, f"{r.status_code} {r.text[:120]}"
            except requests.RequestException as exc:
                ok, detail = False, repr(exc)
            rec.add("intake POST", time.perf_counter() - t0, ok, detail)

        threads = [threading.Thread(target=user_loop, args=(k, s, i), daemon=True)
                   for i, (k, s) in enumerate(sessions)]
        for th in threads:
            th.start()
        with ThreadPoolExecutor(max_workers=16) as pool:
            i = 0
            start = time.monotonic()
            while time.monotonic() < stop:
                due = start + i / args.posts
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                pool.submit(post_one, i)
                i += 1
        for th in threads:
            th.join(timeout=60)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.users} users ({args.users - max(1, args.users // 5)} overview, {max(1, args.users // 5)} worker), "
          f"{args.posts:g} intake POST/s, {args.seconds:g} s, {args.size} demo\n")
    print(f"{'kind':<14}{'requests':>10}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'errors':>8}")
    for kind, times in rec.times.items():
        a = np.array(times) * 1000
        print(f"{kind:<14}{a.size:>10}{np.percentile(a, 50):>9.0f}{np.percentile(a, 95):>9.0f}{a.max():>9.0f}"
              f"{rec.errors.get(kind, 0):>8}")
    for kind, detail in rec.first_error.items():
        print(f"first {kind} error: {detail}")
    shutil.rmtree(tmp, ignore_errors=True)


def _filters_payload() -> dict[str, Any]:
    ins = [("ov-window", "value", "30"), ("ov-dates", "start_date", None), ("ov-dates", "end_date", None),
           ("ov-class", "value", "all"), ("ov-categories", "value", []), ("ov-street", "value", None),
           ("ov-community", "value", None), ("ov-basis", "value", "km2"), ("ov-refresh", "n_intervals", 0),
           ("ov-live-rev", "data", 0)]
    return {"output": "..ov-filters.data...ov-window-caption.children..",
            "outputs": [{"id": "ov-filters", "property": "data"}, {"id": "ov-window-caption", "property": "children"}],
            "inputs": [{"id": i, "property": p, "value": v} for i, p, v in ins],
            "state": [{"id": "ov-lang", "property": "data", "value": "en"}],
            "changedPropIds": ["ov-window.value"]}


def _points(base: str, key: str) -> list[tuple[float, float]]:
    """Points inside the district: the places of recent cases, read through the API itself."""
    rows = requests.get(f"{base}/api/v2/requests.json?limit=500", headers={"X-API-Key": key}, timeout=30).json()
    return [(r["long"], r["lat"]) for r in rows]


if __name__ == "__main__":
    main()
