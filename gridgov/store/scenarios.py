"""Writes on saved layouts: rename, delete a scenario, and adopt one as the current layout in one transaction."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from gridgov.errors import StoreError
from gridgov.store.connection import Connection, first_row


class ScenariosMixin(Connection):
    """Layout lifecycle: ``scenario`` → ``current`` → ``archived`` (never deleted once it has been current)."""

    def _layout_row(self, name: str) -> tuple[int, str]:
        row = first_row(self.con.execute("SELECT layout_id, status FROM layout WHERE name = ?", [name]))
        if not row:
            raise StoreError(f"no layout named {name!r}; `gridgov scenarios` lists them")
        return int(row[0]), str(row[1])

    def rename_layout(self, name: str, new_name: str) -> None:
        """Rename a layout (any status); the new name must be free."""
        if not new_name.strip():
            raise StoreError("a layout needs a name that is not blank")
        layout_id, _ = self._layout_row(name)
        with self.transaction() as con:
            if first_row(con.execute("SELECT 1 FROM layout WHERE name = ?", [new_name])):
                raise StoreError(f"a layout named {new_name!r} already exists; choose another name")
            con.execute("UPDATE layout SET name = ? WHERE layout_id = ?", [new_name, layout_id])

    def delete_layout(self, name: str) -> None:
        """Delete a scenario with its grids and assignments. Current and archived layouts are kept: an archived
        layout is how an adoption is undone."""
        layout_id, status = self._layout_row(name)
        if status != "scenario":
            raise StoreError(f"layout {name!r} is {status}; only scenarios can be deleted (archived layouts are kept "
                             "so that an adoption can be undone)")
        with self.transaction() as con:
            con.execute("DELETE FROM assignment WHERE layout_id = ?", [layout_id])
            con.execute("DELETE FROM layout_grid WHERE layout_id = ?", [layout_id])
            con.execute("DELETE FROM layout_unit WHERE layout_id = ?", [layout_id])
            con.execute("DELETE FROM layout WHERE layout_id = ?", [layout_id])

    def adopt_layout(self, layout_id: int, *, codes: pd.DataFrame, assignments: pd.DataFrame) -> int | None:
        """Make a layout current in one transaction and return the layout it replaced (now archived).

        Parameters
        ----------
        layout_id
            A scenario or an archived layout.
        codes
            ``old_code, new_code`` for every grid of the layout: its codes re-issued against the current layout.
        assignments
            ``grid_code, worker_id, role, manual`` for the layout (by new code), replacing any it had.
        """
        mapping = pa.Table.from_pandas(pd.DataFrame(codes[["old_code", "new_code"]]), preserve_index=False)
        rows = pa.Table.from_pandas(pd.DataFrame(assignments[["grid_code", "worker_id", "role", "manual"]]),
                                    preserve_index=False)
        with self.transaction() as con:
            row = first_row(con.execute("SELECT status FROM layout WHERE layout_id = ?", [layout_id]))
            if not row:
                raise StoreError(f"no layout with id {layout_id}")
            if row[0] == "current":
                raise StoreError("that layout is already the current one")
            prev = first_row(con.execute("SELECT layout_id FROM layout WHERE status = 'current'"))
            con.register("_codes", mapping)
            # Two steps through a prefix so that codes may swap between grids without a moment of duplicates.
            con.execute("UPDATE layout_unit SET grid_code = '~' || c.new_code FROM _codes c "
                        "WHERE layout_unit.layout_id = ? AND layout_unit.grid_code = c.old_code", [layout_id])
            con.execute("UPDATE layout_unit SET grid_code = substr(grid_code, 2) "
                        "WHERE layout_id = ? AND grid_code LIKE '~%'", [layout_id])
            con.execute("UPDATE layout_grid SET grid_code = '~' || c.new_code FROM _codes c "
                        "WHERE layout_grid.layout_id = ? AND layout_grid.grid_code = c.old_code", [layout_id])
            con.execute("UPDATE layout_grid SET grid_code = substr(grid_code, 2) "
                        "WHERE layout_id = ? AND grid_code LIKE '~%'", [layout_id])
            con.unregister("_codes")
            con.execute("DELETE FROM assignment WHERE layout_id = ?", [layout_id])
            con.register("_a", rows)
            con.execute("INSERT INTO assignment SELECT ?, grid_code, worker_id, role, manual FROM _a", [layout_id])
            con.unregister("_a")
            con.execute("UPDATE layout SET status = 'archived' WHERE status = 'current'")
            con.execute("UPDATE layout SET status = 'current' WHERE layout_id = ?", [layout_id])
        return int(prev[0]) if prev else None
