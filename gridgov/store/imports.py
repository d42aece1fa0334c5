"""Import batches and rejected rows."""

from __future__ import annotations

from gridgov.store.connection import Connection


class ImportsMixin(Connection):
    """Queries on ``import_batch`` and ``reject``."""
