"""The large demo serves smoothly (issue 9): build it, start the real server, drive the Overview's real callbacks
over loopback in the order Dash fires them, and print one table of figures against the goals. Not a test.

    python benchmarks/serve.py                          # builds the large demo (~1.5 min), then ~2 min of requests
    python benchmarks/serve.py --db large.duckdb        # reuse a built demo (the server runs on a copy)
    python benchmarks/serve.py --size small --repeat 5  # a quick look

What it does:

* **build**: ``python -m gridgov.cli demo --size large --db TMP --as-of 2026-06-30``, timed (skipped with ``--db``).
* **start**: ``gridgov serve --demo`` on a free loopback port as a subprocess (clock fixed at ``GRIDGOV_NOW``); the
  time from spawning it to ``/healthz`` answering. A thread samples the server's resident memory (psutil) every
  100 ms until the end.
* **first load**: signed in as ``manager``, the page shell (``GET /``, ``/_dash-layout``, ``/_dash-dependencies``),
  then every server callback the Overview fires on load, wave by wave as the Dash renderer does (callbacks of one
  wave concurrently, a callback waiting while another pending one may still change one of its inputs), and the three
  boundary GeoJSON files the map fetches. The callbacks and their payloads come from the server's own
  ``/_dash-dependencies`` and the component properties the responses carry (a small replica of the renderer's
  scheduling, checked against the requests headless Chromium sends), so a change to the page is followed without
  editing this file. The first load right after start (cold) is measured once, then ``--loads`` warm ones.
* **filter changes**: time window (short, and long: a year or a custom quarter), class, category, street,
  community, and a click on a grid (detail panel), each ``--repeat`` times, back to the default view in between.
* **server time** of a user action is the client round trip on loopback along its critical path (the slowest
  callback of each wave, wave after wave; the benchmark's own parsing between waves left out), reported as p50/p95
  next to the server's own timing of the same work from its log (``overview: layout …``, ``overview: grid_stats …
  total …``, ``overview: detail …``), which leaves out Flask, sign-in checks and JSON encoding.
* **server CPU**: the CPU time the server process used for each action (user + system, all threads, psutil): the
  work done, which unlike the latencies hardly depends on what else runs on the machine (the first loads' figure
  includes the boundary files).
* **memory**: the server's peak resident set and the one at the end.

Goals (issue 9): build < 5 min; first load < 3 s server time; a filter change < 300 ms server time; < 4 GB resident.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from load import free_port, login_token  # noqa: E402  (benchmarks/load.py: the same sign-in and port)

from gridgov import __version__  # noqa: E402
from gridgov.auth import DEMO_PASSWORD  # noqa: E402

AS_OF = "2026-06-30"
NOW = "2026-07-01T09:00:00"  # the morning after the demo year, as in the browser tests
GOAL_BUILD_S = 300.0
GOAL_FIRST_LOAD_MS = 3000.0
GOAL_FILTER_MS = 300.0
GOAL_RSS_GB = 4.0
_LOG_TIMING = re.compile(r"overview: (?:grid_stats (?P<q>\d+) ms, total (?P<total>\d+) ms|layout in (?P<layout>\d+) ms"
                         r"|detail of \S+ in (?P<detail>\d+) ms)")


def _machine() -> str:
    import dash
    import duckdb

    mem = psutil.virtual_memory().total / 2**30
    return (f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, {mem:.0f} GB RAM, python "
            f"{platform.python_version()}, gridgov {__version__}, duckdb {duckdb.__version__}, dash {dash.__version__}"
            f"; load average {_load()}")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the server and its memory -----------------------------------------------------------------------------------
class MemorySampler(threading.Thread):
    """Resident set size of one process, sampled every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.samples: list[int] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.samples.append(self.proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def peak_since(self, index: int) -> int:
        return max(self.samples[index:], default=0)

    def cpu_ms(self) -> float:
        """CPU time the process used so far (user + system, every thread): work done, whatever the machine's load."""
        times = self.proc.cpu_times()
        return (times.user + times.system) * 1000


class ServerLog:
    """The server's combined output; :meth:`timings` returns the overview's timing lines written since last asked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0

    def timings(self) -> dict[str, list[float]]:
        with self.path.open("rb") as f:
            f.seek(self.pos)
            text = f.read().decode("utf-8", "replace")
            self.pos = f.tell()
        found: dict[str, list[float]] = {}
        for m in _LOG_TIMING.finditer(text):
            for key, value in m.groupdict().items():
                if value is not None:
                    found.setdefault(key, []).append(float(value))
        return found

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


# -- a small replica of the Dash renderer's callback scheduling ----------------------------------------------------
Prop = tuple[str, str]  # (component id as text, property)


def _id_key(cid: Any) -> str:
    return json.dumps(cid, sort_keys=True, separators=(",", ":")) if isinstance(cid, dict) else str(cid)


def _split_outputs(output: str) -> list[tuple[str, str]]:
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [tuple(p.rsplit(".", 1)) for p in parts]  # type: ignore[misc]


@dataclass
class Callback:
    """One server callback from ``/_dash-dependencies``."""

    output: str
    outputs: list[tuple[str, str]]
    inputs: list[dict[str, str]]
    state: list[dict[str, str]]
    prevent_initial_call: bool

    @property
    def label(self) -> str:
        return ", ".join(f"{i}.{p.split('@')[0]}" for i, p in self.outputs)

    def output_props(self) -> set[Prop]:
        return {(i, p.split("@")[0]) for i, p in self.outputs}

    def triggered_by(self, changed: set[Prop]) -> set[Prop]:
        """The changed properties that are inputs of this callback (a pattern input matches by its ``type``)."""
        hit: set[Prop] = set()
        for x in self.inputs:
            if x["id"].startswith("{"):
                kind = json.loads(x["id"]).get("type")
                hit |= {(i, p) for i, p in changed if p == x["property"] and i.startswith("{")
                        and json.loads(i).get("type") == kind}
            elif (x["id"], x["property"]) in changed:
                hit.add((x["id"], x["property"]))
        return hit

    def input_props(self) -> set[Prop]:
        return {(x["id"], x["property"]) for x in self.inputs}


@dataclass
class Step:
    """One callback request of a user action."""

    label: str
    wave: int
    ms: float
    bytes: int


@dataclass
class Action:
    """All requests one user action started, and the server's own timing lines written meanwhile."""

    name: str
    steps: list[Step] = field(default_factory=list)
    total_ms: float = 0.0
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    server: dict[str, list[float]] = field(default_factory=dict)


class DashPage:
    """A signed-in browser tab reduced to what reaches the server: component properties and callback requests.

    Callbacks fire when one of their inputs changes (or, unless ``prevent_initial_call``, when their components
    first appear); a callback waits while another pending callback lists one of its inputs as an output, and the
    callbacks that are ready go out together, as the Dash renderer sends them.
    """

    def __init__(self, base: str, session: requests.Session) -> None:
        self.base = base
        self.session = session
        self.props: dict[Prop, Any] = {}
        self.present: dict[str, Any] = {}  # id text → id as sent
        deps = session.get(f"{base}/_dash-dependencies", timeout=60).json()
        self.callbacks = [
            Callback(d["output"], _split_outputs(d["output"]), d["inputs"], d.get("state", []),
                     bool(d.get("prevent_initial_call")))
            for d in deps if not d.get("clientside_function")
        ]
        self._local = threading.local()

    def _http(self) -> requests.Session:
        # One connection per thread, sharing the sign-in cookie, like a browser's parallel requests.
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.cookies.update(self.session.cookies)
            self._local.session = s
        return s

    # -- component properties --------------------------------------------------------------------------------------
    def absorb(self, tree: Any) -> set[str]:
        """Record the ids and explicit properties of every component in ``tree``; return the ids found."""
        found: set[str] = set()
        stack = [tree]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict) and "props" in node and "type" in node:
                props = node["props"]
                if "id" in props:
                    key = _id_key(props["id"])
                    found.add(key)
                    self.present[key] = props["id"]
                    for name, value in props.items():
                        if name not in ("id", "children"):
                            self.props[(key, name)] = value
                stack.extend(v for k, v in props.items() if k == "children" or isinstance(v, dict | list))
        return found

    def _value(self, spec: dict[str, str]) -> Any:
        cid = spec["id"]
        if cid.startswith("{"):  # pattern-matching (ALL) input: every present component of that type
            pattern = json.loads(cid)
            matches = [(k, v) for k, v in self.present.items() if isinstance(v, dict)
                       and v.get("type") == pattern.get("type")]
            return [{"id": v, "property": spec["property"],
                     **({"value": self.props[(k, spec["property"])]} if (k, spec["property"]) in self.props else {})}
                    for k, v in matches]
        item: dict[str, Any] = {"id": cid, "property": spec["property"]}
        if (cid, spec["property"]) in self.props:
            item["value"] = self.props[(cid, spec["property"])]
        return item

    def _payload(self, cb: Callback, changed: set[Prop]) -> dict[str, Any]:
        outs = [{"id": i, "property": p} for i, p in cb.outputs]
        trig = [f"{i}.{p}" for i, p in sorted(changed)]
        body: dict[str, Any] = {"output": cb.output, "outputs": outs if len(outs) > 1 else outs[0],
                                "inputs": [self._value(x) for x in cb.inputs], "changedPropIds": trig}
        if cb.state:
            body["state"] = [self._value(x) for x in cb.state]
        return body

    def _call(self, cb: Callback, changed: set[Prop]) -> tuple[Callback, float, int, dict[str, Any]]:
        t0 = time.perf_counter()
        r = self._http().post(f"{self.base}/_dash-update-component", json=self._payload(cb, changed), timeout=120)
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code == 204:  # PreventUpdate: nothing changed
            return cb, ms, 0, {}
        if r.status_code != 200:
            raise SystemExit(f"callback {cb.output} answered {r.status_code}: {r.text[:300]}")
        return cb, ms, len(r.content), r.json().get("response", {})

    # -- firing ------------------------------------------------------------------------------------------------------
    def _initial(self, new_ids: set[str]) -> dict[int, set[Prop]]:
        fire: dict[int, set[Prop]] = {}
        for n, cb in enumerate(self.callbacks):
            if cb.prevent_initial_call:
                continue
            ids = {x["id"] for x in cb.inputs if not x["id"].startswith("{")}
            if ids & new_ids and ids <= set(self.present) and {i for i, _ in cb.outputs} <= set(self.present):
                fire[n] = set()
        return fire

    def _triggered(self, changed: set[Prop]) -> dict[int, set[Prop]]:
        return {n: hit for n, cb in enumerate(self.callbacks) if (hit := cb.triggered_by(changed))}

    def run(self, name: str, changed: set[Prop], new_ids: set[str] | None = None) -> Action:
        """Set ``changed`` properties (already stored in :attr:`props`) and run every callback that follows."""
        action = Action(name)
        pending = self._triggered(changed)
        for n, trig in self._initial(new_ids or set()).items():
            pending.setdefault(n, set()).update(trig)
        wave = 0
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=6) as pool:
            while pending:
                blocked = {n for n in pending for m in pending
                           if m != n and self.callbacks[m].output_props() & self.callbacks[n].input_props()}
                ready = [n for n in pending if n not in blocked] or list(pending)
                calls = [pool.submit(self._call, self.callbacks[n], pending.pop(n)) for n in ready]
                wave += 1
                newly: set[Prop] = set()
                appeared: set[str] = set()
                for fut in calls:
                    cb, ms, size, response = fut.result()
                    action.steps.append(Step(cb.label, wave, ms, size))
                    for cid, values in response.items():
                        for prop, value in values.items():
                            if isinstance(value, dict) and "__dash_patch_update" in value:
                                newly.add((cid, prop))  # a Patch: the browser's copy changes, ours is not needed
                                continue
                            self.props[(cid, prop)] = value
                            newly.add((cid, prop))
                            if prop == "children":
                                appeared |= self.absorb(value)
                for n, trig in self._triggered(newly).items():
                    pending.setdefault(n, set()).update(trig)
                for n, trig in self._initial(appeared).items():
                    pending.setdefault(n, set()).update(trig)
        action.wall_ms = (time.perf_counter() - started) * 1000
        # The user waits for the slowest callback of each wave, wave after wave; the client's own work between waves
        # (parsing a 1.4 MB layout in Python, say) is not the server's and stays out.
        action.total_ms = sum(max(s.ms for s in action.steps if s.wave == w) for w in range(1, wave + 1))
        return action

    def set(self, name: str, values: dict[Prop, Any]) -> Action:
        """A user changes control values: store them, then run the callbacks they start."""
        self.props.update(values)
        return self.run(name, set(values))


def first_load(base: str, session: requests.Session, log: ServerLog) -> tuple[DashPage, Action, dict[str, Any]]:
    """Open ``/`` as a browser does: the page shell, the callbacks it fires, the boundary files the map fetches."""
    shell: dict[str, Any] = {}
    t0 = time.perf_counter()
    r = session.get(f"{base}/", timeout=60)
    r.raise_for_status()
    layout = session.get(f"{base}/_dash-layout", timeout=60).json()
    page = DashPage(base, session)
    shell["shell_ms"] = (time.perf_counter() - t0) * 1000
    log.timings()
    ids = page.absorb(layout)
    # dcc.Location fills in the address once mounted: that change starts the shell's and Dash Pages' callbacks.
    location = {(loc, p): v for loc in ("url", "_pages_location") for p, v in (("pathname", "/"), ("search", ""))}
    page.props.update(location)
    action = page.run("first load", set(location), ids)
    action.server = log.timings()
    geo_urls = sorted({layer["source"] for layer in _map_layers(page) if isinstance(layer.get("source"), str)
                       and layer["source"].startswith("/geo/")})
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=3) as pool:
        sizes = list(pool.map(lambda u: len(page._http().get(f"{base}{u}", timeout=60).content), geo_urls))
    shell["geo_ms"] = (time.perf_counter() - t0) * 1000
    shell["geo_bytes"] = sum(sizes)
    shell["geo_files"] = len(geo_urls)
    return page, action, shell


def _map_layers(page: DashPage) -> list[dict[str, Any]]:
    figure = page.props.get(("ov-map", "figure")) or {}
    return list(figure.get("layout", {}).get("map", {}).get("layers", []))


# -- user actions -----------------------------------------------------------------------------------------------------
def _options(page: DashPage, cid: str) -> list[str]:
    return [str(o["value"]) for o in page.props.get((cid, "options")) or []]


def filter_actions(page: DashPage, *, repeat: int, seed: int) -> Iterator[tuple[str, dict[Prop, Any]]]:
    """Each filter change ``repeat`` times, each time to a value other than the current one, then back to the default
    (the reset is a request too, but not counted)."""
    rng = np.random.default_rng(seed)
    cats = _options(page, "ov-categories")
    streets = _options(page, "ov-street")
    codes = [str(c) for c in (page.props.get(("ov-map", "figure")) or {}).get("data", [{}])[0].get("locations", [])]
    if not (cats and streets and codes):
        raise SystemExit("the Overview shows no categories, streets or grids: is this a demo database?")
    for i in range(repeat):
        yield "time window 7 d / 90 d", {("ov-window", "value"): ["7", "90"][i % 2]}
    for i in range(repeat):
        # The longest windows count the most incidents: a year, or a custom quarter.
        change: dict[Prop, Any] = {("ov-window", "value"): ["365", "custom"][i % 2]}
        if i % 2:
            change[("ov-dates", "start_date")] = "2026-01-01"
            change[("ov-dates", "end_date")] = "2026-03-31"
        yield "time window 365 d / custom quarter", change
    for i in range(repeat):
        yield "class (event/component)", {("ov-class", "value"): ["event", "component"][i % 2]}
    for _ in range(repeat):
        yield "categories (1-3 of them)", {("ov-categories", "value"):
                                          sorted(rng.choice(cats, size=int(rng.integers(1, 4)), replace=False))}
    for _ in range(repeat):
        yield "street", {("ov-street", "value"): str(rng.choice(streets))}
    for _ in range(repeat):
        # From the list the page shows now (no street chosen after the reset: every community).
        yield "community", {("ov-community", "value"): str(rng.choice(_options(page, "ov-community")))}
    for _ in range(repeat):
        code = str(rng.choice(codes))
        yield "click a grid → detail", {("ov-map", "clickData"): {"points": [{"location": code, "curveNumber": 0}]}}


DEFAULTS: dict[Prop, Any] = {("ov-window", "value"): "30", ("ov-class", "value"): "all",
                             ("ov-categories", "value"): [], ("ov-street", "value"): None,
                             ("ov-community", "value"): None}


def _reset(page: DashPage, change: dict[Prop, Any]) -> None:
    back = {k: DEFAULTS[k] for k in change if k in DEFAULTS and page.props.get(k) != DEFAULTS[k]}
    if ("ov-map", "clickData") in change:
        close = [v for v in page.present.values() if isinstance(v, dict) and v.get("type") == "ov-detail-close"]
        for cid in close:
            back[(_id_key(cid), "n_clicks")] = 1
    if back:
        page.set("reset", back)


# -- report ------------------------------------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _fmt(v: float, digits: int = 0) -> str:
    return "—" if v != v else f"{v:,.{digits}f}"


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a built demo database to serve (a copy of it); default: build one")
    parser.add_argument("--size", default="large", help="demo size to build (default large)")
    parser.add_argument("--repeat", type=int, default=20, help="times each filter change is made")
    parser.add_argument("--loads", type=int, default=5, help="warm first loads after the cold one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the choice of categories, streets and grids")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, server log)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.loads < 0:
        parser.error(f"--repeat must be ≥ 1 and --loads ≥ 0, got {args.repeat} and {args.loads}")

    print(_machine(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="gridgov-serve-"))
    db = tmp / "serve.duckdb"
    env = {**os.environ, "GRIDGOV_NOW": NOW, "PYTHONUNBUFFERED": "1"}
    env.pop("GRIDGOV_DB", None)
    rows: list[tuple[str, ...]] = [("step", "n", "p50 ms", "p95 ms", "server ms (log)", "server CPU ms", "KB",
                                    "goal", "")]
    build_s = float("nan")
    if args.db:
        if not args.db.exists():
            raise SystemExit(f"--db: {args.db} does not exist")
        shutil.copy2(args.db, db)
        print(f"serving a copy of {args.db}", flush=True)
    else:
        print(f"building the {args.size} demo …", flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gridgov.cli", "demo", "--size", args.size, "--db", str(db),
                        "--as-of", AS_OF], check=True, cwd=REPO, env=env, capture_output=True)
        build_s = time.perf_counter() - t0
        print(f"built in {build_s:.0f} s (load average {_load()})", flush=True)
        rows.append(("build demo (s)", "1", _fmt(build_s), "", "", "", "", f"< {GOAL_BUILD_S:.0f} s",
                     _ok(build_s < GOAL_BUILD_S)))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp / "server.log"
    out = log_path.open("wb")
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "gridgov.cli", "serve", "--demo", "--db", str(db), "--host",
                               "127.0.0.1", "--port", str(port)], cwd=REPO, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    memory = MemorySampler(server.pid)
    memory.start()
    log = ServerLog(log_path)
    actions: dict[str, list[Action]] = {}
    chains: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode}:\n{log.tail()}")
            try:
                if requests.get(f"{base}/healthz", timeout=2).text == "ok":
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer /healthz in 300 s:\n{log.tail()}")
            time.sleep(0.05)
        start_s = time.perf_counter() - t0
        rss_started = memory.peak_since(0)
        rows.append(("server start → healthy (s)", "1", _fmt(start_s, 1), "", "", "", "", "", ""))
        print(f"server healthy in {start_s:.1f} s, {rss_started / 2**20:,.0f} MB resident", flush=True)

        session = requests.Session()
        r = session.post(f"{base}/login", data={"username": "manager", "password": DEMO_PASSWORD,
                                                "csrf_token": login_token(session, base)},
                         allow_redirects=False, timeout=30)
        if r.status_code not in (302, 303):
            raise SystemExit(f"sign-in as manager failed: {r.status_code} {r.text[:200]}")

        loads: list[tuple[Action, dict[str, Any]]] = []
        page: DashPage | None = None
        for _ in range(1 + args.loads):
            cpu = memory.cpu_ms()
            page, action, shell = first_load(base, session, log)
            action.cpu_ms = memory.cpu_ms() - cpu  # includes the three boundary files
            loads.append((action, shell))
        assert page is not None
        _load_rows(rows, loads)
        print("first loads done; filter changes …", flush=True)

        for name, change in filter_actions(page, repeat=args.repeat, seed=args.seed):
            log.timings()
            cpu = memory.cpu_ms()
            action = page.set(name, change)
            action.cpu_ms = memory.cpu_ms() - cpu
            action.server = log.timings()
            actions.setdefault(name, []).append(action)
            _reset(page, change)
        for name, acts in actions.items():
            totals = [a.total_ms for a in acts]
            server_ms = [v for a in acts for v in a.server.get("total", []) + a.server.get("detail", [])]
            kb = np.mean([sum(s.bytes for s in a.steps) for a in acts]) / 1024
            rows.append((f"{name}", str(len(acts)), _fmt(_pct(totals, 50)), _fmt(_pct(totals, 95)),
                         f"{_fmt(_pct(server_ms, 50))} / {_fmt(_pct(server_ms, 95))}",
                         _fmt(_pct([a.cpu_ms for a in acts], 50)), _fmt(kb),
                         f"< {GOAL_FILTER_MS:.0f} ms", _ok(_pct(totals, 95) < GOAL_FILTER_MS)))
            chains[name] = _chain(acts[0])
    finally:
        end_rss = memory.samples[-1] if memory.samples else 0
        peak = memory.peak_since(0)
        memory.stop()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
        out.close()
    rows.append(("server resident: peak (MB)", "", _fmt(peak / 2**20), "", "", "", "", f"< {GOAL_RSS_GB:.0f} GB",
                 _ok(peak < GOAL_RSS_GB * 2**30)))
    rows.append(("server resident: started / end (MB)", "", f"{rss_started / 2**20:,.0f} / "
                 f"{end_rss / 2**20:,.0f}", "", "", "", "", "", ""))
    print(f"\n{args.size if not args.db else args.db.name} demo; load average at the end {_load()}. p50/p95: client "
          "round trip on loopback along the action's callbacks, wave after wave; server ms (log): the server's own "
          "timing (layout + grid_stats with figure work, or the detail panel), p50 / p95; server CPU ms: CPU time the "
          "server process used for the action (all threads), p50 — the work, whatever the machine's load\n")
    _table(rows)
    print("\ncallbacks per action, wave by wave (one wave's callbacks go out together; `+` = same wave):")
    for name, chain in chains.items():
        print(f"  {name}: {chain}")
    if args.keep:
        print(f"\nkept {tmp} (server.log, serve.duckdb)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _chain(action: Action) -> str:
    waves: dict[int, list[str]] = {}
    for step in action.steps:
        waves.setdefault(step.wave, []).append(step.label.split(",")[0])
    return " → ".join(" + ".join(labels) for _, labels in sorted(waves.items()))


def _ok(flag: bool) -> str:
    return "ok" if flag else "MISSED"


def _load_rows(rows: list[tuple[str, ...]], loads: list[tuple[Action, dict[str, Any]]]) -> None:
    cold, cold_shell = loads[0]
    warm = loads[1:]

    def server_total(a: Action) -> float:
        return sum(a.server.get("layout", [])) + sum(a.server.get("total", []))

    rows.append(("first load, cold: GET /, layout, dependencies", "1", _fmt(cold_shell["shell_ms"]), "",
                 "", "", "", "", ""))
    for s in cold.steps:
        label = s.label if len(s.label) <= 44 else s.label[:43] + "…"
        rows.append((f"  wave {s.wave}: {label}", "1", _fmt(s.ms), "", "", "", _fmt(s.bytes / 1024), "", ""))
    rows.append(("first load, cold: all callbacks", "1", _fmt(cold.total_ms), "", _fmt(server_total(cold)),
                 _fmt(cold.cpu_ms), _fmt(sum(s.bytes for s in cold.steps) / 1024), f"< {GOAL_FIRST_LOAD_MS:.0f} ms",
                 _ok(cold.total_ms < GOAL_FIRST_LOAD_MS)))
    rows.append((f"first load, cold: {cold_shell['geo_files']} boundary GeoJSON files", "1",
                 _fmt(cold_shell["geo_ms"]), "", "", "", _fmt(cold_shell["geo_bytes"] / 1024), "", ""))
    if warm:
        totals = [a.total_ms for a, _ in warm]
        rows.append(("first load, warm: all callbacks", str(len(warm)), _fmt(_pct(totals, 50)),
                     _fmt(_pct(totals, 95)), _fmt(_pct([server_total(a) for a, _ in warm], 50)),
                     _fmt(_pct([a.cpu_ms for a, _ in warm], 50)),
                     _fmt(np.mean([sum(s.bytes for s in a.steps) for a, _ in warm]) / 1024),
                     f"< {GOAL_FIRST_LOAD_MS:.0f} ms", _ok(_pct(totals, 95) < GOAL_FIRST_LOAD_MS)))


if __name__ == "__main__":
    main()
