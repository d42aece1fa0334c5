"""The intake API (Open311 GeoReport v2 shaped) through Flask's test client on a copy of the small demo:
keys, placing a case in its unit and grid with its deadline, lists and filters, lifecycle updates, limits, and a
fuzz of 1,000 malformed payloads that must all be refused with nothing written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.api import MAX_BODY, IntakeAPI
from gridgov import intake
from gridgov.config import Settings
from gridgov.incidents import OPEN_STATUSES
from gridgov.store import Store


@pytest.fixture(scope="module")
def api_env(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("api") / "demo.duckdb"
    shutil.copy2(small_demo_db, path)
    store = Store(path)
    key = intake.create_client(store, "hotline", "12345 hotline")
    other = intake.create_client(store, "app", "Resident app")
    api = IntakeAPI(store, Settings(db_path=path), rate=1000.0, burst=5000)
    server = Flask("test")
    server.register_blueprint(api.blueprint())
    units = store.units()
    inside = units.geometry.iloc[len(units) // 2].representative_point()
    yield {"store": store, "client": server.test_client(), "key": key, "other": other, "api": api,
           "lat": inside.y, "lon": inside.x, "unit": int(units["unit_id"].iloc[len(units) // 2])}
    store.close()


def _count(store: Store) -> int:
    return int(store.df("SELECT count(*) AS n FROM incident")["n"].iloc[0])


def _post(env: dict[str, Any], body: Any, *, key: str | None = None, raw: bytes | None = None) -> Any:
    headers = {"X-API-Key": key if key is not None else env["key"]}
    if raw is not None:
        return env["client"].post("/api/v2/requests.json", data=raw, headers=headers, content_type="application/json")
    return env["client"].post("/api/v2/requests.json", json=body, headers=headers)


def test_services_list_our_categories(api_env: dict[str, Any]) -> None:
    reply = api_env["client"].get("/api/v2/services.json")
    assert reply.status_code == 200
    codes = {s["service_code"] for s in reply.get_json()}
    assert {"exposed_garbage", "street_light", "noise"} <= codes and len(codes) == 29


def test_a_posted_request_gets_its_unit_grid_deadline_and_id_at_once(api_env: dict[str, Any]) -> None:
    store = api_env["store"]
    before = _count(store)
    reply = _post(api_env, {"service_code": "street_light", "lat": api_env["lat"], "long": api_env["lon"],
                            "description": "路灯不亮", "external_id": "H-1", "phone": "13812345678",
                            "requested_datetime": "2026-06-29T16:00:00+08:00"})
    assert reply.status_code == 201, reply.get_data(as_text=True)
    out = reply.get_json()[0]
    assert out["unit_id"] == api_env["unit"] and out["grid_code"] is not None
    assert out["requested_datetime"] == "2026-06-29T16:00:00"
    # street_light: 72 working hours from Monday 16:00 → 16:00 on Monday a week on... computed by the calendar.
    assert out["expected_datetime"] > out["requested_datetime"]
    assert _count(store) == before + 1
    got = api_env["client"].get(f"/api/v2/requests/{out['service_request_id']}.json",
                                headers={"X-API-Key": api_env["key"]}).get_json()[0]
    assert got["status"] == "open" and got["gridgov_status"] == "reported" and got["source"] == "hotline"
    assert got["grid_code"] == out["grid_code"] and "reporter_phone" not in got and "13812345678" not in json.dumps(got)
    # The same external id again from the same client is a duplicate, refused, nothing written.
    again = _post(api_env, {"service_code": "street_light", "lat": api_env["lat"], "long": api_env["lon"],
                            "external_id": "H-1"})
    assert again.status_code == 400 and "external_id" in again.get_json()[0]["description"]
    assert _count(store) == before + 1


def test_lifecycle_updates_follow_the_transitions(api_env: dict[str, Any]) -> None:
    reply = _post(api_env, {"service_code": "noise", "lat": api_env["lat"], "long": api_env["lon"]})
    rid = reply.get_json()[0]["service_request_id"]
    headers = {"X-API-Key": api_env["key"]}
    skip = api_env["client"].post(f"/api/v2/requests/{rid}/close", json={}, headers=headers)
    assert skip.status_code == 400 and "cannot be closed" in skip.get_json()[0]["description"]
    for action, status in (("dispatch", "dispatched"), ("handled", "handled"), ("close", "closed")):
        done = api_env["client"].post(f"/api/v2/requests/{rid}/{action}", json={"note": action}, headers=headers)
        assert done.status_code == 200 and done.get_json()[0]["gridgov_status"] == status
    events = api_env["store"].incident_events(int(rid))
    assert events["status"].tolist() == ["dispatched", "handled", "closed"]
    assert set(events["actor"]) == {"api:hotline"}
    closed = api_env["client"].get("/api/v2/requests.json?status=closed&limit=5", headers=headers).get_json()
    assert any(r["service_request_id"] == rid for r in closed)
    missing = api_env["client"].post("/api/v2/requests/999999999/dispatch", json={}, headers=headers)
    assert missing.status_code == 404


def test_lists_filter_by_status_dates_and_grid(api_env: dict[str, Any]) -> None:
    headers = {"X-API-Key": api_env["key"]}
    rows = api_env["client"].get("/api/v2/requests.json?status=open&start_date=2026-06-01&end_date=2026-07-01"
                                 "&limit=50", headers=headers).get_json()
    assert rows and all(r["status"] == "open" for r in rows)
    assert all("2026-06-01" <= r["requested_datetime"] < "2026-07-01" for r in rows)
    grid = rows[0]["grid_code"]
    in_grid = api_env["client"].get(f"/api/v2/requests.json?grid={grid}&limit=20", headers=headers).get_json()
    assert in_grid and {r["grid_code"] for r in in_grid} == {grid}
    bad = api_env["client"].get("/api/v2/requests.json?status=maybe", headers=headers)
    assert bad.status_code == 400 and "status" in bad.get_json()[0]["description"]


@pytest.mark.parametrize("filters", [
    {},
    {"start": datetime(2026, 6, 1), "end": datetime(2026, 7, 1)},
    {"grid": "busiest"},
    {"start": datetime(2026, 3, 1), "end": datetime(2026, 6, 15), "grid": "busiest", "limit": 7},
    {"limit": 5},
    {"grid": "no-such-grid"},
])
def test_open_list_from_open_case_matches_the_status_column(api_env: dict[str, Any], filters: dict[str, Any]
                                                            ) -> None:
    store = api_env["store"]
    layout_id = store.current_layout_id()
    everything = store.service_requests(layout_id, limit=10**9)
    open_rows = everything[everything["status"].isin(OPEN_STATUSES)]
    # The demo holds closed cases among the open ones, so the open list has rows to leave out.
    assert (everything["status"] == "closed").any() and len(open_rows) > 20
    if filters.get("grid") == "busiest":
        filters = {**filters, "grid": open_rows["grid_code"].value_counts().index[0]}
    limit = filters.pop("limit", 1000)
    expected = open_rows
    if "start" in filters:
        expected = expected[(expected["reported_at"] >= filters["start"]) & (expected["reported_at"] < filters["end"])]
    if "grid" in filters:
        expected = expected[expected["grid_code"] == filters["grid"]]
    expected = expected.head(limit).reset_index(drop=True)
    got = store.service_requests(layout_id, status="open", limit=limit, **filters)
    assert len(expected) > 0 or filters.get("grid") == "no-such-grid"
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    closed = store.service_requests(layout_id, status="closed", limit=10**9)
    assert not set(closed["incident_id"]) & set(got["incident_id"])


def test_keys_rate_limits_and_body_size(api_env: dict[str, Any]) -> None:
    body = {"service_code": "noise", "lat": api_env["lat"], "long": api_env["lon"]}
    assert _post(api_env, body, key="").status_code == 401
    assert _post(api_env, body, key="gg_hotline_" + "x" * 43).status_code == 401
    assert api_env["client"].get("/api/v2/requests.json").status_code == 401
    huge = json.dumps({**body, "description": "x" * (MAX_BODY + 10)}).encode()
    assert _post(api_env, None, raw=huge).status_code == 413
    store = api_env["store"]
    store.set_api_client_active("app", False)
    assert _post(api_env, body, key=api_env["other"]).status_code == 401
    store.set_api_client_active("app", True)
    limiter = intake.RateLimiter(rate=1.0, burst=2)
    assert [limiter.allow("c", now=0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("c", now=1.5)


# -- fuzz ------------------------------------------------------------------------------------------------------------

_junk = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(max_size=30), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                             st.integers(), max_size=2))
_sqlish = st.sampled_from(["'; DROP TABLE incident; --", "1 OR 1=1", "street_light' --", "\" OR \"\"=\"",
                           "$(rm -rf /)", "<script>alert(1)</script>", "\u202e\u0000noise", "\ud800", "𝔰𝔱𝔯𝔢𝔢𝔱"])


@st.composite
def malformed(draw: st.DrawFn, lat: float, lon: float) -> Any:
    good: dict[str, Any] = {"service_code": "noise", "lat": lat, "long": lon, "description": "ok"}
    kind = draw(st.sampled_from(["drop", "type", "range", "huge", "sql", "unknown", "notobject", "badtime",
                                 "control"]))
    if kind == "drop":
        good.pop(draw(st.sampled_from(["service_code", "lat", "long"])))
    elif kind == "type":
        name = draw(st.sampled_from(["service_code", "lat", "long", "description", "external_id"]))
        value = draw(_junk)
        if name in ("lat", "long") and isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]  # a number would be valid (or out of range, another kind)
        if name in ("description", "external_id") and (value is None or isinstance(value, str)):
            value = {"nested": 1}
        if name == "service_code" and isinstance(value, str) and value.strip() in ("",):
            value = 12
        good[name] = value
    elif kind == "range":
        name = draw(st.sampled_from(["lat", "long"]))
        good[name] = draw(st.one_of(st.floats(min_value=181, max_value=1e300), st.floats(max_value=-181,
                                    min_value=-1e300), st.just(float("nan")), st.just("inf")))
    elif kind == "huge":
        name = draw(st.sampled_from(["description", "address", "external_id", "reporter_name"]))
        good[name] = "长" * (intake.LIMITS.get(name, 500) + draw(st.integers(1, 50)))
    elif kind == "sql":
        good["service_code"] = draw(_sqlish)
    elif kind == "unknown":
        good[draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in intake.REQUEST_FIELDS))] = 1
    elif kind == "notobject":
        return draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=10), st.integers()))
    elif kind == "badtime":
        good["requested_datetime"] = draw(st.sampled_from(["yesterday", "2026-13-45", "0001-01-01", 12345,
                                                           "3000-01-01T00:00"]))
    else:
        good["description"] = "bad\u0000char" + draw(st.text(max_size=5))
    return good


def test_fuzz_a_thousand_malformed_payloads_are_refused_and_nothing_is_written(api_env: dict[str, Any]) -> None:
    store = api_env["store"]
    before = _count(store)
    seen: list[int] = []

    @settings(max_examples=1000, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(payload=malformed(api_env["lat"], api_env["lon"]))
    def run(payload: Any) -> None:
        reply = _post(api_env, None, raw=json.dumps(payload, allow_nan=True).encode())
        seen.append(reply.status_code)
        assert 400 <= reply.status_code < 500, (payload, reply.get_data(as_text=True))
        assert reply.get_json()[0]["description"]

    run()
    assert len(seen) >= 1000
    assert _count(store) == before
    assert api_env["client"].get("/api/v2/services.json").status_code == 200  # still healthy
