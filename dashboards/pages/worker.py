"""My grids: a grid worker's phone-first page of their grids, open cases by deadline, case detail and actions.

Every callback here starts from the signed-in worker (:func:`dashboards.access.signed_in`) and checks each case id it
receives against the worker's grids (:func:`dashboards.cases.check_case`; actions through
:func:`gridgov.lifecycle.apply_action`), so a crafted request for another grid's case gets a 403 and writes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
import pandas as pd
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from dashboards import ids, live
from dashboards.access import signed_in
from dashboards.cases import check_case, my_grids, my_open_cases, reporter_text, reporters
from dashboards.context import AppContext, get_context
from dashboards.fieldmap import ROUTE as EXPORT_ROUTE
from dashboards.figures import fmt_int, local_name
from dashboards.i18n import normalize_lang, t
from dashboards.worker_figures import URGENCY_COLORS, URGENCY_KEYS, case_label, case_rows, fmt_when, worker_map
from gridgov import lifecycle
from gridgov.auth import User, require
from gridgov.errors import InputError, StoreError

dash.register_page(__name__, path="/my-grids", name="My grids", title="My grids · gridgov", order=3,
                   i18n_key="nav_worker")

log = logging.getLogger("gridgov.dashboards")

#: New cases arrive and deadlines pass while the page is open.
REFRESH_MS = 120_000
_MAP_CONFIG: Any = {"displayModeBar": False, "scrollZoom": True}
_SHEET_OPEN, _SHEET_CLOSED = "wk-sheet open", "wk-sheet"


# -- layout --------------------------------------------------------------------------------------------------------
def layout(lang: str = "en", **_query: str) -> html.Div:
    """The page skeleton (no database access); the callbacks fill it for the signed-in worker."""
    lang = normalize_lang(lang)
    suffix = "?lang=zh" if lang == "zh" else ""
    return html.Div(className="worker", children=[
        dcc.Store(id=ids.WK_LANG, data=lang),
        dcc.Store(id=ids.WK_REV, data=0),
        dcc.Store(id=ids.WK_SELECTED, data=None),
        dcc.Interval(id=ids.WK_REFRESH, interval=REFRESH_MS),
        dcc.Interval(id=ids.WK_LIVE, interval=live.POLL_MS),
        dcc.Store(id=ids.WK_LIVE_REV, data=live.revision()),
        html.Div(className="wk-head", children=[
            html.H1(t("wk_title", lang)),
            html.Div(id=ids.WK_TITLE, className="wk-sub"),
        ]),
        html.Div(id=ids.WK_SUMMARY, className="wk-summary"),
        html.Div(className="card wk-map-card", children=[
            dcc.Graph(id=ids.WK_MAP, config=_MAP_CONFIG, className="wk-map",
                      figure={"data": [], "layout": {"map": {"style": "white-bg"}, "margin": {"l": 0, "r": 0,
                                                                                              "t": 0, "b": 0}}}),
            html.Div(id=ids.WK_LEGEND, className="wk-legend", children=[
                html.Span(className="wk-legend-item", children=[
                    html.Span(className="wk-dot", style={"background": color}), t(URGENCY_KEYS[level], lang)])
                for level, color in URGENCY_COLORS.items()
            ]),
        ]),
        html.A(t("wk_export", lang), id=ids.WK_EXPORT, href=EXPORT_ROUTE + suffix, download="",
               className="btn-secondary wk-export"),
        html.P(t("wk_export_note", lang), className="caption wk-export-note"),
        html.Div(id=ids.WK_MESSAGE, className="wk-message", role="status"),
        html.H2(t("wk_list_title", lang), className="wk-list-title"),
        html.P(t("wk_tap_hint", lang), className="muted wk-hint"),
        html.Div(id=ids.WK_LIST, className="wk-list"),
        html.Div(id=ids.WK_DETAIL, className=_SHEET_CLOSED, children=[
            html.Div(className="wk-sheet-card", children=[
                html.Button(t("detail_close", lang), id=ids.WK_CLOSE, n_clicks=0, className="btn-close wk-close"),
                html.Div(id=ids.WK_DETAIL_BODY),
                html.Div(id=ids.WK_SHEET_MESSAGE, className="wk-message wk-sheet-message", role="status"),
                html.Div(id=ids.WK_ACTIONS, className="wk-actions", children=[
                    html.Button(t("wk_accept", lang), id=ids.WK_ACCEPT, n_clicks=0, className="btn-secondary"),
                    html.Label(t("wk_note_label", lang), htmlFor=ids.WK_NOTE, className="field-label"),
                    dcc.Textarea(id=ids.WK_NOTE, value="", placeholder=t("wk_note_placeholder", lang),
                                 maxLength=2000, className="wk-note"),
                    html.Button(t("wk_handle", lang), id=ids.WK_HANDLE, n_clicks=0, className="btn-primary"),
                ]),
            ]),
        ]),
    ])


def _worker() -> User:
    return require(signed_in(), "worker")


# -- list, map and summary -----------------------------------------------------------------------------------------
@callback(Output(ids.WK_TITLE, "children"), Output(ids.WK_SUMMARY, "children"), Output(ids.WK_MAP, "figure"),
          Output(ids.WK_LIST, "children"),
          Input(ids.WK_REV, "data"), Input(ids.WK_REFRESH, "n_intervals"), Input(ids.WK_LIVE_REV, "data"),
          State(ids.WK_LANG, "data"))
def _refresh(_rev: int | None, _tick: int | None, _live: int | None, lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    user = _worker()
    app_ctx = get_context()
    now = app_ctx.now()
    grids = my_grids(app_ctx.store, user, app_ctx.layout_id)
    if not grids:
        return ([t("as_of", lang, now=fmt_when(now, lang))], [], no_update,
                html.P(t("wk_no_grids", lang), className="empty-note"))
    cases = my_open_cases(app_ctx.store, user, app_ctx.layout_id)
    rows = case_rows(cases, now=now, calendar=app_ctx.settings.calendar, lang=lang)
    features = [app_ctx.grid_features[c] for c in grids if c in app_ctx.grid_features]
    figure = worker_map(features, rows, cases, lang=lang)
    counts = {level: sum(r["urgency"] == level for r in rows) for level in URGENCY_COLORS}
    chips = [html.Span(t("wk_open", lang, n=fmt_int(len(rows))), className="wk-chip")]
    if counts["overdue"]:
        chips.append(html.Span(t("wk_overdue", lang, n=fmt_int(counts["overdue"])), className="wk-chip overdue"))
    if counts["soon"]:
        chips.append(html.Span(t("wk_soon", lang, n=fmt_int(counts["soon"])), className="wk-chip soon"))
    title = [html.Div(t("wk_grids", lang, codes=", ".join(grids)), className="mono"),
             html.Div(t("as_of", lang, now=fmt_when(now, lang)), className="nowrap")]
    return title, chips, figure, _case_list(rows, lang)


def _case_list(rows: list[dict[str, Any]], lang: str) -> Any:
    if not rows:
        return html.P(t("wk_list_empty", lang), className="empty-note")
    return [
        html.Button(id={"type": ids.WK_CASE, "index": r["incident_id"]}, n_clicks=0,
                    className=f"wk-case {r['urgency']}" + (" just-overdue" if r["just_overdue"] else ""), children=[
                        html.Span(className="wk-case-bar", style={"background": URGENCY_COLORS[r["urgency"]]}),
                        html.Span(className="wk-case-main", children=[
                            html.Span(r["category"], className="wk-case-cat"),
                            html.Span(r["address"], className="wk-case-addr"),
                            html.Span([html.Span(r["case"], className="mono"), f" · {r['status']}"],
                                      className="wk-case-meta muted"),
                        ]),
                        html.Span(className="wk-case-due", children=[
                            *([html.Span(t("just_overdue", lang), className="wk-just-overdue")]
                              if r["just_overdue"] else []),
                            html.Span(r["left"], className=f"wk-left {r['urgency']}"),
                            html.Span(r["due"], className="muted"),
                        ]),
                    ])
        for r in rows
    ]


# -- selection and detail ------------------------------------------------------------------------------------------
@callback(Output(ids.WK_LIVE_REV, "data"), Input(ids.WK_LIVE, "n_intervals"), State(ids.WK_LIVE_REV, "data"),
          prevent_initial_call=True)
def _poll_live(_n: int | None, seen: int | None) -> Any:
    now = live.revision()
    return now if now != seen else no_update


@callback(Output(ids.WK_SELECTED, "data"),
          Input({"type": ids.WK_CASE, "index": ALL}, "n_clicks"), Input(ids.WK_MAP, "clickData"),
          Input(ids.WK_CLOSE, "n_clicks"), prevent_initial_call=True)
def _select(_clicks: list[int | None], click: dict[str, Any] | None, _close: int | None) -> Any:
    user = _worker()
    app_ctx = get_context()
    trigger = ctx.triggered_id
    if trigger == ids.WK_CLOSE:
        return None
    if trigger == ids.WK_MAP:
        points = (click or {}).get("points") or []
        case = points[0].get("customdata") if points else None
        if case is None:
            return no_update
    elif isinstance(trigger, dict):
        # A list that re-renders announces its new buttons with no clicks: not a tap.
        if not any(v.get("value") for v in ctx.triggered):
            return no_update
        case = trigger.get("index")
    else:
        return no_update
    return check_case(app_ctx.store, user, case, app_ctx.layout_id)


@callback(Output(ids.WK_DETAIL, "className"), Output(ids.WK_DETAIL_BODY, "children"),
          Output(ids.WK_ACCEPT, "style"), Output(ids.WK_ACTIONS, "style"), Output(ids.WK_SHEET_MESSAGE, "children"),
          Input(ids.WK_SELECTED, "data"), Input(ids.WK_REV, "data"), State(ids.WK_LANG, "data"))
def _detail(selected: Any, _rev: int | None, lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    # A newly opened case starts without the previous one's feedback; after an action the feedback stays.
    feedback = no_update if ctx.triggered_id == ids.WK_REV else None
    if selected is None:
        return _SHEET_CLOSED, [], no_update, no_update, feedback
    user = _worker()
    app_ctx = get_context()
    case = check_case(app_ctx.store, user, selected, app_ctx.layout_id)
    cases = my_open_cases(app_ctx.store, user, app_ctx.layout_id)
    found = cases[cases["incident_id"] == case]
    if found.empty:  # handled or closed meanwhile: nothing left to do here
        return _SHEET_CLOSED, [], no_update, no_update, feedback
    body = _detail_body(app_ctx, user, found, lang)
    status = str(found["status"].iloc[0])
    accept_style = {"display": "none"} if status == "dispatched" else {}
    return _SHEET_OPEN, body, accept_style, {}, feedback


def _detail_body(app_ctx: AppContext, user: User, found: pd.DataFrame, lang: str) -> list[Any]:
    now = app_ctx.now()
    row = case_rows(found, now=now, calendar=app_ctx.settings.calendar, lang=lang)[0]
    rec: Any = found.iloc[0]
    other = local_name(rec["name_zh"], rec["name_en"], "en" if lang == "zh" else "zh")
    category = row["category"] if other == row["category"] else f"{row['category']} · {other}"
    people = reporters(app_ctx.store, [row["incident_id"]], personal=user.sees_personal_data)
    reporter = reporter_text(*people[["reporter_name", "reporter_phone"]].iloc[0]) if len(people) else ""
    description = rec["description"] if isinstance(rec["description"], str) and rec["description"] else None
    facts = [
        (t("wk_address", lang), row["address"] or "—"),
        (t("wk_description", lang), description or t("wk_no_description", lang)),
        (t("wk_reported", lang), fmt_when(rec["reported_at"], lang, now=now)),
        (t("wk_due_at", lang), html.Span([row["due"], " ", html.Span(row["left"],
                                                                     className=f"wk-left {row['urgency']}")])),
        (t("wk_status", lang), row["status"]),
        (t("reporter", lang), reporter or "—"),
        (t("wk_grid", lang), html.Span(row["grid"], className="mono")),
    ]
    events = app_ctx.store.incident_events(row["incident_id"])
    history = [
        html.Li([t("wk_event_by", lang, when=fmt_when(e.event_at, lang, now=now), who=e.actor), " · ",
                 t("wk_event_accepted", lang) if e.status == "accepted" else t(f"status_{e.status}", lang)
                 if f"status_{e.status}" in _STATUS_KEYS else str(e.status),
                 html.Div(e.note, className="muted") if isinstance(e.note, str) and e.note else None])
        for e in events.itertuples(index=False)
    ]
    return [
        html.Div(className="wk-detail-kicker", children=[html.Span(t("wk_case", lang)), " ",
                                                           html.Span(row["case"], className="mono")]),
        html.H2(category, className="wk-detail-title"),
        html.Dl(className="facts wk-facts", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))]),
        html.Div([html.H3(t("wk_history", lang)), html.Ul(history, className="wk-history")]) if history else None,
    ]


_STATUS_KEYS = {f"status_{s}" for s in ("reported", "registered", "dispatched", "handled")}


# -- actions -------------------------------------------------------------------------------------------------------
@callback(Output(ids.WK_MESSAGE, "children"), Output(ids.WK_SHEET_MESSAGE, "children", allow_duplicate=True),
          Output(ids.WK_REV, "data"), Output(ids.WK_SELECTED, "data", allow_duplicate=True),
          Output(ids.WK_NOTE, "value"),
          Input(ids.WK_ACCEPT, "n_clicks"), Input(ids.WK_HANDLE, "n_clicks"),
          State(ids.WK_SELECTED, "data"), State(ids.WK_NOTE, "value"), State(ids.WK_REV, "data"),
          State(ids.WK_LANG, "data"), prevent_initial_call=True)
def _act(_accept: int | None, _handle: int | None, selected: Any, note: str | None, rev: int | None,
         lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    user = _worker()
    app_ctx = get_context()
    if selected is None or not ctx.triggered or not ctx.triggered[0].get("value"):
        return no_update, no_update, no_update, no_update, no_update
    store = app_ctx.store
    case = check_case(store, user, selected, app_ctx.layout_id)
    row = store.incident_row(case)
    label = case_label(_external_id(store, user, app_ctx, case), case)
    rev = (rev or 0) + 1
    try:
        if ctx.triggered_id == ids.WK_ACCEPT:
            lifecycle.apply_action(store, user, case, "accept", at=app_ctx.now())
            live.bump()  # open Overview pages recount
            # The sheet stays open (the next step is usually "handled"); the feedback shows in it.
            return no_update, html.Span(t("wk_accepted", lang, case=label)), rev, no_update, no_update
        if not (note or "").strip():
            return no_update, html.Span(t("wk_note_needed", lang), className="warn"), no_update, no_update, no_update
        # "Handled" on a case not yet accepted does both: the worker who fixed it has it.
        if row is not None and row["status"] in ("reported", "registered"):
            lifecycle.apply_action(store, user, case, "accept", at=app_ctx.now())
        lifecycle.apply_action(store, user, case, "handle", note=note, at=app_ctx.now())
        live.bump()
    except (InputError, StoreError) as exc:
        log.info("worker: %s could not act on case %s: %s", user.username, case, exc)
        return (html.Span(t("wk_failed", lang, case=label, reason=t("wk_moved", lang)), className="warn"), None,
                rev, None, no_update)
    log.info("worker: %s marked case %s handled", user.username, case)
    return html.Span(t("wk_handled", lang, case=label)), None, rev, None, ""


def _external_id(store: Any, user: User, app_ctx: AppContext, case: int) -> Any:
    cases = my_open_cases(store, user, app_ctx.layout_id)
    found = cases.loc[cases["incident_id"] == case, "external_id"]
    return found.iloc[0] if len(found) else None
