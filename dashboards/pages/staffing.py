"""Staffing & coverage: who is short of hours and where to put people, with reassignment in place.

Data flow: the saved assignments load into ``dcc.Store`` :data:`ids.ST_BASE`; every edit (pick a primary or backups,
Auto-fill, Discard) produces a new working copy in :data:`ids.ST_EDITS` without touching the database. Each new
working copy is run through :func:`gridgov.staffing.report` (pure; the demand frame, which reads incidents, is
computed once per layout and hour) and the map colours, table rows and KPI cards are patched. "Save" writes the
grids that differ from the saved state through ``Store.set_assignments``. The map the page starts with (every grid's
polygon, no colours yet) is built once per language and context (``AppContext.cached``); each load only sets its view.
A manager of one street opens on that street (``?street=`` chooses another, ``?street=`` left blank the district).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any, NamedTuple

import dash
import pandas as pd
from dash import (
    ALL,
    Input,
    Output,
    Patch,
    State,
    callback,
    clientside_callback,
    ctx,
    dash_table,
    dcc,
    html,
    no_update,
)

from dashboards import ids
from dashboards.access import opening_street
from dashboards.context import AppContext, get_context
from dashboards.figures import (
    EMPTY_FEATURES,
    GRAPH_CONFIG,
    LAYER_SELECTED,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_time,
    local_name,
    map_view,
    with_map_view,
)
from dashboards.i18n import normalize_lang, t
from dashboards.staffing_figures import (
    LAYER_WORKER,
    assignment_rows,
    assignments_frame,
    changed_grids,
    changed_positions,
    changed_rows,
    demand_supply_bar,
    gap_trace_values,
    grid_workers,
    kpi_items,
    kpi_placeholders,
    set_grid_workers,
    staffing_layers,
    staffing_map_dict,
    table_columns,
    table_rows,
    table_styles,
    uncovered_values,
    worker_options,
)
from gridgov import staffing, workers
from gridgov.errors import GridgovError

dash.register_page(__name__, path="/staffing", name="Staffing", title="Staffing · gridgov", order=1,
                   i18n_key="nav_staffing")

log = logging.getLogger("gridgov.dashboards")

TABLE_PAGE_SIZE = 15
#: Rows of the side lists (where to hire, overloaded workers) and quick picks before "and N more".
_SIDE_ROWS = 6
#: Unsaved grids named in the banner before it says "and N more".
_BANNER_GRIDS = 4


# -- staffing inputs, cached ----------------------------------------------------------------------------------
class _Basis(NamedTuple):
    """What every recomputation shares: the model, the demand of each grid and its case counts."""

    key: str
    params: staffing.StaffingParams
    now: datetime
    demand: pd.DataFrame
    incidents: pd.Series
    stats: pd.DataFrame


_LOCK = threading.Lock()
_BASES: OrderedDict[tuple[int, str], _Basis] = OrderedDict()
_REPORTS: OrderedDict[str, staffing.StaffingReport] = OrderedDict()
_ROWS: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
_MAPS: OrderedDict[str, dict[str, Any]] = OrderedDict()
_CACHE_SIZE = 32


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    with _LOCK:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def _basis(app_ctx: AppContext) -> _Basis:
    """Demand and case counts of the current layout, read once per hour of the dashboard clock."""
    now = app_ctx.now()
    layout_id = app_ctx.layout_id or 0
    hour = now.replace(minute=0, second=0, microsecond=0).isoformat()
    cached = _BASES.get((layout_id, hour))
    if cached is not None:
        return cached
    started = time.perf_counter()
    params = staffing.StaffingParams.from_settings(app_ctx.settings)
    demand, incidents = staffing.store_demand(app_ctx.store, layout_id, params=params, now=now)
    # The map and table follow the context's grid order; demand rows are put in that order once here.
    demand = demand.set_index("grid_code", drop=False).reindex(app_ctx.grids["grid_code"].to_numpy())
    demand.index.name = None
    start, end = staffing.window(now, params)
    stats = app_ctx.store.grid_stats(layout_id, start=start, end=end, now=now)
    basis = _Basis(key=f"{layout_id}:{hour}", params=params, now=now, demand=demand, incidents=incidents,
                   stats=stats)
    _remember(_BASES, (layout_id, hour), basis)
    log.info("staffing: demand of %d grids in %.0f ms", len(demand), (time.perf_counter() - started) * 1000)
    return basis


def _edits_key(rows: list[dict[str, Any]] | None) -> str:
    text = json.dumps(sorted((r["grid_code"], r["worker_id"], r["role"]) for r in rows or []))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class _Computed(NamedTuple):
    """A staffing report of one working copy, with what it was computed from."""

    key: str
    basis: _Basis
    report: staffing.StaffingReport
    roster: pd.DataFrame


def _report(app_ctx: AppContext, rows: list[dict[str, Any]] | None) -> _Computed:
    """The staffing report of a working set of assignments (cached by content, roster and demand basis)."""
    basis = _basis(app_ctx)
    roster = app_ctx.store.workers()
    roster_key = hashlib.sha1(pd.util.hash_pandas_object(roster, index=False).to_numpy().tobytes()).hexdigest()[:12]
    key = f"{basis.key}:{roster_key}:{_edits_key(rows)}"
    cached = _REPORTS.get(key)
    if cached is None:
        started = time.perf_counter()
        cached = staffing.report(basis.demand, assignments_frame(rows or []), roster, basis.params,
                                 incidents=basis.incidents)
        _remember(_REPORTS, key, cached)
        log.info("staffing: report in %.0f ms", (time.perf_counter() - started) * 1000)
    return _Computed(key, basis, cached, roster)


def _view(bounds: Any) -> dict[str, Any]:
    # The map shares its row with the editor and sits below the KPI cards: wider than tall.
    return map_view(bounds, width_px=640, height_px=470)


def _in_area(app_ctx: AppContext, street: str | None) -> pd.Series:
    grids = app_ctx.grids
    if street:
        return pd.Series((grids["street_code"] == street).to_numpy(), index=grids["grid_code"].to_numpy())
    return pd.Series(True, index=grids["grid_code"].to_numpy())


def _local_names(app_ctx: AppContext, lang: str) -> dict[str, str]:
    """Community names in the interface language only (the bilingual labels are too wide for table cells)."""
    comms = app_ctx.communities
    return {str(c): local_name(z, e, lang) for c, z, e in zip(comms["code"], comms["name"], comms["name_en"],
                                                                strict=True)}


def _worker_names(roster: pd.DataFrame) -> dict[str, str]:
    return {str(w): str(n) for w, n in zip(roster["worker_id"], roster["name"], strict=True)}


# -- layout ---------------------------------------------------------------------------------------------------
def layout(lang: str = "en", street: str | None = None, **_query: str) -> html.Div:
    """The Staffing & coverage page (built from the app context's static data; no database access).

    Parameters
    ----------
    lang
        ``en`` or ``zh`` from the ``?lang=`` query string.
    street
        A street code from ``?street=``: the page opens on that street; blank or unknown, on the whole district.
        Without it a manager of one street opens on their own street.
    """
    lang = normalize_lang(lang)
    app_ctx = get_context()
    if app_ctx.layout_id is None or app_ctx.grids.empty:
        return html.Div(t("no_layout", lang), className="empty-page")
    street = opening_street(app_ctx.streets["code"], street)
    bounds = app_ctx.area_bounds.get(street) if street else app_ctx.bounds
    shared = app_ctx.cached(("staffing-map", lang, dash.get_relative_path("/")), lambda: _initial_map(app_ctx, lang))
    figure = with_map_view(shared, _view(bounds), uirevision=f"area:{street or ''}")
    return html.Div(className="staffing", children=[
        dcc.Store(id=ids.ST_LANG, data=lang),
        dcc.Store(id=ids.ST_BASE),
        dcc.Store(id=ids.ST_EDITS),
        dcc.Store(id=ids.ST_SELECTED, data=None),
        dcc.Store(id=ids.ST_ROSTER_REV, data=0),
        dcc.Store(id=ids.ST_SHOWN),
        dcc.Store(id=ids.ST_SCROLLED),
        _side_panel(app_ctx, lang, street),
        html.Section(className="st-main", children=[
            html.Div(className="ov-head", children=[
                html.Div([html.H1(t("st_title", lang)), html.P(t("st_subtitle", lang), className="st-subtitle")]),
                html.Span(id=ids.ST_AS_OF, className="as-of"),
            ]),
            _action_bar(lang),
            html.Div(id=ids.ST_KPIS, className="kpis", children=_kpi_cards(kpi_placeholders(lang))),
            html.Div(className="st-body", children=[
                html.Div(className="card map-card", children=[
                    dcc.Graph(id=ids.ST_MAP, figure=figure, config=GRAPH_CONFIG, className="map-graph"),
                    html.Div(id=ids.ST_MAP_STATUS, className="map-status"),
                ]),
                _editor(lang),
            ]),
            html.Div(className="card st-table-card", children=[
                html.Div(className="st-table-head", children=[
                    html.H2(t("st_table_title", lang)),
                    html.Span(t("st_table_hint", lang), className="muted"),
                ]),
                dash_table.DataTable(
                    id=ids.ST_TABLE, columns=table_columns(lang), data=[], sort_action="native",
                    sort_by=[{"column_id": "gap", "direction": "desc"}], page_action="native",
                    page_size=TABLE_PAGE_SIZE, cell_selectable=True, style_as_list_view=True,
                    style_data_conditional=table_styles(lang),
                    style_table={"overflowX": "auto"},
                    style_header={"backgroundColor": "#f6f8fb", "fontWeight": 600, "color": "#4b5563",
                                  "borderBottom": "1px solid #e3e7ed", "whiteSpace": "normal"},
                    style_cell={"fontFamily": "var(--font)", "fontSize": "13px", "padding": "6px 8px",
                                "textAlign": "left", "cursor": "pointer", "whiteSpace": "nowrap"},
                    style_cell_conditional=[
                        {"if": {"column_type": "numeric"}, "textAlign": "right"},
                        {"if": {"column_id": "edited"}, "width": "28px", "minWidth": "28px", "maxWidth": "28px"},
                        {"if": {"column_id": "grid"}, "fontFamily": "DejaVu Sans Mono, Menlo, monospace",
                         "fontSize": "12px"},
                        {"if": {"column_id": "backups"}, "whiteSpace": "normal", "minWidth": "120px"},
                    ],
                ),
            ]),
        ]),
    ])


def _initial_map(app_ctx: AppContext, lang: str) -> dict[str, Any]:
    # Colours arrive with the first callback and the view is set per request (``?street=`` or the manager's own
    # street), so the figure depends on the language alone and is built once per context: the polygons of 1,800
    # grids are 1.4 MB of JSON.
    grids_url = dash.get_relative_path(app_ctx.geo_path("grids"))
    layers = staffing_layers(grids_source=grids_url,
                             communities_source=dash.get_relative_path(app_ctx.geo_path("communities")),
                             streets_source=dash.get_relative_path(app_ctx.geo_path("streets")))
    return staffing_map_dict(app_ctx.grid_geojson, app_ctx.grids["grid_code"].astype(str).tolist(),
                             uncovered_geojson=grids_url, lang=lang, view=_view(app_ctx.bounds), layers=layers)


def _field(label: str, control: Any, **kwargs: Any) -> html.Div:
    return html.Div(className="field", children=[html.Label(label, className="field-label"), control], **kwargs)


def _side_panel(app_ctx: AppContext, lang: str, street: str | None) -> html.Aside:
    communities = [{"label": str(r.label), "value": str(r.code)} for r in app_ctx.communities.itertuples()]
    return html.Aside(className="filters card st-side", children=[
        _field(t("st_area", lang), dcc.Dropdown(
            id=ids.ST_STREET, value=street, placeholder=t("st_all_streets", lang), clearable=True,
            options=[{"label": r.label, "value": r.code} for r in app_ctx.streets.itertuples()])),
        _field(t("st_coverage_view", lang), dcc.Dropdown(
            id=ids.ST_WORKER, value=None, options=[], placeholder=t("st_coverage_placeholder", lang),
            clearable=True)),
        html.Div(id=ids.ST_WORKER_NOTE, className="caption st-worker-note"),
        html.Div(id=ids.ST_NEED, className="st-need"),
        html.Details(className="st-add", children=[
            html.Summary(t("st_add_title", lang)),
            _field(t("st_add_id", lang), dcc.Input(id=ids.ST_ADD_ID, type="text", debounce=False,
                                                   className="st-input", placeholder="W0100")),
            _field(t("st_add_name", lang), dcc.Input(id=ids.ST_ADD_NAME, type="text", className="st-input")),
            _field(t("st_add_hours", lang), dcc.Input(id=ids.ST_ADD_HOURS, type="number", min=1, max=84, step=1,
                                                      value=40, className="st-input")),
            _field(t("st_add_community", lang), dcc.Dropdown(id=ids.ST_ADD_COMMUNITY, options=communities,
                                                             value=None, clearable=True)),
            html.Button(t("st_add_button", lang), id=ids.ST_ADD_BUTTON, className="btn", n_clicks=0),
            html.Div(id=ids.ST_ADD_MESSAGE, className="caption st-add-message"),
        ]),
    ])


def _action_bar(lang: str) -> html.Div:
    return html.Div(className="st-actions card", children=[
        html.Div(id=ids.ST_UNSAVED, className="st-unsaved clean", children=t("st_clean", lang)),
        html.Div(className="st-buttons", children=[
            html.Button(t("st_save", lang), id=ids.ST_SAVE, className="btn btn-primary", n_clicks=0, disabled=True),
            html.Button(t("st_auto", lang), id=ids.ST_AUTO, className="btn", n_clicks=0,
                        title=t("st_auto_title", lang)),
            html.Button(t("st_discard", lang), id=ids.ST_DISCARD, className="btn", n_clicks=0, disabled=True),
        ]),
        html.Div(id=ids.ST_MESSAGE, className="st-message"),
    ])


def _editor(lang: str) -> html.Aside:
    return html.Aside(id=ids.ST_DETAIL, className="card detail st-editor", children=[
        html.Div(className="detail-head", children=[
            html.Div([html.Div(t("st_editor_title", lang), className="detail-kicker"),
                      html.H2(id=ids.ST_EDITOR, className="detail-code mono")]),
            html.Button(t("detail_close", lang), id=ids.ST_CLOSE, className="btn-close", n_clicks=0),
        ]),
        html.Div(className="st-editor-empty", children=[
            html.P(t("st_editor_empty", lang), className="muted"),
            html.Div(id=ids.ST_PICKS),
        ]),
        html.Div(className="st-editor-controls", children=[
            _field(t("st_primary", lang), dcc.Dropdown(
                id=ids.ST_PRIMARY, options=[], value=None, disabled=True, clearable=True,
                placeholder=t("st_primary_placeholder", lang))),
            _field(t("st_backups", lang), dcc.Dropdown(
                id=ids.ST_BACKUPS, options=[], value=[], multi=True, disabled=True,
                placeholder=t("st_backups_placeholder", lang))),
            html.P(t("st_options_hint", lang), className="caption"),
        ]),
        html.Div(id=ids.ST_DETAIL_BODY),
    ])


def _kpi_cards(items: list[dict[str, str]]) -> list[html.Div]:
    return [
        html.Div(className=f"kpi {item['tone']}".strip(), id=f"st-kpi-{item['key']}", children=[
            html.Div(item["label"], className="kpi-label"),
            html.Div(item["value"], className="kpi-value"),
            html.Div(item["note"], className="kpi-note"),
        ])
        for item in items
    ]


# -- callbacks: loading, editing, saving ----------------------------------------------------------------------
@callback(Output(ids.ST_BASE, "data"), Input(ids.ST_LANG, "data"))
def _load(_lang: str | None) -> list[dict[str, Any]]:
    app_ctx = get_context()
    return assignment_rows(app_ctx.store.assignments(app_ctx.layout_id or 0))


def _primary_options(options: list[dict[str, str]], primary: str | None, roster: pd.DataFrame,
                     lang: str) -> list[dict[str, Any]]:
    """Active workers; a current primary who is no longer active stays listed (disabled) so the value shows."""
    if primary and primary not in {o["value"] for o in options}:
        names = _worker_names(roster)
        label = t("st_worker_inactive", lang, id=primary, name=names.get(primary, ""))
        return [{"label": label, "value": primary, "disabled": True}, *options]
    return options


@callback(
    Output(ids.ST_EDITS, "data"),
    Output(ids.ST_PRIMARY, "options"), Output(ids.ST_PRIMARY, "value"), Output(ids.ST_PRIMARY, "disabled"),
    Output(ids.ST_BACKUPS, "options"), Output(ids.ST_BACKUPS, "value"), Output(ids.ST_BACKUPS, "disabled"),
    Output(ids.ST_WORKER, "options"), Output(ids.ST_MESSAGE, "children"),
    Input(ids.ST_BASE, "data"), Input(ids.ST_SELECTED, "data"), Input(ids.ST_PRIMARY, "value"),
    Input(ids.ST_BACKUPS, "value"), Input(ids.ST_AUTO, "n_clicks"), Input(ids.ST_DISCARD, "n_clicks"),
    Input(ids.ST_ROSTER_REV, "data"),
    State(ids.ST_EDITS, "data"), State(ids.ST_STREET, "value"), State(ids.ST_LANG, "data"),
    prevent_initial_call=True,
)
def _edit(base: list[dict[str, Any]] | None, selected: str | None, primary: str | None, backups: list[str] | None,
          _auto: int, _discard: int, _rev: int, edits: list[dict[str, Any]] | None, street: str | None,
          lang: str | None) -> tuple[Any, ...]:
    # One callback owns the working copy and the editor dropdowns: they set each other (a new grid shows its
    # workers; a new pick changes the working copy), which Dash only allows within one callback.
    lang = normalize_lang(lang)
    app_ctx = get_context()
    trigger = ctx.triggered_id
    base = base or []
    rows = edits if edits is not None else base
    message: Any = no_update
    if trigger == ids.ST_BASE and (edits is None or not changed_grids(base, edits)):
        rows = base
    elif trigger == ids.ST_DISCARD:
        rows = base
        message = t("st_discarded", lang)
    elif trigger == ids.ST_AUTO:
        rows, message = _auto_fill(app_ctx, rows, street, lang)
    elif trigger in (ids.ST_PRIMARY, ids.ST_BACKUPS) and selected:
        rows = set_grid_workers(rows, selected, primary, backups or [])
    _, _, rep, roster = _report(app_ctx, rows)
    options = worker_options(rep.workers, lang=lang)
    # A reloaded base always goes out: the page recomputes its "unsaved" marks against it.
    new_edits: Any = rows if (trigger == ids.ST_BASE or edits is None or rows != edits) else no_update
    if selected:
        cur_primary, cur_backups = grid_workers(rows, selected)
        p_opts = _primary_options(options, cur_primary, roster, lang)
        b_opts = [o for o in _primary_options(options, None, roster, lang) if o["value"] != cur_primary]
        b_opts += [{"label": w, "value": w, "disabled": True} for w in cur_backups
                   if w not in {o["value"] for o in b_opts}]
        return (new_edits, p_opts, cur_primary, False, b_opts, cur_backups, False, options, message)
    return (new_edits, options, None, True, options, [], True, options, message)


def _auto_fill(app_ctx: AppContext, rows: list[dict[str, Any]], street: str | None,
               lang: str) -> tuple[list[dict[str, Any]], Any]:
    """Run :func:`gridgov.workers.auto_assign` on the working copy; the message lists what it says.

    With a street chosen only that street's grids are redone (a street manager's Auto-fill leaves other streets
    alone); workers' grids elsewhere still count against their hours.
    """
    _, basis, rep, roster = _report(app_ctx, rows)
    table = rep.table
    if street:
        table = table[_in_area(app_ctx, street).reindex(table["grid_code"].to_numpy()).to_numpy(dtype=bool)]
    adjacency = app_ctx.store.grid_adjacency(app_ctx.layout_id or 0)
    try:
        result = workers.auto_assign(table, roster, assignments_frame(rows), adjacency, basis.params, seed=0,
                                     community_names=app_ctx.community_names)
    except GridgovError as exc:
        return rows, html.Span(t("st_auto_error", lang, error=str(exc)), className="flag")
    new_rows = assignment_rows(result.assignments)
    # The library's notes, in the page's language: the first and the last (the summary) stay in view, the
    # per-community ones fold away.
    comm_names = _local_names(app_ctx, lang)
    said = [_auto_message(note, lang, comm_names) for note in result.notes]
    head = [t("st_auto_done", lang, n=len(changed_grids(rows, new_rows))), *said[:1]]
    if len(said) > 1:
        head.append(said[-1])
    out: list[Any] = [html.Ul([html.Li(line) for line in head], className="st-message-list")]
    if len(said) > 2:
        out.append(html.Details([html.Summary(t("st_auto_details", lang, n=len(said) - 2)),
                                 html.Ul([html.Li(line) for line in said[1:-1]], className="st-message-list")]))
    return new_rows, out


def _auto_message(note: workers.AssignMessage, lang: str, community_names: dict[str, str]) -> str:
    """One of auto-assign's notes as a sentence in ``lang`` (a community by its name in that language)."""
    values = dict(note.values)
    if "community_code" in values:
        values["community"] = community_names.get(str(values["community_code"]), values.get("community", ""))
    return t(f"st_auto_msg_{note.code}", lang, **values)


@callback(Output(ids.ST_BASE, "data", allow_duplicate=True), Output(ids.ST_MESSAGE, "children", allow_duplicate=True),
          Input(ids.ST_SAVE, "n_clicks"), State(ids.ST_EDITS, "data"), State(ids.ST_BASE, "data"),
          State(ids.ST_LANG, "data"), prevent_initial_call=True)
def _save(_n: int, edits: list[dict[str, Any]] | None, base: list[dict[str, Any]] | None,
          lang: str | None) -> tuple[Any, Any]:
    lang = normalize_lang(lang)
    app_ctx = get_context()
    grids = changed_grids(base or [], edits or [])
    if not grids:
        return no_update, no_update
    wanted = set(grids)
    rows = assignments_frame([r for r in edits or [] if r["grid_code"] in wanted])
    try:
        app_ctx.store.set_assignments(app_ctx.layout_id or 0, rows, grids=grids)
    except GridgovError as exc:
        return no_update, html.Span(t("st_save_error", lang, error=str(exc)), className="flag")
    log.info("staffing: saved %d grid(s)", len(grids))
    saved = assignment_rows(app_ctx.store.assignments(app_ctx.layout_id or 0))
    return saved, t("st_saved", lang, n=len(grids))


@callback(Output(ids.ST_ROSTER_REV, "data"), Output(ids.ST_ADD_MESSAGE, "children"),
          Output(ids.ST_ADD_ID, "value"), Output(ids.ST_ADD_NAME, "value"),
          Input(ids.ST_ADD_BUTTON, "n_clicks"), State(ids.ST_ADD_ID, "value"), State(ids.ST_ADD_NAME, "value"),
          State(ids.ST_ADD_HOURS, "value"), State(ids.ST_ADD_COMMUNITY, "value"), State(ids.ST_ROSTER_REV, "data"),
          State(ids.ST_LANG, "data"), prevent_initial_call=True)
def _add_worker(_n: int, worker_id: str | None, name: str | None, hours: float | None, community: str | None,
                rev: int | None, lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    worker_id = (worker_id or "").strip()
    name = (name or "").strip()
    if not worker_id or not name or hours is None:
        return no_update, html.Span(t("st_add_missing", lang), className="flag"), no_update, no_update
    try:
        workers.add_worker(get_context().store, worker_id=worker_id, name=name, hours_per_week=float(hours),
                           base_community=community or None)
    except GridgovError as exc:
        return no_update, html.Span(t("st_add_error", lang, error=str(exc)), className="flag"), no_update, no_update
    return (rev or 0) + 1, t("st_add_done", lang, id=worker_id, name=name), "", ""


# -- callbacks: map, table, KPIs ------------------------------------------------------------------------------
@callback(
    Output(ids.ST_MAP, "figure"), Output(ids.ST_TABLE, "data"), Output(ids.ST_SHOWN, "data"),
    Output(ids.ST_KPIS, "children"), Output(ids.ST_MAP_STATUS, "children"), Output(ids.ST_AS_OF, "children"),
    Output(ids.ST_UNSAVED, "children"), Output(ids.ST_UNSAVED, "className"), Output(ids.ST_SAVE, "disabled"),
    Output(ids.ST_DISCARD, "disabled"), Output(ids.ST_NEED, "children"), Output(ids.ST_PICKS, "children"),
    Input(ids.ST_EDITS, "data"), Input(ids.ST_STREET, "value"), Input(ids.ST_ROSTER_REV, "data"),
    State(ids.ST_BASE, "data"), State(ids.ST_SHOWN, "data"), State(ids.ST_LANG, "data"),
    prevent_initial_call=True,
)
def _update(edits: list[dict[str, Any]] | None, street: str | None, _rev: int | None,
            base: list[dict[str, Any]] | None, shown: str | None, lang: str | None) -> tuple[Any, ...]:
    if edits is None:
        return (no_update,) * 12
    lang = normalize_lang(lang)
    app_ctx = get_context()
    started = time.perf_counter()
    report_key, basis, rep, roster = _report(app_ctx, edits)
    names = _worker_names(roster)
    comm_names = app_ctx.community_names
    mask = _in_area(app_ctx, street)
    table = rep.table
    area = table[mask.reindex(table["grid_code"].to_numpy()).to_numpy(dtype=bool)]

    # The browser holds the map values and table rows of ``shown``; only what differs from them is sent.
    key = f"{report_key}:{_edits_key(base)}:{street or ''}:{lang}"
    values = gap_trace_values(table, in_area=mask.to_numpy(), lang=lang, community_names=comm_names,
                              worker_names=names)
    patch = Patch()
    _patch_trace(patch, _MAPS.get(shown or ""), values)
    _remember(_MAPS, key, values)
    for prop, value in uncovered_values(table, in_area=mask.to_numpy()).items():
        patch["data"][1][prop] = value
    if ctx.triggered_id == ids.ST_STREET:
        view = _view(app_ctx.area_bounds.get(street) if street else app_ctx.bounds)
        patch["layout"]["map"]["center"] = view["center"]
        patch["layout"]["map"]["zoom"] = view["zoom"]
        patch["layout"]["map"]["uirevision"] = f"area:{street or ''}"

    edited = changed_grids(base or [], edits)
    rows = table_rows(area, basis.stats, lang=lang, community_names=_local_names(app_ctx, lang), worker_names=names,
                      edited=edited)
    diff = changed_rows(_ROWS.get(shown or ""), rows)
    data: Any = rows
    if diff is not None:
        data = Patch()
        for i, row in diff.items():
            data[i] = row
    _remember(_ROWS, key, rows)

    # Coverage, totals and the hiring need of the area in view, by the library's own functions.
    area_report = staffing.report(basis.demand.loc[area.index], assignments_frame(edits), roster, basis.params,
                                  incidents=basis.incidents) if street else rep
    # Loads over all of a worker's grids, for the workers holding a grid in the area.
    loads = rep.workers
    if street:
        own = set(area["grid_code"])
        loads = loads[[bool(own & set(str(g).split(","))) for g in loads["grids"]]]
    cards = _kpi_cards(kpi_items(area_report.coverage, area_report.totals, need_workers=area_report.need.workers,
                                 need_hours=area_report.need.hours, overloaded=int(loads["overloaded"].sum()),
                                 active=len(loads), band=basis.params.band, lang=lang))
    counts = area["status"].value_counts()
    status = t("st_map_status", lang, grids=fmt_int(len(area)), short=fmt_int(counts.get("under", 0)),
               uncovered=fmt_int(counts.get("uncovered", 0)), ok=fmt_int(counts.get("ok", 0)),
               over=fmt_int(counts.get("over", 0)))
    if edited:
        listed = ", ".join(edited[:_BANNER_GRIDS]) + (" …" if len(edited) > _BANNER_GRIDS else "")
        banner: Any = t("st_unsaved", lang, n=len(edited), grids=listed)
    else:
        banner = t("st_clean", lang)
    log.info("staffing: update in %.0f ms (%d rows, %s)", (time.perf_counter() - started) * 1000, len(rows),
             "full table" if diff is None else f"{len(diff)} rows patched")
    return (patch, data, key, cards, status, t("as_of", lang, now=fmt_time(basis.now)), banner,
            "st-unsaved dirty" if edited else "st-unsaved clean", not edited, not edited,
            _need_panel(area_report, app_ctx, loads, basis.params.standard_week_hours, lang), _quick_picks(area, lang))


def _patch_trace(patch: Any, old: dict[str, Any] | None, values: dict[str, Any]) -> None:
    """Patch the gap trace: only the grids whose colour or hover text changed, all of them after a bigger change."""
    z_pos = changed_positions(old["z"], values["z"]) if old else None
    cd_pos = changed_positions(old["customdata"], values["customdata"]) if old else None
    if z_pos is None or cd_pos is None or len(set(z_pos) | set(cd_pos)) > len(values["z"]) // 2:
        for prop, value in values.items():
            patch["data"][0][prop] = value
        return
    for i in sorted(set(z_pos) | set(cd_pos)):
        patch["data"][0]["z"][i] = values["z"][i]
        patch["data"][0]["customdata"][i] = values["customdata"][i]


def _need_panel(rep: staffing.StaffingReport, app_ctx: AppContext, loads: pd.DataFrame, std: float,
                lang: str) -> list[Any]:
    comm_names = _local_names(app_ctx, lang)
    by = rep.need.by_area
    need: Any
    if by.empty:
        need = html.P(t("st_need_none", lang), className="muted")
    else:
        need = html.Ul(className="st-list", children=[
            html.Li([html.Div([html.Div(comm_names.get(r.community_code, r.community_code), className="st-need-name"),
                               html.Div(t("st_need_line", lang, grids=int(r.grids_short),
                                          hours=fmt_num(float(r.hours), digits=0)), className="muted")]),
                     # Whole hires are shared out by largest remainder: a small need may get none of them.
                     html.Span(t("st_need_hire", lang, n=int(r.workers)), className="st-badge") if int(r.workers)
                     else html.Span(t("st_need_fte", lang, fte=fmt_num(float(r.hours) / std, digits=1)),
                                    className="st-badge soft")])
            for r in by.head(_SIDE_ROWS).itertuples()
        ])
    out: list[Any] = [html.H2(t("st_need_title", lang)), need]
    if len(by) > _SIDE_ROWS:
        out.append(html.P(t("st_more", lang, n=len(by) - _SIDE_ROWS), className="st-more"))
    over = loads[loads["overloaded"]].sort_values("load_ratio", ascending=False)
    if len(over):
        out += [html.H2(t("st_overloaded_title", lang)), html.Ul(className="st-list", children=[
            html.Li([html.Span(f"{r.name} ({r.worker_id})"), html.Span(fmt_pct(float(r.load_ratio)), className="flag")])
            for r in over.head(_SIDE_ROWS).itertuples()
        ])]
        if len(over) > _SIDE_ROWS:
            out.append(html.P(t("st_more", lang, n=len(over) - _SIDE_ROWS), className="st-more"))
    return out


def _quick_picks(area: pd.DataFrame, lang: str) -> list[Any]:
    """Buttons for the grids most in need (uncovered first, then the largest gaps), shown while none is picked."""
    worst = area.assign(rank=(area["status"] != "uncovered").astype(int)).sort_values(
        ["rank", "gap_hours"], ascending=[True, False])
    worst = worst[(worst["status"] == "uncovered") | (worst["status"] == "under")].head(_SIDE_ROWS)
    if worst.empty:
        return [html.P(t("st_picks_none", lang), className="muted")]
    return [
        html.H3(t("st_picks_title", lang)),
        html.Div(className="st-picks", children=[
            html.Button(id={"type": ids.ST_PICK, "index": str(r.grid_code)}, n_clicks=0,
                        className=f"st-pick st-pick-{r.status}", children=[
                            html.Span(str(r.grid_code), className="mono"),
                            html.Span(t("st_status_" + str(r.status), lang)),
                            html.Strong(t("st_per_week", lang, n="+" + fmt_num(float(r.gap_hours)))),
                        ])
            for r in worst.itertuples()
        ]),
    ]


# -- callbacks: selection, grid detail, worker view ---------------------------------------------------------
@callback(Output(ids.ST_SELECTED, "data"), Output(ids.ST_TABLE, "active_cell"),
          Input(ids.ST_MAP, "clickData"), Input(ids.ST_TABLE, "active_cell"),
          Input({"type": ids.ST_PICK, "index": ALL}, "n_clicks"), Input(ids.ST_CLOSE, "n_clicks"),
          prevent_initial_call=True)
def _select(click: dict[str, Any] | None, cell: dict[str, Any] | None, picks: list[int | None],
            _close: int | None) -> tuple[Any, Any]:
    trigger = ctx.triggered_id
    known = get_context().grid_features
    if trigger == ids.ST_CLOSE:
        return None, no_update
    if isinstance(trigger, dict):
        # The quick picks are re-rendered on every edit; a new button arrives with n_clicks 0 and is no click.
        return (trigger["index"] if any(picks) and trigger["index"] in known else no_update), no_update
    if trigger == ids.ST_TABLE:
        code = (cell or {}).get("row_id")
        # The active cell is cleared at once: after a re-sort it would mark another row; the grid stays selected.
        return (str(code) if code in known else no_update), None
    points = (click or {}).get("points") or []
    code = points[0].get("location") if points else None
    return (str(code) if code in known else no_update), no_update


@callback(Output(ids.ST_MAP, "figure", allow_duplicate=True), Output(ids.ST_TABLE, "style_data_conditional"),
          Output(ids.ST_EDITOR, "children"), Output(ids.ST_DETAIL, "className"),
          Input(ids.ST_SELECTED, "data"), State(ids.ST_LANG, "data"), prevent_initial_call=True)
def _highlight(code: str | None, lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    app_ctx = get_context()
    patch = Patch()
    styles = table_styles(lang)
    if not code or code not in app_ctx.grid_features:
        patch["layout"]["map"]["layers"][LAYER_SELECTED]["source"] = EMPTY_FEATURES
        return patch, styles, "", "card detail st-editor"
    patch["layout"]["map"]["layers"][LAYER_SELECTED]["source"] = {
        "type": "FeatureCollection", "features": [app_ctx.grid_features[code]]}
    selected = f'{{grid}} = "{code}"'
    styles.append({"if": {"filter_query": selected}, "fontWeight": 600})
    styles.append({"if": {"filter_query": selected, "column_id": "edited"}, "boxShadow": "inset 4px 0 0 #1d4ed8"})
    return patch, styles, code, "card detail st-editor has-grid"


# A grid picked in the table (below the fold) or on a phone (editor below the map) brings the editor into view.
clientside_callback(
    """
    function(code) {
        const el = document.getElementById('__DETAIL__');
        if (code && el) { el.scrollIntoView({block: 'nearest', behavior: 'smooth'}); }
        return code || null;
    }
    """.replace("__DETAIL__", ids.ST_DETAIL),
    Output(ids.ST_SCROLLED, "data"), Input(ids.ST_SELECTED, "data"), prevent_initial_call=True,
)


# A hover label still open over an edited grid would show its old numbers: close it once new values arrive.
clientside_callback(
    """
    function(shown) {
        const gd = document.querySelector('#__MAP__ .js-plotly-plot');
        if (gd && window.Plotly && window.Plotly.Fx) { window.Plotly.Fx.unhover(gd); }
        return window.dash_clientside.no_update;
    }
    """.replace("__MAP__", ids.ST_MAP),
    Output(ids.ST_SCROLLED, "data", allow_duplicate=True), Input(ids.ST_SHOWN, "data"), prevent_initial_call=True,
)


@callback(Output(ids.ST_DETAIL_BODY, "children"), Input(ids.ST_SELECTED, "data"), Input(ids.ST_EDITS, "data"),
          State(ids.ST_LANG, "data"), prevent_initial_call=True)
def _detail(code: str | None, edits: list[dict[str, Any]] | None, lang: str | None) -> Any:
    lang = normalize_lang(lang)
    app_ctx = get_context()
    if not code or edits is None or code not in app_ctx.grid_features:
        return []
    _, basis, rep, roster = _report(app_ctx, edits)
    row = rep.table.loc[code]
    stats = basis.stats.set_index("grid_code")
    opened = int(stats.at[code, "open"]) if code in stats.index else 0
    overdue = int(stats.at[code, "overdue"]) if code in stats.index else 0
    gap = float(row["gap_hours"])
    facts = [
        (t("st_detail_community", lang), app_ctx.community_names.get(row["community_code"], row["community_code"])),
        (t("st_detail_households", lang), fmt_int(row["households"])),
        (t("st_detail_open", lang), f"{fmt_int(opened)} / {fmt_int(overdue)}"),
        (t("st_detail_demand", lang), t("st_per_week", lang, n=fmt_num(float(row["demand_hours"])))),
        (t("st_detail_supply", lang), t("st_per_week", lang, n=fmt_num(float(row["supply_hours"])))),
    ]
    status = str(row["status"])
    loads = rep.workers.set_index("worker_id")
    names = _worker_names(roster)
    workers_list: Any
    people = [(w, r) for w, r in ((row["primary_id"], "primary"),) if isinstance(w, str) and w]
    people += [(w, "backup") for w in str(row["backup_ids"] or "").split(",") if w]
    if people:
        items = []
        for wid, role in people:
            load = loads.loc[wid] if wid in loads.index else None
            line = t("st_worker_line", lang, role=t(f"st_role_{role}", lang),
                     hours=fmt_num(float(load["hours_per_week"]), digits=0) if load is not None else "—",
                     grids=int(load["n_grids"]) if load is not None else 0,
                     load=fmt_pct(float(load["load_ratio"])) if load is not None else "—")
            over = load is not None and bool(load["overloaded"])
            items.append(html.Li([html.Div(f"{names.get(wid, wid)} ({wid})", className="st-person"),
                                  html.Div(line, className="flag" if over else "muted")]))
        workers_list = html.Ul(items, className="st-people")
    else:
        workers_list = html.P(t("st_detail_no_workers", lang), className="flag")
    return [
        html.Div(className=f"st-gap st-gap-{status}", children=[
            html.Span(t("st_detail_gap", lang)),
            html.Strong(t("st_per_week", lang, n=("+" if gap > 0.05 else "") + fmt_num(gap))),
            html.Span(t(f"st_status_{status}", lang), className="st-pill"),
        ]),
        dcc.Graph(figure=demand_supply_bar(row.to_dict(), lang=lang), config={"displayModeBar": False},
                  className="bar-graph"),
        html.Dl(className="facts", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))]),
        html.H3(t("st_detail_workers", lang)),
        workers_list,
    ]


@callback(Output(ids.ST_MAP, "figure", allow_duplicate=True), Output(ids.ST_WORKER_NOTE, "children"),
          Input(ids.ST_WORKER, "value"), Input(ids.ST_EDITS, "data"), State(ids.ST_LANG, "data"),
          prevent_initial_call=True)
def _worker_view(worker_id: str | None, edits: list[dict[str, Any]] | None, lang: str | None) -> tuple[Any, Any]:
    lang = normalize_lang(lang)
    app_ctx = get_context()
    patch = Patch()
    if not worker_id or edits is None:
        if ctx.triggered_id == ids.ST_EDITS:
            return no_update, no_update
        patch["layout"]["map"]["layers"][LAYER_WORKER]["source"] = EMPTY_FEATURES
        return patch, ""
    _, _, rep, roster = _report(app_ctx, edits)
    codes = sorted({r["grid_code"] for r in edits if r["worker_id"] == worker_id})
    patch["layout"]["map"]["layers"][LAYER_WORKER]["source"] = {
        "type": "FeatureCollection", "features": [app_ctx.grid_features[c] for c in codes
                                                  if c in app_ctx.grid_features]}
    loads = rep.workers.set_index("worker_id")
    name = _worker_names(roster).get(worker_id, worker_id)
    if not codes or worker_id not in loads.index:
        return patch, t("st_worker_none", lang, name=name, id=worker_id)
    load = loads.loc[worker_id]
    note = t("st_worker_summary", lang, name=name, id=worker_id, hours=fmt_num(float(load["hours_per_week"]), digits=0),
             grids=len(codes), load=fmt_pct(float(load["load_ratio"])))
    return patch, html.Span(note, className="flag" if bool(load["overloaded"]) else "")
