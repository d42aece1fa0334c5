"""Import batches and rejected rows.

An import is written in two phases so that a batch is atomic *and* memory stays bounded:

1. **Staging.** Each chunk of validated rows is written as Arrow IPC files (incidents, the open ones among them
   again, and rejects) to a scratch folder next to the database (``<db>.import-stage/``). DuckDB 1.4 keeps rows
   appended inside one open transaction in memory until it commits (about the size of the data), so streaming a
   million rows into one transaction would grow memory with the file; files on disk do not. Writing IPC is close
   to a memory copy, while staging into DuckDB tables cost a compressed write per chunk and a second one when
   publishing. Staged incidents carry a sequence number (``seq``, 1, 2, … in file order), not an id. Staging does
   not hold the store's write lock, so intake API cases and case actions are written meanwhile.
2. **Publishing.** One transaction (under the write lock) numbers the staged incidents after the highest
   ``incident_id`` it reads (``incident_id = max + seq``, an addition, no sort), copies them into ``incident`` and
   ``reject`` (``INSERT … SELECT`` from the files, streamed by DuckDB's Arrow scan), the batch's open cases into
   ``open_case``, and records the ``import_batch`` row. A staged row whose ``(source, external_id)`` was written by
   someone else while the import staged becomes a ``duplicate_external_id`` reject there. Readers see all of a
   batch or nothing of it.

The scratch folder is never read by anything but the importer; it is created fresh by every import (so a crash
mid-import leaves nothing that a later import could pick up) and removed at the end.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from gridgov.errors import StoreError
from gridgov.incidents import OPEN_STATUSES
from gridgov.store.connection import Connection, local_setting
from gridgov.store.incidents import INCIDENT_COLUMNS, OPEN_CASE_COLUMNS

_BATCH_COLUMNS = "batch_id, file, sha256, source, params, rows_in, accepted, rejected, duplicates, imported_at"
_INCIDENT_SELECT = ", ".join(c for c in INCIDENT_COLUMNS if c != "batch_id")
_STAGE_SUFFIX = ".import-stage"
_TIMESTAMP = pa.timestamp("us")
# Types of the staged files: the ``incident`` and ``reject`` columns (every chunk cast to these, so that the files
# form one dataset whatever pandas inferred for a chunk, e.g. an all-empty text column).
_STAGE_INCIDENT_SCHEMA = pa.schema([
    ("seq", pa.int64()), ("row_no", pa.int64()), ("source", pa.string()), ("external_id", pa.string()),
    ("category_code", pa.string()), ("reported_at", _TIMESTAMP), ("due_at", _TIMESTAMP), ("status", pa.string()),
    ("dispatched_at", _TIMESTAMP), ("handled_at", _TIMESTAMP), ("closed_at", _TIMESTAMP), ("lon", pa.float64()),
    ("lat", pa.float64()), ("unit_id", pa.int32()), ("address", pa.string()), ("description", pa.string()),
    ("reporter_name", pa.string()), ("reporter_phone", pa.string()),
])
#: The open cases among the staged incidents, kept apart while staging so that publishing adds them to ``open_case``
#: without reading every staged incident a second time.
_STAGE_OPEN_SCHEMA = pa.schema([_STAGE_INCIDENT_SCHEMA.field(c) for c in ("seq", *OPEN_CASE_COLUMNS[1:], "status")])
_STAGE_REJECT_SCHEMA = pa.schema([("row_no", pa.int64()), ("field", pa.string()), ("reason", pa.string()),
                                  ("raw", pa.string())])
_STAGE_SCHEMAS = {"incident": _STAGE_INCIDENT_SCHEMA, "open": _STAGE_OPEN_SCHEMA, "reject": _STAGE_REJECT_SCHEMA}
_OPEN_CASE_INSERT = ", ".join(OPEN_CASE_COLUMNS)
_OPEN_CASE_STAGED = ", ".join(OPEN_CASE_COLUMNS[1:])
_LATE_FIELDS = ("source", "external_id", "category_code", "reported_at", "status", "closed_at", "lon", "lat",
                "address", "description", "reporter_name", "reporter_phone")
#: The ``raw`` of a staged row rejected at publish, per backend: its validated fields as a JSON object, as the source
#: row is no longer at hand.
_LATE_RAW = {
    "duckdb": "CAST(to_json(struct_pack({})) AS VARCHAR)".format(", ".join(f"{c} := s.{c}" for c in _LATE_FIELDS)),
    "postgresql": "CAST(json_build_object({}) AS VARCHAR)".format(", ".join(f"'{c}', s.{c}" for c in _LATE_FIELDS)),
}


@dataclass
class _Staging:
    """The scratch folder of the running import and what was written to it."""

    folder: Path
    #: The thread running the import: only it may stage into the folder.
    owner: int
    #: The highest ``incident_id`` when staging began; rows written meanwhile have higher ids.
    start_max: int
    #: Incidents staged so far (the next one gets ``seq = staged + 1``).
    staged: int = 0
    files: dict[str, list[Path]] = field(default_factory=lambda: {kind: [] for kind in _STAGE_SCHEMAS})

    def write(self, kind: str, table: pa.Table) -> None:
        files = self.files[kind]
        path = self.folder / f"{kind}-{len(files):06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        files.append(path)

    def dataset(self, kind: str) -> pads.Dataset:
        return pads.dataset([str(p) for p in self.files[kind]], format="ipc", schema=_STAGE_SCHEMAS[kind])


def _numbered(dataset: pads.Dataset, dropped: np.ndarray) -> pads.Dataset | pa.RecordBatchReader:
    """The staged rows without the ``dropped`` sequence numbers (sorted), the others renumbered to stay gapless.

    Without drops (the rule) the files are scanned as they are, on all of DuckDB's threads.
    """
    if dropped.size == 0:
        return dataset
    schema = dataset.schema
    at = schema.get_field_index("seq")

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in dataset.to_batches():
            seq = batch.column(at).to_numpy(zero_copy_only=False)
            keep = ~np.isin(seq, dropped)
            kept = seq[keep]
            arrays = list(batch.filter(pa.array(keep)).columns)
            arrays[at] = pa.array(kept - np.searchsorted(dropped, kept), type=pa.int64())
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


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
    def import_staging(self) -> Iterator[None]:
        """A fresh scratch folder for one import, removed at the end whatever happens.

        Imports of this process run one at a time (a later one waits for the running one). The store's write lock
        is not held: each staging step is short and on its own, and other writers (intake API cases, case actions)
        carry on. Incidents are numbered when the batch is published (:meth:`publish_import`).

        Raises
        ------
        StoreError
            When this thread is already staging an import.
        """
        running = self._import_stage
        if running is not None and running.owner == threading.get_ident():
            raise StoreError("this thread is already staging an import; publish or leave it before starting another")
        with self._import_lock:
            folder = self.path.with_name(self.path.name + _STAGE_SUFFIX)
            # Left over by a crashed import (or a killed one): never picked up, only replaced.
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            con = self.con
            # The external ids staged so far, for duplicates across chunks: a temporary table of this thread's
            # cursor, committed chunk by chunk, so DuckDB may spill it to disk, and a join finds a chunk's ids
            # without rereading the files.
            con.execute("DROP TABLE IF EXISTS temp.import_stage_key")
            con.execute("CREATE TEMP TABLE import_stage_key (source VARCHAR, external_id VARCHAR)")
            start_max = int(con.execute("SELECT coalesce(max(incident_id), 0) FROM incident").fetchall()[0][0])
            self._import_stage = _Staging(folder, owner=threading.get_ident(), start_max=start_max)
            try:
                yield
            finally:
                self._import_stage = None
                con.execute("DROP TABLE IF EXISTS temp.import_stage_key")
                shutil.rmtree(folder, ignore_errors=True)

    def _staging(self) -> _Staging:
        stage = self._import_stage
        if stage is None or stage.owner != threading.get_ident():
            raise StoreError("no import is being staged by this thread; stage rows inside "
                             "`with store.import_staging():`")
        return stage

    def stage_incidents(self, incidents: pd.DataFrame | pa.Table) -> int:
        """Add validated incidents (``row_no`` and incident columns) to the running import's scratch files.

        Each row gets the next sequence number of the import (calls in file order give file order); the batch's
        ids are ``max(incident_id) + seq`` at publish.

        Parameters
        ----------
        incidents
            Rows in file order, ``row_no`` their row in the file; absent optional columns are stored as NULL, other
            columns are ignored.

        Returns
        -------
        int
            Number of rows staged.
        """
        if len(incidents) == 0:
            return 0
        table = _as_table(incidents, _STAGE_INCIDENT_SCHEMA)
        stage = self._staging()
        seq = pa.array(np.arange(stage.staged + 1, stage.staged + 1 + table.num_rows, dtype=np.int64))
        table = table.set_column(table.schema.get_field_index("seq"), "seq", seq)
        stage.write("incident", table)
        stage.staged += table.num_rows
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

        Looks in ``incident`` and, when the calling thread is staging an import, in the rows already staged by it.

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
        stage = self._import_stage
        stage_sql = ("UNION ALL SELECT source, external_id, TRUE FROM temp.import_stage_key"
                     if stage is not None and stage.owner == threading.get_ident() else "")
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
                       duplicates: int, imported_at: datetime, external_id_field: str = "external_id"
                       ) -> dict[str, Any]:
        """Move the staged rows into ``incident`` (open ones also into ``open_case``) and ``reject`` and record the
        batch, in one transaction.

        Incidents are numbered there, after the highest ``incident_id`` the transaction reads, in staging order
        (``incident_id = max + seq``), so ids are gapless per batch whatever was written while the import staged.
        A staged row whose ``(source, external_id)`` was written meanwhile (by the intake API) becomes a
        ``duplicate_external_id`` reject instead; its ``raw`` holds the row's validated fields as JSON.

        Parameters
        ----------
        file, sha256
            Name and content hash of the input (the hash is unique: content imports once).
        source
            Default source label of the batch's rows.
        params
            Options the import ran with (JSON-able), to reproduce it.
        rows_in, duplicates
            Rows read, and rejected rows that were duplicate external ids when staged.
        imported_at
            When the import ran (naive local time).
        external_id_field
            Source column of the external id, the ``field`` of rejects made here.

        Returns
        -------
        dict
            The ``import_batch`` row written (counts include the rejects made here) with ``already_imported:
            False`` and ``late_duplicates``, the rows rejected here (``row_no, source, external_id``, in file
            order); or the existing row (``already_imported: True``) when the same content was published meanwhile.

        Raises
        ------
        StoreError
            When the staged counts do not add up to ``rows_in``.
        """
        stage = self._staging()
        incidents, opened, rejects = stage.dataset("incident"), stage.dataset("open"), stage.dataset("reject")
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
            base = int(tx.execute("SELECT coalesce(max(incident_id), 0) FROM incident").fetchall()[0][0])
            late = self._late_duplicates(tx, incidents, stage.start_max, _LATE_RAW[self.backend])
            dropped = late.column("seq").to_numpy()
            tx.register("_staged_incident", _numbered(incidents, dropped))
            tx.register("_staged_open", _numbered(opened, dropped))
            tx.register("_staged_reject", rejects)
            tx.register("_late_reject", late)
            try:
                # No ORDER BY: the ids are the staged sequence numbers plus one constant, and sorting costs memory.
                # Without insertion order to keep, DuckDB inserts on all its threads, which saves about 40 % of the
                # CPU time here (the rows' ids carry the file order; nothing reads incidents in storage order).
                with local_setting(tx, "preserve_insertion_order", False):
                    tx.execute(
                        f"INSERT INTO incident (incident_id, {_INCIDENT_SELECT}, batch_id) "
                        f"SELECT ? + seq, {_INCIDENT_SELECT}, ? FROM _staged_incident",
                        [base, batch_id],
                    )
                    tx.execute(f"INSERT INTO open_case ({_OPEN_CASE_INSERT}) "
                               f"SELECT ? + seq, {_OPEN_CASE_STAGED} FROM _staged_open", [base])
                tx.execute("INSERT INTO reject SELECT ?, row_no, field, reason, CAST(raw AS JSON) "
                           "FROM _staged_reject", [batch_id])
                tx.execute("INSERT INTO reject SELECT ?, row_no, ?, 'duplicate_external_id', CAST(raw AS JSON) "
                           "FROM _late_reject", [batch_id, external_id_field])
            finally:
                for name in ("_staged_incident", "_staged_open", "_staged_reject", "_late_reject"):
                    tx.unregister(name)
            n_late = late.num_rows
            row = {"batch_id": batch_id, "file": file, "sha256": sha256, "source": source, "params": params,
                   "rows_in": rows_in, "accepted": accepted - n_late, "rejected": rejected + n_late,
                   "duplicates": duplicates + n_late, "imported_at": imported_at}
            self.record_import_batch(row, con=tx)
        self.refresh_statistics(["incident", "open_case", "reject"])  # the tables that just grew by a batch
        late_rows = late.select(["row_no", "source", "external_id"]).to_pylist()
        return {**row, "already_imported": False, "late_duplicates": late_rows}

    @staticmethod
    def _late_duplicates(tx: duckdb.DuckDBPyConnection, incidents: pads.Dataset, start_max: int,
                         raw_sql: str) -> pa.Table:
        """Staged rows whose ``(source, external_id)`` an incident written since staging began holds
        (``seq, row_no, source, external_id, raw``, by ``seq``).

        Earlier incidents were looked up while staging; new ones have ids above ``start_max`` (ids only grow), so
        the usual answer, none, costs one look at the newest rows.
        """
        new_keys = "FROM incident WHERE incident_id > ? AND external_id IS NOT NULL"
        if tx.execute(f"SELECT count(*) {new_keys}", [start_max]).fetchall()[0][0] == 0:
            return pa.table({"seq": pa.array([], pa.int64()), "row_no": pa.array([], pa.int64()),
                             "source": pa.array([], pa.string()), "external_id": pa.array([], pa.string()),
                             "raw": pa.array([], pa.string())})
        tx.register("_staged_keys", incidents)
        try:
            return tx.execute(
                f"SELECT s.seq, s.row_no, s.source, s.external_id, {raw_sql} AS raw FROM _staged_keys s "
                f"JOIN (SELECT DISTINCT source, external_id {new_keys}) i "
                "ON i.source = s.source AND i.external_id = s.external_id ORDER BY s.seq",
                [start_max],
            ).fetch_arrow_table()
        finally:
            tx.unregister("_staged_keys")

    def record_import_batch(self, batch: dict[str, Any], *, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Insert one ``import_batch`` row (keys as the table's columns; ``params`` a JSON-able dict)."""
        self._cursor(con).execute(
            f"INSERT INTO import_batch ({_BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [batch["batch_id"], batch["file"], batch["sha256"], batch["source"],
             json.dumps(batch["params"], ensure_ascii=False, default=str), batch["rows_in"], batch["accepted"],
             batch["rejected"], batch["duplicates"], batch["imported_at"]],
        )
