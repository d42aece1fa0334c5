"""The Dash app factory: one store, static data loaded once, Dash Pages under a shared top bar.

``create_app`` builds the app of one process. On a PostgreSQL store any number of processes may serve it at once
(``dashboards/wsgi.py`` under gunicorn, ``docs/deploy.md``): each follows the others' writes through the store's stamp
(:mod:`dashboards.context`, :mod:`dashboards.live`) and all sign sessions with the secret kept in the database.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import dash
from dash import Input, Output, dcc, html
from flask import Response, abort

from dashboards import access, api, ids, live
from dashboards.context import get_context, load_context, on_reload, set_context
from dashboards.i18n import lang_from_search, t
from gridgov.config import Settings
from gridgov.store import Store

HERE = Path(__file__).resolve().parent
log = logging.getLogger("gridgov.dashboards")


def _setup_logging() -> None:
    # The server is a long-running process: timings of the first load and of each query go to stderr so an
    # operator (and the browser test) can see where time goes without a profiler.
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def create_app(settings: Settings) -> dash.Dash:
    """Build the dashboard for one store (a DuckDB file or a PostgreSQL database).

    Opens the one read-write :class:`gridgov.store.Store` of this process, loads the static data of the current
    layout (grid GeoJSON, admin areas, categories) once, and registers the pages in ``dashboards/pages``.

    Parameters
    ----------
    settings
        Store location and clock; tests pass settings pointing at a temporary file or database.

    Returns
    -------
    dash.Dash
        Call ``.run(host=..., port=...)`` to serve it; ``.server`` is the Flask app (``/healthz`` answers "ok").
    """
    _setup_logging()
    started = time.perf_counter()
    store = Store(settings.db_path)
    ctx = load_context(settings, store)
    # Pages are imported by the Dash constructor and their layouts read the context, so it must exist first.
    set_context(ctx)
    app = dash.Dash(
        "dashboards",
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title=t("product"),
        update_title="",  # keep the tab title steady while callbacks run
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.layout = _shell
    _register_routes(app)
    # Before the access guard: a request of a process that shares its store first takes in what other processes
    # changed (a clock read, and at most every couple of seconds one small query), even an intake API request,
    # whose placing context follows the reload.
    app.server.before_request(_follow_store)
    access.install(app, settings.db_path)
    # The intake API (docs/api.md) places new cases on the current layout: it re-reads it after an adoption.
    intake_api = api.install(app.server, store, settings)
    on_reload(lambda _ctx: intake_api.reload())
    intake_api.listeners.append(live.bump)  # open pages show a new case within seconds
    _register_shell_callbacks(app)
    # Dash completes its setup (the callback map among it) at the first request, and marks it done as it starts:
    # with several threads, requests arriving alongside the first found no callbacks yet (a freshly started gunicorn
    # worker answered 400). One request now, before the server accepts any, does the setup alone.
    app.server.test_client().get("/healthz")
    log.info("app ready in %.0f ms: %s, layout %s with %d grids", (time.perf_counter() - started) * 1000,
             store.label, ctx.layout_id, len(ctx.grids))
    return app


def _follow_store() -> None:
    get_context()


def _shell() -> html.Div:
    ctx = get_context()
    return html.Div(
        className="app",
        children=[
            dcc.Location(id=ids.URL),
            html.Header(
                className="topbar",
                children=[
                    html.Div(className="brand", children=[
                        html.Span(t("product"), id=ids.BRAND, className="brand-name"),
                        html.Span(ctx.district_name, className="brand-district"),
                    ]),
                    html.Nav(id=ids.NAV, className="nav"),
                    dcc.Link(t("switch_lang"), id=ids.LANG_LINK, href="/?lang=zh", className="lang-link"),
                    access.user_box(),
                ],
            ),
            html.Main(dash.page_container, className="page"),
        ],
    )


def _register_shell_callbacks(app: dash.Dash) -> None:
    @app.callback(
        Output(ids.BRAND, "children"),
        Output(ids.NAV, "children"),
        Output(ids.LANG_LINK, "href"),
        Output(ids.LANG_LINK, "children"),
        Input(ids.URL, "pathname"),
        Input(ids.URL, "search"),
    )
    def _nav(pathname: str | None, search: str | None) -> tuple[str, list[dcc.Link], str, str]:
        lang = lang_from_search(search)
        suffix = "?lang=zh" if lang == "zh" else ""
        current = pathname or "/"
        links = [
            dcc.Link(t(page["i18n_key"], lang) if "i18n_key" in page else page["name"],
                     href=page["relative_path"] + suffix,
                     className="nav-link active" if page["relative_path"] == current else "nav-link")
            for page in access.visible_pages(access.signed_in())  # sorted by "order"; the server enforces it too
        ]
        other = "en" if lang == "zh" else "zh"
        # Other query values (e.g. the Staffing page's ?street=) survive a language switch.
        query = {k: v for k, v in parse_qs((search or "").lstrip("?")).items() if k != "lang"}
        query["lang"] = [other]
        return t("product", lang), links, f"{current}?{urlencode(query, doseq=True)}", t("switch_lang", lang)


def _register_routes(app: dash.Dash) -> None:
    server = app.server

    @server.route("/healthz")
    def _healthz() -> Response:
        return Response("ok", mimetype="text/plain")

    @server.route("/geo/<name>.geojson")
    def _geo(name: str) -> Response:
        # Static boundary layers travel as separate cached files so a filter change never resends geometry.
        body = get_context().layer_geojson.get(name)
        if body is None:
            abort(404)
        resp = Response(body, mimetype="application/geo+json")
        resp.headers["Cache-Control"] = "max-age=3600"
        return resp
