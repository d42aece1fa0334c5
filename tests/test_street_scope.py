"""The street a manager's Overview and Staffing open on, through Flask's test client on a copy of the small demo.

A manager of one street opens both pages on their street; a district manager and a planner on the whole district;
``?street=`` in the URL wins over both. The street manager may widen the view to the district: reporters' names and
phones of other streets stay masked all the same (``docs/access.md``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
import pytest

from dashboards import ids
from dashboards.figures import fmt_int
from gridgov import auth
from gridgov.config import Settings

NOW = datetime(2026, 7, 1, 9, 0)


@pytest.fixture(scope="module")
def app(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dash.Dash]:
    from dashboards.app import create_app
    from dashboards.context import get_context

    db = tmp_path_factory.mktemp("street-scope") / "demo.duckdb"
    shutil.copy2(small_demo_db, db)
    application = create_app(Settings(db_path=db, now=NOW))
    yield application
    get_context().store.close()


@pytest.fixture(scope="module")
def streets(app: dash.Dash) -> dict[str, Any]:
    """The street manager's street, another street, the grids of each and the layout."""
    from dashboards.context import get_context

    store = get_context().store
    user = auth.get_user(store, "street-manager")
    layout_id = store.current_layout_id()
    assert user is not None and user.street_code and layout_id is not None
    grids = store.layout_grids(layout_id)
    by_street = {str(s): set(g["grid_code"].astype(str)) for s, g in grids.groupby("street_code")}
    assert 0 < len(by_street[user.street_code]) < len(grids)
    other = next(s for s in sorted(by_street) if s != user.street_code)
    return {"own": user.street_code, "other": other, "grids": by_street,
            "all": set(grids["grid_code"].astype(str)), "layout_id": layout_id}


def _client(app: dash.Dash, username: str) -> Any:
    """A test client signed in as ``username`` through the form (with its CSRF token when the form has one)."""
    client = app.server.test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    data = {"username": username, "password": auth.DEMO_PASSWORD, **({"csrf_token": token.group(1)} if token else {})}
    assert client.post("/login", data=data).status_code == 302
    client.get("/_dash-dependencies")  # as a browser does first: Dash registers the pages' callbacks
    return client


def _call(client: Any, app: dash.Dash, output: str, values: dict[str, Any], *, triggered: str | None = None
          ) -> dict[str, Any]:
    """POST the Dash callback request of the callback whose output key starts with ``output``; its response."""
    from dash._utils import split_callback_id

    key = next(k for k in app.callback_map if k.startswith(output))
    declared = app.callback_map[key]

    def items(specs: list[dict[str, Any]]) -> list[Any]:
        # A wildcard (ALL) input matches no component here: Dash sends an empty list for it.
        return [[] if spec["id"].startswith("{") else
                {"id": spec["id"], "property": spec["property"],
                 "value": values.get(f"{spec['id']}.{spec['property']}")}
                for spec in specs]

    def out(spec: dict[str, Any]) -> dict[str, Any]:
        return {"id": spec["id"], "property": spec["property"].split("@")[0]}

    outs = split_callback_id(key)  # a list for a callback of several outputs, one dict for a single output
    resp = client.post("/_dash-update-component", json={
        "output": key, "outputs": [out(o) for o in outs] if isinstance(outs, list) else out(outs),
        "inputs": items(declared["inputs"]), "state": items(declared["state"]),
        "changedPropIds": [triggered] if triggered else [],
    })
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["response"]  # type: ignore[no-any-return]


def _page_props(client: Any, app: dash.Dash, path: str, search: str = "") -> dict[str, dict[str, Any]]:
    """The props of every component with a string id in the layout Dash Pages renders for ``path`` + ``search``."""
    response = _call(client, app, ".._pages_content", {"_pages_location.pathname": path,
                                                       "_pages_location.search": search})
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict) and isinstance(props.get("id"), str):
                found[props["id"]] = props
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(response)
    return found


def _overview_numbers(client: Any, app: dash.Dash, props: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The Overview's filter and map/KPI callbacks, run as the browser runs them on the layout's values."""
    values = {f"{cid}.{prop}": props[cid].get(prop) for cid, prop in (
        (ids.OV_WINDOW, "value"), (ids.OV_DATES, "start_date"), (ids.OV_DATES, "end_date"), (ids.OV_CLASS, "value"),
        (ids.OV_CATEGORIES, "value"), (ids.OV_STREET, "value"), (ids.OV_COMMUNITY, "value"), (ids.OV_BASIS, "value"),
        (ids.OV_LANG, "data"))}
    filters = _call(client, app, f"..{ids.OV_FILTERS}.data", values)[ids.OV_FILTERS]["data"]
    out = _call(client, app, f"..{ids.OV_MAP}.figure...{ids.OV_KPIS}.children",
                {f"{ids.OV_FILTERS}.data": filters, f"{ids.OV_LANG}.data": "en"}, triggered=f"{ids.OV_FILTERS}.data")
    cards = {c["props"]["id"]: c["props"]["children"][1]["props"]["children"] for c in out[ids.OV_KPIS]["children"]}
    return {"filters": filters, "cards": cards, "status": json.dumps(out[ids.OV_MAP_STATUS]["children"])}


def _expected_cards(filters: dict[str, Any], grids: set[str], layout_id: int) -> dict[str, str]:
    """Open, overdue and reported cases of ``grids`` in the filters' window, as the KPI cards write them."""
    from dashboards.context import get_context

    start, end, now = (datetime.fromisoformat(filters[k]) for k in ("start", "end", "now"))
    stats = get_context().store.grid_stats(layout_id, start=start, end=end, now=now)
    chosen = stats[stats["grid_code"].astype(str).isin(grids)]
    return {f"kpi-{col}": fmt_int(int(chosen[col].sum())) for col in ("open", "overdue", "reported")}


SCOPES = [
    ("street-manager", "", "own"),
    ("street-manager", "?street={other}", "other"),
    ("street-manager", "?street=", None),
    ("manager", "", None),
    ("manager", "?street={own}", "own"),
    ("planner", "", None),
]


# -- Overview ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("username", "search", "expected"), SCOPES)
def test_overview_opens_on_the_managers_street(app: dash.Dash, streets: dict[str, Any], username: str, search: str,
                                               expected: str | None) -> None:
    client = _client(app, username)
    props = _page_props(client, app, "/", search.format(**streets))
    street = streets[expected] if expected else None
    grids = streets["grids"][street] if street else streets["all"]
    assert props[ids.OV_STREET]["value"] == street
    assert props[ids.OV_MAP]["figure"]["layout"]["map"]["uirevision"] == f"area:{street or ''}"
    communities = {o["value"] for o in props[ids.OV_COMMUNITY]["options"]}
    district = {o["value"] for o in _page_props(client, app, "/", "?street=")[ids.OV_COMMUNITY]["options"]}
    assert (communities < district) if street else (communities == district)

    numbers = _overview_numbers(client, app, props)
    assert numbers["filters"]["street"] == street
    want = _expected_cards(numbers["filters"], grids, streets["layout_id"])
    assert {k: numbers["cards"][k] for k in want} == want
    if want["kpi-reported"] != "0":
        assert f" in {fmt_int(len(grids))} grids" in numbers["status"]


def test_overview_map_view_is_per_user_and_the_shared_map_stays_whole(app: dash.Dash,
                                                                      streets: dict[str, Any]) -> None:
    # The initial map is cached once per language for everybody; each user's view is set on their own copy.
    first = _page_props(_client(app, "manager"), app, "/")[ids.OV_MAP]["figure"]["layout"]["map"]
    own = _page_props(_client(app, "street-manager"), app, "/")[ids.OV_MAP]["figure"]["layout"]["map"]
    again = _page_props(_client(app, "manager"), app, "/")[ids.OV_MAP]["figure"]["layout"]["map"]
    assert own["uirevision"] == f"area:{streets['own']}" and own["center"] != first["center"]
    assert again == first and first["uirevision"] == "area:"


def test_street_manager_widens_to_the_district_with_reporters_of_other_streets_masked(
        app: dash.Dash, streets: dict[str, Any]) -> None:
    from dashboards.context import get_context

    client = _client(app, "street-manager")
    props = _page_props(client, app, "/")
    assert props[ids.OV_STREET]["value"] == streets["own"]
    props[ids.OV_STREET]["value"] = None  # the user clears the street filter
    widened = _overview_numbers(client, app, props)
    want = _expected_cards(widened["filters"], streets["all"], streets["layout_id"])
    assert widened["filters"]["street"] is None and {k: widened["cards"][k] for k in want} == want

    store = get_context().store
    people = store.incidents(("reporter_phone",)).set_index("incident_id")["reporter_phone"]
    phones: dict[str, list[str]] = {}
    for grid in sorted(streets["all"]):
        cases = store.grid_open_cases(streets["layout_id"], grid)["incident_id"]
        phones[grid] = [p for p in people.reindex(cases).dropna() if isinstance(p, str) and len(p) >= 8]
    outside = max(streets["all"] - streets["grids"][streets["own"]], key=lambda g: len(phones[g]))
    inside = max(streets["grids"][streets["own"]], key=lambda g: len(phones[g]))
    assert phones[outside] and phones[inside]
    filters = widened["filters"]
    for grid, shown in ((outside, False), (inside, True)):
        detail = _call(client, app, f"..{ids.OV_DETAIL}.children",
                       {f"{ids.OV_SELECTED}.data": grid, f"{ids.OV_FILTERS}.data": filters,
                        f"{ids.OV_LANG}.data": "en"}, triggered=f"{ids.OV_SELECTED}.data")
        text = json.dumps(detail, ensure_ascii=False)
        assert all((p in text) is shown for p in phones[grid][:5]), grid


# -- Staffing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("username", "search", "expected"), [s for s in SCOPES if s[0] != "planner"])
def test_staffing_opens_on_the_managers_street(app: dash.Dash, streets: dict[str, Any], username: str, search: str,
                                               expected: str | None) -> None:
    client = _client(app, username)
    props = _page_props(client, app, "/staffing", search.format(**streets))
    street = streets[expected] if expected else None
    grids = streets["grids"][street] if street else streets["all"]
    assert props[ids.ST_STREET]["value"] == street
    assert props[ids.ST_MAP]["figure"]["layout"]["map"]["uirevision"] == f"area:{street or ''}"

    base = _call(client, app, f"{ids.ST_BASE}.data", {f"{ids.ST_LANG}.data": "en"})[ids.ST_BASE]["data"]
    out = _call(client, app, f"..{ids.ST_MAP}.figure...{ids.ST_TABLE}.data",
                {f"{ids.ST_EDITS}.data": base, f"{ids.ST_STREET}.value": props[ids.ST_STREET]["value"],
                 f"{ids.ST_ROSTER_REV}.data": 0, f"{ids.ST_BASE}.data": base, f"{ids.ST_LANG}.data": "en"},
                triggered=f"{ids.ST_EDITS}.data")
    assert {row["grid"] for row in out[ids.ST_TABLE]["data"]} == grids
    assert json.dumps(out[ids.ST_MAP_STATUS]["children"]).startswith(f'"{fmt_int(len(grids))} grids')
