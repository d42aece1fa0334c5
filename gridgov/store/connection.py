"""Opening the store: a DuckDB file (the default) or a PostgreSQL/PostGIS database, migrations, one writer at a time.

Where the store lives is a *location*: a file path or ``duckdb:///path`` for DuckDB, ``postgresql://…`` for
PostgreSQL (:func:`parse_location`). The query modules are written once against the cursor interface of DuckDB;
:mod:`gridgov.store.postgres` gives PostgreSQL connections the same interface.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Self

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow as pa
import shapely

from gridgov.errors import ExtensionMissingError, SchemaVersionError, StoreBusyError, StoreError
from gridgov.store import postgres

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
#: DuckDB settings that :func:`local_setting` may change for a block.
_LOCAL_SETTINGS = frozenset({"perfect_ht_threshold", "preserve_insertion_order"})


def parse_location(location: Path | str) -> tuple[str, Path | str]:
    """Which backend a store location names, and its file path or connection URL.

    Examples
    --------
    >>> parse_location("var/g.duckdb")
    ('duckdb', PosixPath('var/g.duckdb'))
    >>> parse_location("duckdb:///srv/g.duckdb")
    ('duckdb', PosixPath('/srv/g.duckdb'))
    >>> parse_location("postgresql://gridgov@db.example:5432/city")
    ('postgresql', 'postgresql://gridgov@db.example:5432/city')
    """
    if isinstance(location, Path):
        return "duckdb", location
    text = str(location)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "duckdb", Path(text)
    if scheme == "duckdb":
        if not rest.startswith("/"):
            raise StoreError(f"a DuckDB URL is duckdb:///path/to/file.duckdb (three slashes), got {text!r}")
        # duckdb:///abs/path and duckdb:///./relative both name a file; the first slash ends the empty host.
        return "duckdb", Path(rest[1:] if rest.startswith("/./") else rest)
    if scheme in postgres.SCHEMES:
        return "postgresql", text
    raise StoreError(f"unknown store location {text!r}: use a file path, duckdb:///path or postgresql://…")


def describe_location(location: Path | str) -> str:
    """The location as shown to people (a URL without its password)."""
    backend, target = parse_location(location)
    return postgres.redacted(str(target)) if backend == "postgresql" else str(target)


def location_exists(location: Path | str) -> bool:
    """Whether a DuckDB file exists; a PostgreSQL database is taken to exist (it is created by its administrator)."""
    backend, target = parse_location(location)
    return backend == "postgresql" or Path(target).exists()


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a query result, read to its end.

    Never ``fetchone()``: in DuckDB 1.4 a half-read result keeps a scan lock on its table, and the automatic
    checkpoint after a large commit on another cursor then waits forever (duckdb-python#182, fixed in 1.5).
    """
    rows = result.fetchall()
    return rows[0] if rows else None


def upsert(table: str, keys: tuple[str, ...], columns: tuple[str, ...], source: str) -> str:
    """``INSERT INTO table (columns) <source> ON CONFLICT (keys) DO UPDATE SET …``: insert rows, replacing those
    whose key exists (DuckDB and PostgreSQL both read this form). Names are the store's constants, never input.

    Examples
    --------
    >>> upsert("meta", ("key",), ("key", "value"), "VALUES (?, ?)")
    'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'
    """
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (f"INSERT INTO {table} ({', '.join(columns)}) {source} ON CONFLICT ({', '.join(keys)}) "
            f"DO UPDATE SET {sets}")


def in_ids(column: str, n: int) -> str:
    """``column IN (?, ?, …)`` for ``n`` id parameters, or ``FALSE`` when there are none.

    A constant ``IN`` list is answered from the column's zone maps (ids grow with insertion), milliseconds at millions
    of rows; ``list_contains(?, column)`` with one list parameter is evaluated row by row over the whole table
    (seconds), and even ``IN (NULL)`` reads every row. ``column`` is a name written in the store's code, never input.
    """
    return f"{column} IN ({', '.join(['?'] * n)})" if n > 0 else "FALSE"


@contextmanager
def local_setting(con: duckdb.DuckDBPyConnection, name: str, value: Any) -> Iterator[None]:
    """Change one DuckDB setting of this cursor for the block, then put the old value back.

    Parameters
    ----------
    con
        The cursor; settings such as ``perfect_ht_threshold`` and ``preserve_insertion_order`` are the cursor's own.
    name
        The setting, one of :data:`_LOCAL_SETTINGS` (names cannot be parameters in SQL).
    value
        The value for the block (passed as a parameter).
    """
    if name not in _LOCAL_SETTINGS:
        raise StoreError(f"setting {name!r} is not one the store changes; known: {sorted(_LOCAL_SETTINGS)}")
    if isinstance(con, postgres.PgCursor):  # DuckDB's planner settings; PostgreSQL has no such knobs
        yield
        return
    old = first_row(con.execute("SELECT current_setting(?)", [name]))
    con.execute(f"SET {name} = ?", [value])
    try:
        yield
    finally:
        con.execute(f"SET {name} = ?", [old[0] if old else value])


def _quiet(con: duckdb.DuckDBPyConnection) -> None:
    # DuckDB draws a progress bar on stdout for statements over two seconds (a migration of a large file, an import's
    # publish): it would land in the JSON that `gridgov … --json` prints and in the output of whoever embeds the
    # store. The setting is per cursor.
    con.execute("SET enable_progress_bar = false")


def _extension_directory() -> str:
    try:
        import duckdb_ext  # type: ignore[import-not-found]
    except ImportError:
        raise ExtensionMissingError(
            "the DuckDB spatial extension is not installed; run: pip install 'duckdb-ext-spatial==1.4.4.20260205'"
        ) from None
    return str(Path(next(iter(duckdb_ext.__path__))) / "extensions")


def load_spatial(con: duckdb.DuckDBPyConnection) -> None:
    """Load the spatial extension shipped in the ``duckdb-ext-spatial`` wheel (no network)."""
    try:
        con.execute("SET extension_directory = ?", [_extension_directory()])
        con.execute("LOAD spatial")
    except duckdb.Error as exc:
        raise ExtensionMissingError(
            f"cannot load the DuckDB spatial extension ({exc}); install the matching wheel with "
            f"pip install 'duckdb=={duckdb.__version__}' 'duckdb-ext-spatial==1.4.4.20260205'"
        ) from exc


def migrations() -> list[tuple[int, str, str]]:
    """The numbered migrations shipped with this gridgov: ``(version, name, sql)`` in order."""
    out = []
    for entry in resources.files("gridgov.store.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    return out


def latest_version() -> int:
    """Schema version this gridgov writes."""
    return migrations()[-1][0]


class Connection:
    """Owns the store's connection and hands out a cursor per thread.

    Parameters
    ----------
    path
        The location (:func:`parse_location`): a DuckDB file, whose folder is created when missing, or a
        ``postgresql://`` URL of an existing database (PostGIS is enabled in it on first open).
    read_only
        Open without the write lock (several readers may share a file that no writer holds); on PostgreSQL, every
        transaction is read-only.

    Attributes
    ----------
    location
        Where the store lives, as given to :func:`parse_location` would return it: the file's path or the URL.
    backend
        ``"duckdb"`` or ``"postgresql"``.
    path
        The DuckDB file; for PostgreSQL a private scratch path of this process (an import stages next to it).
    label
        The location as shown in messages (no password).
    """

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.backend, target = parse_location(path)
        self.location: Path | str = target
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.RLock()
        # Held by a running import while it stages (not the write lock: staging must not stop other writes); it
        # keeps two imports of this process from sharing the scratch folder.
        self._import_lock = threading.Lock()
        if self.backend == "postgresql":
            self._open_postgres(str(target))
        else:
            self._open_duckdb(Path(target))
        self._migrate()

    def _open_duckdb(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise StoreError(f"database file {self.path} does not exist; build it with `gridgov demo`")
        try:
            self._con = duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusyError(
                    f"{self.path} is open for writing by another process (usually `gridgov serve` or app.py). "
                    "Stop that process or send the change through the running server."
                ) from exc
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        load_spatial(self._con)
        _quiet(self._con)

    def _open_postgres(self, url: str) -> None:
        self.url = url
        self.label = postgres.redacted(url)
        # Nothing lives next to a server database; an import's scratch files go to this process's temp folder.
        self.path = Path(tempfile.gettempdir()) / f"gridgov-{os.getpid()}-{id(self):x}"
        # Connections of threads that have ended are closed when the next thread opens one (a threaded web server
        # starts threads freely; the database's connection limit is not).
        self._threads: dict[int, tuple[threading.Thread, postgres.PgCursor]] = {}
        self._threads_lock = threading.Lock()
        self._con = postgres.PgCursor(postgres.connect(url, read_only=self.read_only), read_only=self.read_only)

    # -- connection handling -------------------------------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not shared between threads)."""
        cur = getattr(self._local, "cur", None)
        if cur is None:
            if self.backend == "postgresql":
                cur = self._thread_connection()
            else:
                cur = self._con.cursor()
                load_spatial(cur)
                _quiet(cur)
            self._local.cur = cur
        return cur

    def _thread_connection(self) -> postgres.PgCursor:
        cur = postgres.PgCursor(postgres.connect(self.url, read_only=self.read_only), read_only=self.read_only)
        with self._threads_lock:
            for ident, (thread, old) in list(self._threads.items()):
                if not thread.is_alive():
                    old.close()
                    del self._threads[ident]
            self._threads[threading.get_ident()] = (threading.current_thread(), cur)
        return cur

    def close(self) -> None:
        """Close the store (for DuckDB, checkpointing the write-ahead log)."""
        if self.backend == "postgresql":
            with self._threads_lock:
                for _, cur in self._threads.values():
                    cur.close()
                self._threads.clear()
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One writing transaction on this thread's cursor; rolled back on any error.

        One writer at a time: within the process by a lock, and on PostgreSQL across every process on the database
        by a transaction-level advisory lock, so that a check and the write that follows it (the next id, a free
        external id, a grid's primary worker) are never interleaved with another writer's.
        """
        con = self.con
        with self._lock:
            con.execute("BEGIN TRANSACTION")
            try:
                if self.backend == "postgresql":
                    con.execute("SELECT pg_advisory_xact_lock(?)", [postgres.WRITE_LOCK_KEY])
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def refresh_statistics(self, tables: list[str] | None = None) -> None:
        """Give PostgreSQL's planner statistics of freshly loaded tables, at once rather than when autovacuum comes
        by (a minute or more); ``None``: every table. DuckDB keeps its own as it writes: nothing to do.

        Parameters
        ----------
        tables
            Table names from the store's code or the database's own catalogue, never input.
        """
        if self.backend != "postgresql":
            return
        names = ", ".join('"' + t.replace('"', '""') + '"' for t in tables or [])
        self.con.execute(f"ANALYZE {names}")

    # -- schema ----------------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        con = self._con
        if self.read_only:
            self._pending_migrations()
            return
        if self.backend == "postgresql":
            # Several servers may start at once: one migrates, the others wait and then find nothing to do.
            con.execute("SELECT pg_advisory_lock(?)", [postgres.WRITE_LOCK_KEY])
            try:
                con.execute(postgres.PRELUDE)
                self._apply_migrations()
            finally:
                con.execute("SELECT pg_advisory_unlock(?)", [postgres.WRITE_LOCK_KEY])
        else:
            self._apply_migrations()

    def _pending_migrations(self) -> list[tuple[int, str, str]]:
        have = self.schema_version
        known = migrations()
        newest = known[-1][0]
        if have > newest:
            raise SchemaVersionError(
                f"{self.label} has schema version {have}, newer than this gridgov understands ({newest}); "
                "upgrade gridgov (pip install -U gridgov) to open it"
            )
        pending = [m for m in known if m[0] > have]
        if pending and self.read_only:
            raise StoreError(f"{self.label} needs migrating to version {newest}; open it once without read_only")
        return pending

    def _apply_migrations(self) -> None:
        con = self._con
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        for version, name, sql in self._pending_migrations():
            if self.backend == "postgresql":
                sql = postgres.migration_sql(version, name, sql)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, ?, ?)", [version, name, datetime.now()])
            except (duckdb.Error, StoreError) as exc:
                con.execute("ROLLBACK")
                raise StoreError(f"migration {version:03d}_{name} failed on {self.label}: {exc}") from exc
            con.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        """Highest migration applied to the store (0 for a new one)."""
        exists = first_row(self._con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name = 'schema_version' AND table_schema = current_schema()"
        ))
        if not exists or not exists[0]:
            return 0
        row = first_row(self._con.execute("SELECT coalesce(max(version), 0) FROM schema_version"))
        return int(row[0]) if row else 0

    # -- helpers shared by the query modules -----------------------------------------------------------------
    def df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a query and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def gdf(self, sql: str, params: list[Any] | None = None, *, geom: str = "wkb") -> gpd.GeoDataFrame:
        """Run a query whose column ``geom`` holds WKB and return a GeoDataFrame in EPSG:4326."""
        table = self.con.execute(sql, params or []).fetch_arrow_table()
        df = table.drop([geom]).to_pandas()
        geoms = shapely.from_wkb(table.column(geom).to_numpy(zero_copy_only=False))
        return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def geo_arrow(gdf: gpd.GeoDataFrame, columns: list[str]) -> pa.Table:
    """Columns of a GeoDataFrame plus its geometry as WKB (``wkb``), ready for ``INSERT … SELECT``.

    Raises
    ------
    StoreError
        When the frame is not in EPSG:4326 (the store keeps lon/lat).
    """
    if gdf.crs is None or gdf.crs.to_epsg() != 4326:
        raise StoreError(f"geometries must be in EPSG:4326 before storing, got {gdf.crs}")
    table = pa.Table.from_pandas(pd.DataFrame(gdf[columns]), preserve_index=False)
    return table.append_column("wkb", pa.array(shapely.to_wkb(gdf.geometry.values), type=pa.binary()))
