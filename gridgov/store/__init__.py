"""The store: the only place in gridgov with SQL.

Open it with :class:`Store` on a DuckDB file (one process writes, the dashboard server when it runs; readers may
open read-only) or on a PostgreSQL/PostGIS database URL (any number of processes; writers take turns).
"""

from __future__ import annotations

from gridgov.store.areas import AreasMixin
from gridgov.store.connection import (
    Connection,
    describe_location,
    latest_version,
    load_spatial,
    location_exists,
    migrations,
    parse_location,
)
from gridgov.store.graph import GraphMixin
from gridgov.store.imports import ImportsMixin
from gridgov.store.incidents import INCIDENT_COLUMNS, IncidentsMixin
from gridgov.store.intake import IntakeMixin
from gridgov.store.layouts import LayoutsMixin
from gridgov.store.replay import ReplayMixin
from gridgov.store.revision import RevisionMixin
from gridgov.store.scenarios import ScenariosMixin
from gridgov.store.transfer import TransferMixin
from gridgov.store.users import UsersMixin
from gridgov.store.workers import WORKER_COLUMNS, WorkersMixin


class Store(AreasMixin, LayoutsMixin, IncidentsMixin, ImportsMixin, GraphMixin, WorkersMixin, ReplayMixin,
            ScenariosMixin, UsersMixin, IntakeMixin, TransferMixin, RevisionMixin):
    """A gridgov database.

    Parameters
    ----------
    path
        A DuckDB file (or ``duckdb:///path``), created and migrated on first open, or a ``postgresql://`` URL of
        a database, migrated on first open.
    read_only
        Open without taking the write lock.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "g.duckdb") as store:
    ...     store.schema_version >= 1
    True
    """


__all__ = ["INCIDENT_COLUMNS", "WORKER_COLUMNS", "Connection", "Store", "describe_location", "latest_version",
           "load_spatial", "location_exists", "migrations", "parse_location"]
