"""The README's "Real data: Los Angeles 311, end to end" commands, run as written on the real sample.

The commands are read from the README's fenced block, so the documentation and this test cannot drift apart: only
the sample folder (``$LA``), the database (``$GRIDGOV_DB``) and the working folder are swapped for the test's own,
and ``gridgov serve`` gets a free port. Skipped only when ``../shared/data/la-311`` is absent.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgov.store import Store
from tests.dash_calls import form_token

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SECTION = "## Real data: Los Angeles 311, end to end"
PASSWORD = "la-test-password"


@dataclass
class Step:
    """One command of the README block: ``gridgov ARGS`` with the variables set on its own line."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The subcommand, e.g. ``areas import`` or ``regrid``."""
        two = {"areas", "units", "user", "export", "workers", "scenarios", "apikey"}
        return " ".join(self.args[:2]) if self.args[0] in two else self.args[0]


def readme_block(text: str) -> list[str]:
    """The logical lines (backslash continuations joined) of the first ``bash`` block of the LA section."""
    start = text.index(SECTION)
    found = re.search(r"```bash\n(.*?)```", text[start:], flags=re.S)
    assert found, f"no ```bash block in the README section {SECTION!r}"
    joined = found.group(1).replace("\\\n", " ")
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def parse_steps(lines: list[str], variables: dict[str, str]) -> list[Step]:
    """Commands of the block with ``$VAR`` expanded; ``VAR=value`` lines (and ``export``) set variables, except the
    ones in ``variables`` (the test's substitutions), which win."""
    fixed = set(variables)
    env = dict(variables)
    steps: list[Step] = []

    def expand(value: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)], value)

    for line in lines:
        tokens = [expand(t) for t in shlex.split(line.split(" #", 1)[0])]
        if tokens[0] == "export":
            tokens = tokens[1:]
        own: dict[str, str] = {}
        while tokens and re.fullmatch(r"[A-Za-z_]\w*=.*", tokens[0]):
            key, value = tokens.pop(0).split("=", 1)
            own[key] = value
        if not tokens:
            env.update({k: v for k, v in own.items() if k not in fixed})
            continue
        assert tokens[0] == "gridgov", f"the LA block runs gridgov commands only, got {line!r}"
        steps.append(Step(tokens[1:], own))
    return steps


def _run(step: Step, *, cwd: Path, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "gridgov.cli", *step.args], cwd=cwd, env={**env, **step.env},
                          input=stdin, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"gridgov {shlex.join(step.args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_and_sign_in(step: Step, *, cwd: Path, env: dict[str, str], user: str) -> tuple[int, str]:
    """Start the serve step on a free port, sign in through /login, fetch the start page; stop the server."""
    port = _free_port()
    log = cwd / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gridgov.cli", *step.args, "--port", str(port)], cwd=cwd,
                                env={**env, **step.env, "PYTHONUNBUFFERED": "1"}, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"gridgov serve exited:\n{log.read_text(errors='replace')}"
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                    if resp.read() == b"ok":
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"no /healthz answer:\n{log.read_text(errors='replace')}"
            time.sleep(0.25)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(base + "/login", timeout=30) as resp:  # the form first: it carries the CSRF token
            token = form_token(resp.read().decode())
        form = urllib.parse.urlencode({"username": user, "password": PASSWORD, "next": "/",
                                       "csrf_token": token}).encode()
        with opener.open(base + "/login", data=form, timeout=30) as resp:
            landed = urllib.parse.urlparse(resp.geturl()).path
        with opener.open(base + "/", timeout=30) as resp:
            return resp.status, landed
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def la_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every command of the README's LA block on a fresh database; the served page and the steps come back."""
    from tests.conftest import SHARED_DATA

    la_dir = SHARED_DATA / "la-311"
    if not la_dir.exists():
        pytest.skip(f"real sample data not found at {la_dir.resolve()} (see ../shared/data/README.md)")
    work = tmp_path_factory.mktemp("la")
    db = work / "la.duckdb"
    steps = parse_steps(readme_block(README.read_text(encoding="utf-8")),
                        {"LA": str(la_dir.resolve()), "GRIDGOV_DB": str(db)})
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRIDGOV_DB": str(db)}
    env.pop("GRIDGOV_NOW", None)
    served: tuple[int, str] | None = None
    user = None
    for step in steps:
        if step.name == "serve":
            assert user is not None, "the README signs in with the user it adds before `gridgov serve`"
            served = _serve_and_sign_in(step, cwd=work, env=env, user=user)
        elif step.name == "user add":
            user = step.args[2]
            _run(step, cwd=work, env=env, stdin=f"{PASSWORD}\n{PASSWORD}\n")
        else:
            _run(step, cwd=work, env=env)
    return {"db": db, "dir": la_dir, "steps": steps, "served": served}


def _step(run: dict[str, Any], name: str) -> Step:
    found = [s for s in run["steps"] if s.name == name]
    assert found, f"the README's LA block has no `gridgov {name}`"
    return found[0]


def _option(step: Step, name: str) -> str:
    return step.args[step.args.index(name) + 1]


def test_every_council_becomes_a_community_area(la_run: dict[str, Any]) -> None:
    councils = gpd.read_file(la_run["dir"] / "la_neighborhood_councils_2020_wgs84.geojson")
    population = pd.read_csv(la_run["dir"] / "la_nc_population_2020.csv")
    with Store(la_run["db"], read_only=True) as store:
        areas = store.admin_areas("community")
        district = store.admin_areas("district")
    # 100 features: Westwood twice, two unnamed polygons (Harbor Gateway North and South): 99 councils, the rows of
    # the population table.
    assert len(areas) == len(population) == councils["nameshort"].nunique() + councils["nameshort"].isna().sum()
    assert set(councils["nameshort"].dropna()) <= set(areas["name"])
    assert areas["code"].str.fullmatch(r"\d{12}").all()
    assert areas["code"].is_unique
    named = councils.dropna(subset=["nc_id"]).drop_duplicates("nameshort")
    by_name = areas.set_index("name")
    ids_kept = named[named["nc_id"] != "0"]
    assert [by_name.loc[n, "code"][-3:] for n in ids_kept["nameshort"]] == [i.zfill(3) for i in ids_kept["nc_id"]]
    # Every feature's ground is in its stored area, and the city is the union of the councils, parent of them all.
    metric = councils.estimate_utm_crs()
    stored = areas.to_crs(metric).set_index("name").geometry
    for name, geom in zip(named["nameshort"], named.to_crs(metric).geometry, strict=True):
        assert geom.difference(stored[name]).area < 1.0, name
    assert len(district) == 1
    assert set(areas["parent_code"]) == {district["code"].iloc[0]}
    union = shapely.union_all(stored.to_numpy())
    assert abs(district.to_crs(metric).geometry.iloc[0].area - union.area) < 1e-4 * union.area


def test_units_carry_the_council_population(la_run: dict[str, Any]) -> None:
    population = pd.read_csv(la_run["dir"] / "la_nc_population_2020.csv")
    with Store(la_run["db"], read_only=True) as store:
        units = store.unit_table()
    size = float(_option(_step(la_run, "units build"), "--size"))
    assert units["area_m2"].max() <= size * size * (1 + 1e-6) * 2  # a square plus the slivers merged into it
    assert int(units["population"].sum()) == int(population["population"].sum())
    assert (units["households"] == 0).all()  # the LA data has no household counts; the README says so


def test_grids_never_cross_council_borders(la_run: dict[str, Any]) -> None:
    with Store(la_run["db"], read_only=True) as store:
        layout_id = store.current_layout_id()
        assert layout_id is not None
        grids = store.layout_grids(layout_id)
        members = store.layout_units(layout_id).merge(store.unit_table(), on="unit_id", validate="one_to_one")
        areas = store.admin_areas("community")
        n_units = len(store.unit_table())
    assert len(grids) == int(_option(_step(la_run, "regrid"), "--n-grids"))
    assert len(members) == n_units  # the layout covers every unit
    council_of_grid = members.groupby("grid_code")["community_code"].agg(["nunique", "first"])
    assert (council_of_grid["nunique"] == 1).all()
    assert (grids.set_index("grid_code")["community_code"] == council_of_grid["first"].reindex(
        grids["grid_code"]).to_numpy()).all()
    assert set(grids["community_code"]) == set(areas["code"])  # every council has grids
    # Grids are made of squares: near a border their outline follows the squares, but most of each grid lies in its
    # own council.
    metric = areas.estimate_utm_crs()
    council = areas.to_crs(metric).set_index("code").geometry
    inside = [g.intersection(council[c]).area / g.area
              for g, c in zip(grids.to_crs(metric).geometry, grids["community_code"], strict=True)]
    assert min(inside) > 0.5


def test_imported_requests_land_in_grids_and_rejects_say_why(la_run: dict[str, Any]) -> None:
    with Store(la_run["db"], read_only=True) as store:
        batches = store.import_batches()
        assert len(batches) == 1
        batch = batches.iloc[0]
        rejects = store.rejects(int(batch["batch_id"]))
        incidents = store.incidents()
        layout_units = store.layout_units(store.current_layout_id() or 0)
        units = store.units()
    assert batch["rows_in"] == 10_000 == batch["accepted"] + batch["rejected"]
    assert len(incidents) == batch["accepted"] > 9_000
    assert set(incidents["unit_id"]) <= set(layout_units["unit_id"])
    assert len(rejects) == batch["rejected"]
    assert rejects["reason"].str.len().gt(0).all() and rejects["row_no"].is_unique
    # A point rejected as outside the district really lies outside every unit.
    outside = rejects[rejects["reason"] == "outside_district"]
    raw = pd.DataFrame([json.loads(r) for r in outside["raw"]])
    points = shapely.points(raw["longitude"].astype(float), raw["latitude"].astype(float))
    tree = shapely.STRtree(units.geometry.to_numpy())
    hit, _ = tree.query(points, predicate="intersects")
    assert len(outside) and hit.size == 0


def test_the_dashboard_serves_and_the_overview_has_data(la_run: dict[str, Any]) -> None:
    from dashboards.figures import DEFAULT_WINDOW, window_bounds

    status, landed = la_run["served"]
    assert status == 200 and landed != "/login"
    now = datetime.fromisoformat(_step(la_run, "serve").env["GRIDGOV_NOW"])
    start, end = window_bounds(DEFAULT_WINDOW, None, None, now=now)
    with Store(la_run["db"], read_only=True) as store:
        stats = store.grid_stats(store.current_layout_id() or 0, start=start, end=end, now=now)
        accepted = int(store.import_batches()["accepted"].sum())
    assert len(stats) > 0
    with Store(la_run["db"], read_only=True) as store:
        west, south, east, north = store.district_bounds() or (0.0, 0.0, 0.0, 0.0)
    assert -118.8 < west < east < -118.0 and 33.6 < south < north < 34.5  # the map frames the city, nothing more
    assert int(stats["reported"].sum()) == accepted  # the sample's three days are inside the default window
    assert np.isfinite(stats[["open", "overdue", "closed"]].to_numpy(dtype=float)).all()
