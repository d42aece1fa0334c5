"""Reads for incident replay: the cases of a period with the work they took and when they were due and closed."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from gridgov.store.connection import Connection


class ReplayMixin(Connection):
    """Queries used by :mod:`gridgov.replay`."""

    def replay_incidents(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Cases reported in ``[start, end)``, cancelled ones left out, in report order.

        Returns
        -------
        pandas.DataFrame
            ``incident_id, unit_id, category_code, reported_at, due_at, closed_at, handling_minutes``.
        """
        return self.df(
            "SELECT i.incident_id, i.unit_id, i.category_code, i.reported_at, i.due_at, i.closed_at, "
            "c.handling_minutes "
            "FROM incident i JOIN category c ON c.code = i.category_code "
            "WHERE i.reported_at >= ? AND i.reported_at < ? AND i.status <> 'cancelled' "
            "ORDER BY i.reported_at, i.incident_id",
            [start, end],
        )
