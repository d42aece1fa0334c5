"""Sign-in and access control of the dashboard, through Flask's test client on a copy of the small demo.

The crafted requests here are what a curious user could send by hand: Dash callback POSTs naming another page's
components or another grid's case, and plain GETs of pages, layers and downloads.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import string
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
import pytest

from dashboards import ids
from dashboards.i18n import LANGS, STRINGS, t
from gridgov import auth
from gridgov.config import Settings
from gridgov.privacy import PERSONAL_COLUMNS
from gridgov.store import Store
from tests.dash_calls import form_token, sign_in

NOW = datetime(2026, 7, 1, 9, 0)
PASSWORD = auth.DEMO_PASSWORD


@pytest.fixture(scope="module")
def demo_copy(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("access") / "demo.duckdb"
    shutil.copy2(small_demo_db, dest)
    return dest


@pytest.fixture(scope="module")
def facts(demo_copy: Path) -> dict[str, Any]:
    """Who holds which grids and cases in the demo copy, read before the app opens it."""
    from dashboards.cases import my_grids, my_open_cases

    with Store(demo_copy) as store:
        layout_id = store.current_layout_id()
        worker1 = auth.get_user(store, "worker1")
        assert worker1 is not None and layout_id is not None
        mine = my_grids(store, worker1, layout_id)
        my_cases = my_open_cases(store, worker1, layout_id)
        grids = store.layout_grids(layout_id)["grid_code"].astype(str).tolist()
        others = {}
        for code in grids:
            if code in mine:
                continue
            cases = store.grid_open_cases(layout_id, code)
            cases = cases[cases["status"].isin(["reported", "registered", "dispatched"])]
            if len(cases):
                others[code] = cases["incident_id"].astype(int).tolist()
        people = store.incidents(("reporter_name", "reporter_phone", "status"))
    other_grid = max(others, key=lambda c: len(others[c]))
    return {"layout_id": layout_id, "mine": mine, "my_cases": my_cases["incident_id"].astype(int).tolist(),
            "other_grid": other_grid, "other_cases": others[other_grid], "people": people}


@pytest.fixture(scope="module")
def app(demo_copy: Path, facts: dict[str, Any]) -> Iterator[dash.Dash]:
    from dashboards.app import create_app
    from dashboards.context import get_context

    application = create_app(Settings(db_path=demo_copy, now=NOW))
    yield application
    get_context().store.close()


def _client(app: dash.Dash, username: str | None = None, **headers: str) -> Any:
    client = app.server.test_client()
    if username:
        resp = sign_in(client, username, PASSWORD, headers=headers)
        assert resp.status_code == 302, resp.data
        client.get("/_dash-dependencies")  # as a browser does first: Dash registers the pages' callbacks
    return client


def _call(client: Any, app: dash.Dash, output: str, values: dict[str, Any], *, triggered: str | None = None
          ) -> Any:
    """POST a Dash callback request for the callback whose ``output`` key starts with ``output``."""
    key = next((k for k in app.callback_map if k.startswith(output) or k.lstrip(".").startswith(output)), None)
    key = key or next(k for k in app.callback_map if output in k)
    declared = app.callback_map[key]

    def item(spec: dict[str, Any]) -> dict[str, Any]:
        name = f"{spec['id']}.{spec['property']}"
        cid = json.loads(spec["id"]) if spec["id"].startswith("{") else spec["id"]
        if isinstance(cid, dict):  # an ALL wildcard: no matching components
            return []  # type: ignore[return-value]
        return {"id": cid, "property": spec["property"], "value": values.get(name)}

    from dash._utils import split_callback_id

    outs = split_callback_id(key)
    outs = outs if isinstance(outs, list) else [outs]
    body = {
        "output": key,
        "outputs": [{"id": o["id"], "property": o["property"].split("@")[0]} for o in outs],
        "inputs": [item(s) for s in declared["inputs"]],
        "state": [item(s) for s in declared["state"]],
        "changedPropIds": [triggered] if triggered else [],
    }
    return client.post("/_dash-update-component", json=body)


def _text(resp: Any) -> str:
    return resp.get_data(as_text=True)


# -- login and logout ------------------------------------------------------------------------------------------
def test_login_logout(app: dash.Dash) -> None:
    client = _client(app)
    resp = client.get("/staffing")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next=%2Fstaffing")
    form = _text(client.get("/login"))
    assert 'name="username"' in form and 'name="password"' in form
    bad = client.post("/login", data={"username": "manager", "password": "wrong-password",
                                      "csrf_token": form_token(form)})
    assert bad.status_code == 401 and "Wrong user name or password" in _text(bad)
    assert client.get("/").status_code == 302
    ok = sign_in(client, "manager", PASSWORD, next="/staffing")
    assert ok.status_code == 302 and ok.headers["Location"] == "/staffing"
    assert client.get("/staffing").status_code == 200
    # The top bar's link, followed in a browser: the browser says the request came from this site.
    assert client.get("/logout", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 302
    assert client.get("/staffing").status_code == 302
    assert client.post("/_dash-update-component", json={"output": "x.y"}).status_code == 401
    # Signing out without a session just shows the form (and never becomes the page to return to).
    assert client.get("/logout").headers["Location"] == "/login"


def test_login_never_redirects_off_site_and_password_is_not_logged(app: dash.Dash) -> None:
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("gridgov.dashboards")
    logger.addHandler(handler)
    try:
        client = _client(app)
        resp = sign_in(client, "planner", PASSWORD, next="//evil.example/x")
        assert resp.headers["Location"] == "/"
        sign_in(_client(app), "planner", "my-secret-typo")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert "failed sign-in" in text and "signed in" in text
    assert "my-secret-typo" not in text and PASSWORD not in text


def test_repeated_failures_slow_down_guessing(app: dash.Dash) -> None:
    from dashboards.context import get_context

    auth.add_user(get_context().store, "guessed", "the-right-password", role="planner")
    client = app.server.test_client()
    codes = [sign_in(client, "guessed", f"guess-{i}").status_code for i in range(6)]
    assert codes == [401] * 5 + [429]
    # Even the right password waits now; other names are not affected.
    assert sign_in(client, "guessed", "the-right-password").status_code == 429
    assert sign_in(client, "manager", PASSWORD).status_code == 302


def test_public_paths_and_static_files(app: dash.Dash) -> None:
    client = _client(app)
    assert client.get("/healthz").data == b"ok"
    assert client.get("/login").status_code == 200
    assert client.get("/assets/style.css").status_code == 200
    assert client.get("/_dash-layout").status_code in (302, 401)
    assert client.get("/geo/grids.geojson").status_code in (302, 401)
    assert client.get("/my-grids/map.html").status_code in (302, 401)


def test_changed_password_ends_sessions(app: dash.Dash) -> None:
    from dashboards.context import get_context

    store = get_context().store
    auth.add_user(store, "temp-manager", "first-password", role="manager")
    client = app.server.test_client()
    assert sign_in(client, "temp-manager", "first-password").status_code == 302
    assert client.get("/").status_code == 200
    auth.set_password(store, "temp-manager", "second-password")
    assert client.get("/").status_code == 302


# -- pages per role --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("username", "expected"), [
    ("manager", {"/": 200, "/staffing": 200, "/planner": 200, "/my-grids": 403, "/geo/grids.geojson": 200,
                 "/my-grids/map.html": 403}),
    ("street-manager", {"/": 200, "/staffing": 200, "/planner": 200, "/my-grids": 403}),
    ("planner", {"/": 200, "/staffing": 403, "/planner": 200, "/my-grids": 403, "/geo/grids.geojson": 200,
                 "/my-grids/map.html": 403}),
    ("worker1", {"/": 302, "/staffing": 403, "/planner": 403, "/my-grids": 200, "/geo/grids.geojson": 403,
                 "/geo/streets.geojson": 403, "/my-grids/map.html": 200}),
])
def test_each_role_opens_its_pages(app: dash.Dash, username: str, expected: dict[str, int]) -> None:
    client = _client(app, username)
    got = {path: client.get(path).status_code for path in expected}
    assert got == expected
    if username == "worker1":
        assert client.get("/").headers["Location"] == "/my-grids"


def test_menu_lists_only_the_roles_pages(app: dash.Dash) -> None:
    for username, pages in (("manager", ["/", "/staffing", "/planner", "/import"]), ("planner", ["/", "/planner"]),
                            ("worker1", ["/my-grids"])):
        client = _client(app, username)
        resp = _call(client, app, "..brand.children", {"url.pathname": "/", "url.search": ""})
        nav = resp.get_json()["response"]["nav"]["children"]
        assert [link["props"]["href"] for link in nav] == pages, username


@pytest.mark.parametrize(("username", "output", "values"), [
    ("worker1", "ov-filters.data", {"ov-window.value": "30"}),
    ("worker1", "st-kpis.children", {}),
    ("planner", "st-kpis.children", {}),
    ("planner", "..wk-title.children", {"wk-rev.data": 0}),
    ("manager", "..wk-title.children", {"wk-rev.data": 0}),
    ("worker1", "im-batch.options", {"im-rev.data": {"n": 0}}),
    ("planner", "im-batch.options", {"im-rev.data": {"n": 0}}),
    ("planner", "im-uploaded.data", {"im-upload.contents": "data:text/csv;base64,YSxiCg==",
                                     "im-upload.filename": "x.csv"}),
])
def test_callbacks_of_other_pages_are_refused(app: dash.Dash, username: str, output: str,
                                              values: dict[str, Any]) -> None:
    client = _client(app, username)
    resp = _call(client, app, output, values)
    assert resp.status_code == 403
    assert _text(resp) == "forbidden"


def test_only_managers_open_the_import_page(app: dash.Dash) -> None:
    for username, status in (("manager", 200), ("street-manager", 200), ("planner", 403), ("worker1", 403)):
        client = _client(app, username)
        assert client.get("/import").status_code == status, username
        resp = _call(client, app, ".._pages_content", {"_pages_location.pathname": "/import",
                                                       "_pages_location.search": ""})
        assert resp.status_code == status, username


def test_a_worker_cannot_render_another_pages_layout(app: dash.Dash) -> None:
    client = _client(app, "worker1")
    for path, status in (("/staffing", 403), ("/planner", 403), ("/", 403), ("/my-grids", 200)):
        resp = _call(client, app, ".._pages_content", {"_pages_location.pathname": path,
                                                       "_pages_location.search": ""})
        assert resp.status_code == status, path


def test_callback_naming_a_foreign_output_behind_innocent_ids_is_refused(app: dash.Dash) -> None:
    # Dash picks the function by ``output``: the listed ids must not hide which callback runs.
    client = _client(app, "worker1")
    key = next(k for k in app.callback_map if k.startswith("..ov-map.figure") or k.startswith("ov-"))
    body = {"output": key, "outputs": [{"id": ids.WK_TITLE, "property": "children"}],
            "inputs": [{"id": ids.WK_REV, "property": "data", "value": 0}], "state": [], "changedPropIds": []}
    assert client.post("/_dash-update-component", json=body).status_code == 403
    body["output"] = "no-such.thing"
    assert client.post("/_dash-update-component", json=body).status_code == 400


# -- a worker and another grid's cases -------------------------------------------------------------------------
def _status_and_events(app: dash.Dash, case: int) -> tuple[str, int]:
    from dashboards.context import get_context

    store = get_context().store
    row = store.incident_row(case)
    assert row is not None
    return str(row["status"]), len(store.incident_events(case))


def test_worker_sees_own_cases(app: dash.Dash, facts: dict[str, Any]) -> None:
    client = _client(app, "worker1")
    resp = _call(client, app, "..wk-title.children", {"wk-rev.data": 0, "wk-lang.data": "en"})
    assert resp.status_code == 200
    listed = [json.loads(json.dumps(b["props"]["id"]))["index"]
              for b in resp.get_json()["response"]["wk-list"]["children"]]
    assert set(listed) == set(facts["my_cases"])
    detail = _call(client, app, "..wk-detail.className", {"wk-selected.data": facts["my_cases"][0],
                                                          "wk-rev.data": 0, "wk-lang.data": "en"})
    assert detail.status_code == 200 and "wk-sheet open" in _text(detail)
    people = facts["people"].set_index("incident_id").loc[facts["my_cases"][0]]
    for value in (people["reporter_phone"], people["reporter_name"]):
        if isinstance(value, str) and len(value) > 1:
            assert value not in _text(detail)


def test_worker_cannot_read_or_change_another_grids_case(app: dash.Dash, facts: dict[str, Any]) -> None:
    client = _client(app, "worker1")
    case = facts["other_cases"][0]
    before = _status_and_events(app, case)
    people = facts["people"].set_index("incident_id").loc[case]
    crafted = [
        ("..wk-detail.className", {"wk-selected.data": case, "wk-rev.data": 0, "wk-lang.data": "en"}, None),
        ("wk-selected.data", {"wk-map.clickData": {"points": [{"customdata": case}]}}, "wk-map.clickData"),
        ("..wk-message.children", {"wk-handle.n_clicks": 1, "wk-selected.data": case, "wk-note.value": "done",
                                   "wk-rev.data": 0, "wk-lang.data": "en"}, "wk-handle.n_clicks"),
        ("..wk-message.children", {"wk-accept.n_clicks": 1, "wk-selected.data": case, "wk-rev.data": 0,
                                   "wk-lang.data": "en"}, "wk-accept.n_clicks"),
        # A case that does not exist gets exactly the same answer.
        ("..wk-detail.className", {"wk-selected.data": 10**9, "wk-rev.data": 0, "wk-lang.data": "en"}, None),
        ("..wk-detail.className", {"wk-selected.data": "1 OR 1=1", "wk-rev.data": 0, "wk-lang.data": "en"}, None),
    ]
    for output, values, triggered in crafted:
        resp = _call(client, app, output, values, triggered=triggered)
        assert resp.status_code == 403, (output, _text(resp)[:200])
        body = _text(resp)
        assert body == "forbidden"
        assert str(people["reporter_phone"]) not in body
    assert _status_and_events(app, case) == before
    page = _text(client.get("/my-grids/map.html"))
    assert facts["other_grid"] not in page


def test_worker_actions_write_events(app: dash.Dash, facts: dict[str, Any]) -> None:
    client = _client(app, "worker2")
    from dashboards.cases import my_open_cases
    from dashboards.context import get_context

    store = get_context().store
    user = auth.get_user(store, "worker2")
    assert user is not None
    cases = my_open_cases(store, user, facts["layout_id"])
    fresh = cases[cases["status"].isin(["reported", "registered"])]
    case = int((fresh if len(fresh) else cases)["incident_id"].iloc[0])
    no_note = _call(client, app, "..wk-message.children", {
        "wk-handle.n_clicks": 1, "wk-selected.data": case, "wk-note.value": "  ", "wk-rev.data": 0,
        "wk-lang.data": "zh"}, triggered="wk-handle.n_clicks")
    assert no_note.status_code == 200 and t("wk_note_needed", "zh") in _text(no_note)
    done = _call(client, app, "..wk-message.children", {
        "wk-handle.n_clicks": 1, "wk-selected.data": case, "wk-note.value": "已清理", "wk-rev.data": 0,
        "wk-lang.data": "zh"}, triggered="wk-handle.n_clicks")
    assert done.status_code == 200 and "已移出在办列表" in _text(done)
    events = store.incident_events(case)
    assert events["actor"].iloc[-1] == "worker2" and events["note"].iloc[-1] == "已清理"
    assert events["event_at"].iloc[-1] == NOW
    assert case not in my_open_cases(store, user, facts["layout_id"])["incident_id"].tolist()

    # Accept (worker1 has a case nobody took yet): the case is theirs now, the sheet says so.
    worker1 = auth.get_user(store, "worker1")
    assert worker1 is not None
    waiting = my_open_cases(store, worker1, facts["layout_id"])
    waiting = waiting[waiting["status"].isin(["reported", "registered"])]
    assert len(waiting)
    client = _client(app, "worker1")
    other = int(waiting["incident_id"].iloc[0])
    accepted = _call(client, app, "..wk-message.children", {
        "wk-accept.n_clicks": 1, "wk-selected.data": other, "wk-rev.data": 3, "wk-lang.data": "en"},
        triggered="wk-accept.n_clicks")
    assert accepted.status_code == 200 and "Accepted" in _text(accepted)
    assert accepted.get_json()["response"]["wk-rev"]["data"] == 4
    assert store.incident_row(other)["status"] == "dispatched"
    assert store.incident_events(other)["status"].iloc[-1] == "accepted"


# -- reporters' personal data ----------------------------------------------------------------------------------
def _grid_detail(client: Any, app: dash.Dash, grid: str) -> Any:
    filters = {"now": NOW.isoformat(), "start": datetime(2025, 7, 1).isoformat(), "end": NOW.isoformat(),
               "klass": None, "categories": [], "street": None, "community": None, "basis": "km2"}
    return _call(client, app, "..ov-detail.children", {"ov-selected.data": grid, "ov-filters.data": filters,
                                                       "ov-lang.data": "en"}, triggered="ov-selected.data")


def test_planner_sees_no_personal_data_and_manager_does(app: dash.Dash, facts: dict[str, Any]) -> None:
    grid = facts["other_grid"]
    people = facts["people"].set_index("incident_id").loc[facts["other_cases"]]
    phones = [p for p in people["reporter_phone"] if isinstance(p, str) and len(p) >= 8]
    names = [n for n in people["reporter_name"] if isinstance(n, str) and len(n) >= 2]
    assert phones and names
    planner = _grid_detail(_client(app, "planner"), app, grid)
    manager = _grid_detail(_client(app, "manager"), app, grid)
    assert planner.status_code == manager.status_code == 200
    as_planner, as_manager = _text(planner), _text(manager)
    assert not any(p in as_planner for p in phones) and not any(n in as_planner for n in names)
    assert "****" in as_planner
    assert all(p in as_manager for p in phones[:5])


# -- serving ---------------------------------------------------------------------------------------------------
def test_serve_refuses_demo_passwords_without_demo_flag(demo_copy: Path, tmp_path: Path) -> None:
    db = tmp_path / "refuse.duckdb"
    shutil.copy2(demo_copy, db)
    # A wide terminal: rich would wrap the one line at 80 columns.
    proc = subprocess.run([sys.executable, "-m", "gridgov.cli", "serve", "--db", str(db), "--port", "1"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "demo password" in lines[0] and "--demo" in lines[0]
    for name in ("manager", "planner", "worker1"):
        assert name in lines[0]


def test_serve_accepts_once_passwords_are_changed(demo_copy: Path, tmp_path: Path) -> None:
    from gridgov.errors import GridgovError
    from gridgov.serve import check_no_demo_passwords

    db = tmp_path / "real.duckdb"
    shutil.copy2(demo_copy, db)
    settings = Settings(db_path=db)
    with pytest.raises(GridgovError, match="worker2"):
        check_no_demo_passwords(settings)
    with Store(db) as store:
        for name in auth.demo_password_users(store):
            auth.set_password(store, name, f"{name}-real-password")
    check_no_demo_passwords(settings)


# -- languages -------------------------------------------------------------------------------------------------
#: Keys deliberately blank in both languages (the Planner's unitless ratios have no unit suffix).
BLANK_ON_PURPOSE = {"pl_unit_ratio", "pl_unit_pct"}


def test_every_string_has_both_languages_with_the_same_placeholders() -> None:
    fields = string.Formatter()
    for key, entry in STRINGS.items():
        assert set(entry) == set(LANGS), key
        assert all(isinstance(v, str) for v in entry.values()), key
        if key in BLANK_ON_PURPOSE:
            assert not any(v.strip() for v in entry.values()), key
        else:
            assert all(v.strip() for v in entry.values()), key
        names = [{f for _, f, _, _ in fields.parse(entry[lang]) if f} for lang in LANGS]
        assert names[0] == names[1], key


def test_language_follows_the_browser_unless_asked(app: dash.Dash) -> None:
    client = app.server.test_client()
    assert "登录" in _text(client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}))
    assert "Sign in" in _text(client.get("/login", headers={"Accept-Language": "zh-CN", "X": "1"},
                                         query_string={"lang": "en"}))
    assert "Sign in" in _text(client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    client = _client(app, "manager")
    resp = client.get("/staffing", headers={"Accept-Language": "zh-TW,zh;q=0.9"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/staffing?lang=zh"
    assert client.get("/staffing?lang=en", headers={"Accept-Language": "zh-TW"}).status_code == 200
    assert client.get("/staffing", headers={"Accept-Language": "en-US"}).status_code == 200


@pytest.mark.parametrize("lang", LANGS)
def test_worker_page_renders_in_both_languages(app: dash.Dash, facts: dict[str, Any], lang: str) -> None:
    from dashboards.pages import worker

    client = _client(app, "worker1")
    page = _call(client, app, ".._pages_content", {"_pages_location.pathname": "/my-grids",
                                                   "_pages_location.search": f"?lang={lang}"})
    assert page.status_code == 200
    listing = _call(client, app, "..wk-title.children", {"wk-rev.data": 0, "wk-lang.data": lang})
    detail = _call(client, app, "..wk-detail.className", {"wk-selected.data": facts["my_cases"][0],
                                                          "wk-rev.data": 0, "wk-lang.data": lang})
    assert listing.status_code == detail.status_code == 200
    text = "".join(json.dumps(r.get_json(), ensure_ascii=False) for r in (page, listing, detail))
    for key in ("wk_title", "wk_export", "wk_list_title", "wk_handle", "wk_address", "reporter"):
        assert t(key, lang) in text, key
    if lang == "zh":
        assert not re.search(r"\b(Due|Reporter|Address|Overdue)\b", text)
    assert worker.layout(lang=lang) is not None


def test_field_map_holds_exactly_the_workers_grids_and_cases(app: dash.Dash, facts: dict[str, Any]) -> None:
    client = _client(app, "worker1")
    resp = client.get("/my-grids/map.html?lang=zh")
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    page = _text(resp)
    assert set(re.findall(r'"grid_code":\s*"(\d+)"', page)) == set(facts["mine"])
    from dashboards.cases import my_open_cases
    from dashboards.context import get_context

    store = get_context().store
    user = auth.get_user(store, "worker1")
    assert user is not None
    open_now = set(my_open_cases(store, user, facts["layout_id"])["incident_id"].astype(int))
    assert {int(c) for c in re.findall(r'data-case=\\?"(\d+)\\?"', page)} == open_now
    assert page.count("L.circleMarker(") == len(open_now)
    assert "截止" in page
    people = facts["people"]
    mine = people[people["incident_id"].isin(open_now)]
    for column in PERSONAL_COLUMNS:
        for value in mine[column].dropna():
            if len(str(value)) >= 3:
                assert str(value) not in page


# -- CSRF on the sign-in and sign-out forms ------------------------------------------------------------------------
def test_sign_in_without_the_forms_token_is_refused(app: dash.Dash) -> None:
    client = app.server.test_client()
    form = _text(client.get("/login"))
    missing = client.post("/login", data={"username": "manager", "password": PASSWORD})
    assert missing.status_code == 400 and "did not come from this site" in _text(missing)
    assert client.get("/staffing").status_code == 302  # not signed in
    wrong = client.post("/login", data={"username": "manager", "password": PASSWORD,
                                        "csrf_token": form_token(form)[::-1]})
    assert wrong.status_code == 400 and client.get("/staffing").status_code == 302
    # Another session's token is as wrong as a made-up one; the refused form offers this session's.
    other = form_token(_text(app.server.test_client().get("/login")))
    assert other != form_token(form)
    refused = client.post("/login", data={"username": "manager", "password": PASSWORD, "csrf_token": other})
    assert refused.status_code == 400 and client.get("/staffing").status_code == 302
    assert form_token(_text(refused)) == form_token(form)
    # A cross-site POST arrives without the session cookie (SameSite=Lax), so without a token to match.
    fresh = app.server.test_client()
    assert fresh.post("/login", data={"username": "manager", "password": PASSWORD,
                                      "csrf_token": form_token(form)}).status_code == 400
    ok = client.post("/login", data={"username": "manager", "password": PASSWORD, "csrf_token": form_token(form)})
    assert ok.status_code == 302 and client.get("/staffing").status_code == 200


def test_sign_out_needs_the_token_or_a_request_from_this_site(app: dash.Dash) -> None:
    client = _client(app, "manager")
    # From another site (or a browser that does not say): a page with the sign-out button, still signed in.
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {}):
        page = client.get("/logout", headers=headers)
        assert page.status_code == 200 and client.get("/staffing").status_code == 200
    token = form_token(_text(page))
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf_token": token + "x"}).status_code == 400
    assert client.get("/staffing").status_code == 200
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/staffing").status_code == 302
    # A typed or bookmarked /logout signs out directly.
    client = _client(app, "planner")
    assert client.get("/logout", headers={"Sec-Fetch-Site": "none"}).status_code == 302
    assert client.get("/planner").status_code == 302


def test_the_token_is_per_session_and_renewed_at_sign_in(app: dash.Dash) -> None:
    first, second = app.server.test_client(), app.server.test_client()
    token = form_token(_text(first.get("/login")))
    assert form_token(_text(first.get("/login?lang=zh"))) == token  # stable within the session
    assert form_token(_text(second.get("/login"))) != token
    assert sign_in(first, "manager", PASSWORD).status_code == 302
    after = form_token(_text(first.get("/logout")))
    assert after != token
