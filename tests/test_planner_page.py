"""The Planner page's callbacks in-process on a copy of the small demo (fast companions of the browser test):
compare, export, rename/delete, and adopt/undo reloading the app context every page reads."""

from __future__ import annotations

import base64
import io
import shutil
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
import pytest

from dashboards import ids
from gridgov import regrid
from gridgov.config import Settings
from tests.dash_calls import call_as_triggered, texts

NOW = datetime(2026, 7, 1, 9)


@pytest.fixture
def demo_app(small_demo_db: Path, tmp_path: Path) -> Iterator[dash.Dash]:
    from dashboards.app import create_app
    from dashboards.context import get_context

    db = tmp_path / "demo.duckdb"
    shutil.copy2(small_demo_db, db)
    app = create_app(Settings(db_path=db, now=NOW))
    regrid.regrid(get_context().store, name="even", n_grids=12, tolerance=0.3)
    yield app
    get_context().store.close()


def _call(prop_id: str, func: Any, *args: Any) -> Any:
    return call_as_triggered(prop_id, func, *args, value=1)


def test_compare_export_manage_adopt(demo_app: dash.Dash, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.context import get_context
    from gridgov.auth import User

    page = sys.modules["dashboards.pages.planner"]
    # Callbacks are called directly here, outside a request: the signed-in user is given instead.
    monkeypatch.setattr(page.access, "signed_in", lambda: User("planner", "planner"))
    app_ctx = get_context()
    layouts = app_ctx.store.layouts().set_index("name")
    current, even = int(layouts.loc["hand-drawn 2026", "layout_id"]), int(layouts.loc["even", "layout_id"])

    fig_a, fig_b, fig_c, _ta, _tb, note, note_a, _note_b, table, calib, adopt_off, label = _call(
        f"{ids.PL_A}.value", page._compare, current, even, "300-500", None, "en")
    assert len(fig_a.data[0].locations) == 16 and len(fig_b.data[0].locations) == 12
    assert fig_a.data[0].zmax == fig_b.data[0].zmax, "one colour scale for both maps"
    assert fig_c.data[1].locations, "some units move"
    assert "move to another grid" in " ".join(texts(note))
    assert note_a.startswith("16 grids · busiest grid 3.9")
    assert "within" in " ".join(texts(calib)) and not adopt_off and label == "Adopt 'even'…"
    rows = {r.id: texts(r) for r in table.children[1].children}
    assert rows["pl-metric-n_grids"][1:] == ["16", "12", "−4"]
    # Without B only A's column is filled and nothing can be adopted.
    *_, adopt_off, _ = _call(f"{ids.PL_A}.value", page._compare, current, None, "", None, "en")
    assert adopt_off

    sent, msg = page._export(1, even, None, "gpkg", "en")
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(sent["content"]))) as zf:
        assert sorted(zf.namelist()) == ["even.gpkg", "even_mapping.csv"]
    assert sent["filename"] == "even.zip" and "mapping" in msg

    # A street's manager may look but not change layouts (checked by the callback, not only by the menu).
    with monkeypatch.context() as m:
        m.setattr(page.access, "signed_in", lambda: User("street", "manager", street_code="990100001"))
        msg, rev = _call(f"{ids.PL_RENAME}.n_clicks", page._manage, 1, None, even, None, "flat", {"n": 1}, "en")
        assert "Only planners" in " ".join(texts(msg)) and rev is dash.no_update
    msg, rev = _call(f"{ids.PL_RENAME}.n_clicks", page._manage, 1, None, even, None, "flat", {"n": 1}, "en")
    assert msg == "Renamed 'even' to 'flat'." and rev["n"] == 2
    msg, rev = _call(f"{ids.PL_DELETE}.submit_n_clicks", page._manage, None, 1, current, None, "", None, "en")
    assert "only scenarios can be deleted" in " ".join(texts(msg)) and rev is dash.no_update

    from dashboards.context import on_reload

    reloaded: list[int | None] = []
    on_reload(lambda ctx: reloaded.append(ctx.layout_id))
    old_revision = app_ctx.revision
    result, _confirm, undo_cls, undo_label, undo_of, rev = _call(
        f"{ids.PL_ADOPT_YES}.n_clicks", page._adopt, 1, None, even, None, {"n": 2}, "en")
    new_ctx = get_context()
    assert new_ctx.layout_id == even and len(new_ctx.grids) == 12, "the context every page reads is reloaded"
    assert reloaded == [even], "listeners (e.g. the intake API) hear of the new layout"
    assert new_ctx.revision == old_revision + 1 and new_ctx.geo_path("grids") != app_ctx.geo_path("grids")
    assert "'flat' is now the current layout." in texts(result)
    assert undo_label == "Undo: restore 'hand-drawn 2026'"
    assert undo_of == "hand-drawn 2026" and "hidden" not in undo_cls and rev == {"n": 3, "a": current, "b": even}
    # The overview page is built from the reloaded context.
    overview = sys.modules["dashboards.pages.overview"].layout()
    assert "v=" + str(even) in str(overview)

    result, _confirm, undo_cls, _label, undo_of, rev = _call(
        f"{ids.PL_UNDO}.n_clicks", page._adopt, None, 1, even, "hand-drawn 2026", rev, "en")
    assert get_context().layout_id == current and "hidden" in undo_cls and undo_of is None
    assert "'hand-drawn 2026' is the current layout again." in texts(result)
