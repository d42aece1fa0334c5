"""Sign-in and server-side access control for the dashboard (``docs/access.md``).

:func:`install` puts everything on the Flask server under a Dash app: Flask-Login sessions signed with a
per-database secret (:func:`secret_key`), the ``/login`` and ``/logout`` routes, and a ``before_request`` guard that

* lets through only ``/login``, ``/healthz`` and static files without a signed-in user;
* lets each role open only its pages (:data:`ROLE_PAGES`), by URL and by Dash callback: a callback request names its
  component ids, and ids carry the prefix of their page (:data:`PAGE_PREFIXES`), so a worker cannot run a Planner
  callback by crafting the request, and cannot render another page's layout through Dash Pages' own callback;
* answers a page URL without ``?lang=`` in the browser's language (``Accept-Language``).

The sign-in form carries a per-session CSRF token (:func:`csrf_token`): a POST to ``/login`` or ``/logout`` without
the session's token gets 400 and changes nothing, so another site cannot sign a browser in to an account of its
choosing or out of its own. Dash callback requests are not forms: they are JSON POSTs, which a cross-site page cannot
send with the session cookie (``SameSite=Lax`` keeps it off cross-site POSTs, and a JSON content type needs a CORS
preflight this server never grants).

Per-case and per-grid checks live in the callbacks that take such ids (the worker page asks
:func:`gridgov.auth.visible_grids` and :func:`gridgov.lifecycle.apply_action`); an :class:`~gridgov.errors.AccessDenied`
raised anywhere becomes a 403 with no detail.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import dash
from dash import Input, Output, html
from flask import Flask, Response, has_request_context, redirect, request, session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from markupsafe import escape

from dashboards import ids
from dashboards.context import get_context
from dashboards.i18n import Lang, normalize_lang, t
from gridgov.auth import User, authenticate, visible_grids
from gridgov.errors import AccessDenied
from gridgov.store import Store, parse_location

log = logging.getLogger("gridgov.dashboards")

#: Pages (the last part of a Dash Pages module name) each role may open.
ROLE_PAGES: dict[str, frozenset[str]] = {
    "manager": frozenset({"overview", "staffing", "planner", "imports"}),
    "planner": frozenset({"overview", "planner"}),
    "worker": frozenset({"worker"}),
}
#: Component id prefix of each page; ids of the app shell and of sign-in belong to every page.
PAGE_PREFIXES: dict[str, str] = {"ov-": "overview", "st-": "staffing", "pl-": "planner", "wk-": "worker",
                                 "im-": "imports"}
SHELL_IDS = frozenset({ids.URL, ids.BRAND, ids.NAV, ids.LANG_LINK})
_SHELL_PREFIXES = ("login-", "_pages_")
#: Where each role lands after signing in.
HOME: dict[str, str] = {"manager": "/", "planner": "/", "worker": "/my-grids"}
#: Paths served without signing in (prefixes), besides the login page itself. The intake API (``/api/v2``,
#: ``dashboards/api.py``) checks its own per-client keys: hotline systems have no browser session.
PUBLIC = ("/healthz", "/assets/", "/_dash-component-suites/", "/_favicon.ico", "/favicon.ico", "/api/v2/")
#: Plain (non-Dash) endpoints and the pages whose data they serve.
ENDPOINT_PAGES: dict[str, frozenset[str]] = {
    "/geo/": frozenset({"overview", "staffing", "planner", "imports"}),
    "/my-grids/": frozenset({"worker"}),
}
SECRET_ENV = "GRIDGOV_SECRET_KEY"
#: Failed sign-ins of one user name within this many seconds that make the form refuse that name for a while.
MAX_FAILURES, FAILURE_WINDOW_S = 5, 300.0
_failures: dict[str, list[float]] = {}
_failures_lock = threading.Lock()
#: The session key and form field of the CSRF token of the sign-in and sign-out forms.
CSRF_FIELD = "csrf_token"
#: ``Sec-Fetch-Site`` values of a request a cross-site page cannot cause: typed or bookmarked (``none``), or from a
#: page of this server. A browser sets the header itself; a page's script cannot.
_OWN_FETCH = ("same-origin", "none")


class SessionUser(UserMixin):  # type: ignore[misc]
    """The Flask-Login side of a :class:`gridgov.auth.User`.

    The session id carries a digest of the password hash, so changing a password (``gridgov user passwd``) signs
    out every session that was opened with the old one.
    """

    def __init__(self, user: User, password_hash: str) -> None:
        self.user = user
        self._stamp = hashlib.sha256(password_hash.encode()).hexdigest()[:16]

    def get_id(self) -> str:
        return f"{self.user.username}:{self._stamp}"


def signed_in() -> User | None:
    """The signed-in user of the current request; None outside a request or when nobody is signed in."""
    if not has_request_context():
        return None
    who = current_user
    return who.user if getattr(who, "is_authenticated", False) else None


def opening_street(street_codes: Iterable[str], street: str | None) -> str | None:
    """The street a page with a street filter opens on: ``?street=`` when given, otherwise the signed-in manager's own
    street; None (the district) for an unknown or blank code and for users without a street.

    Only the opening filter: a manager of one street may widen it to the district (reporters' data stays masked
    outside their street, see :func:`sees_personal_data`).
    """
    if street is None:
        user = signed_in()
        street = user.street_code if user is not None else None
    return street if street in set(street_codes) else None


def sees_personal_data(grid_code: str | None = None) -> bool:
    """True when the signed-in user may see reporters' names and phones (of ``grid_code``'s cases, if given).

    A manager does, within their scope; planners, workers and code running outside a request do not.
    """
    user = signed_in()
    if user is None or not user.sees_personal_data:
        return False
    if user.street_code and grid_code is not None:
        grids = visible_grids(get_context().store, user)
        return grids is None or grid_code in grids
    return True


def may_open(user: User | None, page: str) -> bool:
    """True when ``user`` may use ``page`` (``overview``, ``staffing``, ``planner``, ``worker``, ``imports``)."""
    return user is not None and page in ROLE_PAGES.get(user.role, frozenset())


def page_of_path(pathname: str | None) -> str | None:
    """The page name of a Dash Pages path, or None when no page has that path."""
    path = (pathname or "/").split("?", 1)[0].rstrip("/") or "/"
    for page in dash.page_registry.values():
        candidate = str(page.get("relative_path") or page["path"]).rstrip("/") or "/"
        if candidate == path:
            return _page_name(page)
    return None


def visible_pages(user: User | None) -> list[dict[str, Any]]:
    """The Dash Pages registry entries ``user`` may open, in menu order."""
    pages = sorted(dash.page_registry.values(), key=lambda p: p.get("order") or 0)
    return [p for p in pages if may_open(user, _page_name(p))]


def _page_name(page: dict[str, Any]) -> str:
    return str(page["module"]).rsplit(".", 1)[-1]


def lang_of_request() -> Lang:
    """``?lang=`` of the request when given, else the browser's preference (any ``zh-*`` → Chinese)."""
    asked = request.args.get("lang")
    if asked:
        return normalize_lang(asked)
    for value, _quality in request.accept_languages:
        tag = value.lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


# -- installation --------------------------------------------------------------------------------------------------
def install(app: dash.Dash, location: Path | str) -> None:
    """Add sign-in and the access guard to ``app`` (call once, from ``create_app``, after the context is set).

    Parameters
    ----------
    app
        The dashboard.
    location
        The store location, which decides where the session secret lives (:func:`secret_key`).
    """
    server: Flask = app.server
    server.secret_key = secret_key(location, get_context().store)
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax")
    manager = LoginManager()
    manager.init_app(server)
    manager.session_protection = "basic"

    @manager.user_loader
    def _load(user_id: str) -> SessionUser | None:
        username, _, stamp = user_id.rpartition(":")
        row = get_context().store.user(username)
        if row is None:
            return None
        found = SessionUser(User(username=row["username"], role=row["role"], street_code=row["street_code"],
                                 worker_id=row["worker_id"]), row["password_hash"])
        return found if found.get_id() == user_id and stamp else None

    server.add_url_rule("/login", "login", _login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", _logout, methods=["GET", "POST"])
    from dashboards.fieldmap import register_routes

    register_routes(server)
    server.before_request(functools.partial(_guard, app))
    server.register_error_handler(AccessDenied, _denied)

    @app.callback(Output(ids.LOGIN_USER, "children"), Input(ids.URL, "search"))
    def _user_box(search: str | None) -> list[Any]:
        from dashboards.i18n import lang_from_search

        return user_box_children(signed_in(), lang_from_search(search))


def user_box() -> html.Div:
    """The top bar's "signed in as … · Sign out" (filled by a callback that knows the language)."""
    return html.Div(id=ids.LOGIN_USER, className="user-box")


def user_box_children(user: User | None, lang: str) -> list[Any]:
    """Name, role and the sign-out link of ``user`` in ``lang``."""
    if user is None:
        return []
    suffix = "?lang=zh" if lang == "zh" else ""
    return [
        html.Span(user.username, className="user-name", title=t(f"login_role_{user.role}", lang)),
        html.A(t("login_sign_out", lang), href=f"/logout{suffix}", id=ids.LOGIN_LOGOUT, className="user-logout"),
    ]


def secret_key(location: Path | str, store: Store | None = None) -> str:
    """The key that signs session cookies.

    ``$GRIDGOV_SECRET_KEY`` when set. Otherwise, for a DuckDB file, a random key kept in a file next to the database
    (``<db>.secret``, readable by its owner only) and created on first start; for a PostgreSQL database (where there
    is no file, and every server process must sign alike) a random key kept in the database itself (``meta`` key
    ``session_secret``), created once by whichever process starts first.

    Parameters
    ----------
    location
        The store location (``Settings.db_path``).
    store
        The open store; needed for a PostgreSQL location.
    """
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env
    backend, target = parse_location(location)
    if backend == "postgresql":
        if store is None:
            raise ValueError("`store` is needed for the session secret of a postgresql:// location, got None")
        return store.shared_secret(secrets.token_hex(32))
    path = Path(target).with_name(Path(target).name + ".secret")
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
    return key


# -- the guard -----------------------------------------------------------------------------------------------------
def _guard(app: dash.Dash) -> Response | None:
    path = request.path
    if path in ("/login", "/logout") or path.startswith(PUBLIC):
        return None
    user = signed_in()
    if user is None:
        if request.method == "GET" and _wants_html():
            return redirect(_login_url(request.full_path.rstrip("?")))
        return _forbidden(401)
    if path.startswith("/_dash-"):
        return _guard_dash(app, user, path)
    for prefix, pages in ENDPOINT_PAGES.items():
        if path.startswith(prefix):
            return None if any(may_open(user, p) for p in pages) else _forbidden()
    page = page_of_path(path)
    if page is None:
        return None  # Dash answers unknown paths with its 404 page
    if not may_open(user, page):
        if path == "/":
            return redirect(_with_lang(HOME[user.role]))
        return _denied_page(user)
    if request.method == "GET" and "lang" not in request.args and lang_of_request() == "zh":
        return redirect(_with_lang(path, "zh"))
    return None


def _guard_dash(app: dash.Dash, user: User, path: str) -> Response | None:
    if path != "/_dash-update-component":
        return None  # layout, dependencies, reload hash: the same for everyone, no data
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return _forbidden(400)
    # Dash runs the callback registered under ``output``; the ids listed beside it are only its arguments. Both
    # must belong to pages of the user's role.
    declared = app.callback_map.get(body["output"])
    if declared is None:
        return _forbidden(400)
    names = [*_component_ids(body), *_declared_ids(body["output"], declared)]
    pages: set[str] = set()
    for cid in names:
        if cid in SHELL_IDS or cid.startswith(_SHELL_PREFIXES):
            continue
        page = next((name for prefix, name in PAGE_PREFIXES.items() if cid.startswith(prefix)), None)
        if page is None:
            log.warning("access: callback with unknown component id %r refused (ids need a page prefix)", cid)
            return _forbidden()
        pages.add(page)
    # Dash Pages renders a page's layout through its own callback: the path asked for must be a page of the role.
    for item in _props(body):
        if item.get("id") == "_pages_location" and item.get("property") == "pathname":
            page = page_of_path(item.get("value"))
            if page is not None:
                pages.add(page)
    refused = sorted(p for p in pages if not may_open(user, p))
    if refused:
        log.info("access: %s (%s) refused a callback of %s", user.username, user.role, ", ".join(refused))
        return _forbidden()
    return None


def _props(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(value: Any) -> Iterator[dict[str, Any]]:
        if isinstance(value, dict) and "id" in value:
            yield value
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    for key in ("outputs", "inputs", "state"):
        yield from walk(body.get(key))


def _component_ids(body: dict[str, Any]) -> Iterator[str]:
    for item in _props(body):
        yield from _id_names(item["id"])


def _declared_ids(output: str, declared: dict[str, Any]) -> Iterator[str]:
    from dash._utils import split_callback_id

    outputs = split_callback_id(output)
    for item in [*(outputs if isinstance(outputs, list) else [outputs]), *declared.get("inputs", []),
                 *declared.get("state", [])]:
        cid = item["id"]
        if isinstance(cid, str) and cid.startswith("{"):
            try:
                cid = json.loads(cid)
            except ValueError:
                cid = "?"
        yield from _id_names(cid)


def _id_names(cid: Any) -> Iterable[str]:
    if isinstance(cid, str):
        return [cid]
    if isinstance(cid, dict):
        # A pattern-matching id: its ``type`` names the page; other keys are the index values.
        return [str(cid.get("type", "?"))]
    return ["?"]


def _wants_html() -> bool:
    return request.accept_mimetypes.accept_html or request.accept_mimetypes.best in (None, "*/*")


def _with_lang(path: str, lang: str | None = None) -> str:
    lang = lang or request.args.get("lang") or (lang_of_request() if lang_of_request() == "zh" else None)
    return f"{path}?{urlencode({'lang': lang})}" if lang else path


def _login_url(next_path: str) -> str:
    query = {"next": next_path}
    if request.args.get("lang"):
        query["lang"] = normalize_lang(request.args["lang"])
    return f"/login?{urlencode(query)}"


def _forbidden(status: int = 403) -> Response:
    return Response({401: "sign in first", 400: "bad request"}.get(status, "forbidden"), status=status,
                    mimetype="text/plain")


def _denied(_exc: AccessDenied) -> Response:
    # The reason stays in the server log; the answer is the same whatever the case or grid asked for.
    user = signed_in()
    log.info("access: denied to %s on %s", user.username if user else "nobody", request.path)
    return _forbidden()


def _denied_page(user: User) -> Response:
    lang = lang_of_request()
    body = (f'<p class="login-error">{escape(t("login_forbidden", lang))}</p>'
            f'<p><a href="{escape(_with_lang(HOME[user.role], lang if lang == "zh" else None))}">'
            f'{escape(t("login_go_home", lang))}</a></p>')
    return Response(_page(t("login_forbidden_title", lang), body, lang), status=403, mimetype="text/html")


# -- login and logout ----------------------------------------------------------------------------------------------
def _safe_next(value: str | None, user: User) -> str:
    # Only a path on this server (never ``//host`` or a full URL), and only one the user may open.
    if (value and value.startswith("/") and not value.startswith("//") and "\\" not in value
            and not value.startswith(("/login", "/logout"))):
        page = page_of_path(value)
        if page is None or may_open(user, page):
            return value
    return HOME[user.role]


def _login() -> Response:
    lang = lang_of_request()
    error = ""
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "")
        if not _csrf_ok():
            log.info("access: sign-in for %r refused: missing or wrong CSRF token", username[:64])
            return Response(_login_form(lang, username=username, error=t("login_csrf_refused", lang),
                                        next_path=request.values.get("next", "")), status=400, mimetype="text/html")
        if _too_many_failures(username):
            log.info("access: sign-in for %r refused after repeated failures", username[:64])
            return Response(_login_form(lang, username=username, error=t("login_too_many", lang),
                                        next_path=request.values.get("next", "")), status=429, mimetype="text/html")
        user = authenticate(get_context().store, username, request.form.get("password", ""))
        if user is not None:
            row = get_context().store.user(user.username)
            login_user(SessionUser(user, row["password_hash"] if row else ""))
            session.pop(CSRF_FIELD, None)  # a new token for the signed-in session: the old one was shown signed out
            log.info("access: %s (%s) signed in", user.username, user.role)
            target = _safe_next(request.form.get("next"), user)
            if lang == "zh" and "lang=" not in target:
                target += ("&" if "?" in target else "?") + "lang=zh"
            return redirect(target)
        # Never the password, and the name only as typed: a failed attempt is worth knowing about.
        log.info("access: failed sign-in for %r", username[:64])
        _record_failure(username)
        error = t("login_failed", lang)
    elif signed_in() is not None:
        user = signed_in()
        assert user is not None
        return redirect(_with_lang(HOME[user.role]))
    status = 401 if error else 200
    return Response(_login_form(lang, username=username, error=error, next_path=request.values.get("next", "")),
                    status=status, mimetype="text/html")


def _too_many_failures(username: str) -> bool:
    key = username.strip().lower()
    with _failures_lock:
        recent = [at for at in _failures.get(key, []) if time.monotonic() - at < FAILURE_WINDOW_S]
        _failures[key] = recent
        return len(recent) >= MAX_FAILURES


def _record_failure(username: str) -> None:
    # Guessing passwords is slowed per name; the hash check already costs the same for unknown names.
    now = time.monotonic()
    with _failures_lock:
        if len(_failures) > 10_000:  # names tried once long ago need not be remembered
            for key in [k for k, v in _failures.items() if not v or now - v[-1] >= FAILURE_WINDOW_S]:
                del _failures[key]
        _failures.setdefault(username.strip().lower(), []).append(now)


def csrf_token() -> str:
    """The CSRF token of the current session, created (32 random bytes) on first use.

    The sign-in and sign-out forms carry it in the hidden field :data:`CSRF_FIELD`; it is replaced at sign-in and
    at sign-out.
    """
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def _csrf_ok() -> bool:
    """True when the posted form carries the session's CSRF token."""
    expected, sent = session.get(CSRF_FIELD), request.form.get(CSRF_FIELD)
    if not isinstance(expected, str) or not expected or not isinstance(sent, str):
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())


def _logout() -> Response:
    user = signed_in()
    lang = request.args.get("lang")
    if user is not None:
        # Signing out changes state, so another site must not be able to cause it: a POST needs the form's token; a
        # GET (the top bar's link, a typed URL) signs out only when the browser says it did not come from another
        # site, and otherwise gets a page with the sign-out button.
        if request.method == "POST" and not _csrf_ok():
            log.info("access: sign-out of %s refused: missing or wrong CSRF token", user.username)
            return _logout_page(user, normalize_lang(lang) if lang else lang_of_request(), status=400)
        if request.method == "GET" and request.headers.get("Sec-Fetch-Site") not in _OWN_FETCH:
            return _logout_page(user, normalize_lang(lang) if lang else lang_of_request())
        log.info("access: %s signed out", user.username)
        logout_user()
        session.pop(CSRF_FIELD, None)
    return redirect("/login" + (f"?lang={normalize_lang(lang)}" if lang else ""))


def _logout_page(user: User, lang: Lang, *, status: int = 200) -> Response:
    refused = escape(t("login_csrf_refused", lang))
    error_html = f'<p class="login-error" role="alert">{refused}</p>' if status == 400 else ""
    body = f"""
<form class="login-card card" method="post" action="/logout{'?lang=zh' if lang == 'zh' else ''}">
  <h1>{escape(t("login_sign_out", lang))}</h1>
  {error_html}
  <p class="muted">{escape(user.username)}</p>
  <input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">
  <button type="submit" id="logout-submit" class="btn-primary">{escape(t("login_sign_out", lang))}</button>
</form>"""
    return Response(_page(t("login_sign_out", lang), body, lang), status=status, mimetype="text/html")


def _login_form(lang: str, *, username: str, error: str, next_path: str) -> str:
    other = "en" if lang == "zh" else "zh"
    switch_query = urlencode({k: v for k, v in (("next", next_path), ("lang", other)) if v})
    error_html = f'<p class="login-error" role="alert">{escape(error)}</p>' if error else ""
    body = f"""
<form class="login-card card" method="post" action="/login{'?lang=zh' if lang == 'zh' else ''}">
  <h1>{escape(t("login_title", lang))}</h1>
  <p class="muted">{escape(t("login_intro", lang))}</p>
  {error_html}
  <label class="field-label" for="username">{escape(t("login_username", lang))}</label>
  <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none"
         autocorrect="off" spellcheck="false" required autofocus value="{escape(username)}">
  <label class="field-label" for="password">{escape(t("login_password", lang))}</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <input type="hidden" name="next" value="{escape(next_path)}">
  <input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">
  <button type="submit" id="login-submit" class="btn-primary">{escape(t("login_submit", lang))}</button>
  <p class="login-switch"><a href="/login?{escape(switch_query)}">{escape(t("switch_lang", lang))}</a></p>
</form>"""
    return _page(t("login_title", lang), body, lang)


def _page(title: str, body: str, lang: str) -> str:
    html_lang = "zh-CN" if lang == "zh" else "en"
    return f"""<!DOCTYPE html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · {escape(t("product", lang))}</title>
<link rel="stylesheet" href="/assets/style.css">
<link rel="stylesheet" href="/assets/worker.css">
</head>
<body class="login-page">
<header class="topbar"><div class="brand"><span class="brand-name">{escape(t("product", lang))}</span></div></header>
<main class="login-main">{body}</main>
</body>
</html>"""
