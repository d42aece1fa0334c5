"""Start the dashboard server (used by ``python app.py``, ``gridgov serve`` and ``dashboards/wsgi.py``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from gridgov.config import Settings
from gridgov.errors import GridgovError, InputError

#: Environment variable that lets ``dashboards/wsgi.py`` serve users who still have the demo password.
DEMO_ENV = "GRIDGOV_DEMO"


def run(settings: Settings, *, demo_size: str = "medium", debug: bool = False, demo: bool = False,
        workers: int = 1) -> None:
    """Build the demo when there is no data yet, then serve the dashboard.

    Parameters
    ----------
    settings
        Store location, host and port.
    demo_size
        Size of the demo district built on first run.
    debug
        Dash debug mode (the reloader stays off: it would open the database twice).
    demo
        Serve a demo: users may still have the published demo password (``docs/access.md``); on a missing DuckDB
        file or an empty PostgreSQL database, the demo is built first.
    workers
        Server processes. 1 serves from this process (Flask's threaded server); more run gunicorn with
        ``dashboards.wsgi:server``, which needs a PostgreSQL store (a DuckDB file has one writer process).

    Raises
    ------
    GridgovError
        When ``demo`` is False and a user still has a demo password, when a PostgreSQL database is empty and
        ``demo`` is False, or when ``workers`` > 1 on a DuckDB file.
    """
    from gridgov.store import parse_location

    if workers < 1:
        raise InputError(f"must be >= 1, got {workers}", field="workers")
    if workers > 1 and parse_location(settings.db_path)[0] != "postgresql":
        raise InputError("several server processes need a postgresql:// store: a DuckDB file has one writer "
                         f"process (serve it with --workers 1), got {settings.db_path}", field="workers")
    prepare(settings, demo_size=demo_size, demo=demo)
    if workers > 1:
        _run_gunicorn(settings, workers=workers, demo=demo)
        return
    try:
        from dashboards.app import create_app
    except ImportError as exc:
        raise SystemExit(f"the dashboard needs Dash: pip install -e . ({exc})") from exc
    dash_app = create_app(settings)
    print(f"gridgov dashboard on http://{settings.host}:{settings.port}/" + (" (demo users allowed)" if demo else ""))
    dash_app.run(host=settings.host, port=settings.port, debug=debug, use_reloader=False)


def prepare(settings: Settings, *, demo_size: str = "medium", demo: bool = False) -> None:
    """Make the store ready to serve: build the demo where there is nothing yet, check the users' passwords.

    A missing DuckDB file gets the ``demo_size`` demo (as it always has: the first run of ``python app.py``). A
    PostgreSQL database is created by its administrator; when it holds no data the demo is built into it only with
    ``demo``, and otherwise this says what to do.

    Raises
    ------
    GridgovError
        As :func:`run`.
    """
    from gridgov.store import Store, describe_location, location_exists, parse_location

    backend, target = parse_location(settings.db_path)
    if backend == "duckdb" and not location_exists(target):
        from gridgov.demo import build_demo_file

        print(f"{target} not found: building the {demo_size} demo district (first run only)…")
        build_demo_file(target, size=demo_size, seed=0, progress=True)
    elif backend == "postgresql":
        with Store(target) as store:
            empty = store.is_empty()
        if empty and not demo:
            raise GridgovError(
                f"{describe_location(target)} holds no data yet: build the demo into it with "
                f"`gridgov demo --db URL` (or serve with --demo, which builds it), or load your district with "
                "`gridgov areas import`, `gridgov units build` and `gridgov ingest`")
        if empty:
            from gridgov.demo import build_demo_file

            print(f"{describe_location(target)} is empty: building the {demo_size} demo district into it…")
            build_demo_file(target, size=demo_size, seed=0, progress=True)
    if demo:
        _ensure_demo_users(settings)
    else:
        check_no_demo_passwords(settings)


def _run_gunicorn(settings: Settings, *, workers: int, demo: bool) -> None:
    exe = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
    if not Path(exe).exists():
        raise GridgovError("--workers needs gunicorn: pip install -e '.[postgresql]' (or pip install gunicorn)")
    env = {**os.environ, "GRIDGOV_DB": str(settings.db_path)}
    if settings.now is not None:
        env["GRIDGOV_NOW"] = settings.now.isoformat()
    if demo:
        env[DEMO_ENV] = "1"
    else:
        env.pop(DEMO_ENV, None)
    # Threads in each worker: a callback or an intake POST waiting on the database (writers take turns) does not
    # hold up the worker's other requests. Keep-alive above the pages' 3 s poll: gunicorn's default of 2 s closes
    # idle connections just as a page reuses them, and a browser does not resend a POST whose connection was reset.
    args = [exe, "--workers", str(workers), "--threads", "8", "--keep-alive", "5",
            "--bind", f"{settings.host}:{settings.port}",
            "--chdir", str(Path(__file__).resolve().parents[1]), "dashboards.wsgi:server"]
    print(f"gridgov dashboard on http://{settings.host}:{settings.port}/ with {workers} gunicorn workers"
          + (" (demo users allowed)" if demo else ""))
    os.execve(exe, args, env)


def check_no_demo_passwords(settings: Settings) -> None:
    """Refuse to serve a real deployment while any user still has the published demo password.

    Raises
    ------
    GridgovError
        Naming the users and what to do.
    """
    from gridgov.auth import demo_password_users
    from gridgov.store import Store

    with Store(settings.db_path) as store:
        names = demo_password_users(store)
        if store.users().empty:
            print("no users yet: add one with `gridgov user add NAME --role manager` to sign in")
    if names:
        raise GridgovError(
            f"users {', '.join(names)} still have the published demo password: give each a new one with "
            "`gridgov user passwd NAME`, or pass --demo to serve a demo")


def _ensure_demo_users(settings: Settings) -> None:
    # A demo database built before there were users (schema < 4) would otherwise let nobody in.
    from gridgov.auth import DEMO_PASSWORD, create_demo_users
    from gridgov.store import Store

    with Store(settings.db_path) as store:
        if store.users().empty and "demo_seed" in store.meta():
            made = create_demo_users(store)
            print(f"created the demo users {', '.join(u.username for u in made)} (password {DEMO_PASSWORD!r}); "
                  "see docs/access.md")
        elif store.users().empty:
            print("no users yet: add one with `gridgov user add NAME --role manager` to sign in")
