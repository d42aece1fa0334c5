"""Exceptions raised by gridgov.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class GridgovError(Exception):
    """Base class of every error gridgov raises on purpose."""


class InputError(GridgovError):
    """A value given by a user or a file is not acceptable.

    Parameters
    ----------
    message
        What is wrong and what would be accepted.
    field
        The column, option or argument that holds the bad value.
    row
        1-based row number in the input file, when the value came from a row.
    """

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        self.field = field
        self.row = row
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class StoreError(GridgovError):
    """The database file cannot be used as asked."""


class SchemaVersionError(StoreError):
    """The database file was written by a newer gridgov than this one."""


class ExtensionMissingError(StoreError):
    """The DuckDB spatial extension cannot be loaded."""


class StoreBusyError(StoreError):
    """Another process (usually the dashboard server) holds the database file for writing."""


class InfeasibleError(GridgovError):
    """A planning request cannot be met; the message says why and what would work."""


class AccessDenied(GridgovError):
    """The signed-in user may not see or do this (or nobody is signed in)."""
