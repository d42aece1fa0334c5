"""“Take the map with me”: a folium HTML map of a worker's grids and open cases, served at ``/my-grids/map.html``.

The file holds exactly the signed-in worker's grids and to-do cases, each pin with a popup of category, address and
due time: nothing about reporters, nothing about other grids. Folium loads Leaflet and the background tiles from the
internet when the file is opened; the grid outlines and pins are inside the file.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import folium
import pandas as pd
from flask import Flask, Response

from dashboards.access import lang_of_request, signed_in
from dashboards.cases import my_grids, my_open_cases
from dashboards.context import get_context
from dashboards.i18n import t
from dashboards.worker_figures import GRID_LINE, URGENCY_COLORS, URGENCY_KEYS, case_rows, fmt_when, grid_bounds
from gridgov.auth import require
from gridgov.config import WorkCalendar

ROUTE = "/my-grids/map.html"


def field_map_html(features: list[dict[str, Any]], cases: pd.DataFrame, *, now: datetime, calendar: WorkCalendar,
                   lang: str = "en", title: str = "") -> str:
    """The standalone HTML map of some grids and cases.

    Parameters
    ----------
    features
        GeoJSON features (WGS84) of the grids, ``id`` = grid code.
    cases
        Open cases (``cases.my_open_cases``): category names, address, due time, ``lon``/``lat``.
    now
        The clock, for the colour of each pin.
    calendar
        Working calendar ("less than one working day left").
    lang
        Language of popups and legend.
    title
        Shown in the page title and the legend box.

    Returns
    -------
    str
        A complete HTML document.
    """
    bounds = grid_bounds(features)
    center = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2] if bounds else [0.0, 0.0]
    fmap = folium.Map(location=center, zoom_start=15, tiles="OpenStreetMap", control_scale=True)
    fmap.get_root().header.add_child(folium.Element(f"<title>{html.escape(title)}</title>"))
    grids = folium.FeatureGroup(name=t("wk_title", lang)).add_to(fmap)
    for feature in features:
        code = str(feature["id"])
        folium.GeoJson(
            {"type": "Feature", "id": code, "properties": {"grid_code": code}, "geometry": feature["geometry"]},
            name=code, tooltip=f"{t('wk_grid', lang)} {code}",
            style_function=lambda _f: {"color": GRID_LINE, "weight": 3, "fillOpacity": 0.06},
        ).add_to(grids)
    pins = folium.FeatureGroup(name=t("wk_list_title", lang)).add_to(fmap)
    rows = case_rows(cases, now=now, calendar=calendar, lang=lang)
    for row, lon, lat in zip(rows, cases["lon"], cases["lat"], strict=True):
        if pd.isna(lon) or pd.isna(lat):
            continue
        popup = (f'<div class="case" data-case="{row["incident_id"]}"><b>{html.escape(row["category"])}</b><br>'
                 f'{html.escape(row["address"])}<br>{html.escape(t("wk_due", lang, when=row["due"]))} '
                 f'({html.escape(row["left"])})<br><small>{html.escape(t("wk_case", lang))} '
                 f'{html.escape(row["case"])} · {html.escape(t("wk_grid", lang))} {html.escape(row["grid"])}'
                 f'</small></div>')
        color = URGENCY_COLORS[row["urgency"]]
        folium.CircleMarker(location=[float(lat), float(lon)], radius=9, color="#ffffff", weight=2, fill=True,
                            fill_color=color, fill_opacity=0.95,
                            popup=folium.Popup(popup, max_width=260)).add_to(pins)
    if bounds:
        fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    legend = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;border-radius:50%;background:{c};'
        f'margin-right:6px"></span>{html.escape(t(URGENCY_KEYS[k], lang))}</div>'
        for k, c in URGENCY_COLORS.items())
    fmap.get_root().html.add_child(folium.Element(
        '<div style="position:fixed;bottom:24px;left:10px;z-index:9999;background:#fff;padding:8px 10px;'
        'border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.3);font:13px sans-serif">'
        f'<b>{html.escape(title)}</b>{legend}</div>'))
    return fmap.get_root().render()


def register_routes(server: Flask) -> None:
    """Serve the signed-in worker's map at :data:`ROUTE` (the access guard lets only workers reach it)."""
    server.add_url_rule(ROUTE, "field_map", _download)


def _download() -> Response:
    user = require(signed_in(), "worker")
    app_ctx = get_context()
    lang = lang_of_request()
    cases = my_open_cases(app_ctx.store, user, app_ctx.layout_id)
    codes = my_grids(app_ctx.store, user, app_ctx.layout_id)
    features = [app_ctx.grid_features[c] for c in codes if c in app_ctx.grid_features]
    now = app_ctx.now()
    title = t("wk_export_title", lang, user=user.username, now=fmt_when(now, lang))
    body = field_map_html(features, cases, now=now, calendar=app_ctx.settings.calendar, lang=lang, title=title)
    resp = Response(body, mimetype="text/html")
    resp.headers["Content-Disposition"] = f'attachment; filename="my-grids-{now:%Y%m%d-%H%M}.html"'
    resp.headers["Cache-Control"] = "no-store"
    return resp

