"""Planner: try alternative grid layouts side by side before anyone's area changes, then adopt one (with undo).

Data flow: the scenario form starts :func:`gridgov.regrid.regrid` as a job in a thread of this server
(:mod:`dashboards.jobs`; the server is the database's one writer) and a ``dcc.Interval`` polls it. Two layouts, A
and B, are compared: their maps (zoom/pan kept in step by a clientside callback), a third map of what changes, and
:func:`gridgov.scenarios.compare` with the replay calibrated once per data state. Adopting B goes through
:func:`gridgov.scenarios.adopt` and reloads the app context, so every page draws the new current layout.
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import dash
import pandas as pd
from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from dashboards import access, ids
from dashboards.context import AppContext, get_context, reload_context
from dashboards.figures import GRAPH_CONFIG, fmt_int, fmt_num, fmt_time, local_name, map_view
from dashboards.i18n import normalize_lang, t
from dashboards.jobs import RUNNER, JobBusy, JobStatus
from dashboards.planner_figures import (
    calibration_text,
    change_legend,
    change_map,
    change_summary,
    code_status,
    default_pair,
    demand_map,
    demand_range,
    layout_rows,
    metric_rows,
    moved_areas,
    outlier_figure,
    outlier_text,
    parse_range,
    planner_layers,
    regrid_kwargs,
    suggestions,
    unit_moves,
)
from gridgov import regrid, replay, scenarios, staffing
from gridgov.auth import may_change_layouts
from gridgov.errors import GridgovError
from gridgov.planning import InfeasiblePlan

dash.register_page(__name__, path="/planner", name="Planner", title="Planner · gridgov", order=2,
                   i18n_key="nav_planner")

log = logging.getLogger("gridgov.dashboards")

POLL_MS = 400
DEFAULT_RANGE = "300-500"
OUTLIER_SAMPLES = 100
_MAP_W, _MAP_H = 350, 340
_LIST_REVIEW = 8  # grid codes named in the adopt result before "and N more"


# -- cached inputs --------------------------------------------------------------------------------------------
_LOCK = threading.Lock()
_CAL_LOCK = threading.Lock()
_CALIBRATIONS: OrderedDict[tuple[Any, ...], replay.Calibration | str] = OrderedDict()
_FIGURES: OrderedDict[tuple[Any, ...], scenarios.Figures] = OrderedDict()
_UNITS: dict[str, Any] = {}
#: The last adoption made on this server (``layout_id``, ``archived``: the name Undo restores), so that Undo stays
#: offered when the planner comes back from checking the other pages.
_LAST_ADOPTION: dict[str, Any] = {}
#: The last outlier test per (layout, context revision): shown again when the page is reopened.
_LAST_OUTLIER: dict[tuple[Any, int], tuple[int, scenarios.Outlier]] = {}
_CACHE_SIZE = 24


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    with _LOCK:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def _data_state(app_ctx: AppContext) -> tuple[Any, ...]:
    """What the calibration depends on: the current layout (and its codes), the day, and the incidents stored."""
    span = app_ctx.store.incident_time_range()
    assigned = app_ctx.store.assignments(app_ctx.layout_id) if app_ctx.layout_id is not None else pd.DataFrame()
    staffed = pd.util.hash_pandas_object(assigned, index=False).sum() if len(assigned) else 0
    return (app_ctx.layout_id, app_ctx.revision, app_ctx.now().date().isoformat(),
            str(span[1]) if span else None, int(staffed))


def calibration(app_ctx: AppContext) -> replay.Calibration | str:
    """The replay calibrated on the current layout, once per server and data state (about 1 s on the medium demo).

    Returns the error message instead when it cannot be calibrated (no incidents, no current layout).
    """
    key = _data_state(app_ctx)
    cached = _CALIBRATIONS.get(key)
    if cached is not None:
        return cached
    with _CAL_LOCK:  # two pages opening at once calibrate once
        cached = _CALIBRATIONS.get(key)
        if cached is not None:
            return cached
        started = time.perf_counter()
        out: replay.Calibration | str
        try:
            out = replay.calibrate_store(app_ctx.store, now=app_ctx.now(), calendar=app_ctx.settings.calendar)
        except (GridgovError, ValueError) as exc:
            out = str(exc)
        _remember(_CALIBRATIONS, key, out)
        log.info("planner: calibration in %.0f ms", (time.perf_counter() - started) * 1000)
        return out


def _figures(app_ctx: AppContext, layout_id: int, reference_id: int, cal: replay.Calibration | str,
             household_range: tuple[float, float] | None) -> scenarios.Figures:
    model = cal.model if isinstance(cal, replay.Calibration) else None
    hour = app_ctx.now().replace(minute=0, second=0, microsecond=0).isoformat()
    key = (layout_id, reference_id, _data_state(app_ctx), household_range, hour)
    cached = _FIGURES.get(key)
    if cached is None:
        params = staffing.StaffingParams.from_settings(app_ctx.settings)
        cached = scenarios.figures(app_ctx.store, layout_id, now=app_ctx.now(), household_range=household_range,
                                   model=model, params=params, reference_id=reference_id)
        _remember(_FIGURES, key, cached)
    return cached


def _units(app_ctx: AppContext) -> Any:
    # Units never change once layouts exist (rebuilding them is refused), so one read per server suffices.
    with _LOCK:
        if "units" not in _UNITS:
            _UNITS["units"] = app_ctx.store.units()
        return _UNITS["units"]


def _layouts(app_ctx: AppContext) -> pd.DataFrame:
    return app_ctx.store.layouts()


def _name_of(layouts: pd.DataFrame, layout_id: Any) -> str | None:
    row = layouts.loc[layouts["layout_id"] == layout_id, "name"] if layout_id is not None else []
    return str(row.iloc[0]) if len(row) else None


def _status_of(layouts: pd.DataFrame, layout_id: Any) -> str | None:
    row = layouts.loc[layouts["layout_id"] == layout_id, "status"] if layout_id is not None else []
    return str(row.iloc[0]) if len(row) else None


def _view() -> dict[str, Any]:
    return map_view(get_context().bounds, width_px=_MAP_W, height_px=_MAP_H, padding=0.9)


# -- layout ---------------------------------------------------------------------------------------------------
def layout(lang: str = "en", **_query: str) -> html.Div:
    """The Planner page (built from the app context's static data and the job runner; no database access).

    Parameters
    ----------
    lang
        ``en`` or ``zh`` from the ``?lang=`` query string.
    """
    lang = normalize_lang(lang)
    app_ctx = get_context()
    if app_ctx.layout_id is None or app_ctx.grids.empty:
        return html.Div(t("no_layout", lang), className="empty-page")
    # A planning job started before this page was (re)opened is followed again.
    running = RUNNER.running("plan")
    out_running = RUNNER.running("outlier")
    undo_of = (_LAST_ADOPTION.get("archived") if _LAST_ADOPTION.get("layout_id") == app_ctx.layout_id
               and _LAST_ADOPTION.get("revision") == app_ctx.revision else None)
    return html.Div(className="planner", children=[
        dcc.Store(id=ids.PL_LANG, data=lang),
        dcc.Store(id=ids.PL_REV, data={"n": 0, "a": None, "b": None}),
        dcc.Store(id=ids.PL_JOB, data={"id": running} if running else None),
        dcc.Store(id=ids.PL_PICK, data=None),
        dcc.Store(id=ids.PL_SYNC),
        dcc.Store(id=ids.PL_UNDO_OF, data=undo_of),
        dcc.Store(id=ids.PL_OUT_JOB, data={"id": out_running} if out_running else None),
        dcc.Interval(id=ids.PL_POLL, interval=POLL_MS, disabled=running is None),
        dcc.Interval(id=ids.PL_OUT_POLL, interval=POLL_MS * 2, disabled=out_running is None),
        dcc.Download(id=ids.PL_DOWNLOAD),
        _form(app_ctx, lang, running=running is not None),
        html.Section(className="pl-main", children=[
            html.Div(className="ov-head", children=[
                html.Div([html.H1(t("pl_title", lang)), html.P(t("pl_subtitle", lang), className="st-subtitle")]),
                html.Span(t("as_of", lang, now=fmt_time(app_ctx.now())), className="as-of"),
            ]),
            _compare_bar(lang, undo_of),
            html.Div(className="pl-maps", children=[
                _map_card(ids.PL_TITLE_A, ids.PL_MAP_A, t("pl_map_a", lang), note_id=ids.PL_NOTE_A),
                _map_card(ids.PL_TITLE_B, ids.PL_MAP_B, t("pl_map_b", lang), note_id=ids.PL_NOTE_B),
                _map_card(None, ids.PL_MAP_CHANGE, t("pl_map_change", lang), note_id=ids.PL_CHANGE_NOTE),
            ]),
            html.Div(className="pl-lower", children=[
                html.Div(className="card pl-metrics-card", children=[
                    html.Div(className="st-table-head", children=[
                        html.H2(t("pl_metrics_title", lang)),
                        html.Span(t("pl_metrics_hint", lang), className="muted"),
                    ]),
                    dcc.Loading(html.Div(id=ids.PL_METRICS), type="dot", color="#1d4ed8"),
                    html.Div(id=ids.PL_CALIBRATION, className="pl-calibration"),
                ]),
                html.Div(className="pl-right", children=[
                    _list_card(lang),
                    _outlier_card(lang, out_running, _LAST_OUTLIER.get((app_ctx.layout_id, app_ctx.revision))),
                ]),
            ]),
        ]),
    ])


def _field(label: str, control: Any, *, className: str = "field", **kwargs: Any) -> html.Div:
    return html.Div(className=className, children=[html.Label(label, className="field-label"), control], **kwargs)


def _form(app_ctx: AppContext, lang: str, *, running: bool) -> html.Aside:
    n_now = len(app_ctx.grids)
    return html.Aside(className="filters card pl-side", children=[
        html.H2(t("pl_form_title", lang)),
        _field(t("pl_size_by", lang), dcc.RadioItems(
            id=ids.PL_MODE, value="count", className="segmented", inline=True,
            options=[{"label": t("pl_mode_count", lang), "value": "count"},
                     {"label": t("pl_mode_range", lang), "value": "range"}])),
        _field(t("pl_n_grids", lang), dcc.Input(id=ids.PL_N_GRIDS, type="number", min=1, step=1, value=n_now,
                                                className="st-input"), id=ids.PL_N_GRIDS_BOX),
        _field(t("pl_households", lang), dcc.Input(id=ids.PL_HOUSEHOLDS, type="text", value=DEFAULT_RANGE,
                                                   placeholder="300-500", className="st-input"),
               id=ids.PL_HOUSEHOLDS_BOX, style={"display": "none"}),
        _field(t("pl_weight", lang), dcc.RadioItems(
            id=ids.PL_WEIGHT, value="demand", className="segmented", inline=True,
            options=[{"label": t(f"pl_weight_{k}", lang), "value": k} for k in ("demand", "households")])),
        _field(t("pl_tolerance", lang), dcc.Input(id=ids.PL_TOLERANCE, type="number", min=0.1, max=500, step="any",
                                                  value=10, className="st-input")),
        _field(t("pl_respect", lang), dcc.RadioItems(
            id=ids.PL_RESPECT, value="community", className="segmented", inline=True,
            options=[{"label": t(f"pl_respect_{k}", lang), "value": k} for k in ("community", "street", "none")])),
        dcc.Checklist(id=ids.PL_MINIMAL, value=[], className="stacked pl-check",
                      options=[{"label": t("pl_minimal", lang), "value": "on"}]),
        html.Div(className="pl-row2", children=[
            _field(t("pl_seed", lang), dcc.Input(id=ids.PL_SEED, type="number", min=0, step=1, value=0,
                                                 className="st-input")),
            _field(t("pl_name", lang), dcc.Input(id=ids.PL_NAME, type="text", value="", maxLength=60,
                                                 placeholder=t("pl_name_placeholder", lang), className="st-input")),
        ]),
        html.Div(className="pl-buttons", children=[
            html.Button(t("pl_run", lang), id=ids.PL_RUN, className="btn btn-primary", n_clicks=0, disabled=running),
            html.Button(t("pl_cancel", lang), id=ids.PL_CANCEL, className="btn", n_clicks=0, disabled=not running),
        ]),
        _progress(ids.PL_PROGRESS, ids.PL_PROGRESS_BAR, ids.PL_PROGRESS_TEXT, running,
                  t("pl_phase_start", lang) if running else ""),
        html.Div(id=ids.PL_FORM_MSG, className="pl-msg"),
    ])


def _progress(box: str, bar: str, text: str, running: bool, label: str) -> html.Div:
    return html.Div(id=box, className="pl-progress" + ("" if running else " idle"), children=[
        html.Div(className="pl-track", children=html.Div(id=bar, className="pl-bar", style={"width": "0%"})),
        html.Div(label, id=text, className="pl-progress-text"),
    ])


def _compare_bar(lang: str, undo_of: str | None) -> html.Div:
    return html.Div(className="card pl-compare", children=[
        html.Div(className="pl-compare-row", children=[
            _field(t("pl_a", lang), dcc.Dropdown(id=ids.PL_A, options=[], value=None, clearable=False),
                   className="field pl-pick-a"),
            html.Span(t("pl_vs", lang), className="pl-vs"),
            _field(t("pl_b", lang), dcc.Dropdown(id=ids.PL_B, options=[], value=None, clearable=False),
                   className="field pl-pick-b"),
            _field(t("pl_range", lang), dcc.Input(id=ids.PL_RANGE, type="text", value=DEFAULT_RANGE, debounce=True,
                                                  className="st-input"), className="field pl-range"),
            html.Button(t("pl_adopt", lang), id=ids.PL_ADOPT, className="btn btn-primary pl-adopt", n_clicks=0,
                        disabled=True),
        ]),
        html.Div(id=ids.PL_ADOPT_CONFIRM, className="pl-confirm hidden", children=[
            html.Div(id=ids.PL_ADOPT_TEXT, className="pl-confirm-text"),
            html.Div(className="pl-buttons", children=[
                html.Button(t("pl_adopt_yes", lang), id=ids.PL_ADOPT_YES, className="btn btn-primary", n_clicks=0),
                html.Button(t("pl_adopt_no", lang), id=ids.PL_ADOPT_NO, className="btn", n_clicks=0),
            ]),
        ]),
        html.Div(className="pl-result-row", children=[
            html.Div(id=ids.PL_ADOPT_RESULT, className="pl-adopt-result",
                     children=html.Div(t("pl_last_adopted", lang, name=undo_of), className="pl-note")
                     if undo_of else None),
            html.Button(t("pl_undo_named", lang, name=undo_of) if undo_of else t("pl_undo", lang), id=ids.PL_UNDO,
                        className="btn pl-undo" if undo_of else "btn pl-undo hidden", n_clicks=0),
        ]),
    ])


def _map_card(title_id: str | None, graph_id: str, title: str, *, note_id: str | None = None) -> html.Div:
    return html.Div(className="card map-card pl-map-card", children=[
        html.Div(title, id=title_id, className="pl-map-title") if title_id else html.Div(title,
                                                                                        className="pl-map-title"),
        dcc.Graph(id=graph_id, config=GRAPH_CONFIG, className="map-graph pl-map",
                  figure={"data": [], "layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False},
                                                 "margin": {"l": 0, "r": 0, "t": 0, "b": 0}}}),
        html.Div(id=note_id, className="map-status") if note_id else None,
    ])


def _list_card(lang: str) -> html.Div:
    return html.Div(className="card pl-list-card", children=[
        html.Div(className="st-table-head", children=[
            html.H2(t("pl_list_title", lang)), html.Span(t("pl_list_hint", lang), className="muted")]),
        html.Div(id=ids.PL_LIST, className="table-wrap"),
        html.Div(className="pl-manage", children=[
            html.Div(id=ids.PL_PICKED, className="pl-picked"),
            html.Div(className="pl-manage-row", children=[
                dcc.Input(id=ids.PL_RENAME_TO, type="text", value="", placeholder=t("pl_rename_placeholder", lang),
                          className="st-input", maxLength=60),
                html.Button(t("pl_rename", lang), id=ids.PL_RENAME, className="btn", n_clicks=0),
                dcc.ConfirmDialogProvider(id=ids.PL_DELETE, message=t("pl_delete_confirm", lang, name=""),
                                          children=html.Button(t("pl_delete", lang), className="btn btn-danger")),
            ]),
            html.Div(className="pl-manage-row", children=[
                dcc.RadioItems(id=ids.PL_EXPORT_FMT, value="geojson", className="segmented", inline=True,
                               options=[{"label": "GeoJSON", "value": "geojson"},
                                        {"label": "GeoPackage", "value": "gpkg"}]),
                html.Button(t("pl_export", lang), id=ids.PL_EXPORT, className="btn", n_clicks=0),
            ]),
            html.Div(id=ids.PL_LIST_MSG, className="pl-msg"),
        ]),
    ])


def _outlier_card(lang: str, running: str | None, last: tuple[int, scenarios.Outlier] | None) -> html.Div:
    return html.Div(className="card pl-outlier-card", children=[
        html.H2(t("pl_out_title", lang)),
        html.P(t("pl_out_intro", lang), className="muted pl-out-intro"),
        html.Div(className="pl-manage-row", children=[
            html.Label(t("pl_out_samples_label", lang), className="pl-inline-label"),
            dcc.Input(id=ids.PL_OUT_N, type="number", min=1, max=500, step=1,
                      value=last[0] if last else OUTLIER_SAMPLES,
                      className="st-input pl-out-n"),
            html.Button(t("pl_out_run", lang), id=ids.PL_OUT_RUN, className="btn", n_clicks=0,
                        disabled=running is not None),
            html.Button(t("pl_cancel", lang), id=ids.PL_OUT_CANCEL, className="btn", n_clicks=0,
                        disabled=running is None),
        ]),
        _progress(ids.PL_OUT_PROGRESS, ids.PL_OUT_PROGRESS_BAR, ids.PL_OUT_PROGRESS_TEXT, running is not None, ""),
        html.Div(id=ids.PL_OUT_RESULT, children=_outlier_result(last[1], lang) if last and not running else None),
    ])


# -- callbacks: the scenario form and its job -----------------------------------------------------------------
@callback(Output(ids.PL_N_GRIDS_BOX, "style"), Output(ids.PL_HOUSEHOLDS_BOX, "style"), Input(ids.PL_MODE, "value"))
def _show_mode(mode: str | None) -> tuple[dict[str, str], dict[str, str]]:
    hidden = {"display": "none"}
    return (hidden, {}) if mode == "range" else ({}, hidden)


@callback(Output(ids.PL_JOB, "data"), Output(ids.PL_POLL, "disabled"), Output(ids.PL_FORM_MSG, "children"),
          Output(ids.PL_TOLERANCE, "value"), Output(ids.PL_N_GRIDS, "value"), Output(ids.PL_MODE, "value"),
          Output(ids.PL_RUN, "disabled"), Output(ids.PL_CANCEL, "disabled"), Output(ids.PL_PROGRESS, "className"),
          Output(ids.PL_PROGRESS_TEXT, "children"), Output(ids.PL_PROGRESS_BAR, "style"),
          Input(ids.PL_RUN, "n_clicks"), Input({"type": ids.PL_SUGGEST, "index": ALL}, "n_clicks"),
          State(ids.PL_NAME, "value"), State(ids.PL_MODE, "value"), State(ids.PL_N_GRIDS, "value"),
          State(ids.PL_HOUSEHOLDS, "value"), State(ids.PL_WEIGHT, "value"), State(ids.PL_TOLERANCE, "value"),
          State(ids.PL_RESPECT, "value"), State(ids.PL_MINIMAL, "value"), State(ids.PL_SEED, "value"),
          State(ids.PL_LANG, "data"), prevent_initial_call=True)
def _start_plan(_run: int | None, picks: list[int | None], name: str | None, mode: str | None, n_grids: Any,
                households: str | None, weight: str | None, tolerance: Any, respect: str | None,
                minimal: list[str] | None, seed: Any, lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    tol_out: Any = no_update
    n_out: Any = no_update
    mode_out: Any = no_update
    if isinstance(ctx.triggered_id, dict):
        # Suggestion buttons are re-rendered with each message; a new button (n_clicks 0) is no click.
        if not any(picks):
            return (no_update,) * 11
        field, _, value = str(ctx.triggered_id["index"]).partition(":")
        if field == "tolerance":
            tolerance = tol_out = float(value)
        elif field == "n_grids":
            n_grids = n_out = int(value)
            mode = mode_out = "count"
    app_ctx = get_context()
    try:
        kwargs = regrid_kwargs(name=name, mode=mode, n_grids=n_grids, households=households, weight=weight,
                               tolerance_pct=tolerance, respect=respect, minimal_change=bool(minimal), seed=seed,
                               taken=_layouts(app_ctx)["name"].astype(str).tolist())
    except GridgovError as exc:
        return (no_update, True, _error_box(t("pl_form_invalid", lang), str(exc)), tol_out, n_out, mode_out,
                False, True, "pl-progress idle", "", {"width": "0%"})
    store = app_ctx.store

    def work(progress: Any, cancel: threading.Event) -> dict[str, Any]:
        return regrid.regrid(store, progress=progress, cancel=cancel, **kwargs)

    try:
        job_id = RUNNER.start(work, lane="plan")
    except JobBusy as busy:
        job_id = busy.job_id  # another tab's job: follow it rather than start a second one
    log.info("planner: regrid %s started as %s", kwargs, job_id)
    data = {"id": job_id, "tolerance": kwargs["tolerance"], "name": kwargs["name"]}
    return (data, False, "", tol_out, n_out, mode_out, True, False, "pl-progress", t("pl_phase_start", lang),
            {"width": "2%"})


@callback(Output(ids.PL_PROGRESS_TEXT, "children", allow_duplicate=True),
          Output(ids.PL_CANCEL, "disabled", allow_duplicate=True),
          Input(ids.PL_CANCEL, "n_clicks"), State(ids.PL_JOB, "data"), State(ids.PL_LANG, "data"),
          prevent_initial_call=True)
def _cancel_plan(_n: int | None, job: dict[str, Any] | None, lang: str | None) -> tuple[Any, bool]:
    if job and RUNNER.cancel(job.get("id")):
        return t("pl_cancelling", normalize_lang(lang)), True
    return no_update, True


def _phase(phase: str, lang: str) -> str:
    key = f"pl_phase_{phase}"
    try:
        return t(key, lang)
    except KeyError:
        return phase


@callback(Output(ids.PL_PROGRESS_BAR, "style", allow_duplicate=True),
          Output(ids.PL_PROGRESS_TEXT, "children", allow_duplicate=True),
          Output(ids.PL_PROGRESS, "className", allow_duplicate=True),
          Output(ids.PL_FORM_MSG, "children", allow_duplicate=True), Output(ids.PL_JOB, "data", allow_duplicate=True),
          Output(ids.PL_POLL, "disabled", allow_duplicate=True), Output(ids.PL_RUN, "disabled", allow_duplicate=True),
          Output(ids.PL_CANCEL, "disabled", allow_duplicate=True), Output(ids.PL_REV, "data", allow_duplicate=True),
          Input(ids.PL_POLL, "n_intervals"), State(ids.PL_JOB, "data"), State(ids.PL_REV, "data"),
          State(ids.PL_LANG, "data"), prevent_initial_call=True)
def _poll_plan(_tick: int | None, job: dict[str, Any] | None, rev: dict[str, Any] | None,
               lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    status = RUNNER.get((job or {}).get("id"))
    if status is None:
        return ({"width": "0%"}, "", "pl-progress idle", no_update, None, True, False, True, no_update)
    if not status.over:
        pct = max(status.fraction * 100, 2.0)
        text = t("pl_progress", lang, phase=_phase(status.phase, lang), pct=f"{status.fraction * 100:.0f}")
        return ({"width": f"{pct:.0f}%"}, text, "pl-progress", no_update, no_update, False, True, no_update,
                no_update)
    done = ({"width": "0%"}, "", "pl-progress idle")
    if status.state == "done":
        res = status.result
        msg = html.Div(className="pl-ok", children=t(
            "pl_saved", lang, name=res["name"], grids=fmt_int(res["n_grids"]),
            seconds=fmt_num(res.get("seconds"), digits=1)))
        return (*done, msg, None, True, False, True, _bump(rev, b=int(res["layout_id"])))
    if status.state == "cancelled":
        return (*done, html.Div(t("pl_cancelled", lang), className="pl-note"), None, True, False, True, no_update)
    return (*done, _failure(status, (job or {}).get("tolerance") or 0.1, lang), None, True, False, True, no_update)


def _bump(rev: dict[str, Any] | None, *, a: int | None = None, b: int | None = None) -> dict[str, Any]:
    """The next ``PL_REV``: layouts changed; ``a``/``b`` say which pair to show (None keeps the choice)."""
    return {"n": int((rev or {}).get("n") or 0) + 1, "a": a, "b": b}


def _error_box(title: str, text: str, extra: Any = None) -> html.Div:
    return html.Div(className="pl-error", children=[html.Strong(title), html.P(text), extra])


def _failure(status: JobStatus, asked_tolerance: float, lang: str) -> html.Div:
    err = status.error
    if isinstance(err, InfeasiblePlan):
        offers = suggestions(tolerance=err.tolerance, n_grids=err.n_grids, asked_tolerance=asked_tolerance,
                             lang=lang)
        buttons = html.Div(className="pl-suggest", children=[
            html.Button(o["label"], id={"type": ids.PL_SUGGEST, "index": o["key"]}, className="btn btn-suggest",
                        n_clicks=0) for o in offers
        ]) if offers else None
        # The engine's first sentence says why; its suggestions become buttons; the full text stays one click away.
        full = html.Details([html.Summary(t("pl_engine_message", lang)), html.P(str(err))], className="pl-details")
        return _error_box(t("pl_infeasible", lang), err.why, html.Div([buttons, full]))
    return _error_box(t("pl_failed", lang), f"{type(err).__name__}: {err}" if not isinstance(err, GridgovError)
                      else str(err))


# -- callbacks: layouts list and the pair compared ------------------------------------------------------------
def _option_label(row: dict[str, Any]) -> str:
    return f"{row['name']} · {row['status_label']} · {row['n_grids']}"


@callback(Output(ids.PL_A, "options"), Output(ids.PL_B, "options"), Output(ids.PL_A, "value"),
          Output(ids.PL_B, "value"), Output(ids.PL_LIST, "children"), Output(ids.PL_PICKED, "children"),
          Output(ids.PL_DELETE, "message"), Output(ids.PL_RENAME_TO, "value"), Output(ids.PL_PICK, "data"),
          Input(ids.PL_REV, "data"), Input(ids.PL_B, "value"), Input({"type": ids.PL_ROW, "index": ALL}, "n_clicks"),
          State(ids.PL_A, "value"), State(ids.PL_PICK, "data"), State(ids.PL_LANG, "data"))
def _refresh_layouts(rev: dict[str, Any] | None, b: int | None, rows_clicked: list[int | None], a: int | None,
                     pick: int | None, lang: str | None) -> tuple[Any, ...]:
    """The layouts list and the A/B choices: on load, after every change of layouts, and when a row is picked.

    Callbacks that change layouts say which pair to show next through ``PL_REV`` (``{"n", "a", "b"}``), so that the
    new values arrive together with options that hold them.
    """
    lang = normalize_lang(lang)
    triggered = {str(tr["prop_id"]).split(".")[0] for tr in ctx.triggered} if ctx.triggered else set()
    row_trigger = isinstance(ctx.triggered_id, dict)
    if row_trigger and not (any(rows_clicked) and ctx.triggered[0].get("value")):
        return (no_update,) * 9  # the list was re-rendered: new buttons with n_clicks 0 are no click
    layouts = _layouts(get_context())
    rows = layout_rows(layouts, lang)
    known = {r["layout_id"] for r in rows}
    options = [{"label": _option_label(r), "value": r["layout_id"]} for r in rows]
    a_out: Any = no_update
    b_out: Any = no_update
    pick_out: Any = no_update
    if row_trigger:
        pick_out = chosen = int(ctx.triggered_id["index"])
        if chosen != a:
            b_out = chosen
    elif ids.PL_B in triggered and ids.PL_REV not in triggered:
        pick_out = chosen = b
    else:
        da, db = default_pair(layouts)
        want = rev or {}
        a_new = want.get("a") if want.get("a") in known else (a if a in known else da)
        b_new = want.get("b") if want.get("b") in known else (b if b in known and b != a_new else db)
        if b_new == a_new:
            b_new = None
        a_out, b_out = a_new, b_new
        chosen = pick if pick in known and not want.get("b") else b_new
        pick_out = chosen
    table = html.Table(className="cases pl-list", children=[
        html.Thead(html.Tr([html.Th(t(k, lang)) for k in ("pl_col_name", "pl_col_status", "pl_col_grids",
                                                          "pl_col_params")])),
        html.Tbody([
            html.Tr(className="picked" if r["layout_id"] == chosen else "", children=[
                html.Td(html.Button(r["name"], id={"type": ids.PL_ROW, "index": r["layout_id"]}, n_clicks=0,
                                    className="pl-row-btn", title=t("pl_row_title", lang))),
                html.Td(html.Span(r["status_label"], className=f"pl-pill pl-{r['status']}")),
                html.Td(r["n_grids"], className="num"),
                html.Td([html.Div(r["params"]), html.Div(r["created"], className="muted")]),
            ]) for r in rows
        ]),
    ])
    name = _name_of(layouts, chosen)
    status = _status_of(layouts, chosen)
    picked = (t("pl_picked", lang, name=name, status=t(f"pl_status_{status}", lang)) if name
              else t("pl_picked_none", lang))
    message = (t("pl_delete_confirm", lang, name=name) if status == "scenario"
               else t("pl_delete_refused", lang, name=name or "—"))
    return options, options, a_out, b_out, table, picked, message, "", pick_out


@callback(Output(ids.PL_MAP_A, "figure"), Output(ids.PL_MAP_B, "figure"), Output(ids.PL_MAP_CHANGE, "figure"),
          Output(ids.PL_TITLE_A, "children"), Output(ids.PL_TITLE_B, "children"),
          Output(ids.PL_CHANGE_NOTE, "children"), Output(ids.PL_NOTE_A, "children"), Output(ids.PL_NOTE_B, "children"),
          Output(ids.PL_METRICS, "children"),
          Output(ids.PL_CALIBRATION, "children"), Output(ids.PL_ADOPT, "disabled"), Output(ids.PL_ADOPT, "children"),
          Input(ids.PL_A, "value"), Input(ids.PL_B, "value"), Input(ids.PL_RANGE, "value"),
          Input(ids.PL_REV, "data"), State(ids.PL_LANG, "data"), prevent_initial_call=True)
def _compare(a: int | None, b: int | None, range_text: str | None, _rev: Any, lang: str | None) -> tuple[Any, ...]:
    # Also on every change of layouts: after an adoption or a rename the pair may be the same ids with new statuses.
    lang = normalize_lang(lang)
    app_ctx = get_context()
    if a is None:
        return (no_update,) * 12
    started = time.perf_counter()
    layouts = _layouts(app_ctx)
    names = {int(i): str(n) for i, n in zip(layouts["layout_id"], layouts["name"], strict=True)}
    statuses = {int(i): str(s) for i, s in zip(layouts["layout_id"], layouts["status"], strict=True)}
    if a not in names:
        return (no_update,) * 12
    b = b if b in names and b != a else None
    cal = calibration(app_ctx)
    hh_range = parse_range(range_text)
    fa = _figures(app_ctx, a, a, cal, hh_range)
    grids_a = app_ctx.store.layout_grids(a)
    comm = {str(c): local_name(z, e, lang) for c, z, e in zip(app_ctx.communities["code"],
                                                              app_ctx.communities["name"],
                                                              app_ctx.communities["name_en"], strict=True)}
    dem_a = dict(zip(fa.per_grid["grid_code"].astype(str), fa.per_grid["demand_hours"], strict=True))
    view = _view()
    base_layers = planner_layers(communities_source=dash.get_relative_path(app_ctx.geo_path("communities")),
                                 streets_source=dash.get_relative_path(app_ctx.geo_path("streets")))

    def title(layout_id: int, letter: str) -> list[Any]:
        return [html.Span(letter, className="pl-letter"), html.Span(names[layout_id], className="pl-map-name"),
                html.Span(t(f"pl_status_{statuses[layout_id]}", lang),
                          className=f"pl-pill pl-{statuses[layout_id]}")]

    if b is None:
        zr = demand_range(list(dem_a.values()))
        fig_a = demand_map(grids_a, dem_a, zrange=zr, lang=lang, view=view, layers=base_layers,
                           community_names=comm)
        table = metric_rows(scenarios.compare(fa, fa), lang=lang, household_range=hh_range)
        empty = {"data": [], "layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False},
                                        "annotations": [{"text": t("pl_no_b", lang), "showarrow": False,
                                                         "font": {"color": "#6b7280"}}]}}
        return (fig_a, empty, empty, title(a, "A"), t("pl_map_b", lang), "", _map_note(fa, lang), "",
                _metrics_table(table, lang, only_a=True),
                _calibration_block(cal, lang), True, t("pl_adopt", lang))
    fb = _figures(app_ctx, b, a, cal, hh_range)
    grids_b = app_ctx.store.layout_grids(b)
    dem_b = dict(zip(fb.per_grid["grid_code"].astype(str), fb.per_grid["demand_hours"], strict=True))
    zr = demand_range(list(dem_a.values()), list(dem_b.values()))
    fig_a = demand_map(grids_a, dem_a, zrange=zr, lang=lang, view=view, layers=base_layers, community_names=comm,
                       colorbar=False)
    fig_b = demand_map(grids_b, dem_b, zrange=zr, lang=lang, view=view, layers=base_layers, community_names=comm)
    # What changes: units whose grid changes by the successor rule, and the grids whose code is not A's.
    units_a, units_b = app_ctx.store.layout_units(a), app_ctx.store.layout_units(b)
    succ = scenarios.successors(app_ctx.store, a, b)
    moves = unit_moves(units_a, units_b, succ)
    units = _units(app_ctx)
    status = code_status(grids_a["grid_code"].astype(str), grids_b["grid_code"].astype(str))
    areas = moved_areas(units, moves)
    old_outline = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": g.__geo_interface__} for g in grids_a.geometry.boundary]}
    change_layers = planner_layers(communities_source=dash.get_relative_path(app_ctx.geo_path("communities")),
                                   streets_source=dash.get_relative_path(app_ctx.geo_path("streets")),
                                   old_grids=old_outline)
    fig_c = change_map(grids_b, status, areas, lang=lang, view=view, layers=change_layers)
    households = dict(zip(units["unit_id"].astype(int), units["households"], strict=True))
    note = [html.Div(className="pl-legend", children=[
        html.Span(className="pl-key", children=[html.Span(className=f"pl-swatch {item['kind']}",
                                                          style={"--swatch": item["color"]}), item["label"]])
        for item in change_legend(lang)]), html.Div(change_summary(moves, status, households, lang))]
    table = metric_rows(scenarios.compare(fa, fb), lang=lang, household_range=hh_range)
    can_adopt = statuses[b] != "current"
    label = {"scenario": t("pl_adopt_named", lang, name=names[b]), "current": t("pl_b_is_current", lang)}.get(
        statuses[b], t("pl_restore_named", lang, name=names[b]))
    log.info("planner: compare %s vs %s in %.0f ms", a, b, (time.perf_counter() - started) * 1000)
    return (fig_a, fig_b, fig_c, title(a, "A"), title(b, "B"), note, _map_note(fa, lang), _map_note(fb, lang),
            _metrics_table(table, lang),
            _calibration_block(cal, lang), not can_adopt, label)


def _map_note(figs: scenarios.Figures, lang: str) -> str:
    v = figs.values
    return t("pl_map_note", lang, grids=fmt_int(v.get("n_grids")), ratio=fmt_num(v.get("max_over_mean"), digits=2),
             low=fmt_int(v.get("households_min")), high=fmt_int(v.get("households_max")))


def _metrics_table(rows: list[dict[str, Any]], lang: str, *, only_a: bool = False) -> html.Table:
    head = [t("pl_col_metric", lang), "A", "B", t("pl_col_change", lang)]
    return html.Table(className="cases pl-metrics", children=[
        html.Thead(html.Tr([html.Th(h, className="num" if i else "") for i, h in enumerate(head)])),
        html.Tbody([
            html.Tr(id=f"pl-metric-{r['key']}", className=r["tone"] if not only_a else "", children=[
                html.Td([r["label"], html.Span(f" {r['unit']}", className="muted") if r["unit"] else None]),
                html.Td(r["a"], className="num"),
                html.Td("—" if only_a else r["b"], className="num"),
                html.Td("—" if only_a else r["change"], className="num pl-change"),
            ]) for r in rows
        ]),
    ])


def _calibration_block(cal: replay.Calibration | str, lang: str) -> list[Any]:
    if isinstance(cal, str):
        return [html.P(t("pl_cal_none", lang, error=cal), className="muted")]
    text = calibration_text(error_points=cal.error_points, grid_error_points=cal.grid_error_points,
                            recorded=cal.recorded, forecast=cal.forecast, lang=lang)
    out: list[Any] = [html.Div(text["headline"], className=f"pl-cal-head {text['tone']}"),
                      html.Div(text["detail"], className="muted")]
    if cal.notes:
        out.append(html.Details([html.Summary(t("pl_cal_notes", lang)),
                                 html.Ul([html.Li(n) for n in cal.notes])], className="pl-cal-notes"))
    return out


# -- callbacks: adopt and undo --------------------------------------------------------------------------------
@callback(Output(ids.PL_ADOPT_CONFIRM, "className"), Output(ids.PL_ADOPT_TEXT, "children"),
          Input(ids.PL_ADOPT, "n_clicks"), Input(ids.PL_ADOPT_NO, "n_clicks"), State(ids.PL_B, "value"),
          State(ids.PL_LANG, "data"), prevent_initial_call=True)
def _ask_adopt(_adopt: int | None, _no: int | None, b: int | None, lang: str | None) -> tuple[str, Any]:
    lang = normalize_lang(lang)
    if ctx.triggered_id == ids.PL_ADOPT_NO or b is None:
        return "pl-confirm hidden", no_update
    layouts = _layouts(get_context())
    current = layouts.loc[layouts["status"] == "current", "name"]
    key = "pl_adopt_question" if _status_of(layouts, b) == "scenario" else "pl_restore_question"
    return "pl-confirm", t(key, lang, name=_name_of(layouts, b), current=current.iloc[0] if len(current) else "—")


@callback(Output(ids.PL_ADOPT_RESULT, "children"), Output(ids.PL_ADOPT_CONFIRM, "className", allow_duplicate=True),
          Output(ids.PL_UNDO, "className"), Output(ids.PL_UNDO, "children"), Output(ids.PL_UNDO_OF, "data"),
          Output(ids.PL_REV, "data", allow_duplicate=True),
          Input(ids.PL_ADOPT_YES, "n_clicks"), Input(ids.PL_UNDO, "n_clicks"), State(ids.PL_B, "value"),
          State(ids.PL_UNDO_OF, "data"), State(ids.PL_REV, "data"), State(ids.PL_LANG, "data"),
          prevent_initial_call=True)
def _adopt(_yes: int | None, _undo: int | None, b: int | None, undo_of: str | None, rev: dict[str, Any] | None,
           lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    app_ctx = get_context()
    layouts = _layouts(app_ctx)
    undoing = ctx.triggered_id == ids.PL_UNDO
    name = undo_of if undoing else _name_of(layouts, b)
    if not name:
        return (no_update,) * 6
    if not may_change_layouts(access.signed_in()):  # checked here, not only by hiding the button
        return (_error_box(t("pl_adopt_failed", lang), t("pl_not_allowed", lang)), "pl-confirm hidden", no_update,
                no_update, no_update, no_update)
    started = time.perf_counter()
    try:
        res = scenarios.adopt(app_ctx.store, name)
    except GridgovError as exc:
        return (_error_box(t("pl_adopt_failed", lang), str(exc)), "pl-confirm hidden", no_update, no_update,
                no_update, no_update)
    new_ctx = reload_context()
    _LAST_ADOPTION.clear()
    log.info("planner: adopted %s (layout %s) in %.0f ms; context revision %d", name, res.layout_id,
             (time.perf_counter() - started) * 1000, new_ctx.revision)
    layouts = _layouts(new_ctx)
    archived = _name_of(layouts, res.archived_id)
    review = res.review
    more = f" … (+{len(review) - _LIST_REVIEW})" if len(review) > _LIST_REVIEW else ""
    facts = [
        html.Li(t("pl_res_codes", lang, kept=fmt_int(res.kept_codes), new=fmt_int(res.new_codes))),
        html.Li(t("pl_res_review", lang, n=len(review), codes=", ".join(review[:_LIST_REVIEW]) + more)
                if review else t("pl_res_review_none", lang)),
        html.Li(t("pl_res_without", lang, n=len(res.without_area), ids=", ".join(res.without_area[:_LIST_REVIEW]))
                if res.without_area else t("pl_res_without_none", lang)),
        html.Li(t("pl_res_archived", lang, name=archived or "—")),
    ]
    head = t("pl_res_restored" if res.restored else "pl_res_adopted", lang, name=name)
    # Managers review the carried-over workers on the Staffing page; a planner's role does not open it.
    staffing_link = (dcc.Link(t("pl_res_staffing", lang), href="/staffing" + ("?lang=zh" if lang == "zh" else ""))
                     if access.may_open(access.signed_in(), "staffing") else None)
    result = html.Div(className="pl-ok pl-result", children=[html.Strong(head), html.Ul(facts), staffing_link])
    undo_label = t("pl_undo_named", lang, name=archived or "—")
    offer_undo = bool(archived) and not undoing
    if offer_undo:
        _LAST_ADOPTION.update(layout_id=res.layout_id, archived=archived, revision=new_ctx.revision)
    return (result, "pl-confirm hidden", "btn pl-undo" if offer_undo else "btn pl-undo hidden", undo_label,
            archived if offer_undo else None,
            # After adopting, the pair stays "before → after" (A the archived layout, B the new current one); after an
            # undo it is back to how it was before the adoption.
            _bump(rev, a=res.archived_id, b=res.layout_id) if offer_undo else _bump(rev, a=res.layout_id,
                                                                                    b=res.archived_id))


# -- callbacks: rename, delete, export ------------------------------------------------------------------------
@callback(Output(ids.PL_LIST_MSG, "children"), Output(ids.PL_REV, "data", allow_duplicate=True),
          Input(ids.PL_RENAME, "n_clicks"), Input(ids.PL_DELETE, "submit_n_clicks"),
          State(ids.PL_PICK, "data"), State(ids.PL_B, "value"), State(ids.PL_RENAME_TO, "value"),
          State(ids.PL_REV, "data"), State(ids.PL_LANG, "data"), prevent_initial_call=True)
def _manage(_rename: int | None, _delete: int | None, pick: int | None, b: int | None, new_name: str | None,
            rev: dict[str, Any] | None, lang: str | None) -> tuple[Any, Any]:
    lang = normalize_lang(lang)
    app_ctx = get_context()
    layouts = _layouts(app_ctx)
    target = pick if _name_of(layouts, pick) else b
    name = _name_of(layouts, target)
    if not name:
        return t("pl_picked_none", lang), no_update
    if not may_change_layouts(access.signed_in()):
        return html.Span(t("pl_not_allowed", lang), className="flag"), no_update
    try:
        if ctx.triggered_id == ids.PL_RENAME:
            if not (new_name or "").strip():
                return t("pl_rename_blank", lang), no_update
            app_ctx.store.rename_layout(name, new_name.strip())
            msg = t("pl_renamed", lang, old=name, new=new_name.strip())
        else:
            app_ctx.store.delete_layout(name)
            msg = t("pl_deleted", lang, name=name)
    except GridgovError as exc:
        return html.Span(str(exc), className="flag"), no_update
    return msg, _bump(rev)


@callback(Output(ids.PL_DOWNLOAD, "data"), Output(ids.PL_LIST_MSG, "children", allow_duplicate=True),
          Input(ids.PL_EXPORT, "n_clicks"), State(ids.PL_PICK, "data"), State(ids.PL_B, "value"),
          State(ids.PL_EXPORT_FMT, "value"), State(ids.PL_LANG, "data"), prevent_initial_call=True)
def _export(_n: int | None, pick: int | None, b: int | None, fmt: str | None, lang: str | None) -> tuple[Any, Any]:
    lang = normalize_lang(lang)
    app_ctx = get_context()
    layouts = _layouts(app_ctx)
    name = _name_of(layouts, pick) or _name_of(layouts, b)
    if not name:
        return no_update, t("pl_picked_none", lang)
    fmt = fmt if fmt in ("geojson", "gpkg") else "geojson"
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "layout"
    with tempfile.TemporaryDirectory(prefix="gridgov-export-") as tmp:
        path = Path(tmp) / f"{stem}.{fmt}"
        try:
            out = regrid.export_layout(app_ctx.store, name, path, fmt=fmt)
        except GridgovError as exc:
            return no_update, html.Span(str(exc), className="flag")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(path, path.name)
            if out.get("mapping"):
                zf.write(out["mapping"], Path(out["mapping"]).name)
    msg = t("pl_exported", lang, name=name, grids=fmt_int(out["n_grids"]),
            mapping=t("pl_exported_mapping", lang) if out.get("mapping") else "")
    return dcc.send_bytes(buf.getvalue(), f"{stem}.zip"), msg


# -- callbacks: is today's layout unusual? --------------------------------------------------------------------
@callback(Output(ids.PL_OUT_JOB, "data"), Output(ids.PL_OUT_POLL, "disabled"), Output(ids.PL_OUT_RUN, "disabled"),
          Output(ids.PL_OUT_CANCEL, "disabled"), Output(ids.PL_OUT_PROGRESS, "className"),
          Output(ids.PL_OUT_RESULT, "children"),
          Input(ids.PL_OUT_RUN, "n_clicks"), State(ids.PL_OUT_N, "value"), State(ids.PL_LANG, "data"),
          prevent_initial_call=True)
def _start_outlier(_n: int | None, samples: Any, lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    try:
        n = int(samples)
        if not 1 <= n <= 500:
            raise ValueError
    except (TypeError, ValueError):
        return (no_update, True, False, True, "pl-progress idle",
                _error_box(t("pl_form_invalid", lang), t("pl_out_bad_n", lang)))
    app_ctx = get_context()
    store, key = app_ctx.store, (app_ctx.layout_id, app_ctx.revision)

    def work(progress: Any, cancel: threading.Event) -> Any:
        result = scenarios.outlier(store, n=n, progress=progress, cancel=cancel)
        _LAST_OUTLIER.clear()
        _LAST_OUTLIER[key] = (n, result)
        return result

    try:
        job_id = RUNNER.start(work, lane="outlier")
    except JobBusy as busy:
        job_id = busy.job_id
    return {"id": job_id, "n": n}, False, True, False, "pl-progress", ""


@callback(Output(ids.PL_OUT_PROGRESS_TEXT, "children", allow_duplicate=True),
          Output(ids.PL_OUT_CANCEL, "disabled", allow_duplicate=True),
          Input(ids.PL_OUT_CANCEL, "n_clicks"), State(ids.PL_OUT_JOB, "data"), State(ids.PL_LANG, "data"),
          prevent_initial_call=True)
def _cancel_outlier(_n: int | None, job: dict[str, Any] | None, lang: str | None) -> tuple[Any, bool]:
    if job and RUNNER.cancel(job.get("id")):
        return t("pl_cancelling", normalize_lang(lang)), True
    return no_update, True


@callback(Output(ids.PL_OUT_PROGRESS_BAR, "style"), Output(ids.PL_OUT_PROGRESS_TEXT, "children"),
          Output(ids.PL_OUT_PROGRESS, "className", allow_duplicate=True),
          Output(ids.PL_OUT_RESULT, "children", allow_duplicate=True),
          Output(ids.PL_OUT_JOB, "data", allow_duplicate=True),
          Output(ids.PL_OUT_POLL, "disabled", allow_duplicate=True),
          Output(ids.PL_OUT_RUN, "disabled", allow_duplicate=True),
          Output(ids.PL_OUT_CANCEL, "disabled", allow_duplicate=True),
          Input(ids.PL_OUT_POLL, "n_intervals"), State(ids.PL_OUT_JOB, "data"), State(ids.PL_LANG, "data"),
          prevent_initial_call=True)
def _poll_outlier(_tick: int | None, job: dict[str, Any] | None, lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    status = RUNNER.get((job or {}).get("id"))
    idle = ({"width": "0%"}, "", "pl-progress idle")
    if status is None:
        return (*idle, no_update, None, True, False, True)
    if not status.over:
        n = int((job or {}).get("n") or OUTLIER_SAMPLES)
        done_n = round(status.fraction * n)
        text = t("pl_out_progress", lang, done=done_n, n=n)
        return ({"width": f"{max(status.fraction * 100, 2):.0f}%"}, text, "pl-progress", no_update, no_update,
                False, True, no_update)
    if status.state == "cancelled":
        return (*idle, html.Div(t("pl_out_cancelled", lang), className="pl-note"), None, True, False, True)
    if status.state == "failed":
        return (*idle, _error_box(t("pl_failed", lang), str(status.error)), None, True, False, True)
    return (*idle, _outlier_result(status.result, lang), None, True, False, True)


def _outlier_result(res: scenarios.Outlier, lang: str) -> html.Div:
    words = outlier_text(balance_percentile=res.balance_percentile,
                         compactness_percentile=res.compactness_percentile, samples=len(res.samples), lang=lang)
    fig = outlier_figure(res.samples, layout_max_over_mean=res.layout_max_over_mean,
                         layout_pp_median=res.layout_pp_median, lang=lang)
    return html.Div(className="pl-out-result", children=[
        html.Div(words["samples"], className="muted"),
        html.Ul([html.Li(words["balance"], id="pl-out-balance"), html.Li(words["compactness"])],
                className="pl-out-list"),
        dcc.Graph(figure=fig, config={"displayModeBar": False}, className="pl-out-graph"),
    ])


# -- maps in step ---------------------------------------------------------------------------------------------
# Panning or zooming one map moves the other two to the same view (in the browser: no server round trip).
clientside_callback(
    """
    function(r1, r2, r3) {
        const ids = ['__A__', '__B__', '__C__'];
        const trig = (dash_clientside.callback_context.triggered || [])[0];
        if (!trig) { return dash_clientside.no_update; }
        const src = trig.prop_id.split('.')[0];
        const gd = document.querySelector('#' + src + ' .js-plotly-plot');
        if (!gd || !gd._fullLayout || !gd._fullLayout.map) { return dash_clientside.no_update; }
        const c = gd._fullLayout.map.center, z = gd._fullLayout.map.zoom;
        for (const id of ids) {
            if (id === src) { continue; }
            const other = document.querySelector('#' + id + ' .js-plotly-plot');
            if (!other || !other._fullLayout || !other._fullLayout.map) { continue; }
            const oc = other._fullLayout.map.center, oz = other._fullLayout.map.zoom;
            if (Math.abs(oc.lon - c.lon) < 1e-7 && Math.abs(oc.lat - c.lat) < 1e-7 && Math.abs(oz - z) < 1e-4) {
                continue;
            }
            window.Plotly.relayout(other, {'map.center': {lon: c.lon, lat: c.lat}, 'map.zoom': z});
        }
        return Date.now();
    }
    """.replace("__A__", ids.PL_MAP_A).replace("__B__", ids.PL_MAP_B).replace("__C__", ids.PL_MAP_CHANGE),
    Output(ids.PL_SYNC, "data"), Input(ids.PL_MAP_A, "relayoutData"), Input(ids.PL_MAP_B, "relayoutData"),
    Input(ids.PL_MAP_CHANGE, "relayoutData"), prevent_initial_call=True,
)
