"""What several server processes on one database compare to notice each other's writes."""

from __future__ import annotations

from dataclasses import dataclass

from gridgov.errors import InputError
from gridgov.store.connection import Connection, first_row

#: The ``meta`` key of the secret that signs the dashboard's session cookies when the store is shared by several
#: server processes (:meth:`RevisionMixin.shared_secret`).
SESSION_SECRET_KEY = "session_secret"


@dataclass(frozen=True)
class Stamp:
    """Where the data a dashboard process shows or caches stands, read in one query (:meth:`RevisionMixin.stamp`).

    Attributes
    ----------
    cases
        Highest ``incident_id`` plus the number of ``incident_event`` rows. Both only grow (ids are the next number,
        events are appended), and every new case and every status change grows one of them, so two processes that
        read the same value have seen the same cases: open pages compare it to know when to redraw.
    layout_id
        The current layout (0 before the first one).
    import_batch
        The last incident import (an import moves the time range and may add categories).
    roster_batch, workers
        The last roster import and the number of workers.
    areas
        The number of admin areas (``gridgov areas import``).
    """

    cases: int
    layout_id: int
    import_batch: int
    roster_batch: int
    workers: int
    areas: int

    @property
    def static(self) -> tuple[int, int, int, int, int]:
        """The part a dashboard's static context depends on (everything but the cases)."""
        return self.layout_id, self.import_batch, self.roster_batch, self.workers, self.areas


class RevisionMixin(Connection):
    """Cheap stamps of the data a dashboard process caches or shows live."""

    def stamp(self) -> Stamp:
        """Read the :class:`Stamp` of the store (one round trip; on PostgreSQL the incident maximum comes from its
        primary key and the event count from an index-only scan)."""
        row = first_row(self.con.execute(
            """
            SELECT (SELECT coalesce(max(incident_id), 0) FROM incident)
                   + (SELECT count(*) FROM incident_event),
                   (SELECT coalesce(max(layout_id), 0) FROM layout WHERE status = 'current'),
                   (SELECT coalesce(max(batch_id), 0) FROM import_batch),
                   (SELECT coalesce(max(batch_id), 0) FROM roster_batch),
                   (SELECT count(*) FROM worker),
                   (SELECT count(*) FROM admin_area)
            """
        ))
        assert row is not None
        return Stamp(*(int(v) for v in row))

    def is_empty(self) -> bool:
        """True when nothing but the schema is stored: no metadata (but a session secret), admin areas, units or
        incidents (a database a demo may be built into)."""
        # A server started on the empty database has stored its session secret: that is not data.
        row = first_row(self.con.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM meta WHERE key <> ?) AND NOT EXISTS (SELECT 1 FROM admin_area) "
            "AND NOT EXISTS (SELECT 1 FROM unit) AND NOT EXISTS (SELECT 1 FROM incident)",
            [SESSION_SECRET_KEY],
        ))
        return bool(row and row[0])

    def shared_secret(self, candidate: str) -> str:
        """The session-signing secret every server process of this store shares, stored on first call.

        Parameters
        ----------
        candidate
            A fresh random secret, kept when the store has none yet; otherwise the stored one wins. The check and
            the insert share one writing transaction (on PostgreSQL under the store's advisory lock), so processes
            starting together all end up with the same secret.

        Returns
        -------
        str
            The stored secret (meta key :data:`SESSION_SECRET_KEY`).
        """
        if not candidate:
            raise InputError("must be a non-empty secret, got ''", field="candidate")
        with self.transaction() as con:
            row = first_row(con.execute("SELECT value FROM meta WHERE key = ?", [SESSION_SECRET_KEY]))
            if row is not None and row[0]:
                return str(row[0])
            con.execute("INSERT INTO meta (key, value) VALUES (?, ?)", [SESSION_SECRET_KEY, candidate])
        return candidate
