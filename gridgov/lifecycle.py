"""What a grid worker (or the office) does to a case: accept it, mark it handled with a note, close it.

Each action checks the lifecycle (:data:`gridgov.incidents.TRANSITIONS`) and the actor's right to the case, then
changes the status and logs an ``incident_event`` (who, when, note) in one transaction. Two people acting on the
same case at once cannot both win: the second finds the case moved and is told to reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from gridgov.auth import User, visible_grids
from gridgov.errors import AccessDenied, InputError
from gridgov.incidents import TRANSITIONS

if TYPE_CHECKING:
    from gridgov.store import Store


@dataclass(frozen=True)
class Action:
    """A user action: the status it leads to (None keeps the status), from which statuses, and who may take it."""

    to: str | None
    from_: tuple[str, ...]
    roles: tuple[str, ...]
    needs_note: bool = False


#: ``accept``: the worker has the case (a reported or registered case counts as dispatched to them).
#: ``handle``: the work is done, with a note of what was done. ``close``: the office verifies and closes.
ACTIONS: dict[str, Action] = {
    "accept": Action(to="dispatched", from_=("reported", "registered", "dispatched"), roles=("worker", "manager")),
    "handle": Action(to="handled", from_=("dispatched",), roles=("worker", "manager"), needs_note=True),
    "close": Action(to="closed", from_=("handled",), roles=("manager",)),
}


def apply_action(store: Store, user: User, incident_id: int, action: str, *, note: str | None = None,
                 at: datetime | None = None) -> str:
    """Take ``action`` on a case as ``user``; returns the case's status afterwards.

    Raises
    ------
    InputError
        Unknown action, a missing note, or a step the lifecycle does not allow from the case's status.
    AccessDenied
        The user's role may not take the action, or the case lies outside the grids the user may see.
    StoreError
        The case does not exist or was moved by someone else meanwhile.
    """
    spec = ACTIONS.get(action)
    if spec is None:
        raise InputError(f"must be one of {', '.join(ACTIONS)}, got {action!r}", field="action")
    if user.role not in spec.roles:
        raise AccessDenied(f"a {user.role} may not {action} cases")
    row = store.incident_row(incident_id)
    if row is None:
        raise AccessDenied(f"no case {incident_id} among yours")
    grids = visible_grids(store, user)
    if grids is not None:
        layout_id = store.current_layout_id()
        grid = store.incident_grid(incident_id, layout_id) if layout_id is not None else None
        if grid is None or grid not in grids:
            # Same answer as for a case that does not exist: nothing is revealed about other grids.
            raise AccessDenied(f"no case {incident_id} among yours")
    status = str(row["status"])
    if status not in spec.from_:
        raise InputError(f"a {status} case cannot be {action}ed; allowed from: {', '.join(spec.from_)}",
                         field="action")
    to = spec.to if spec.to != status else None
    if to is not None and to not in TRANSITIONS.get(status, ()):
        raise InputError(f"the lifecycle does not go from {status} to {to}", field="action")
    text = (note or "").strip() or None
    if spec.needs_note and not text:
        raise InputError("say what was done", field="note")
    if text and len(text) > 2000:
        raise InputError("must be at most 2,000 characters", field="note")
    store.record_incident_event(incident_id, expected=status, status=to, at=at or datetime.now().replace(
        microsecond=0), actor=user.username, note=text, event={"accept": "accepted"}.get(action, to or status))
    return to or status
