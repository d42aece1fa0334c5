"""Moving a deployment between stores (``gridgov migrate``): tables read and written whole, with checksums.

The tables and their columns are read from ``information_schema`` of the store's schema, so a table added by a later
migration moves without a change here. Each column is read in a form both backends share: geometries as WKB
(``ST_AsWKB``), JSON as its text; and written back through ``ST_GeomFromWKB`` and ``CAST(… AS JSON)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from gridgov.errors import StoreError
from gridgov.store.connection import Connection

#: The name a chunk of rows is registered under while it is inserted.
_CHUNK = "_transfer_rows"
#: The column a chunk's row positions are registered under when its order must be kept.
_POSITION = "_transfer_position"
#: The server-side cursor a PostgreSQL source is read through, a chunk at a time.
_SCAN = "_transfer_scan"
#: Written by the migrations of each store rather than copied: ``gridgov.migrate`` compares them.
_MIGRATION_TABLES = frozenset({"schema_version"})


@dataclass(frozen=True)
class Column:
    """One column of a table as the transfer handles it.

    Attributes
    ----------
    name
        The column's name.
    kind
        ``"geometry"`` (moved as WKB), ``"json"`` (moved as text) or ``"value"`` (moved as it is).
    """

    name: str
    kind: str


@dataclass(frozen=True)
class TableShape:
    """A table of the store: its name, its data columns in their stored order, and its insertion-order column.

    Attributes
    ----------
    name
        The table's name.
    columns
        The columns that hold data (an identity column is not one: the target numbers its rows itself).
    identity
        The table's identity column, which numbers rows in insertion order (PostgreSQL's stand-in for DuckDB's
        ``rowid``, e.g. ``incident_event.rowid``), or None.
    """

    name: str
    columns: tuple[Column, ...]
    identity: str | None = None


def _quoted(name: str) -> str:
    # Names come from the database's own catalogue; quoting keeps any of them (a reserved word, a capital) intact.
    return '"' + name.replace('"', '""') + '"'


def _kind(data_type: str, udt_name: str | None) -> str:
    if data_type.upper() == "GEOMETRY" or (udt_name or "").lower() == "geometry":
        return "geometry"
    if data_type.lower() in ("json", "jsonb"):
        return "json"
    return "value"


def _read_expression(column: Column) -> str:
    name = _quoted(column.name)
    if column.kind == "geometry":
        return f"ST_AsWKB({name}) AS {name}"
    if column.kind == "json":
        return f"CAST({name} AS VARCHAR) AS {name}"
    return name


def _write_expression(column: Column) -> str:
    name = _quoted(column.name)
    if column.kind == "geometry":
        return f"ST_GeomFromWKB({name})"
    if column.kind == "json":
        return f"CAST({name} AS JSON)"
    return name


class TransferMixin(Connection):
    """Reads and writes of whole tables for :mod:`gridgov.migrate`."""

    def transfer_tables(self) -> list[TableShape]:
        """Every table of the store's schema that holds data, with its columns, by name.

        ``schema_version`` is left out (each store's migrations write it), and so are the tables of extensions
        (PostGIS's ``spatial_ref_sys``): they belong to the database, not to gridgov.
        """
        con = self.con
        rows = con.execute(
            "SELECT c.table_name, c.column_name, c.data_type, c.udt_name, c.is_identity "
            "FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_catalog = c.table_catalog "
            "AND t.table_schema = c.table_schema AND t.table_name = c.table_name "
            # DuckDB lists its temporary tables under the catalogue ``temp`` with the schema ``main``.
            "WHERE c.table_catalog = current_database() AND c.table_schema = current_schema() "
            "AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position"
        ).fetchall()
        skip = set(_MIGRATION_TABLES) | self._extension_tables()
        columns: dict[str, list[Column]] = {}
        identity: dict[str, str] = {}
        for table, column, data_type, udt_name, is_identity in rows:
            if table in skip:
                continue
            if is_identity == "YES":
                identity[table] = column
            columns.setdefault(table, [])
            if is_identity != "YES":
                columns[table].append(Column(column, _kind(data_type, udt_name)))
        return [TableShape(name, tuple(cols), identity.get(name)) for name, cols in columns.items()]

    def _extension_tables(self) -> set[str]:
        if self.backend != "postgresql":
            return set()
        rows = self.con.execute(
            "SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE d.deptype = 'e' AND d.classid = 'pg_class'::regclass AND n.nspname = current_schema()"
        ).fetchall()
        return {r[0] for r in rows}

    def foreign_keys(self) -> list[tuple[str, str]]:
        """``(table, referenced table)`` for each foreign key of the store's schema (none at version 6)."""
        rows = self.con.execute(
            "SELECT fk.table_name, pk.table_name FROM information_schema.referential_constraints r "
            "JOIN information_schema.table_constraints fk ON fk.constraint_schema = r.constraint_schema "
            "AND fk.constraint_name = r.constraint_name "
            "JOIN information_schema.table_constraints pk ON pk.constraint_schema = r.unique_constraint_schema "
            "AND pk.constraint_name = r.unique_constraint_name "
            "WHERE fk.table_catalog = current_database() AND fk.table_schema = current_schema()"
        ).fetchall()
        return sorted({(str(a), str(b)) for a, b in rows})

    def schema_versions(self) -> list[tuple[int, str]]:
        """The migrations applied to the store: ``(version, name)`` in order."""
        rows = self.con.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
        return [(int(v), str(n)) for v, n in rows]

    def first_table_with_rows(self, tables: list[TableShape]) -> str | None:
        """The first of ``tables`` that holds a row, or None when all are empty."""
        con = self.con
        for table in tables:
            if con.execute(f"SELECT 1 FROM {_quoted(table.name)} LIMIT 1").fetchall():
                return table.name
        return None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction on this thread's cursor: every table read inside sees the same snapshot.

        On PostgreSQL the transaction is ``REPEATABLE READ`` (a running server may write meanwhile); a DuckDB
        transaction always reads one snapshot.
        """
        con = self.con
        if self.backend == "postgresql":
            con.execute("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        else:
            con.execute("BEGIN TRANSACTION")
        try:
            yield
        finally:
            # Nothing was written: ending the transaction either way is the same, and ROLLBACK also ends one that
            # an error left aborted on PostgreSQL.
            con.execute("ROLLBACK")

    def table_batches(self, table: TableShape, *, batch_rows: int,
                      insertion_order: bool = False) -> Iterator[pa.RecordBatch]:
        """The rows of ``table`` in chunks of at most ``batch_rows``, columns in the shape's order.

        Call it inside :meth:`reading`. Geometries come as WKB, JSON as text. A DuckDB table is streamed from its
        result; a PostgreSQL table through a server-side cursor, so neither holds a large table in memory at once.
        Read each generator to its end before the next query on this store.

        With ``insertion_order`` the rows come in the order they were inserted: by ``rowid`` on DuckDB, by the
        table's identity column on PostgreSQL (a table without one has no such order there).
        """
        if batch_rows < 1:
            raise StoreError(f"`batch_rows` must be at least 1, got {batch_rows}")
        select = (f"SELECT {', '.join(_read_expression(c) for c in table.columns)} "
                  f"FROM {_quoted(table.name)}")
        if insertion_order and table.identity is not None:
            select += f" ORDER BY {_quoted(table.identity)}"
        elif insertion_order and self.backend != "postgresql":
            select += " ORDER BY rowid"
        con = self.con
        if self.backend != "postgresql":
            reader = con.execute(select).fetch_record_batch(batch_rows)
            yield from reader
            return
        con.execute(f"DECLARE {_SCAN} NO SCROLL CURSOR FOR {select}")
        try:
            while True:
                # batch_rows is an int checked above; FETCH takes no parameter for its count.
                chunk = con.execute(f"FETCH FORWARD {int(batch_rows)} FROM {_SCAN}").fetch_arrow_table()
                if chunk.num_rows == 0:
                    break
                yield from chunk.to_batches()
        finally:
            # When a read failed and aborted the transaction, CLOSE fails too: the ROLLBACK of reading() drops the
            # cursor, and the error that aborted it is the one to report.
            with suppress(StoreError):
                con.execute(f"CLOSE {_SCAN}")

    def insert_batch(self, con: duckdb.DuckDBPyConnection, table: TableShape, batch: pa.RecordBatch, *,
                     insertion_order: bool = False) -> None:
        """Append a chunk read by :meth:`table_batches` (of the same shape) inside the caller's transaction.

        With ``insertion_order`` the rows are inserted in the chunk's order, so that DuckDB's ``rowid`` or the
        table's identity column numbers them in that order.
        """
        names = [c.name for c in table.columns]
        if batch.schema.names != names:
            raise StoreError(f"rows for table {table.name} have columns {batch.schema.names}, expected {names}")
        rows = pa.Table.from_batches([batch])
        order = ""
        if insertion_order:
            rows = rows.append_column(_POSITION, pa.array(range(rows.num_rows), pa.int64()))
            order = f" ORDER BY {_POSITION}"
        con.register(_CHUNK, rows)
        try:
            con.execute(
                f"INSERT INTO {_quoted(table.name)} ({', '.join(_quoted(n) for n in names)}) "
                f"SELECT {', '.join(_write_expression(c) for c in table.columns)} FROM {_CHUNK}{order}"
            )
        finally:
            con.unregister(_CHUNK)
