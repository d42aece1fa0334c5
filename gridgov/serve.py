"""Start the dashboard server (used by ``python app.py`` and ``gridgov serve``)."""

from __future__ import annotations

from gridgov.config import Settings
from gridgov.errors import GridgovError


def run(settings: Settings, *, demo_size: str = "medium", debug: bool = False, demo: bool = False) -> None:
    """Build the demo database when the file is missing, then serve the dashboard.

    Parameters
    ----------
    settings
        Database path, host and port.
    demo_size
        Size of the demo district built on first run.
    debug
        Dash debug mode (the reloader stays off: it would open the database twice).
    demo
        Serve a demo: users may still have the published demo password (``docs/access.md``).

    Raises
    ------
    GridgovError
        When ``demo`` is False and a user still has a demo password.
    """
    if not settings.db_path.exists():
        from gridgov.demo import build_demo_file

        print(f"{settings.db_path} not found: building the {demo_size} demo district (first run only)…")
        build_demo_file(settings.db_path, size=demo_size, seed=0, progress=True)
    if demo:
        _ensure_demo_users(settings)
    else:
        check_no_demo_passwords(settings)
    try:
        from dashboards.app import create_app
    except ImportError as exc:
        raise SystemExit(f"the dashboard needs Dash: pip install -e . ({exc})") from exc
    dash_app = create_app(settings)
    print(f"gridgov dashboard on http://{settings.host}:{settings.port}/" + (" (demo users allowed)" if demo else ""))
    dash_app.run(host=settings.host, port=settings.port, debug=debug, use_reloader=False)


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
