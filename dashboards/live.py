"""A revision of the live data (cases arriving through the intake API, status changes), polled cheaply by open pages.

Each open Overview and My grids page asks every few seconds whether the revision moved (a tiny callback that
answers "no update" when it did not); only when it moved do they re-read the store and patch what changed. So a
case posted to the API shows within seconds without every page re-querying the store every few seconds.

On a DuckDB file the server is the only writer, so the revision is a counter of this process, bumped by the intake
API, worker actions and imports. On PostgreSQL several processes serve the same pages and a page's next poll may
reach another process than its last, so the revision is read from the store itself
(:attr:`gridgov.store.revision.Stamp.cases`, the same number in every process, at most
:data:`dashboards.context.FOLLOW_S` seconds old); :func:`bump` then only makes this process re-read it at once.
"""

from __future__ import annotations

import threading

from dashboards.context import expire_stamp, shared_stamp

#: How often an open page asks whether new data arrived (milliseconds).
POLL_MS = 3_000

_lock = threading.Lock()
_revision = 0


def bump(*_args: object) -> None:
    """Count one change of the data (e.g. a case stored by the intake API)."""
    global _revision
    with _lock:
        _revision += 1
    expire_stamp()


def revision() -> int:
    """The current revision: equal in every process that serves the same store."""
    stamp = shared_stamp()
    return _revision if stamp is None else stamp.cases
