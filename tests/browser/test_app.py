"""The app factory and the Overview callbacks in-process, without a browser (fast companions of the page tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dash
import pytest

from dashboards import ids
from gridgov.auth import DEMO_PASSWORD, add_user
from gridgov.config import Settings
from tests.dash_calls import call_as_triggered, sign_in, texts
from tests.fixtures import NOW, build_tiny


@pytest.fixture
def tiny_app(tmp_path: Path) -> Iterator[dash.Dash]:
    from dashboards.app import create_app
    from dashboards.context import get_context

    db = tmp_path / "tiny.duckdb"
    store = build_tiny(db)
    add_user(store, "manager", DEMO_PASSWORD, role="manager")
    store.close()
    app = create_app(Settings(db_path=db, now=NOW))
    yield app
    get_context().store.close()


def _kpis(cards: list[Any]) -> dict[str, str]:
    return {card.id.removeprefix("kpi-"): card.children[1].children for card in cards}


def test_health_layers_and_page(tiny_app: dash.Dash) -> None:
    client = tiny_app.server.test_client()
    assert client.get("/healthz").data == b"ok"
    assert client.get("/").status_code == 302  # to the login page
    assert sign_in(client, "manager", DEMO_PASSWORD).status_code == 302
    grids = client.get("/geo/grids.geojson").get_json()
    assert [f["id"] for f in grids["features"]] == ["G1", "G2", "G3", "G4"]
    assert client.get("/geo/streets.geojson").status_code == 200
    assert client.get("/geo/nothing.geojson").status_code == 404
    assert client.get("/").status_code == 200
    assert client.get("/_dash-layout").status_code == 200


def test_overview_callbacks_on_the_tiny_district(tiny_app: dash.Dash) -> None:
    page = sys.modules["dashboards.pages.overview"]
    filters, caption = page._collect_filters("custom", "2026-06-01", "2026-06-10", "all", [], None, None, "km2",
                                             None, 0, "en")
    assert caption == "2026-06-01 00:00 → 2026-06-10 12:00"
    _patch, cards, status, as_of = page._update_overview(filters, "en")
    assert _kpis(cards) == {"open": "2", "overdue": "1", "reported": "5", "on_time": "66.7%"}
    assert "5 incidents in 4 grids" in status
    assert as_of == "As of 2026-06-10 12:00"

    # Community B only (G3, G4): the street light id4 is open, the parking case id6 closed on time.
    filters_b, _ = page._collect_filters("custom", "2026-06-01", "2026-06-10", "all", [], None, "990100001002",
                                         "km2", None, 0, "en")
    _patch, cards, _status, _ = page._update_overview(filters_b, "en")
    assert _kpis(cards) == {"open": "1", "overdue": "0", "reported": "2", "on_time": "100.0%"}

    # Nothing reported for a category in the window: the empty-state note replaces the summary.
    filters_none, _ = page._collect_filters("7", None, None, "component", ["bench"], None, None, "km2", None, 0,
                                            "en")
    _patch, cards, status, _ = page._update_overview(filters_none, "en")
    assert _kpis(cards)["reported"] == "0"
    assert texts(status) == ["No incidents in this window."]

    detail, highlight = call_as_triggered(f"{ids.OV_SELECTED}.data", page._show_detail, "G2", filters, "en")
    text = " ".join(texts(detail))
    assert "G2" in text and "Noise nuisance" in text and "overdue 19 h" in text
    assert highlight is not dash.no_update
    placeholder, _ = call_as_triggered(f"{ids.OV_SELECTED}.data", page._show_detail, None, filters, "en")
    assert "Click a grid" in " ".join(texts(placeholder))
    _, highlight = call_as_triggered(f"{ids.OV_FILTERS}.data", page._show_detail, "G2", filters_b, "en")
    assert highlight is dash.no_update  # a filter change leaves the highlighted grid alone

    click = {"points": [{"location": "G3"}]}
    assert call_as_triggered(f"{ids.OV_MAP}.clickData", page._select_grid, click, []) == "G3"
    assert call_as_triggered(f"{ids.OV_MAP}.clickData", page._select_grid, {"points": [{"location": "G9"}]}, []) is None


def test_community_options_follow_the_street(tiny_app: dash.Dash) -> None:
    page = sys.modules["dashboards.pages.overview"]
    options, value = page._follow_street("990100001", "990100001001")
    assert [o["value"] for o in options] == ["990100001001", "990100001002"] and value is dash.no_update
    options, value = page._follow_street("nowhere", "990100001001")
    assert options == [] and value is None
    options, kept = page._follow_class("component", ["street_light", "noise"])
    assert kept == ["street_light"] and all(o["value"] != "noise" for o in options)
    _, kept = page._follow_class("event", ["noise"])
    assert kept is dash.no_update
    assert ids.OV_MAP == "ov-map"
