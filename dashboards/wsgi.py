"""The dashboard as a WSGI application, for gunicorn and other multi-process servers (``docs/deploy.md``).

    export GRIDGOV_DB=postgresql://gridgov@db:5432/city
    gunicorn -w 4 --threads 8 --keep-alive 5 -b 127.0.0.1:8050 dashboards.wsgi:server

Settings come from the environment as for every gridgov command (``GRIDGOV_DB``, ``GRIDGOV_CONFIG``,
``GRIDGOV_NOW``; ``GRIDGOV_SECRET_KEY`` optionally). Each worker process builds its own app on import, with its own
connections: do not pass gunicorn ``--preload``, which would build it once in the master and share its database
connections between the forked workers. Several workers need a ``postgresql://`` store; on a DuckDB file use
``-w 1`` (one process may write it).

The server refuses users who still have the published demo password, as ``gridgov serve`` does, unless
``GRIDGOV_DEMO=1``. It never builds data: prepare the database first (``gridgov demo --db URL``, or your
district's import), or start ``gridgov serve --workers N`` which does both.
"""

from __future__ import annotations

import os

from flask import Flask

from dashboards.app import create_app
from gridgov.config import Settings
from gridgov.serve import DEMO_ENV, check_no_demo_passwords


def build_server(settings: Settings | None = None) -> Flask:
    """The Flask server of a new dashboard app on ``settings`` (default: from the environment).

    Raises
    ------
    GridgovError
        When a user still has the demo password and ``$GRIDGOV_DEMO`` is not ``1``.
    """
    settings = settings or Settings.from_env()
    if os.environ.get(DEMO_ENV) != "1":
        check_no_demo_passwords(settings)
    server: Flask = create_app(settings).server
    return server


server = build_server()
