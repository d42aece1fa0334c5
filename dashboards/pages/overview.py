"""Overview: the subdistrict manager's live map of incident density, KPIs and grid details.

Data flow: the filter controls feed one ``dcc.Store`` (:data:`ids.OV_FILTERS`); the map/KPI callback runs one
``grid_stats`` query per change and patches only the trace's values; clicking a grid fills the detail panel. The
map the page starts with (every grid's polygon, 1.4 MB of JSON for the large demo) does not depend on any filter: it
is built once per language and context (``AppContext.cached``); each load only sets its view. A manager of one street
opens on that street (``?street=`` chooses another, ``?street=`` left blank the whole district).
``benchmarks/serve.py`` measures all of it.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import dash
import pandas as pd
from dash import ALL, Input, Output, Patch, State, callback, clientside_callback, ctx, dcc, html, no_update

from dashboards import ids, live
from dashboards.access import opening_street, sees_personal_data
from dashboards.cases import reporters
from dashboards.context import AppContext, get_context
from dashboards.figures import (
    BASEMAPS,
    DEFAULT_WINDOW,
    EMPTY_FEATURES,
    GRAPH_CONFIG,
    LAYER_BASEMAP,
    LAYER_SELECTED,
    WINDOW_DAYS,
    basemap_layer,
    bilingual,
    boundary_layers,
    category_bar,
    density_frame,
    density_map_dict,
    density_trace_values,
    fmt_int,
    fmt_num,
    fmt_time,
    kpi_items,
    kpi_placeholders,
    map_view,
    open_case_rows,
    window_bounds,
    with_map_view,
)
from dashboards.i18n import normalize_lang, t
from gridgov import metrics

dash.register_page(__name__, path="/", name="Overview", title="Overview · gridgov", order=0,
                   i18n_key="nav_overview")

log = logging.getLogger("gridgov.dashboards")

MAX_CASE_ROWS = 50
#: How often an open page re-reads the store: open/overdue counts change as cases arrive and deadlines pass.
REFRESH_MS = 60_000


# -- layout ---------------------------------------------------------------------------------------------------
def layout(lang: str = "en", street: str | None = None, **_query: str) -> html.Div:
    """The Overview page (built from the app context's static data; no database access).

    Parameters
    ----------
    lang
        ``en`` or ``zh`` from the ``?lang=`` query string.
    street
        A street code from ``?street=``: the page opens filtered to that street; blank or unknown, on the whole
        district. Without it a manager of one street opens on their own street.
    """
    started = time.perf_counter()
    lang = normalize_lang(lang)
    app_ctx = get_context()
    if app_ctx.layout_id is None or app_ctx.grids.empty:
        return html.Div(t("no_layout", lang), className="empty-page")
    street = opening_street(app_ctx.streets["code"], street)
    shared = app_ctx.cached(("overview-map", lang, dash.get_relative_path("/")),
                            lambda: _initial_map(app_ctx, lang))
    # The cached figure is everybody's; only this load's copy looks at the street (same uirevision as the callback).
    bounds = app_ctx.area_bounds.get(street) if street else app_ctx.bounds
    figure = with_map_view(shared, map_view(bounds), uirevision=f"area:{street or ''}")
    page = html.Div(
        className="overview",
        children=[
            dcc.Store(id=ids.OV_LANG, data=lang),
            dcc.Store(id=ids.OV_FILTERS),
            dcc.Store(id=ids.OV_SELECTED, data=None),
            dcc.Store(id=ids.OV_BASEMAP_OK),
            dcc.Interval(id=ids.OV_REFRESH, interval=REFRESH_MS),
            dcc.Interval(id=ids.OV_LIVE, interval=live.POLL_MS),
            dcc.Store(id=ids.OV_LIVE_REV, data=live.revision()),
            _filter_panel(app_ctx, lang, street),
            html.Section(className="ov-main", children=[
                html.Div(className="ov-head", children=[
                    html.H1(t("map_title", lang)),
                    html.Span(id=ids.OV_AS_OF, className="as-of"),
                ]),
                html.Div(id=ids.OV_KPIS, className="kpis", children=_kpi_cards(kpi_placeholders(lang))),
                html.Div(className="ov-body", children=[
                    html.Div(className="card map-card", children=[
                        dcc.Graph(id=ids.OV_MAP, figure=figure, config=GRAPH_CONFIG, className="map-graph"),
                        html.Div(id=ids.OV_MAP_STATUS, className="map-status"),
                    ]),
                    html.Aside(id=ids.OV_DETAIL, className="card detail", children=_detail_placeholder(lang)),
                ]),
            ]),
        ],
    )
    log.info("overview: layout in %.0f ms", (time.perf_counter() - started) * 1000)
    return page


def _initial_map(app_ctx: AppContext, lang: str) -> dict[str, Any]:
    # Colours arrive with the first filter callback; until then no grid is coloured. The view is set per load (the
    # user's street), so the figure depends on the language alone and is built once per context (the polygons of
    # 1,800 grids are 1.4 MB of JSON).
    frame = density_frame(app_ctx.grids, pd.DataFrame(columns=["grid_code"]),
                          in_area=pd.Series(False, index=app_ctx.grids.index))
    layers = boundary_layers(grids_source=dash.get_relative_path(app_ctx.geo_path("grids")),
                             communities_source=dash.get_relative_path(app_ctx.geo_path("communities")),
                             streets_source=dash.get_relative_path(app_ctx.geo_path("streets")))
    return density_map_dict(app_ctx.grid_geojson, frame, lang=lang, view=map_view(app_ctx.bounds), layers=layers,
                            community_names=app_ctx.community_names)


def _field(label: str, control: Any, **kwargs: Any) -> html.Div:
    return html.Div(className="field", children=[html.Label(label, className="field-label"), control], **kwargs)


def _filter_panel(app_ctx: AppContext, lang: str, street: str | None) -> html.Aside:
    now = app_ctx.now()
    first = app_ctx.time_range[0] if app_ctx.time_range else now - timedelta(days=365)
    windows = [{"label": t(f"window_{k}", lang), "value": k} for k in (*WINDOW_DAYS, "custom")]
    return html.Aside(className="filters card", children=[
        html.H2(t("filters", lang)),
        _field(t("time_window", lang), dcc.RadioItems(id=ids.OV_WINDOW, options=windows, value=DEFAULT_WINDOW,
                                                      className="segmented", inline=True)),
        html.Div(id=ids.OV_DATES_BOX, style={"display": "none"}, className="field", children=[
            dcc.DatePickerRange(id=ids.OV_DATES, start_date=(now - timedelta(days=30)).date().isoformat(),
                                end_date=now.date().isoformat(), min_date_allowed=first.date().isoformat(),
                                max_date_allowed=now.date().isoformat(),
                                display_format="YYYY-MM-DD", first_day_of_week=1),
        ]),
        html.Div(id=ids.OV_WINDOW_CAPTION, className="caption"),
        _field(t("class", lang), dcc.RadioItems(
            id=ids.OV_CLASS, value="all", className="segmented", inline=True,
            options=[{"label": t(f"class_{k}", lang), "value": k} for k in ("all", "component", "event")])),
        _field(t("categories", lang), dcc.Dropdown(
            id=ids.OV_CATEGORIES, options=_category_options(app_ctx, "all"), value=[], multi=True,
            placeholder=t("categories_placeholder", lang))),
        _field(t("street", lang), dcc.Dropdown(
            id=ids.OV_STREET, value=street, placeholder=t("street_placeholder", lang),
            options=[{"label": r.label, "value": r.code} for r in app_ctx.streets.itertuples()])),
        _field(t("community", lang), dcc.Dropdown(
            id=ids.OV_COMMUNITY, value=None, placeholder=t("community_placeholder", lang),
            options=_community_options(app_ctx, street))),
        _field(t("density_basis", lang), dcc.RadioItems(
            id=ids.OV_BASIS, value="km2", className="segmented", inline=True,
            options=[{"label": t(f"basis_{k}", lang), "value": k} for k in ("km2", "residents")])),
        _field(t("basemap", lang), dcc.RadioItems(
            id=ids.OV_BASEMAP, value="blank", className="stacked",
            options=[{"label": t(key, lang), "value": v}
                     for key, v in zip(("basemap_blank", "basemap_positron", "basemap_osm"), BASEMAPS,
                                       strict=True)])),
        html.Div(id=ids.OV_BASEMAP_NOTE, className="caption warn"),
    ])


def _category_options(app_ctx: AppContext, klass: str | None) -> list[dict[str, str]]:
    cats = app_ctx.categories
    if klass and klass != "all":
        cats = cats[cats["class"] == klass]
    return [{"label": bilingual(str(r.name_zh), str(r.name_en)), "value": str(r.code)} for r in cats.itertuples()]


def _community_options(app_ctx: AppContext, street: str | None) -> list[dict[str, str]]:
    comms = app_ctx.communities
    if street:
        comms = comms[comms["parent_code"] == street]
    return [{"label": str(r.label), "value": str(r.code)} for r in comms.itertuples()]


def _kpi_cards(items: list[dict[str, str]]) -> list[html.Div]:
    return [
        html.Div(className=f"kpi {item['tone']}".strip(), id=f"kpi-{item['key']}", children=[
            html.Div(item["label"], className="kpi-label"),
            html.Div(item["value"], className="kpi-value"),
            html.Div(item["note"], className="kpi-note"),
        ])
        for item in items
    ]


def _detail_placeholder(lang: str) -> list[Any]:
    return [html.H2(t("detail_title", lang)), html.P(t("detail_empty", lang), className="muted")]


# -- callbacks: filters ---------------------------------------------------------------------------------------
@callback(Output(ids.OV_COMMUNITY, "options"), Output(ids.OV_COMMUNITY, "value"),
          Input(ids.OV_STREET, "value"), State(ids.OV_COMMUNITY, "value"), prevent_initial_call=True)
def _follow_street(street: str | None, community: str | None) -> tuple[list[dict[str, str]], Any]:
    options = _community_options(get_context(), street)
    # Re-sending an unchanged value would trigger the filter callback (and its query) a second time.
    if community is None or community in {o["value"] for o in options}:
        return options, no_update
    return options, None


@callback(Output(ids.OV_CATEGORIES, "options"), Output(ids.OV_CATEGORIES, "value"),
          Input(ids.OV_CLASS, "value"), State(ids.OV_CATEGORIES, "value"), prevent_initial_call=True)
def _follow_class(klass: str | None, chosen: list[str] | None) -> tuple[list[dict[str, str]], Any]:
    options = _category_options(get_context(), klass)
    allowed = {o["value"] for o in options}
    kept = [c for c in (chosen or []) if c in allowed]
    return options, no_update if kept == (chosen or []) else kept


@callback(Output(ids.OV_DATES_BOX, "style"), Input(ids.OV_WINDOW, "value"))
def _show_dates(window: str | None) -> dict[str, str]:
    return {} if window == "custom" else {"display": "none"}


@callback(Output(ids.OV_FILTERS, "data"), Output(ids.OV_WINDOW_CAPTION, "children"),
          Input(ids.OV_WINDOW, "value"), Input(ids.OV_DATES, "start_date"), Input(ids.OV_DATES, "end_date"),
          Input(ids.OV_CLASS, "value"), Input(ids.OV_CATEGORIES, "value"), Input(ids.OV_STREET, "value"),
          Input(ids.OV_COMMUNITY, "value"), Input(ids.OV_BASIS, "value"), Input(ids.OV_REFRESH, "n_intervals"),
          Input(ids.OV_LIVE_REV, "data"), State(ids.OV_LANG, "data"))
def _collect_filters(window: str | None, start_date: str | None, end_date: str | None, klass: str | None,
                     cats: list[str] | None, street: str | None, community: str | None, basis: str | None,
                     _tick: int | None, _live: int | None, lang: str | None) -> tuple[dict[str, Any], str]:
    now = get_context().now()
    start, end = window_bounds(window, start_date, end_date, now=now)
    filters = {
        "now": now.isoformat(), "start": start.isoformat(), "end": end.isoformat(),
        "klass": None if klass in (None, "all") else klass, "categories": sorted(cats or []),
        "street": street or None, "community": community or None,
        "basis": basis if basis in ("km2", "residents") else "km2",
    }
    shown_end = min(end, now)
    caption = t("window_caption", normalize_lang(lang), start=fmt_time(start), end=fmt_time(shown_end))
    return filters, caption


@callback(Output(ids.OV_LIVE_REV, "data"), Input(ids.OV_LIVE, "n_intervals"), State(ids.OV_LIVE_REV, "data"),
          prevent_initial_call=True)
def _poll_live(_n: int | None, seen: int | None) -> Any:
    # Cheap: nothing is read unless cases arrived since this page last drew (then the filters re-run the query).
    now = live.revision()
    return now if now != seen else no_update


def _area_mask(app_ctx: AppContext, filters: dict[str, Any]) -> pd.Series:
    grids = app_ctx.grids
    if filters.get("community"):
        return grids["community_code"] == filters["community"]
    if filters.get("street"):
        return grids["street_code"] == filters["street"]
    return pd.Series(True, index=grids.index)


# -- callbacks: map and KPIs ----------------------------------------------------------------------------------
@callback(Output(ids.OV_MAP, "figure"), Output(ids.OV_KPIS, "children"), Output(ids.OV_MAP_STATUS, "children"),
          Output(ids.OV_AS_OF, "children"),
          Input(ids.OV_FILTERS, "data"), State(ids.OV_LANG, "data"), prevent_initial_call=True)
def _update_overview(filters: dict[str, Any] | None, lang: str | None) -> tuple[Any, ...]:
    if not filters:
        return no_update, no_update, no_update, no_update
    lang = normalize_lang(lang)
    app_ctx = get_context()
    started = time.perf_counter()
    start, end, now = (datetime.fromisoformat(filters[k]) for k in ("start", "end", "now"))
    stats = app_ctx.store.grid_stats(app_ctx.layout_id or 0, start=start, end=end, now=now,
                                     categories=filters["categories"] or None, klass=filters["klass"])
    queried = time.perf_counter()
    mask = _area_mask(app_ctx, filters)
    frame = density_frame(app_ctx.grids, stats, basis=filters["basis"], in_area=mask)
    values = density_trace_values(frame, basis=filters["basis"], lang=lang)

    patch = Patch()
    for key, value in values.items():
        patch["data"][0][key] = value
    area = filters.get("community") or filters.get("street")
    bounds = app_ctx.area_bounds.get(area) if area else app_ctx.bounds
    view = map_view(bounds)
    patch["layout"]["map"]["center"] = view["center"]
    patch["layout"]["map"]["zoom"] = view["zoom"]
    # A new uirevision per area lets the map jump to a newly chosen area yet keep the user's pan/zoom otherwise.
    patch["layout"]["map"]["uirevision"] = f"area:{area or ''}"

    in_view = frame[frame["in_area"]]
    totals = metrics.kpis(in_view)
    days = max((end - start).total_seconds() / 86400.0, 1e-9)
    cards = _kpi_cards(kpi_items(totals, window_days=days, lang=lang))
    status: Any
    if totals["reported"]:
        status = t("status_summary", lang, reported=fmt_int(totals["reported"]), grids=fmt_int(len(in_view)),
                   cap=fmt_num(values["zmax"]), unit=t(f"colorbar_{filters['basis']}", lang).replace("<br>", " "))
    else:
        status = html.Span(t("empty_window", lang), className="empty-note")
    log.info("overview: grid_stats %.0f ms, total %.0f ms (%d grids with incidents)",
             (queried - started) * 1000, (time.perf_counter() - started) * 1000, len(stats))
    return patch, cards, status, t("as_of", lang, now=fmt_time(now))


# The browser tries one tile of the chosen basemap before the map uses it (see figures.BASEMAPS for why).
clientside_callback(
    """
    function(choice) {
        const probes = __PROBES__;
        if (!choice || !probes[choice]) { return "blank"; }
        return new Promise(function(resolve) {
            const img = new Image();
            const timer = setTimeout(function() { resolve("offline:" + choice); }, 5000);
            img.onload = function() { clearTimeout(timer); resolve(choice); };
            img.onerror = function() { clearTimeout(timer); resolve("offline:" + choice); };
            img.src = probes[choice];
        });
    }
    """.replace("__PROBES__", json.dumps({name: spec["probe"] for name, spec in BASEMAPS.items()})),
    Output(ids.OV_BASEMAP_OK, "data"), Input(ids.OV_BASEMAP, "value"), prevent_initial_call=True,
)


@callback(Output(ids.OV_MAP, "figure", allow_duplicate=True), Output(ids.OV_BASEMAP_NOTE, "children"),
          Input(ids.OV_BASEMAP_OK, "data"), State(ids.OV_LANG, "data"), prevent_initial_call=True)
def _switch_basemap(loaded: str | None, lang: str | None) -> tuple[Any, str]:
    if loaded and loaded.startswith("offline:"):
        # The map keeps its current (working) basemap; the note says why the choice had no effect.
        return no_update, t("basemap_offline", normalize_lang(lang))
    choice = loaded if loaded in BASEMAPS else "blank"
    patch = Patch()
    patch["layout"]["map"]["layers"][LAYER_BASEMAP] = basemap_layer(choice)
    # On street tiles the grid colours must let the streets show through.
    patch["data"][0]["marker"]["opacity"] = 0.85 if choice == "blank" else 0.55
    return patch, ""


# -- callbacks: grid detail -----------------------------------------------------------------------------------
@callback(Output(ids.OV_SELECTED, "data"), Input(ids.OV_MAP, "clickData"),
          Input({"type": ids.OV_DETAIL_CLOSE, "index": ALL}, "n_clicks"), prevent_initial_call=True)
def _select_grid(click: dict[str, Any] | None, closes: list[int | None]) -> Any:
    # The close button only exists while a grid is shown, hence the ALL wildcard (it may match nothing).
    if isinstance(ctx.triggered_id, dict):
        return None if any(closes) else no_update
    points = (click or {}).get("points") or []
    code = points[0].get("location") if points else None
    return str(code) if code in get_context().grid_features else None


@callback(Output(ids.OV_DETAIL, "children"), Output(ids.OV_MAP, "figure", allow_duplicate=True),
          Input(ids.OV_SELECTED, "data"), Input(ids.OV_FILTERS, "data"), State(ids.OV_LANG, "data"),
          prevent_initial_call=True)
def _show_detail(code: str | None, filters: dict[str, Any] | None, lang: str | None) -> tuple[Any, Any]:
    lang = normalize_lang(lang)
    app_ctx = get_context()
    patch: Any = Patch()
    if not code and ctx.triggered_id == ids.OV_FILTERS:
        # No grid shown, so nothing to redraw: every filter change would otherwise resend the placeholder.
        return no_update, no_update
    if not code or not filters or code not in app_ctx.grid_features:
        patch["layout"]["map"]["layers"][LAYER_SELECTED]["source"] = EMPTY_FEATURES
        return _detail_placeholder(lang), patch
    if ctx.triggered_id == ids.OV_FILTERS:
        # The highlight has not moved; only the numbers change.
        patch = no_update
    else:
        patch["layout"]["map"]["layers"][LAYER_SELECTED]["source"] = {
            "type": "FeatureCollection", "features": [app_ctx.grid_features[code]]}
    started = time.perf_counter()
    start, end, now = (datetime.fromisoformat(filters[k]) for k in ("start", "end", "now"))
    cats, klass = filters["categories"] or None, filters["klass"]
    counts = app_ctx.store.grid_category_counts(app_ctx.layout_id or 0, code, start=start, end=end,
                                                categories=cats, klass=klass)
    cases = app_ctx.store.grid_open_cases(app_ctx.layout_id or 0, code, categories=cats, klass=klass)
    # Reporters' names and phones: whole for a manager of this grid, masked for everyone else (gridgov.privacy).
    people = reporters(app_ctx.store, cases["incident_id"].tolist(), personal=sees_personal_data(code))
    cases = cases.merge(people, on="incident_id", how="left")
    queried = time.perf_counter()
    panel = _detail_panel(app_ctx, code, counts, cases, now=now, lang=lang)
    log.info("overview: detail of %s in %.0f ms (queries %.0f ms)", code, (time.perf_counter() - started) * 1000,
             (queried - started) * 1000)
    return panel, patch


def _detail_panel(app_ctx: AppContext, code: str, counts: pd.DataFrame, cases: pd.DataFrame, *, now: datetime,
                  lang: str) -> list[Any]:
    grid: Any = app_ctx.grids.set_index("grid_code").loc[code]
    facts = [
        (t("detail_community", lang), app_ctx.community_names.get(grid["community_code"], grid["community_code"])),
        (t("detail_households", lang), fmt_int(grid["households"])),
        (t("detail_residents", lang), fmt_int(grid["population"])),
        (t("detail_area", lang), f"{fmt_num(grid['area_m2'] / 1e6, digits=3)} km²"),
    ]
    rows = open_case_rows(cases, now=now, lang=lang)
    table: Any
    if rows:
        head = html.Tr([html.Th(t(k, lang)) for k in ("col_case", "col_due", "col_status")])
        body = [
            html.Tr(className="overdue" if r["overdue"] else "", children=[
                html.Td([html.Div(r["case"], className="mono case-id"), html.Div(r["category"]),
                         html.Div(r["reporter"], className="muted reporter") if r["reporter"] else None]),
                html.Td([html.Div(r["due"], className="nowrap"),
                         html.Div(t("just_overdue", lang), className="just-overdue") if r["just_overdue"] else None,
                         html.Div(r["left"], className="flag" if r["overdue"] else "muted")]),
                html.Td(r["status"]),
            ])
            for r in rows[:MAX_CASE_ROWS]
        ]
        table = html.Div(className="table-wrap", children=[
            html.Table(className="cases", children=[html.Thead(head), html.Tbody(body)]),
            html.P(t("detail_more", lang, shown=MAX_CASE_ROWS, total=fmt_int(len(rows))), className="muted")
            if len(rows) > MAX_CASE_ROWS else None,
        ])
    else:
        table = html.P(t("detail_no_open", lang), className="muted")
    return [
        html.Div(className="detail-head", children=[
            html.Div([html.Div(t("detail_title", lang), className="detail-kicker"),
                      html.H2(code, className="detail-code mono")]),
            html.Button(t("detail_close", lang), id={"type": ids.OV_DETAIL_CLOSE, "index": 0},
                        className="btn-close", n_clicks=0),
        ]),
        html.Dl(className="facts", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))]),
        # Open cases first: they are what a manager acts on; the category mix is background.
        html.H3(t("detail_open_cases", lang, n=fmt_int(len(rows)))),
        table,
        html.H3(t("detail_by_category", lang)),
        dcc.Graph(figure=category_bar(counts, lang=lang), config={"displayModeBar": False}, className="bar-graph"),
    ]
