"""Start the dashboard server (used by ``python app.py`` and ``gridgov serve``)."""

from __future__ import annotations

from gridgov.config import Settings


def run(settings: Settings, *, demo_size: str = "medium", debug: bool = False) -> None:
    """Build the demo database when the file is missing, then serve the dashboard.

    Parameters
    ----------
    settings
        Database path, host and port.
    demo_size
        Size of the demo district built on first run.
    debug
        Dash debug mode (the reloader stays off: it would open the database twice).
    """
    if not settings.db_path.exists():
        from gridgov.demo import build_demo_file

        print(f"{settings.db_path} not found: building the {demo_size} demo district (first run only)…")
        build_demo_file(settings.db_path, size=demo_size, seed=0, progress=True)
    try:
        from dashboards.app import create_app
    except ImportError as exc:
        raise SystemExit(f"the dashboard needs Dash: pip install -e . ({exc})") from exc
    dash_app = create_app(settings)
    print(f"gridgov dashboard on http://{settings.host}:{settings.port}/")
    dash_app.run(host=settings.host, port=settings.port, debug=debug, use_reloader=False)
