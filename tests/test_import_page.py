"""The Import page: upload → import job → statistics, re-import, cancel, the outside-district map, who may use it,
and the other pages answering while a big import runs in the served app.

Callbacks are called in-process on a copy of the small demo (the pattern of ``tests/test_planner_page.py``); the
last test serves the app over HTTP and drives it the way a browser does.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import shutil
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
import numpy as np
import pandas as pd
import pytest
import shapely

from dashboards.import_figures import (
    MAX_UPLOAD_BYTES,
    decode_upload,
    import_options,
    outside_points,
    reason_rows,
    reject_rows,
    sample_points,
)
from gridgov import auth, coords
from gridgov.auth import User
from gridgov.config import Settings
from gridgov.errors import InputError
from gridgov.ingest import REASONS
from gridgov.store import Store
from tests.dash_calls import call_as_triggered, form_token, sign_in, texts

NOW = datetime(2026, 7, 1, 9)
MANAGER = User("manager", "manager")


# -- data ------------------------------------------------------------------------------------------------------
def _inside_points(store: Store, n: int, seed: int) -> np.ndarray:
    """``n`` points inside units of the district (a point inside a random unit each), seeded."""
    units = store.units()
    inner = shapely.get_coordinates(units.geometry.representative_point().to_numpy())
    rng = np.random.default_rng(seed)
    return inner[rng.integers(0, len(inner), size=n)]


def _small_csv(store: Store) -> tuple[bytes, dict[str, Any]]:
    """Five good rows and six bad ones, each bad for a known reason; two points lie outside the district."""
    (x0, y0, x1, y1) = store.district_bounds()
    good = _inside_points(store, 5, seed=1)
    cats = store.categories()["code"].tolist()
    rows = [{"external_id": f"S{i}", "reported_at": f"2026-06-2{i} 10:00:00", "category": cats[i],
             "lon": f"{x:.6f}", "lat": f"{y:.6f}"} for i, (x, y) in enumerate(good, start=1)]
    outside = [(x1 + 0.02, y0 - 0.01), (x0 - 0.03, y1 + 0.02)]
    rows += [
        {"external_id": "B1", "reported_at": "", "category": cats[0], "lon": rows[0]["lon"], "lat": rows[0]["lat"]},
        {"external_id": "B2", "reported_at": "2026-06-20 10:00:00", "category": "no such thing",
         "lon": rows[0]["lon"], "lat": rows[0]["lat"]},
        {"external_id": "B3", "reported_at": "2026-06-20 10:00:00", "category": cats[0], "lon": "abc",
         "lat": rows[0]["lat"]},
        {"external_id": "B4", "reported_at": "2026-06-20 11:00:00", "category": cats[0],
         "lon": f"{outside[0][0]:.6f}", "lat": f"{outside[0][1]:.6f}"},
        {"external_id": "S1", "reported_at": "2026-06-20 12:00:00", "category": cats[0], "lon": rows[0]["lon"],
         "lat": rows[0]["lat"]},
        {"external_id": "B5", "reported_at": "2026-06-21 11:00:00", "category": cats[1],
         "lon": f"{outside[1][0]:.6f}", "lat": f"{outside[1][1]:.6f}"},
    ]
    expected = {
        "rows_in": 11, "accepted": 5, "rejected": 6, "duplicates": 1,
        "by_reason": {"missing_reported_at": 1, "unknown_category": 1, "bad_coordinates": 1,
                      "outside_district": 2, "duplicate_external_id": 1},
        "outside": {9: outside[0], 11: outside[1]},  # data row number → (lon, lat)
        "first_rows": [6, 7, 8, 9, 10, 11],
    }
    return pd.DataFrame(rows).to_csv(index=False).encode(), expected


def _data_url(data: bytes, mime: str = "text/csv") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _n_incidents(store: Store) -> int:
    return int(store.df("SELECT count(*) AS n FROM incident")["n"].iloc[0])


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture
def demo_app(small_demo_db: Path, tmp_path: Path) -> Iterator[dash.Dash]:
    from dashboards.app import create_app
    from dashboards.context import get_context

    db = tmp_path / "demo.duckdb"
    shutil.copy2(small_demo_db, db)
    app = create_app(Settings(db_path=db, now=NOW))
    yield app
    get_context().store.close()


@pytest.fixture
def page(demo_app: dash.Dash, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = sys.modules["dashboards.pages.imports"]
    # Callbacks are called directly here, outside a request: the signed-in user is given instead.
    monkeypatch.setattr(module.access, "signed_in", lambda: MANAGER)
    return module


def _upload(page: Any, data: bytes, name: str) -> dict[str, Any]:
    uploaded, note, box = call_as_triggered("im-upload.contents", page._receive, _data_url(data), name, None,
                                            "en", value="…")
    # A fresh upload box: the browser's copy of the file is dropped, and the same file can be chosen again.
    assert box.id == "im-upload" and getattr(box, "contents", None) is None
    assert uploaded is not None, texts(note)
    assert "ready to import" in " ".join(texts(note))
    return uploaded


def _run(page: Any, uploaded: dict[str, Any], *, preset: str = "none", datum: str = "preset",
         source: str = "") -> tuple[Any, dict[str, Any]]:
    job, poll_off, start_off, cancel_off, _cls, msg, kept, _res, _note = call_as_triggered(
        "im-start.n_clicks", page._start, 1, uploaded, preset, datum, "", "", source, "en", value=1)
    assert job and not poll_off and start_off and not cancel_off, texts(msg)
    assert kept is None, "the file is handed over to the job"
    status = page.RUNNER.wait(job["id"], timeout=120)
    *_, banner, job_after, poll_after, _s, _c, rev = page._poll(1, job, {"n": 0, "batch": None}, "en")
    assert job_after is None and poll_after is True
    return status, {"banner": " ".join(texts(banner)), "rev": rev}


# -- the page --------------------------------------------------------------------------------------------------
def test_upload_import_statistics_and_reimport(page: Any) -> None:
    from dashboards import live
    from dashboards.context import get_context

    store = get_context().store
    data, expected = _small_csv(store)
    before, revision, live_before = _n_incidents(store), get_context().revision, live.revision()

    uploaded = _upload(page, data, "calls 2026.csv")
    upload_dir = page.upload_root(get_context()) / uploaded["token"]
    assert (upload_dir / "calls_2026.csv").read_bytes() == data
    status, out = _run(page, uploaded, source="hotline")
    assert status.state == "done", status.error
    res = status.result
    assert (res.rows_in, res.accepted, res.rejected, res.duplicates) == (
        expected["rows_in"], expected["accepted"], expected["rejected"], expected["duplicates"])
    assert res.rejected_by_reason == expected["by_reason"]
    assert not upload_dir.exists(), "the uploaded file is removed after the import"
    assert out["banner"] == f"Imported calls_2026.csv as batch {res.batch_id}: 5 accepted, 6 rejected."
    assert out["rev"] == {"n": 1, "batch": res.batch_id}
    # Other pages see the new cases: the context is reloaded and the live counter moved.
    assert _n_incidents(store) == before + 5
    assert get_context().revision == revision + 1 and live.revision() > live_before

    options, value = page._batches(out["rev"], None, "en")
    assert value == res.batch_id and options[0]["label"].startswith(f"#{res.batch_id} · calls_2026.csv")
    stats = page._stats(res.batch_id, "en")
    words = texts(stats)
    cards = {c.id: texts(c) for c in stats[1].children}
    assert cards["im-kpi-rows_in"][1] == "11" and cards["im-kpi-accepted"][1] == "5"
    assert cards["im-kpi-rejected"][1] == "6" and cards["im-kpi-duplicates"][1] == "1"
    assert cards["im-kpi-seconds"][1] != "—", "this server ran the import: its time is known"
    assert '"source": "hotline"' in " ".join(words)

    # Rejected rows by reason: code, REASONS text, count.
    tables = stats[2].children[0].children
    reasons = {tr.id: texts(tr) for tr in tables[0].children[1].children[1].children}
    assert reasons == {f"im-reason-{code}": [code, REASONS[code], str(n), f"{n / 6 * 100:.1f}%"]
                       for code, n in expected["by_reason"].items()}
    first = [texts(tr) for tr in tables[1].children[1].children.children[1].children]
    assert [int(r[0]) for r in first] == expected["first_rows"]
    assert first[2][1:3] == ["lon", "bad_coordinates"] and "lon = 'abc'" in first[2][3]
    assert first[4][2] == "duplicate_external_id"

    # The map holds exactly the outside-district rejects, at their coordinates.
    map_card = stats[2].children[1]
    fig = next(c for c in map_card.children if getattr(c, "id", None) == "im-outside-map").figure
    trace = fig.data[0]
    got = {int(r): (lon, lat) for r, lon, lat in zip(trace.customdata, trace.lon, trace.lat, strict=True)}
    assert set(got) == set(expected["outside"])
    for row, (lon, lat) in expected["outside"].items():
        assert got[row] == pytest.approx((lon, lat), abs=1e-6)
    assert fig.layout.map.layers[0].source.startswith("/geo/streets.geojson")
    assert "2 rejected point(s) lie outside the district." in texts(map_card)

    # The same file again: already imported, nothing changed.
    batches = len(store.import_batches())
    status, out = _run(page, _upload(page, data, "calls 2026.csv"))
    assert status.state == "done" and status.result.already_imported
    assert out["banner"] == f"calls_2026.csv was already imported as batch {res.batch_id} — nothing changed."
    assert _n_incidents(store) == before + 5 and len(store.import_batches()) == batches
    assert out["rev"]["batch"] == res.batch_id
    assert get_context().revision == revision + 1, "nothing new: the context is not reloaded"


def test_a_past_batch_and_chinese_labels(page: Any) -> None:
    from dashboards.context import get_context
    from gridgov.ingest import ingest_file

    store = get_context().store
    data, _expected = _small_csv(store)
    path = get_context().settings.db_path.with_name("earlier.csv")
    path.write_bytes(data)
    res = ingest_file(store, path)  # as the CLI would have, before this server started
    stats = page._stats(res.batch_id, "zh")
    cards = {c.id: texts(c) for c in stats[1].children}
    assert cards["im-kpi-seconds"][1] == "—", "the store does not keep how long an earlier import took"
    assert cards["im-kpi-accepted"][0] == "入库"
    assert "点位不在辖区任何单元网格内" in texts(stats[2].children[0].children[0])
    assert "共有 2 个拒收点位位于辖区之外。" in texts(stats[2].children[1])


def test_geojson_outside_points_come_from_the_geometry(page: Any, tmp_path: Path) -> None:
    import geopandas as gpd

    from dashboards.context import get_context

    store = get_context().store
    inside = _inside_points(store, 2, seed=5)
    x1, y1 = store.district_bounds()[2:]
    far = (x1 + 0.015, y1 + 0.005)
    cats = store.categories()["code"].tolist()
    gdf = gpd.GeoDataFrame({"external_id": ["G1", "G2", "G3"], "reported_at": ["2026-06-20 10:00:00"] * 3,
                            "category": cats[:3]},
                           geometry=gpd.points_from_xy([*inside[:, 0], far[0]], [*inside[:, 1], far[1]]),
                           crs="EPSG:4326")
    path = tmp_path / "points.geojson"
    gdf.to_file(path, driver="GeoJSON")
    status, _ = _run(page, _upload(page, path.read_bytes(), "points.geojson"))
    assert (status.result.accepted, status.result.rejected_by_reason) == (2, {"outside_district": 1})
    stats = page._stats(status.result.batch_id, "en")
    fig = stats[2].children[1].children[1].figure
    assert list(fig.data[0].customdata) == [3]
    assert (fig.data[0].lon[0], fig.data[0].lat[0]) == pytest.approx(far, abs=1e-6)


def test_cancel_writes_nothing(page: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.context import get_context
    from gridgov import ingest

    store = get_context().store
    data, _ = _small_csv(store)
    before, batches = _n_incidents(store), len(store.import_batches())

    # Through the page: the job is held before it reads the file, cancelled, then let go.
    gate = threading.Event()
    monkeypatch.setattr(page, "count_rows", lambda path: gate.wait(10) and None)
    uploaded = _upload(page, data, "calls.csv")
    job, *_ = call_as_triggered("im-start.n_clicks", page._start, 1, uploaded, "none", "preset", "", "", "",
                                "en", value=1)
    # One import at a time: a second start follows the running job and keeps its own file for later.
    second = _upload(page, data, "other.csv")
    other, *_, msg, kept, _res, _note = call_as_triggered("im-start.n_clicks", page._start, 1, second, "none",
                                                          "preset", "", "", "", "en", value=1)
    assert other == {"id": job["id"], "name": "calls.csv"} and kept is dash.no_update
    assert texts(msg)[0].startswith("Another import is running")
    text, cancel_off = call_as_triggered("im-cancel.n_clicks", page._cancel, 1, job, "en", value=1)
    assert text == "Cancelling…" and cancel_off
    gate.set()
    assert page.RUNNER.wait(job["id"], timeout=30).state == "cancelled"
    *_, banner, _j, _p, _s, _c, _rev = page._poll(1, job, None, "en")
    assert texts(banner) == ["Import cancelled; nothing was written."]
    assert not (page.upload_root(get_context()) / uploaded["token"]).exists()

    # In the middle of the rows: one row per chunk, cancelled once the first chunk is staged.
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 1)
    stop = threading.Event()
    seen: list[str] = []

    def progress(phase: str, _fraction: float) -> None:
        seen.append(phase)
        stop.set()

    path = get_context().settings.db_path.with_name("mid.csv")
    path.write_bytes(data)
    watched = page._WatchedStore(store, total=11, progress=progress, cancel=stop)
    with pytest.raises(page.ImportCancelled):
        ingest.ingest_file(watched, path)
    assert seen and seen[0].startswith("rows:1:11")
    assert _n_incidents(store) == before and len(store.import_batches()) == batches
    assert not store.path.with_name(store.path.name + ".import-stage").exists()
    # Nothing was left half-done: the same file imports whole afterwards.
    assert ingest.ingest_file(store, path).accepted == 5


def test_refusals_name_the_problem(page: Any) -> None:
    uploaded, note, _ = call_as_triggered("im-upload.contents", page._receive, _data_url(b"x", "image/png"),
                                          "map.png", None, "en", value="…")
    assert uploaded is None and "files ending .png cannot be imported" in " ".join(texts(note))
    *_, msg, _kept, _res, _note = call_as_triggered("im-start.n_clicks", page._start, 1, None, "none", "preset",
                                                    "", "", "", "en", value=1)
    assert texts(msg) == ["Choose a file first."]
    uploaded = _upload(page, b"reported_at,category\n2026-06-01 10:00,noise\n", "nolonlat.csv")
    job, *_ = call_as_triggered("im-start.n_clicks", page._start, 1, uploaded, "none", "other", "", "", "", "en",
                                value=1)
    assert job is dash.no_update, "a missing CRS is caught before any work"
    status, out = _run(page, uploaded)
    assert status.state == "failed" and "no coordinates" in out["banner"]
    assert "nolonlat.csv" in out["banner"] and ".uploads" not in out["banner"], "no server paths in messages"


def test_only_managers_run_import_callbacks(demo_app: dash.Dash, page: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The callback checks the role itself, besides the access guard.
    monkeypatch.setattr(page.access, "signed_in", lambda: User("planner", "planner"))
    *_, msg, _kept, _res, _note = call_as_triggered("im-start.n_clicks", page._start, 1, None, "none", "preset",
                                                    "", "", "", "en", value=1)
    assert texts(msg) == ["Only managers may import incidents."]
    monkeypatch.undo()

    for username, status in (("worker1", 403), ("planner", 403), ("manager", 200), ("street-manager", 200)):
        client = demo_app.server.test_client()
        resp = sign_in(client, username, auth.DEMO_PASSWORD)
        assert resp.status_code == 302
        client.get("/_dash-dependencies")
        assert client.get("/import").status_code == (200 if status == 200 else 403), username
        body = _callback_body(demo_app, "im-batch.options", {"im-rev.data": {"n": 0}, "im-lang.data": "en"})
        assert client.post("/_dash-update-component", json=body).status_code == status, username
        upload = _callback_body(demo_app, "im-uploaded.data", {"im-upload.contents": _data_url(b"a,b\n1,2\n"),
                                                               "im-upload.filename": "x.csv"})
        assert client.post("/_dash-update-component", json=upload).status_code == status, username


# -- pure helpers ----------------------------------------------------------------------------------------------
def test_outside_points_read_columns_geometry_and_chinese_datums() -> None:
    rejects = pd.DataFrame({
        "row_no": [3, 4, 7, 8, 9],
        "field": ["x,y", "x,y", "geometry", "x,y", "x,y"],
        "reason": ["outside_district", "unknown_category", "outside_district", "outside_district",
                   "outside_district"],
        "raw": [json.dumps({"x": "121.5", "y": "31.3"}), json.dumps({"x": "1", "y": "2"}),
                json.dumps({"geometry": "POINT (121.6 31.1)"}), json.dumps({"x": "n/a", "y": "31"}), "not json"],
    })
    pts = outside_points(rejects)
    assert pts["row_no"].tolist() == [3, 7], "other reasons and unreadable points are left out"
    assert pts[["lon", "lat"]].to_numpy().tolist() == [[121.5, 31.3], [121.6, 31.1]]
    gcj = outside_points(rejects, crs="GCJ02")
    lon, lat = coords.gcj02_to_wgs84([121.5, 121.6], [31.3, 31.1])
    assert gcj["lon"].tolist() == pytest.approx(list(lon)) and gcj["lat"].tolist() == pytest.approx(list(lat))
    utm = outside_points(pd.DataFrame({"row_no": [1], "field": ["e,n"], "reason": ["outside_district"],
                                       "raw": [json.dumps({"e": 350000, "n": 3455000})]}), crs="EPSG:32651")
    assert 121.0 < utm["lon"].iloc[0] < 122.0 and 31.0 < utm["lat"].iloc[0] < 31.5
    assert outside_points(rejects.iloc[0:0]).empty


def test_sample_points_is_seeded_and_capped() -> None:
    pts = pd.DataFrame({"row_no": np.arange(1, 5001), "lon": np.linspace(0, 1, 5000), "lat": 0.0})
    a, b = sample_points(pts, max_points=300, seed=3), sample_points(pts, max_points=300, seed=3)
    assert len(a) == 300 and a.equals(b) and a["row_no"].is_monotonic_increasing
    assert not a.equals(sample_points(pts, max_points=300, seed=4))
    assert set(a["row_no"]) <= set(pts["row_no"])
    assert len(sample_points(pts.head(10), max_points=300)) == 10
    with pytest.raises(ValueError, match="max_points"):
        sample_points(pts, max_points=0)


def test_upload_limits_and_options() -> None:
    big = "A" * (4 * (MAX_UPLOAD_BYTES // 3 + 10))
    with pytest.raises(InputError, match=r"field 'file': calls.csv is 50.0 MB; the page takes files up to 50.0 MB"):
        decode_upload(f"data:text/csv;base64,{big}", "calls.csv")
    with pytest.raises(InputError, match="cannot be imported"):
        decode_upload(_data_url(b"x"), "calls.xlsx")
    with pytest.raises(InputError, match="empty"):
        decode_upload("data:text/csv;base64,", "calls.csv")
    assert decode_upload(_data_url(b"a,b\n"), "../../etc/passwd.csv") == ("passwd.csv", b"a,b\n")
    opts = import_options(preset="cn12345", datum="gcj02", crs_text="", mapping_text="# ids\n工单号 = external_id\n",
                          source=" 12345 ")
    assert opts == {"preset": "cn12345", "crs": "gcj02", "mapping": ["工单号=external_id"], "source": "12345"}
    assert import_options(preset="none", datum="other", crs_text="EPSG:32651", mapping_text="", source="")["crs"] \
        == "EPSG:32651"
    with pytest.raises(InputError, match=r"row 2, field 'mapping'"):
        import_options(preset=None, datum="preset", crs_text="", mapping_text="a=lon\nlat\n", source="")
    with pytest.raises(InputError, match="field 'crs'"):
        import_options(preset=None, datum="other", crs_text=" ", mapping_text="", source="")


def test_reason_and_reject_rows() -> None:
    rows = reason_rows({"outside_district": 2, "bad_coordinates": 5, "unknown_category": 2})
    assert [r["code"] for r in rows] == ["bad_coordinates", "outside_district", "unknown_category"]
    assert rows[0]["text"] == REASONS["bad_coordinates"] and rows[0]["share"] == pytest.approx(5 / 9)
    assert reason_rows({"outside_district": 1}, lang="zh")[0]["text"] == "点位不在辖区任何单元网格内"
    rejects = pd.DataFrame({"row_no": [2], "field": ["lon,lat"], "reason": ["outside_district"],
                            "raw": [json.dumps({"lon": "130.1", "lat": "31"})]})
    assert reject_rows(rejects) == [{"row_no": 2, "field": "lon,lat", "reason": "outside_district",
                                     "message": f"{REASONS['outside_district']} (lon = '130.1', lat = '31')"}]


# -- pages keep answering while a big import runs --------------------------------------------------------------
BIG_ROWS = 200_000


def _big_csv(store: Store, path: Path, *, seed: int = 8) -> None:
    """``BIG_ROWS`` rows, seeded: points inside units, about 1 % outside the district."""
    rng = np.random.default_rng(seed)
    pts = _inside_points(store, BIG_ROWS, seed=seed)
    outside = rng.random(BIG_ROWS) < 0.01
    x1 = store.district_bounds()[2]
    pts[outside, 0] = x1 + 0.01 + rng.random(int(outside.sum())) * 0.02
    cats = np.array(store.categories()["code"].tolist())
    seconds = rng.integers(0, 180 * 86400, size=BIG_ROWS)
    reported = (np.datetime64("2026-01-01T00:00:00") + seconds.astype("timedelta64[s]")).astype(str)
    pd.DataFrame({
        "external_id": [f"BIG{i}" for i in range(BIG_ROWS)],
        "reported_at": np.char.replace(reported, "T", " "),
        "category": cats[rng.integers(0, len(cats), size=BIG_ROWS)],
        "lon": np.round(pts[:, 0], 6), "lat": np.round(pts[:, 1], 6),
    }).to_csv(path, index=False)


def _callback_body(app: dash.Dash, output: str, values: dict[str, Any]) -> dict[str, Any]:
    """A ``/_dash-update-component`` request for the callback whose first output is ``output``."""
    from dash._utils import split_callback_id

    def first_output(key: str) -> str:
        outs = split_callback_id(key)
        first = outs[0] if isinstance(outs, list) else outs
        return f"{first['id']}.{first['property'].split('@')[0]}"

    key = next(k for k in app.callback_map if first_output(k) == output)
    declared = app.callback_map[key]

    def item(spec: dict[str, Any]) -> dict[str, Any]:
        name = f"{spec['id']}.{spec['property']}"
        return {"id": spec["id"], "property": spec["property"], "value": values.get(name)}

    outs = split_callback_id(key)
    outs = outs if isinstance(outs, list) else [outs]
    return {"output": key, "outputs": [{"id": o["id"], "property": o["property"].split("@")[0]} for o in outs],
            "inputs": [item(s) for s in declared["inputs"]], "state": [item(s) for s in declared["state"]],
            "changedPropIds": [f"{declared['inputs'][0]['id']}.{declared['inputs'][0]['property']}"]}


def test_pages_keep_answering_during_a_big_import(demo_app: dash.Dash, tmp_path: Path) -> None:
    from werkzeug.serving import make_server

    from dashboards.context import get_context

    page = sys.modules["dashboards.pages.imports"]
    store = get_context().store
    big = tmp_path / "big.csv"
    _big_csv(store, big)
    before = _n_incidents(store)

    server = make_server("127.0.0.1", 0, demo_app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def post(path: str, body: Any, *, form: bool = False) -> tuple[int, bytes]:
        data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
        req = urllib.request.Request(base + path, data=data, headers={
            "Content-Type": "application/x-www-form-urlencoded" if form else "application/json"})
        with opener.open(req, timeout=120) as resp:
            return resp.status, resp.read()

    try:
        with opener.open(base + "/login", timeout=60) as resp:
            token = form_token(resp.read().decode())
        post("/login", {"username": "manager", "password": auth.DEMO_PASSWORD, "csrf_token": token}, form=True)
        opener.open(base + "/_dash-dependencies", timeout=60).read()
        overview = _callback_body(demo_app, "ov-map.figure", {"ov-filters.data": {
            "now": NOW.isoformat(), "start": "2026-06-01T09:00:00", "end": NOW.isoformat(), "klass": None,
            "categories": [], "street": None, "community": None, "basis": "km2"}, "ov-lang.data": "en"})
        idle: list[float] = []  # the same call before the import, for comparison (printed, not asserted)
        for _ in range(10):
            started = time.perf_counter()
            assert post("/_dash-update-component", overview)[0] == 200
            idle.append(time.perf_counter() - started)
        # Upload and start through the page's own callbacks, as the browser sends them.
        status, raw = post("/_dash-update-component", _callback_body(demo_app, "im-uploaded.data", {
            "im-upload.contents": _data_url(big.read_bytes()), "im-upload.filename": "big.csv",
            "im-lang.data": "en"}))
        assert status == 200
        uploaded = json.loads(raw)["response"]["im-uploaded"]["data"]
        assert uploaded["name"] == "big.csv"
        status, raw = post("/_dash-update-component", _callback_body(demo_app, "im-job.data", {
            "im-start.n_clicks": 1, "im-uploaded.data": uploaded, "im-preset.value": "none",
            "im-datum.value": "preset", "im-crs.value": "", "im-mapping.value": "", "im-source.value": "",
            "im-lang.data": "en"}))
        job = json.loads(raw)["response"]["im-job"]["data"]
        assert job and job["id"]

        poll = _callback_body(demo_app, "im-progress-bar.style", {
            "im-poll.n_intervals": 1, "im-job.data": job, "im-rev.data": {"n": 0}, "im-lang.data": "en"})
        answered: list[float] = []
        health: list[float] = []
        progress: set[str] = set()
        while not page.RUNNER.get(job["id"]).over:
            status, raw = post("/_dash-update-component", poll)
            shown = json.loads(raw)["response"].get("im-progress-text", {}).get("children")
            if isinstance(shown, str) and shown:
                progress.add(shown.split(" · ")[0])
            started = time.perf_counter()
            status, raw = post("/_dash-update-component", overview)
            took = time.perf_counter() - started
            kpis = json.loads(raw)["response"]["ov-kpis"]["children"]
            assert status == 200 and len(kpis) == 4
            with opener.open(base + "/healthz", timeout=60) as resp:
                assert resp.read() == b"ok"
            health.append(time.perf_counter() - started - took)
            if not page.RUNNER.get(job["id"]).over:  # the whole answer came while the import ran
                answered.append(took)
        done = page.RUNNER.wait(job["id"], timeout=300)
        print(f"\noverview before the import: median {np.median(idle) * 1000:.0f} ms, max {max(idle) * 1000:.0f} ms"
              f"\nimport of {BIG_ROWS:,} rows: {done.finished - done.started:.1f} s; overview answered "
              f"{len(answered)} times during it, median {np.median(answered or [0]) * 1000:.0f} ms, max "
              f"{max(answered or [0]) * 1000:.0f} ms; healthz median {np.median(health or [0]) * 1000:.0f} ms; "
              f"load average {os.getloadavg()[0]:.1f}")
        assert done.state == "done", done.error
        assert len(answered) >= 2, "the Overview answered while the import ran"
        assert "Checked 100,000 of 200,000 rows" in progress, progress
    finally:
        server.shutdown()
        thread.join(10)
    res = done.result
    batch = store.import_batches().set_index("batch_id").loc[res.batch_id]
    assert int(batch["rows_in"]) == BIG_ROWS and int(batch["accepted"]) + int(batch["rejected"]) == BIG_ROWS
    assert _n_incidents(store) == before + int(batch["accepted"])
    assert 0 < store.reject_counts(res.batch_id).get("outside_district", 0) == int(batch["rejected"])
    assert not (page.upload_root(get_context()) / uploaded["token"]).exists()
