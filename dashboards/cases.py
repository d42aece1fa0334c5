"""Cases as a signed-in user may see them: a worker's open cases, one case checked against the user's grids, and
reporters' names and phones masked unless the user is a manager (:mod:`gridgov.privacy`).

Only store and library calls here (no SQL, no Dash): the worker page, the folium export and the Overview's case list
share them, so the scope and masking rules are applied in one place.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from gridgov.auth import User, require, visible_grids
from gridgov.errors import AccessDenied
from gridgov.privacy import PERSONAL_COLUMNS, mask_frame
from gridgov.store import Store

#: Statuses on a worker's to-do list: ``handled`` cases wait for the office to verify and close them.
TODO_STATUSES = ("reported", "registered", "dispatched")


def my_grids(store: Store, user: User, layout_id: int | None) -> list[str]:
    """Grid codes a worker holds (primary or backup) in the layout, sorted.

    Raises
    ------
    AccessDenied
        When ``user`` is not a worker.
    """
    require(user, "worker")
    if layout_id is None:
        return []
    return sorted(visible_grids(store, user, layout_id) or ())


def my_open_cases(store: Store, user: User, layout_id: int | None) -> pd.DataFrame:
    """A worker's to-do list: the open, not yet handled cases of their grids, soonest deadline first.

    Returns
    -------
    pandas.DataFrame
        The columns of ``Store.grid_open_cases`` plus ``grid_code``; no reporter data.
    """
    frames = [store.grid_open_cases(layout_id, code).assign(grid_code=code)
              for code in my_grids(store, user, layout_id)] if layout_id is not None else []
    frames = [f for f in frames if not f.empty]
    if not frames:
        cols = ["incident_id", "external_id", "category_code", "name_zh", "name_en", "status", "reported_at",
                "due_at", "address", "description", "lon", "lat", "grid_code"]
        return pd.DataFrame(columns=cols)
    cases = pd.concat(frames, ignore_index=True)
    cases = cases[cases["status"].isin(TODO_STATUSES)]
    return cases.sort_values(["due_at", "incident_id"], kind="stable").reset_index(drop=True)


def check_case(store: Store, user: User, incident_id: Any, layout_id: int | None) -> int:
    """The case id when the case lies in one of the user's grids.

    Raises
    ------
    AccessDenied
        The same for a case of another grid, a case that does not exist and an id that is not a number, so that a
        crafted request learns nothing about other grids.
    """
    try:
        case = int(incident_id)
    except (TypeError, ValueError):
        raise AccessDenied("no such case among yours") from None
    grids = visible_grids(store, user, layout_id)
    if grids is None:
        return case
    grid = store.incident_grid(case, layout_id) if layout_id is not None else None
    if grid is None or grid not in grids:
        raise AccessDenied("no such case among yours")
    return case


def reporters(store: Store, incident_ids: list[int], *, personal: bool) -> pd.DataFrame:
    """``incident_id, reporter_name, reporter_phone`` of some cases, masked unless ``personal``."""
    wanted = [int(i) for i in incident_ids]
    if not wanted:
        return pd.DataFrame(columns=["incident_id", *PERSONAL_COLUMNS])
    return mask_frame(store.incident_reporters(wanted), personal=personal)


def reporter_text(name: Any, phone: Any) -> str:
    """``name · phone`` of a reporter, leaving out what is missing (anonymous reports have neither)."""
    parts = [str(v) for v in (name, phone) if isinstance(v, str) and v.strip()]
    return " · ".join(parts)
