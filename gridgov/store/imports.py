"""Import batches and rejected rows.

An import is written in two phases so that a batch is atomic *and* memory stays bounded:

1. **Staging.** Each chunk of validated rows is appended to the scratch tables ``import_stage_incident`` and
   ``import_stage_reject`` in its own short transaction. DuckDB 1.4 keeps rows appended inside one open
   transaction in memory until it commits (about the size of the data), so streaming a million rows into one
   transaction would grow memory with the file; committed rows live on disk.
2. **Publishing.** One transaction numbers the staged incidents, copies them and the rejects into ``incident`` and
   ``reject`` (``INSERT … SELECT`` inside DuckDB) and records the ``import_batch`` row. Readers see all of a batch
   or nothing of it.

The scratch tables are never read by anything but the importer; they are created fresh by every import (so a crash
mid-import leaves nothing that a later import could pick up) and dropped at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from gridgov.errors import StoreError
from gridgov.store.connection import Connection
from gridgov.store.incidents import INCIDENT_COLUMNS

_BATCH_COLUMNS = "batch_id, file, sha256, source, params, rows_in, accepted, rejected, duplicates, imported_at"
#: Staged incident columns: the file's row number, the id to be, and every incident column the importer fills.
_STAGE_COLUMNS: tuple[str, ...] = ("row_no", "incident_id", *(c for c in INCIDENT_COLUMNS if c != "batch_id"))
_STAGE_TIMES = ("reported_at", "due_at", "dispatched_at", "handled_at", "closed_at")
_INCIDENT_SELECT = ", ".join(c for c in INCIDENT_COLUMNS if c != "batch_id")


class ImportsMixin(Connection):
    """Queries on ``import_batch`` and ``reject``, and the staging of an import.

    Every query is parameterised; the only names put into SQL text are this module's constants.
    """

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
        """Fresh scratch tables for one import, dropped at the end whatever happens.

        Holds the store's write lock throughout, so that two imports in one process cannot share the tables and
        nothing else in the process writes incidents meanwhile (other processes cannot: one writer per file).

        Yields
        ------
        int
            The highest ``incident_id`` now: staged incidents are numbered after it, in file order. Numbering
            while staging spares the publishing transaction a sort of the whole batch.
        """
        with self._lock:
            con = self.con
            con.execute(
                "CREATE OR REPLACE TABLE import_stage_incident AS SELECT CAST(NULL AS BIGINT) AS row_no, "
                "* EXCLUDE (batch_id) FROM incident LIMIT 0"
            )
            con.execute("CREATE OR REPLACE TABLE import_stage_reject AS "
                        "SELECT * EXCLUDE (batch_id) FROM reject LIMIT 0")
            last_id = int(con.execute("SELECT coalesce(max(incident_id), 0) FROM incident").fetchall()[0][0])
            try:
                yield last_id
            finally:
                con.execute("DROP TABLE IF EXISTS import_stage_incident")
                con.execute("DROP TABLE IF EXISTS import_stage_reject")

    def stage_incidents(self, incidents: pd.DataFrame) -> int:
        """Append validated incidents (``row_no``, ``incident_id`` and incident columns) to the scratch table.

        Returns
        -------
        int
            Number of rows staged.
        """
        if incidents.empty:
            return 0
        out = pd.DataFrame(index=incidents.index)
        for col in _STAGE_COLUMNS:
            out[col] = incidents[col] if col in incidents.columns else None
        table = pa.Table.from_pandas(out, preserve_index=False)
        for col in _STAGE_TIMES:
            idx = table.schema.get_field_index(col)
            table = table.set_column(idx, col, table.column(col).cast(pa.timestamp("us")))
        with self.transaction() as tx:
            tx.register("_stage", table)
            tx.execute(f"INSERT INTO import_stage_incident BY NAME SELECT {', '.join(_STAGE_COLUMNS)} FROM _stage")
            tx.unregister("_stage")
        return table.num_rows

    def stage_rejects(self, rejects: pd.DataFrame) -> int:
        """Append rejected rows (``row_no, field, reason, raw`` as JSON text) to the import's scratch table."""
        if rejects.empty:
            return 0
        table = pa.Table.from_pandas(pd.DataFrame({
            "row_no": rejects["row_no"].to_numpy(dtype="int64"),
            "field": rejects["field"].to_numpy(dtype=object),
            "reason": rejects["reason"].to_numpy(dtype=object),
            "raw": rejects["raw"].to_numpy(dtype=object),
        }), preserve_index=False)
        with self.transaction() as tx:
            tx.register("_stage", table)
            tx.execute("INSERT INTO import_stage_reject BY NAME "
                       "SELECT row_no, field, reason, CAST(raw AS JSON) AS raw FROM _stage")
            tx.unregister("_stage")
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
        table = pa.Table.from_pandas(pd.DataFrame({
            "key": keys["key"].to_numpy(dtype="int64"),
            "source": keys["source"].to_numpy(dtype=object),
            "external_id": keys["external_id"].to_numpy(dtype=object),
        }), preserve_index=False)
        staging = self._staging_active()
        stage_sql = ("UNION ALL SELECT source, external_id, TRUE FROM import_stage_incident "
                     "WHERE external_id IS NOT NULL") if staging else ""
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

    def _staging_active(self) -> bool:
        rows = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'import_stage_incident'"
        ).fetchall()
        return bool(rows[0][0])

    def publish_import(self, *, file: str, sha256: str, source: str | None, params: dict[str, Any], rows_in: int,
                       duplicates: int, imported_at: datetime) -> dict[str, Any]:
        """Move the staged rows into ``incident`` and ``reject`` and record the batch, in one transaction.

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
        with self.transaction() as tx:
            existing = self.find_import_batch(sha256, con=tx)
            if existing is not None:
                return {**existing, "already_imported": True}
            counts = tx.execute(
                "SELECT (SELECT count(*) FROM import_stage_incident), (SELECT count(*) FROM import_stage_reject)"
            ).fetchall()[0]
            accepted, rejected = int(counts[0]), int(counts[1])
            if accepted + rejected != rows_in:
                raise StoreError(f"import of {file} staged {accepted} + {rejected} rows for {rows_in} read; "
                                 "nothing was imported")
            batch_id = int(tx.execute(
                "SELECT greatest((SELECT coalesce(max(batch_id), 0) FROM import_batch), "
                "(SELECT coalesce(max(batch_id), 0) FROM incident), "
                "(SELECT coalesce(max(batch_id), 0) FROM reject)) + 1"
            ).fetchall()[0][0])
            clash = tx.execute(
                "SELECT count(*) FROM incident "
                "WHERE incident_id >= (SELECT min(incident_id) FROM import_stage_incident)"
            ).fetchall()[0][0]
            if clash:
                raise StoreError(f"incidents were added while {file} was being imported; import it again")
            # No ORDER BY: the staged rows are already in file order, and sorting a whole batch costs memory.
            tx.execute(
                f"INSERT INTO incident (incident_id, {_INCIDENT_SELECT}, batch_id) "
                f"SELECT incident_id, {_INCIDENT_SELECT}, ? FROM import_stage_incident",
                [batch_id],
            )
            tx.execute("INSERT INTO reject SELECT ?, row_no, field, reason, raw FROM import_stage_reject", [batch_id])
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
