"""Move a deployment from one store to another (``gridgov migrate``), verified by row counts and checksums.

The main case is a DuckDB file moving to PostgreSQL/PostGIS when one machine no longer suffices; the other way,
PostgreSQL to a new DuckDB file, makes a backup or a smaller deployment. The source is only read, in one snapshot. The
target must be new or empty; every table is copied in one transaction of the target (a failure leaves it empty),
chunk by chunk so that millions of incidents never sit in memory at once. After the commit each table is read back
from the target and its row count and checksum compared with the source's.

The checksum of a table (:class:`RowChecksum`) does not depend on row order, so neither side sorts: every row becomes
a canonical byte string (integers and booleans as 64-bit integers, floats by their exact 64-bit pattern, timestamps
as microseconds, text and WKB geometries as their bytes, each value length-prefixed and NULL marked), the string is
hashed with BLAKE2b-128, and the digests are summed modulo 2^64 in two lanes. Any change of a value, a missing row or
an extra one changes the sum.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridgov.errors import InputError, StoreError
from gridgov.store import Store, describe_location, parse_location
from gridgov.store.transfer import TableShape

#: Rows per chunk read from the source and written to the target.
DEFAULT_BATCH_ROWS = 100_000

_NULL = pa.scalar(b"-", pa.binary())
_FIXED = pa.scalar(b"8:", pa.binary())
_COLON = pa.scalar(b":", pa.binary())
_NOTHING = pa.scalar(b"", pa.binary())


def _canonical(values: pa.Array) -> pa.Array:
    """One column as byte tokens: ``8:`` and 8 little-endian bytes for numbers, ``len:bytes`` for text, ``-`` for
    NULL. The token depends on the value only, never on the Arrow type a backend happened to choose."""
    t = values.type
    if pa.types.is_dictionary(t):
        values, t = values.dictionary_decode(), t.value_type
    if pa.types.is_null(t):
        return pa.array([b"-"] * len(values), pa.binary())
    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        fixed = values.cast(pa.int64())
    elif pa.types.is_floating(t):
        fixed = values.cast(pa.float64()).view(pa.int64())  # the exact bits: 0.1 and 0.1 + 1 ulp differ
    elif pa.types.is_timestamp(t):
        # Cast, not view: a unit other than microseconds is converted (and an inexact conversion raises).
        fixed = values.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64())
    elif pa.types.is_date(t):
        fixed = values.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or \
            pa.types.is_large_binary(t):
        raw = values.cast(pa.binary())
        lengths = pc.binary_length(raw).cast(pa.string()).cast(pa.binary())
        return pc.fill_null(pc.binary_join_element_wise(lengths, raw, _COLON), _NULL)
    else:
        raise StoreError(f"cannot checksum a column of type {t}; gridgov's tables hold numbers, booleans, "
                         "timestamps, text, JSON and geometries")
    tokens = pc.binary_join_element_wise(_FIXED, fixed.view(pa.binary(8)).cast(pa.binary()), _NOTHING)
    return pc.fill_null(tokens, _NULL)


class RowChecksum:
    """Row count and an order-independent checksum of rows given as Arrow record batches.

    Both sides of a migration feed their rows through the same code, so backends that return an integer as int32
    or int64, or a chunk with or without NULLs, agree whenever the values agree.

    Examples
    --------
    >>> import pyarrow as pa
    >>> a, b = RowChecksum(), RowChecksum()
    >>> a.update(pa.record_batch({"id": [1, 2], "x": [0.5, None]}))
    >>> b.update(pa.record_batch({"id": pa.array([2], pa.int32()), "x": [None]}))
    >>> b.update(pa.record_batch({"id": [1], "x": [0.5]}))
    >>> (a.rows, a.hexdigest()) == (b.rows, b.hexdigest())
    True
    """

    def __init__(self) -> None:
        self.rows = 0
        self._lanes = np.zeros(2, dtype=np.uint64)

    def update(self, batch: pa.RecordBatch) -> None:
        """Add the rows of one batch."""
        if batch.num_rows == 0:
            return
        tokens = [_canonical(col) for col in batch.columns]
        rows = pc.binary_join_element_wise(*tokens, _NOTHING) if len(tokens) > 1 else tokens[0]
        digests = b"".join([hashlib.blake2b(r, digest_size=16).digest() for r in rows.to_pylist()])
        lanes = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
        # uint64 sums wrap around: the sum is modulo 2^64 per lane, whatever the number of rows.
        self._lanes += lanes.sum(axis=0, dtype=np.uint64)
        self.rows += batch.num_rows

    def hexdigest(self) -> str:
        """The checksum as 32 hexadecimal digits."""
        return f"{int(self._lanes[0]):016x}{int(self._lanes[1]):016x}"


@dataclass(frozen=True)
class TableReport:
    """One table of a migration.

    Attributes
    ----------
    table
        The table's name.
    rows, checksum
        As read from the source (the rows written).
    target_rows, target_checksum
        As read back from the target after the commit.
    seconds
        Time to read the table from the source and write it to the target.
    """

    table: str
    rows: int
    checksum: str
    target_rows: int
    target_checksum: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the target holds what the source held."""
        return self.rows == self.target_rows and self.checksum == self.target_checksum

    @property
    def rows_per_s(self) -> float | None:
        """Rows copied per second (None when the time is too short to measure)."""
        return self.rows / self.seconds if self.seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values (for ``--json``)."""
        return {"table": self.table, "rows": self.rows, "checksum": self.checksum, "target_rows": self.target_rows,
                "target_checksum": self.target_checksum, "seconds": round(self.seconds, 3),
                "rows_per_s": None if self.rows_per_s is None else round(self.rows_per_s), "ok": self.ok}


@dataclass(frozen=True)
class MigrationReport:
    """What ``migrate`` copied and what it found on reading the target back.

    Attributes
    ----------
    source, target
        The locations as shown to people (no password).
    schema_version
        The schema version both stores are at.
    tables
        One report per table, in the order copied.
    seconds
        Time of the copy: the target's transaction, its commit and, on PostgreSQL, the ``ANALYZE`` of every table.
    verify_seconds
        Time to read every table back from the target and checksum it.
    """

    source: str
    target: str
    schema_version: int
    tables: tuple[TableReport, ...]
    seconds: float
    verify_seconds: float

    @property
    def rows(self) -> int:
        """Rows copied, all tables together."""
        return sum(t.rows for t in self.tables)

    @property
    def rows_per_s(self) -> float | None:
        """Rows copied per second over the whole copy."""
        return self.rows / self.seconds if self.seconds > 0 else None

    @property
    def mismatched(self) -> list[str]:
        """Tables whose row count or checksum differs between source and target."""
        return [t.table for t in self.tables if not t.ok]

    @property
    def ok(self) -> bool:
        """Whether every table arrived intact."""
        return not self.mismatched

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values (for ``--json``)."""
        return {"source": self.source, "target": self.target, "schema_version": self.schema_version,
                "ok": self.ok, "mismatched": self.mismatched, "rows": self.rows,
                "seconds": round(self.seconds, 3),
                "rows_per_s": None if self.rows_per_s is None else round(self.rows_per_s),
                "verify_seconds": round(self.verify_seconds, 3), "tables": [t.to_dict() for t in self.tables]}


def dependency_order(tables: Iterable[str], foreign_keys: Iterable[tuple[str, str]]) -> list[str]:
    """Tables ordered so that each comes after the tables its foreign keys reference; otherwise by name.

    Parameters
    ----------
    tables
        Table names.
    foreign_keys
        ``(table, referenced table)`` pairs; references to tables outside ``tables`` and to the table itself are
        ignored.

    Raises
    ------
    StoreError
        When the foreign keys form a cycle (no order could insert the rows).

    Examples
    --------
    >>> dependency_order(["worker", "assignment", "layout"], [("assignment", "worker"), ("assignment", "layout")])
    ['layout', 'worker', 'assignment']
    """
    names = sorted(set(tables))
    needs: dict[str, set[str]] = {name: set() for name in names}
    for table, referenced in foreign_keys:
        if table in needs and referenced in needs and table != referenced:
            needs[table].add(referenced)
    order: list[str] = []
    while needs:
        ready = [name for name in sorted(needs) if not needs[name]]
        if not ready:
            raise StoreError(f"the foreign keys of tables {sorted(needs)} form a cycle; no order can copy them")
        for name in ready:
            order.append(name)
            del needs[name]
        for waiting in needs.values():
            waiting.difference_update(ready)
    return order


def _same_file(source: Path | str, target: Path | str) -> bool:
    (kind_a, a), (kind_b, b) = parse_location(source), parse_location(target)
    if kind_a != kind_b:
        return False
    if kind_a == "duckdb":
        return Path(a).resolve() == Path(b).resolve()
    return str(a) == str(b)


@dataclass(frozen=True)
class _Move:
    """One table to copy: its shape on each side and whether its insertion order must be kept."""

    source: TableShape
    target: TableShape

    @property
    def keep_order(self) -> bool:
        # A table numbered by an identity column on either side is read in insertion order (incident_event: a
        # case's events at the same time are listed in the order they were recorded).
        return self.source.identity is not None or self.target.identity is not None


def _matching_tables(source: Store, target: Store) -> list[_Move]:
    """The tables to copy, after checking that both stores have the same tables with the same data columns."""
    in_source = {t.name: t for t in source.transfer_tables()}
    in_target = {t.name: t for t in target.transfer_tables()}
    only_source, only_target = sorted(set(in_source) - set(in_target)), sorted(set(in_target) - set(in_source))
    if only_source or only_target:
        raise StoreError(
            f"the stores' tables differ (only in the source: {only_source or 'none'}; only in the target: "
            f"{only_target or 'none'}); the target's database must hold gridgov's tables and nothing else"
        )
    for name, shape in in_source.items():
        if shape.columns != in_target[name].columns:
            raise StoreError(f"table {name} has columns {[(c.name, c.kind) for c in shape.columns]} in the source "
                             f"but {[(c.name, c.kind) for c in in_target[name].columns]} in the target")
    order = dependency_order(in_source, target.foreign_keys())
    return [_Move(in_source[name], in_target[name]) for name in order]


def _checksums(store: Store, tables: Iterable[TableShape], batch_rows: int,
               progress: Callable[[str, str], None] | None) -> dict[str, RowChecksum]:
    out = {}
    with store.reading():
        for table in tables:
            if progress is not None:
                progress("verify", table.name)
            check = RowChecksum()
            for batch in store.table_batches(table, batch_rows=batch_rows):
                check.update(batch)
            out[table.name] = check
    return out


def migrate(source: Path | str, target: Path | str, *, batch_rows: int = DEFAULT_BATCH_ROWS,
            progress: Callable[[str, str], None] | None = None) -> MigrationReport:
    """Copy every table of one store into another, new or empty, store and verify the copy.

    Parameters
    ----------
    source
        The store to copy (a DuckDB file, ``duckdb:///path`` or ``postgresql://…``), opened read-only; it must be at
        this gridgov's schema version.
    target
        Where to copy to: a DuckDB file (created when missing) or a PostgreSQL database; it is migrated on opening
        and must then hold no rows in any table.
    batch_rows
        Rows per chunk read and written (memory grows with it).
    progress
        Called with ``("copy" or "verify", table)`` before each table.

    Returns
    -------
    MigrationReport
        Per table rows, checksums on both sides and times; ``report.ok`` is False when a table differs.

    Raises
    ------
    InputError
        When ``source`` and ``target`` name the same file, or ``batch_rows`` is below 1.
    StoreError
        When the source cannot be read at this schema version, the target already holds data (the message names
        the first table with rows), or the stores' tables differ. Nothing is written to the target then.
    """
    if batch_rows < 1:
        raise InputError(f"must be at least 1, got {batch_rows}", field="batch_rows")
    for field, location in (("source", source), ("target", target)):
        try:
            parse_location(location)
        except StoreError as exc:
            raise InputError(str(exc), field=field) from None
    if _same_file(source, target):
        raise InputError(f"the source and the target are the same store ({describe_location(source)}); "
                         "migrate copies into a new or empty store", field="target")
    try:
        src = Store(source, read_only=True)
    except StoreError as exc:  # the same class (a newer schema stays a SchemaVersionError), with what was opened
        raise type(exc)(f"cannot read the source {describe_location(source)}: {exc}") from exc
    with src, Store(target) as dst:
        versions = src.schema_versions()
        if versions != dst.schema_versions():
            raise StoreError(f"the source {src.label} has migrations {versions} but the target {dst.label} has "
                             f"{dst.schema_versions()}; both must be at this gridgov's schema version")
        moves = _matching_tables(src, dst)
        tables = [m.target for m in moves]
        occupied = dst.first_table_with_rows(tables)
        if occupied is not None:
            raise StoreError(f"the target {dst.label} already holds data (table {occupied} has rows); migrate copies "
                             "only into a new DuckDB file or an empty PostgreSQL database, and changed nothing")
        copied: dict[str, tuple[RowChecksum, float]] = {}
        started = time.perf_counter()
        with src.reading(), dst.transaction() as con:
            for move in moves:
                name = move.source.name
                if progress is not None:
                    progress("copy", name)
                t0 = time.perf_counter()
                check = RowChecksum()
                for batch in src.table_batches(move.source, batch_rows=batch_rows, insertion_order=move.keep_order):
                    check.update(batch)
                    dst.insert_batch(con, move.target, batch, insertion_order=move.keep_order)
                copied[name] = (check, time.perf_counter() - t0)
        dst.refresh_statistics([t.name for t in tables])
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        written = _checksums(dst, tables, batch_rows, progress)
        verify_seconds = time.perf_counter() - started
        reports = tuple(
            TableReport(table=t.name, rows=copied[t.name][0].rows, checksum=copied[t.name][0].hexdigest(),
                        target_rows=written[t.name].rows, target_checksum=written[t.name].hexdigest(),
                        seconds=copied[t.name][1])
            for t in tables
        )
        return MigrationReport(source=src.label, target=dst.label, schema_version=versions[-1][0] if versions else 0,
                               tables=reports, seconds=seconds, verify_seconds=verify_seconds)
