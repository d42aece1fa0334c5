"""Bounded load test on loopback: simulated users on the overview and worker callbacks plus intake POSTs.

By default starts its own ``gridgov serve --demo`` (one process) on a copy of a demo DuckDB file (built in a temp
folder unless ``--db`` is given). With ``--db postgresql://…`` it serves a copy of that database instead (made with
``createdb -T`` and dropped after; the database must hold a demo, ``gridgov demo --db URL --size medium``), and with
``--workers N`` it runs gunicorn with N worker processes on it (``dashboards.wsgi:server``). With ``--url`` it
targets a server that is already running (``--db`` then only names the store to create the API key in, or give
``--api-key``).

It signs in ``--users`` sessions (four in five as the district manager on the overview's data callback, one in
five as a grid worker on the My grids refresh callback), each sending a request, waiting for the answer and
thinking ``--think`` seconds; meanwhile ``--posts`` intake POSTs a second go to the API. After ``--seconds`` it stops
everything and prints p50/p95/max latency and the error count per kind, with the machine's facts and the load
average sampled during the run. Goal (issue 8): p95 < 1 s, zero errors.

    python benchmarks/load.py                       # 20 users, 50 POST/s, 60 s on the medium demo
    python benchmarks/load.py --seconds 10 --size small
    python benchmarks/load.py --db postgresql://gridgov@127.0.0.1:5432/loadpg --workers 2
    python benchmarks/load.py --url http://127.0.0.1:8050 --api-key gg_load_…
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
from urllib.parse import urlsplit, urlunsplit

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
    parser.add_argument("--db", help="a demo DuckDB file to copy, or a postgresql:// URL of a demo database to "
                                     "serve in place (default: build a DuckDB demo)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes; > 1 runs gunicorn and needs a postgresql:// --db")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--url", help="target this running server instead of starting one")
    parser.add_argument("--api-key", help="intake API key for --url (default: create one in --db)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="gridgov-load-"))
    env = {**os.environ, "GRIDGOV_NOW": NOW}
    pg = bool(args.db) and str(args.db).startswith(("postgresql://", "postgres://"))
    if args.workers > 1 and not pg and not args.url:
        raise SystemExit("--workers > 1 needs --db postgresql://… (a DuckDB file has one writer process)")
    scratch_db: list[str] = []
    if pg and not args.url:
        # Each run on a fresh copy, as for a DuckDB file: the cases a run posts would otherwise pile up in the demo
        # (thousands of open cases per run) and slow every later run's worker page.
        db = _copy_database(args.db, f"gridgov_load_{os.getpid()}")
        scratch_db.append(db)
    elif args.url:
        db = args.db
    else:
        db = str(tmp / "load.duckdb")
        if args.db:
            shutil.copy2(args.db, db)
        else:
            subprocess.run([sys.executable, "-m", "gridgov.cli", "demo", "--db", db, "--size", args.size,
                            "--as-of", "2026-06-30"], check=True, cwd=REPO, env=env, capture_output=True)
    # A client id of its own per run: a PostgreSQL database keeps the clients (and the cases) of earlier runs.
    run_tag = f"{os.getpid():x}{int(time.time()) % 100_000:x}"
    key = args.api_key
    if key is None:
        if db is None:
            raise SystemExit("--url needs --api-key or --db (the store to create a key in)")
        key = subprocess.run([sys.executable, "-m", "gridgov.cli", "apikey", "add", f"load-{run_tag}", "--name",
                              "load test", "--db", db], check=True, cwd=REPO, env=env, capture_output=True,
                             text=True).stdout.strip().splitlines()[-1]
    server: subprocess.Popen[bytes] | None = None
    if args.url:
        base = args.url.rstrip("/")
        served = f"running server {base}"
    else:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        if args.workers > 1:
            cmd = [shutil.which("gunicorn") or "gunicorn", "--workers", str(args.workers), "--threads",
                   str(args.threads), "--keep-alive", "5", "--bind", f"127.0.0.1:{port}", "--chdir", str(REPO),
                   *_no_control_socket(), "dashboards.wsgi:server"]
            env["GRIDGOV_DB"], env["GRIDGOV_DEMO"] = db, "1"
            served = f"gunicorn {args.workers} workers x {args.threads} threads on PostgreSQL"
        else:
            cmd = [sys.executable, "-m", "gridgov.cli", "serve", "--demo", "--db", db, "--port", str(port)]
            served = "gridgov serve (1 process) on " + ("PostgreSQL" if pg else "DuckDB")
        log = (tmp / "server.log").open("wb")
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    rec = Recorder()
    loads: list[float] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2).text == "ok":
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            raise SystemExit("the server did not start; see " + str(tmp / "server.log"))
        if server is not None and args.workers > 1:
            _wait_for_workers(tmp / "server.log", args.workers)
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
                    "description": f"load test {i}", "external_id": f"L{run_tag}-{i}"}
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
        sampler = threading.Thread(target=_sample_load, args=(loads, stop), daemon=True)
        sampler.start()
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
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
        for url in scratch_db:
            _drop_database(url)
    print(f"machine: {_machine()}; python {platform.python_version()}")
    if loads:
        print(f"load average (1 min) during the run: min {min(loads):.1f}, mean {sum(loads) / len(loads):.1f}, "
              f"max {max(loads):.1f} ({len(loads)} samples)")
    print(f"server: {served}")
    if server is not None:
        # A context reload in a run that adopts nothing would mean the processes mistake new cases for new layouts.
        reloads = (tmp / "server.log").read_text(errors="replace").count("context: the store changed")
        print(f"context reloads during the run: {reloads}")
    print(f"{args.users} users ({args.users - max(1, args.users // 5)} overview, {max(1, args.users // 5)} worker), "
          f"{args.posts:g} intake POST/s, {args.seconds:g} s" + ("" if pg or args.url else f", {args.size} demo")
          + "\n")
    print(f"{'kind':<14}{'requests':>10}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'errors':>8}")
    for kind, times in rec.times.items():
        a = np.array(times) * 1000
        print(f"{kind:<14}{a.size:>10}{np.percentile(a, 50):>9.0f}{np.percentile(a, 95):>9.0f}{a.max():>9.0f}"
              f"{rec.errors.get(kind, 0):>8}")
    for kind, detail in rec.first_error.items():
        print(f"first {kind} error: {detail}")
    if rec.errors and server is not None:
        print(f"server log kept: {tmp / 'server.log'}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _pg_client_args(url: str) -> tuple[list[str], str]:
    parts = urlsplit(url)
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    if parts.username:
        args += ["-U", parts.username]
    return args, parts.path.lstrip("/")


def _copy_database(url: str, name: str) -> str:
    """A new database ``name`` copied from the one at ``url`` (PostgreSQL's ``createdb -T``), and its URL."""
    args, template = _pg_client_args(url)
    env = {**os.environ, **({"PGPASSWORD": urlsplit(url).password} if urlsplit(url).password else {})}
    subprocess.run(["createdb", *args, "-T", template, name], check=True, env=env)
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _drop_database(url: str) -> None:
    args, name = _pg_client_args(url)
    env = {**os.environ, **({"PGPASSWORD": urlsplit(url).password} if urlsplit(url).password else {})}
    subprocess.run(["dropdb", *args, "--force", "--if-exists", name], check=False, env=env)


def _sample_load(out: list[float], stop: float) -> None:
    while time.monotonic() < stop:
        out.append(os.getloadavg()[0])
        time.sleep(5)


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        memory = f", {mem / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = ""
    return f"{platform.machine()} {model}, {os.cpu_count()} cores{memory}".replace("  ", " ")


def _no_control_socket() -> list[str]:
    # gunicorn >= 25 opens a control socket at one fixed path per user; two servers at once would fight over it.
    shown = subprocess.run([shutil.which("gunicorn") or "gunicorn", "--help"], capture_output=True, text=True,
                           check=False).stdout
    return ["--no-control-socket"] if "--no-control-socket" in shown else []


def _wait_for_workers(log_path: Path, n: int, timeout: float = 180.0) -> None:
    """Wait until each of the n gunicorn workers has logged that its app is ready (until then the workers that are
    ready take every request, and the run would start lopsided)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.read_text(errors="replace").count("app ready") >= n:
            return
        time.sleep(0.3)
    raise SystemExit(f"not all {n} workers started; see {log_path}")


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
