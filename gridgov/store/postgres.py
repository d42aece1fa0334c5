"""The PostgreSQL/PostGIS backend: a cursor that answers the store's queries the way a DuckDB cursor does.

The store's SQL is written once. Its few DuckDB spellings are met here rather than in every query module:

* placeholders: ``?`` and ``$name`` become psycopg's ``%s`` and ``%(name)s`` (a literal ``%`` is doubled); values
  are bound by psycopg's client-side quoting (:class:`psycopg.ClientCursor`), so a ``NULL`` or a list parameter is
  typed by where it stands, as DuckDB does;
* ``temp.`` (DuckDB's temporary schema) is ``pg_temp.``;
* functions DuckDB has and PostgreSQL lacks (``list_contains``, ``ST_AsWKB``) are defined in the database by
  :data:`PRELUDE`, as one-line SQL functions the planner inlines;
* ``register(name, table)``, DuckDB's scan of an Arrow table by name, is a temporary table of this connection filled
  by ``COPY … FROM STDIN`` from Arrow's CSV writer, and dropped by ``unregister``;
* results come back as DataFrames or Arrow tables with the types DuckDB gives (``numeric`` as float, ``json`` as
  text).

Migrations are the DuckDB files with ``DOUBLE`` spelled ``DOUBLE PRECISION``, followed by the PostgreSQL-only
statements of ``migrations/postgresql/`` with the same number (indexes the DuckDB file does without).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads

try:  # the backend is optional: a DuckDB deployment does not need psycopg
    import psycopg
    from psycopg.types.numeric import FloatLoader
    from psycopg.types.string import TextLoader
except ImportError:  # pragma: no cover - exercised only where psycopg is absent
    psycopg = None  # type: ignore[assignment]

from gridgov.errors import StoreError

#: URL schemes that select this backend.
SCHEMES = ("postgresql", "postgres")
#: Key of the transaction-level advisory lock every writing transaction takes: the store keeps DuckDB's rule of one
#: writer at a time, now across every process on the database (dashboard workers, importers, the intake API).
WRITE_LOCK_KEY = 0x67726964  # "grid"

#: Run on every new database before its migrations (idempotent).
PRELUDE = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE OR REPLACE FUNCTION list_contains(anycompatiblearray, anycompatible) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT $2 = ANY($1)';
CREATE OR REPLACE FUNCTION ST_AsWKB(geometry) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT ST_AsBinary($1)';
"""

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|::|\$[A-Za-z_][A-Za-z0-9_]*|\?|%|\btemp\.",
                     re.IGNORECASE)


def translate(sql: str) -> str:
    """The store's DuckDB-flavoured SQL for psycopg (placeholders, ``%``, the temporary schema).

    Quoted strings, quoted names and comments are left as they are.

    Examples
    --------
    >>> translate("SELECT * FROM t WHERE a = ? AND b = $name AND c LIKE '50%?' AND d::TEXT = ?")
    "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c LIKE '50%%?' AND d::TEXT = %s"
    """
    def one(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "?":
            return "%s"
        if tok == "%":
            return "%%"
        if tok.startswith("$"):
            return f"%({tok[1:]})s"
        if tok.lower() == "temp.":
            return "pg_temp."
        if tok.startswith("'"):
            return tok.replace("%", "%%")
        return tok

    return _TOKENS.sub(one, sql)


def migration_sql(version: int, name: str, duckdb_sql: str) -> str:
    """One migration for PostgreSQL: the shared file's DDL, then this backend's own statements of that version."""
    sql = re.sub(r"\bDOUBLE\b(?!\s+PRECISION)", "DOUBLE PRECISION", duckdb_sql)
    extra = resources.files("gridgov.store.migrations").joinpath("postgresql", f"{version:03d}_{name}.sql")
    if extra.is_file():
        sql += "\n" + extra.read_text(encoding="utf-8")
    return sql


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def connect(url: str, *, read_only: bool = False) -> psycopg.Connection:
    """A psycopg connection in autocommit mode (the store opens its transactions itself) with DuckDB's types."""
    if psycopg is None:
        raise StoreError("the PostgreSQL backend needs psycopg: pip install 'psycopg[binary]'")
    try:
        conn = psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to {redacted(url)}: {exc}".strip()) from exc
    # DuckDB hands JSON back as text and sums of integers as numbers; psycopg would parse JSON and give Decimals.
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)
    conn.adapters.register_loader("numeric", FloatLoader)
    if read_only:
        conn.execute("SET default_transaction_read_only = on")
    return conn


# -- results ---------------------------------------------------------------------------------------------------
_ARROW_OF_OID: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 26: pa.int64(), 700: pa.float32(),
    701: pa.float64(), 1700: pa.float64(), 25: pa.string(), 1043: pa.string(), 1042: pa.string(),
    19: pa.string(), 114: pa.string(), 3802: pa.string(), 1114: pa.timestamp("us"), 1082: pa.date32(),
    17: pa.binary(), 1009: pa.list_(pa.string()), 1015: pa.list_(pa.string()), 1016: pa.list_(pa.int64()),
    1007: pa.list_(pa.int32()), 1022: pa.list_(pa.float64()),
}


#: pandas' nullable dtypes, which DuckDB gives integer and boolean columns holding NULLs.
_NULLABLE: dict[pa.DataType, Any] = {
    pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _arrow_type(oid: int) -> pa.DataType | None:
    known = _ARROW_OF_OID.get(oid)
    if known is not None:
        return known
    if oid == 1184:  # timestamptz: the store keeps naive local times, so this only comes from now()
        return pa.timestamp("us", tz="UTC")
    return None  # let Arrow infer (e.g. the text of an unknown type)


# -- Arrow → COPY ------------------------------------------------------------------------------------------------
def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "BIGINT" if t.bit_width > 32 or t == pa.uint32() else "INTEGER"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE PRECISION"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP" if t.tz is None else "TIMESTAMPTZ"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BYTEA"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _pg_type(t.value_type) + "[]"
    return "TEXT"


def _copyable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Columns in the text form ``COPY … (FORMAT csv)`` reads: bytes as ``\\x`` hex, lists as array literals."""
    arrays, changed = [], False
    for col, fld in zip(batch.columns, batch.schema, strict=True):
        t = fld.type
        if pa.types.is_dictionary(t):
            col, t, changed = col.cast(t.value_type), t.value_type, True
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            col = pa.array([None if v is None else "\\x" + v.hex() for v in col.to_pylist()], pa.string())
            changed = True
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            col = pa.array([None if v is None else _array_literal(v) for v in col.to_pylist()], pa.string())
            changed = True
        elif pa.types.is_null(t):
            col, changed = col.cast(pa.string()), True
        arrays.append(col)
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _array_literal(values: list[Any]) -> str:
    def item(v: Any) -> str:
        if v is None:
            return "NULL"
        s = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'

    return "{" + ",".join(item(v) for v in values) + "}"


def _batches(data: Any) -> tuple[pa.Schema, Iterable[pa.RecordBatch]]:
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, pa.Table):
        return data.schema, data.to_batches(max_chunksize=200_000)
    if isinstance(data, pads.Dataset):
        return data.schema, data.to_batches(batch_size=200_000)
    if isinstance(data, pa.RecordBatchReader):
        return data.schema, data
    raise StoreError(f"cannot register a {type(data).__name__} as a table")


class PgCursor:
    """One thread's connection to the PostgreSQL database, used like a DuckDB cursor by the query modules.

    Parameters
    ----------
    conn
        A connection from :func:`connect`; this cursor owns it.
    """

    backend = "postgresql"

    def __init__(self, conn: psycopg.Connection, *, read_only: bool = False) -> None:
        self.conn = conn
        self.read_only = read_only
        self._cur = conn.cursor()

    # -- DuckDB's cursor interface, as the store uses it -------------------------------------------------------
    def execute(self, sql: str, params: Any = None) -> PgCursor:
        """Run one statement (several, ``;``-separated, when there are no parameters); fetch with the methods."""
        try:
            self._cur.execute(translate(sql), _params(params))
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL refused a store query: {exc}".strip()) from exc
        return self

    @property
    def description(self) -> Any:
        """Column descriptions of the last result (``d[0]`` is the name)."""
        return self._cur.description

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row of the last result."""
        return self._cur.fetchall() if self._cur.description is not None else []

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last result."""
        return self._cur.fetchone() if self._cur.description is not None else None

    def fetch_arrow_table(self) -> pa.Table:
        """The last result as an Arrow table, typed like DuckDB's (timestamps in microseconds, text as string)."""
        desc = self._cur.description or []
        rows = self._cur.fetchall() if desc else []
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in desc]
        arrays = []
        for d, values in zip(desc, columns, strict=True):
            vals = list(values)
            t = _arrow_type(d.type_code)
            if t is not None and pa.types.is_binary(t):
                vals = [None if v is None else bytes(v) for v in vals]
            arrays.append(pa.array(vals, type=t) if (t is not None or vals) else pa.array(vals, pa.string()))
        return pa.Table.from_arrays(arrays, names=[d.name for d in desc])

    def df(self) -> pd.DataFrame:
        """The last result as a DataFrame with DuckDB's dtypes: integers and booleans with NULLs as pandas'
        nullable types, a text column of nothing but NULLs as ``object``."""
        table = self.fetch_arrow_table()
        frame = table.to_pandas()
        for name, col in zip(table.column_names, table.columns, strict=True):
            if not col.null_count:
                continue
            nullable = _NULLABLE.get(col.type)
            if nullable is not None:
                frame[name] = col.to_pandas(types_mapper=_NULLABLE.get).set_axis(frame.index)
            elif pa.types.is_string(col.type) and col.null_count == len(col):
                frame[name] = pd.Series([None] * len(col), index=frame.index, dtype=object)
        return frame

    def register(self, name: str, data: Any) -> None:
        """Make ``data`` (Arrow table, dataset, record batch reader or DataFrame) queryable as ``name``.

        A temporary table of this connection, filled by ``COPY``; ``name`` is one of the store's constants.
        """
        if not re.fullmatch(r"_[a-z_]+", name):
            raise StoreError(f"registered names are the store's own (_lower_case), got {name!r}")
        schema, batches = _batches(data)
        cols = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in schema)
        names = ", ".join(f'"{f}"' for f in schema.names)
        try:
            with self._writable_session():
                self._cur.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
                self._cur.execute(f"CREATE TEMP TABLE {name} ({cols})")
                with self._cur.copy(f"COPY {name} ({names}) FROM STDIN (FORMAT csv)") as copy:
                    for batch in batches:
                        if batch.num_rows == 0:
                            continue
                        buf = io.BytesIO()
                        pacsv.write_csv(_copyable(batch), buf, pacsv.WriteOptions(include_header=False))
                        copy.write(buf.getbuffer())
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL refused rows for {name}: {exc}".strip()) from exc

    def unregister(self, name: str) -> None:
        """Drop the temporary table made by :meth:`register`."""
        if re.fullmatch(r"_[a-z_]+", name):
            with self._writable_session():
                self._cur.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")

    @contextmanager
    def _writable_session(self) -> Iterator[None]:
        """On a read-only store, lift the session's read-only default around this connection's own temporary
        tables (PostgreSQL refuses even those in a read-only transaction; they change nothing shared). Inside an
        open transaction nothing is changed: a read-only store opens none."""
        lift = self.read_only and self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if lift:
            self._cur.execute("SET default_transaction_read_only = off")
        try:
            yield
        finally:
            if lift:
                self._cur.execute("SET default_transaction_read_only = on")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _params(params: Any) -> Any:
    # Never None: psycopg leaves the text alone without parameters, and the translated ``%%`` must become ``%``.
    if params is None:
        return []
    if isinstance(params, dict):
        return {k: _value(v) for k, v in params.items()}
    return [_value(v) for v in params]


def _value(v: Any) -> Any:
    """Parameters as psycopg adapts them: numpy scalars and pandas times as Python values."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.to_pydatetime()
    if isinstance(v, np.ndarray):
        return [_value(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_value(x) for x in v]
    if v is pd.NaT:
        return None
    return v
