"""Import batches and rejected rows.

An import is written in two phases so that a batch is atomic *and* memory stays bounded:

1. **Staging.** Each chunk of validated rows is written as Arrow IPC files (incidents, the open ones among them
   again, and rejects) to a scratch folder next to the database (``<db>.import-stage/``). DuckDB 1.4 keeps rows
   appended inside one open transaction in memory until it commits (about the size of the data), so streaming a
   million rows into one transaction would grow memory with the file; files on disk do not. Writing IPC is close
   to a memory copy, while staging into DuckDB tables cost a compressed write per chunk and a second one when
   publishing.
2. **Publishing.** One transaction copies the staged files into ``incident`` and ``reject`` (``INSERT … SELECT``
   from the files, streamed by DuckDB's Arrow scan), the batch's open cases into ``open_case``, and records the
   ``import_batch`` row. Readers see all of a batch or nothing of it.

The scratch folder is never read by anything but the importer; it is created fresh by every import (so a crash
mid-import leaves nothing that a later import could pick up) and removed at the end.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from gridgov.errors import StoreError
from gridgov.incidents import OPEN_STATUSES
from gridgov.store.connection import Connection, local_setting
from gridgov.store.incidents import INCIDENT_COLUMNS, OPEN_CASE_COLUMNS, add_open_cases

_BATCH_COLUMNS = "batch_id, file, sha256, source, params, rows_in, accepted, rejected, duplicates, imported_at"
_INCIDENT_SELECT = ", ".join(c for c in INCIDENT_COLUMNS if c != "batch_id")
_STAGE_SUFFIX = ".import-stage"
_TIMESTAMP = pa.timestamp("us")
# Types of the staged files: the ``incident`` and ``reject`` columns (every chunk cast to these, so that the files
# form one dataset whatever pandas inferred for a chunk, e.g. an all-empty text column).
_STAGE_INCIDENT_SCHEMA = pa.schema([
    ("incident_id", pa.int64()), ("source", pa.string()), ("external_id", pa.string()),
    ("category_code", pa.string()), ("reported_at", _TIMESTAMP), ("due_at", _TIMESTAMP), ("status", pa.string()),
    ("dispatched_at", _TIMESTAMP), ("handled_at", _TIMESTAMP), ("closed_at", _TIMESTAMP), ("lon", pa.float64()),
    ("lat", pa.float64()), ("unit_id", pa.int32()), ("address", pa.string()), ("description", pa.string()),
    ("reporter_name", pa.string()), ("reporter_phone", pa.string()),
])
#: The open cases among the staged incidents, kept apart while staging so that publishing adds them to ``open_case``
#: without reading every staged incident a second time.
_STAGE_OPEN_SCHEMA = pa.schema([_STAGE_INCIDENT_SCHEMA.field(c) for c in (*OPEN_CASE_COLUMNS, "status")])
_STAGE_REJECT_SCHEMA = pa.schema([("row_no", pa.int64()), ("field", pa.string()), ("reason", pa.string()),
                                  ("raw", pa.string())])
_STAGE_SCHEMAS = {"incident": _STAGE_INCIDENT_SCHEMA, "open": _STAGE_OPEN_SCHEMA, "reject": _STAGE_REJECT_SCHEMA}


@dataclass
class _Staging:
    """The scratch folder of the running import and what was written to it."""

    folder: Path
    files: dict[str, list[Path]] = field(default_factory=lambda: {kind: [] for kind in _STAGE_SCHEMAS})

    def write(self, kind: str, table: pa.Table) -> None:
        files = self.files[kind]
        path = self.folder / f"{kind}-{len(files):06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        files.append(path)

    def dataset(self, kind: str) -> pads.Dataset:
        return pads.dataset([str(p) for p in self.files[kind]], format="ipc", schema=_STAGE_SCHEMAS[kind])


def _as_table(frame: pd.DataFrame | pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns of ``schema`` from a frame or table (absent ones all null), cast to its types."""
    if isinstance(frame, pd.DataFrame):
        present = [c for c in schema.names if c in frame.columns]
        frame = pa.Table.from_pandas(frame[present], preserve_index=False)
    n = frame.num_rows
    arrays = []
    for fld in schema:
        if fld.name in frame.column_names:
            arrays.append(frame.column(fld.name).cast(fld.type))
        else:
            arrays.append(pa.nulls(n, fld.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class ImportsMixin(Connection):
    """Queries on ``import_batch`` and ``reject``, and the staging of an import.

    Every query is parameterised; the only names put into SQL text are this module's constants.
    """

    #: The running import's scratch files (set inside :meth:`import_staging`).
    _import_stage: _Staging | None = None

    def _cursor(self, con: duckdb.DuckDBPyConnection | None) -> duckdb.DuckDBPyConnection:
        return con if con is not None else self.con

    # -- batches ---------------------------------------------------------------------------------------------
    def find_import_batch(self, sha256: str, *, con: duckdb.DuckDBPyConnection | None = None
                          ) -> dict[str, Any] | None:
        """The batch that imported content with this hash, or None.

        Parameters
        ----------
        sha256
            Hex SHA-256 of the file content.
        con
            Cursor of an open transaction; ``None`` uses this thread's cursor.

        Returns
        -------
        dict or None
            The ``import_batch`` row as a dict (``params`` decoded).
        """
        res = self._cursor(con).execute(f"SELECT {_BATCH_COLUMNS} FROM import_batch WHERE sha256 = ?", [sha256])
        # fetchall, never fetchone: a half-read result blocks DuckDB's checkpoint (see connection.first_row).
        rows = res.fetchall()
        if not rows:
            return None
        out = dict(zip([d[0] for d in res.description], rows[0], strict=True))
        out["params"] = json.loads(out["params"]) if out["params"] else {}
        return out

    def import_batches(self) -> pd.DataFrame:
        """Every import batch, newest first."""
        return self.df(f"SELECT {_BATCH_COLUMNS} FROM import_batch ORDER BY batch_id DESC")

    def rejects(self, batch_id: int) -> pd.DataFrame:
        """Rejected rows of one batch (``row_no, field, reason, raw``) in file order; ``raw`` is JSON text."""
        return self.df(
            "SELECT row_no, field, reason, CAST(raw AS VARCHAR) AS raw FROM reject WHERE batch_id = ? "
            "ORDER BY row_no",
            [batch_id],
        )

    def reject_counts(self, batch_id: int) -> dict[str, int]:
        """Number of rejected rows of one batch per reason code."""
        rows = self.con.execute(
            "SELECT reason, count(*) FROM reject WHERE batch_id = ? GROUP BY reason ORDER BY reason", [batch_id]
        ).fetchall()
        return {str(r): int(n) for r, n in rows}

    # -- staging ---------------------------------------------------------------------------------------------
    @contextmanager
    def import_staging(self) -> Iterator[int]:
        """A fresh scratch folder for one import, removed at the end whatever happens.

        Holds the store's write lock throughout, so that two imports in one process cannot share the folder and
        nothing else in the process writes incidents meanwhile (other processes cannot: one writer per file).

        Yields
        ------
        int
            The highest ``incident_id`` now: staged incidents are numbered after it, in file order. Numbering
            while staging spares the publishing transaction a sort of the whole batch.
        """
        with self._lock:
            folder = self.path.with_name(self.path.name + _STAGE_SUFFIX)
            # Left over by a crashed import (or a killed one): never picked up, only replaced.
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            con = self.con
            # The external ids staged so far, for duplicates across chunks: a temporary table, committed chunk by
            # chunk, so DuckDB may spill it to disk, and a join finds a chunk's ids without rereading the files.
            con.execute("CREATE OR REPLACE TEMP TABLE import_stage_key (source VARCHAR, external_id VARCHAR)")
            self._import_stage = _Staging(folder)
            last_id = int(con.execute("SELECT coalesce(max(incident_id), 0) FROM incident").fetchall()[0][0])
            try:
                yield last_id
            finally:
                self._import_stage = None
                con.execute("DROP TABLE IF EXISTS temp.import_stage_key")
                shutil.rmtree(folder, ignore_errors=True)

    def _staging(self) -> _Staging:
        stage = self._import_stage
        if stage is None:
            raise StoreError("no import is being staged; stage rows inside `with store.import_staging():`")
        return stage

    def stage_incidents(self, incidents: pd.DataFrame | pa.Table) -> int:
        """Add validated incidents (``incident_id`` and incident columns) to the running import's scratch files.

        Parameters
        ----------
        incidents
            Rows in file order; absent optional columns are stored as NULL, other columns are ignored.

        Returns
        -------
        int
            Number of rows staged.
        """
        if len(incidents) == 0:
            return 0
        table = _as_table(incidents, _STAGE_INCIDENT_SCHEMA)
        stage = self._staging()
        stage.write("incident", table)
        opened = table.filter(pc.is_in(table.column("status"), pa.array(OPEN_STATUSES, pa.string())))
        if opened.num_rows:
            stage.write("open", opened.select(_STAGE_OPEN_SCHEMA.names))
        cur = self.con
        cur.register("_stage_keys", table.select(["source", "external_id"]))
        try:
            cur.execute("INSERT INTO temp.import_stage_key SELECT source, external_id FROM _stage_keys "
                        "WHERE external_id IS NOT NULL")
        finally:
            cur.unregister("_stage_keys")
        return table.num_rows

    def stage_rejects(self, rejects: pd.DataFrame | pa.Table) -> int:
        """Add rejected rows (``row_no, field, reason, raw`` as JSON text) to the running import's scratch files."""
        if len(rejects) == 0:
            return 0
        table = _as_table(rejects, _STAGE_REJECT_SCHEMA)
        self._staging().write("reject", table)
        return table.num_rows

    def known_external_ids(self, keys: pd.DataFrame) -> pd.DataFrame:
        """Which ``(source, external_id)`` pairs are taken, in one join (never one query per row).

        Looks in ``incident`` and, during an import, in the rows already staged by it.

        Parameters
        ----------
        keys
            Columns ``key`` (any integer the caller uses to match rows back), ``source`` and ``external_id``.

        Returns
        -------
        pandas.DataFrame
            ``key, staged`` for the keys already present; ``staged`` is true when only an earlier row of the
            running import holds the id.
        """
        if keys.empty:
            return pd.DataFrame({"key": pd.Series(dtype="int64"), "staged": pd.Series(dtype=bool)})
        table = pa.table({
            "key": pa.array(keys["key"].to_numpy(dtype="int64")),
            "source": pa.array(keys["source"], from_pandas=True).cast(pa.string()),
            "external_id": pa.array(keys["external_id"], from_pandas=True).cast(pa.string()),
        })
        stage_sql = ("UNION ALL SELECT source, external_id, TRUE FROM temp.import_stage_key"
                     if self._import_stage is not None else "")
        cur = self.con
        cur.register("_keys", table)
        try:
            return cur.execute(
                "SELECT k.key, bool_and(t.staged) AS staged FROM _keys k "
                "JOIN (SELECT source, external_id, FALSE AS staged FROM incident WHERE external_id IS NOT NULL "
                f"{stage_sql}) t ON t.source = k.source AND t.external_id = k.external_id "
                "GROUP BY k.key ORDER BY k.key"
            ).df()
        finally:
            cur.unregister("_keys")

    def publish_import(self, *, file: str, sha256: str, source: str | None, params: dict[str, Any], rows_in: int,
                       duplicates: int, imported_at: datetime) -> dict[str, Any]:
        """Move the staged rows into ``incident`` (open ones also into ``open_case``) and ``reject`` and record the
        batch, in one transaction.

        Incidents keep the ids given while staging (after the highest ``incident_id`` when staging began).

        Parameters
        ----------
        file, sha256
            Name and content hash of the input (the hash is unique: content imports once).
        source
            Default source label of the batch's rows.
        params
            Options the import ran with (JSON-able), to reproduce it.
        rows_in, duplicates
            Rows read, and rejected rows that were duplicate external ids.
        imported_at
            When the import ran (naive local time).

        Returns
        -------
        dict
            The ``import_batch`` row written, or the existing one (``already_imported: True``) when the same
            content was published meanwhile.

        Raises
        ------
        StoreError
            When the staged counts do not add up to ``rows_in``.
        """
        stage = self._staging()
        incidents, rejects = stage.dataset("incident"), stage.dataset("reject")
        accepted, rejected = incidents.count_rows(), rejects.count_rows()
        with self.transaction() as tx:
            existing = self.find_import_batch(sha256, con=tx)
            if existing is not None:
                return {**existing, "already_imported": True}
            if accepted + rejected != rows_in:
                raise StoreError(f"import of {file} staged {accepted} + {rejected} rows for {rows_in} read; "
                                 "nothing was imported")
            batch_id = int(tx.execute(
                "SELECT greatest((SELECT coalesce(max(batch_id), 0) FROM import_batch), "
                "(SELECT coalesce(max(batch_id), 0) FROM incident), "
                "(SELECT coalesce(max(batch_id), 0) FROM reject)) + 1"
            ).fetchall()[0][0])
            tx.register("_staged_incident", incidents)
            tx.register("_staged_open", stage.dataset("open"))
            tx.register("_staged_reject", rejects)
            try:
                clash = tx.execute(
                    "SELECT count(*) FROM incident "
                    "WHERE incident_id >= (SELECT min(incident_id) FROM _staged_incident)"
                ).fetchall()[0][0]
                if clash:
                    raise StoreError(f"incidents were added while {file} was being imported; import it again")
                # No ORDER BY: the staged rows are already numbered in file order, and sorting costs memory. Without
                # insertion order to keep, DuckDB inserts on all its threads, which saves about 40 % of the CPU time
                # here (the rows' ids carry the file order; nothing reads incidents in storage order).
                with local_setting(tx, "preserve_insertion_order", False):
                    tx.execute(
                        f"INSERT INTO incident (incident_id, {_INCIDENT_SELECT}, batch_id) "
                        f"SELECT incident_id, {_INCIDENT_SELECT}, ? FROM _staged_incident",
                        [batch_id],
                    )
                    add_open_cases(tx, "_staged_open")
                tx.execute("INSERT INTO reject SELECT ?, row_no, field, reason, CAST(raw AS JSON) "
                           "FROM _staged_reject", [batch_id])
            finally:
                tx.unregister("_staged_incident")
                tx.unregister("_staged_open")
                tx.unregister("_staged_reject")
            row = {"batch_id": batch_id, "file": file, "sha256": sha256, "source": source, "params": params,
                   "rows_in": rows_in, "accepted": accepted, "rejected": rejected, "duplicates": duplicates,
                   "imported_at": imported_at}
            self.record_import_batch(row, con=tx)
        return {**row, "already_imported": False}

    def record_import_batch(self, batch: dict[str, Any], *, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Insert one ``import_batch`` row (keys as the table's columns; ``params`` a JSON-able dict)."""
        self._cursor(con).execute(
            f"INSERT INTO import_batch ({_BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [batch["batch_id"], batch["file"], batch["sha256"], batch["source"],
             json.dumps(batch["params"], ensure_ascii=False, default=str), batch["rows_in"], batch["accepted"],
             batch["rejected"], batch["duplicates"], batch["imported_at"]],
        )
