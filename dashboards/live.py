"""A counter of new data (cases arriving through the intake API), polled cheaply by open pages.

Each open Overview and My grids page asks every few seconds whether the counter moved (a tiny callback that
answers "no update" when it did not); only when it moved do they re-read the store and patch what changed. So a
case posted to the API shows within seconds without every page re-querying the store every few seconds.
"""

from __future__ import annotations

import threading

#: How often an open page asks whether new data arrived (milliseconds).
POLL_MS = 3_000

_lock = threading.Lock()
_revision = 0


def bump(*_args: object) -> int:
    """Count one change of the data (e.g. a case stored by the intake API); returns the new revision."""
    global _revision
    with _lock:
        _revision += 1
        return _revision


def revision() -> int:
    """The current revision."""
    return _revision
