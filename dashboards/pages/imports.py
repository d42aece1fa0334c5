"""Import: a manager uploads an incident export and imports it while the dashboard keeps serving.

Data flow: ``dcc.Upload`` hands the file to :func:`_receive`, which writes it to a folder of its own next to the
database (``<db>.uploads/<token>/``); the form starts :func:`gridgov.ingest.ingest_file` as a job in a thread of
this server (:mod:`dashboards.jobs`: the server is the database's one writer, so no other process may import) and a
``dcc.Interval`` polls it. The job reports each staged chunk as progress and stops at the next chunk once cancelled;
the uploaded file is removed when the job ends, whichever way. After an import that stored cases, the app context is
reloaded and the live counter bumped, so open Overview and My grids pages redraw with them.

The statistics of the new batch, or of any earlier one picked from the list, are drawn from the store
(``import_batch``, ``reject``) by the pure builders of :mod:`dashboards.import_figures`.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboards import access, ids, live
from dashboards.context import AppContext, get_context, reload_context
from dashboards.figures import GRAPH_CONFIG, fmt_int, fmt_pct, fmt_time
from dashboards.i18n import normalize_lang, t
from dashboards.import_figures import (
    DATUMS,
    MAX_MAP_POINTS,
    MAX_UPLOAD_BYTES,
    OUTSIDE_REASON,
    UPLOAD_SUFFIXES,
    batch_params,
    decode_upload,
    fmt_size,
    import_options,
    outside_map,
    outside_points,
    reason_rows,
    reject_rows,
    sample_points,
    summary_cards,
)
from dashboards.jobs import JobBusy, JobRunner, JobStatus
from gridgov.errors import GridgovError, InputError
from gridgov.ingest import ImportResult, ingest_file, preset_names
from gridgov.store import Store

dash.register_page(__name__, path="/import", name="Import", title="Import · gridgov", order=4,
                   i18n_key="nav_import")

log = logging.getLogger("gridgov.dashboards")

#: The page name in :data:`dashboards.access.ROLE_PAGES`.
PAGE = "imports"
#: Lane of import jobs: one import at a time per server (two would only queue on the store's write lock).
LANE = "import"
POLL_MS = 500
#: Seed of the sample of outside points drawn on the map (the same batch always shows the same points).
MAP_SEED = 0
_MAP_W, _MAP_H = 520, 340
#: Uploads never imported (the page was closed) are removed by a later upload after this long.
_STALE_UPLOAD_S = 24 * 3600
_TOKEN = re.compile(r"^[0-9a-f]{16}$")


class ImportCancelled(GridgovError):
    """An import was stopped through its cancel flag before publishing; nothing of it was written."""


#: The server's import jobs (a runner of their own, which counts :class:`ImportCancelled` as a cancel).
RUNNER = JobRunner(cancelled_types=(ImportCancelled,))

_LOCK = threading.Lock()
#: Seconds each batch took, for imports run by this server (the store does not keep it).
_SECONDS: dict[tuple[str, int], float] = {}
#: Rejects of recently shown batches (a published batch never changes).
_REJECTS: OrderedDict[tuple[str, int], pd.DataFrame] = OrderedDict()
_REJECTS_KEPT = 4
#: File name of each import job, for a page reopened while the job runs.
_JOB_FILES: dict[str, str] = {}


class _WatchedStore:
    """The store as :func:`gridgov.ingest.ingest_file` sees it: every call goes to ``store``, and each staged chunk
    is reported as progress and is where a cancel takes effect.

    ``ingest_file`` stages every chunk (its incidents, then its rejects) inside ``store.import_staging()`` and
    publishes the batch at the end; raising here leaves the staging context, which discards what was staged, so a
    cancelled import writes nothing. Once publishing starts it runs to its end (one transaction).

    Parameters
    ----------
    store
        The app's store.
    total
        Data rows in the file when known (for the fraction done), else None.
    progress, cancel
        The job's progress callback and cancel flag (:mod:`dashboards.jobs`).
    """

    def __init__(self, store: Store, *, total: int | None, progress: Callable[[str, float], None],
                 cancel: threading.Event) -> None:
        self._store = store
        self._total = total
        self._progress = progress
        self._cancel = cancel
        self.rows = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _check(self) -> None:
        if self._cancel.is_set():
            raise ImportCancelled("the import was cancelled; nothing was written")

    def _staged(self, n: int) -> None:
        self.rows += n
        share = min(self.rows / self._total, 1.0) if self._total else 0.0
        self._progress(f"rows:{self.rows}:{self._total or ''}", 0.02 + 0.9 * share)

    def stage_incidents(self, incidents: Any) -> int:
        self._check()
        out = self._store.stage_incidents(incidents)
        self._staged(len(incidents))
        return out

    def stage_rejects(self, rejects: Any) -> int:
        self._check()
        out = self._store.stage_rejects(rejects)
        self._staged(len(rejects))
        return out

    def publish_import(self, **kwargs: Any) -> dict[str, Any]:
        self._check()
        self._progress("publish", 0.95)
        return self._store.publish_import(**kwargs)


def count_rows(path: Path) -> int | None:
    """Data rows in an upload, for the progress bar: exact for Parquet and geometry files; for CSV the lines after
    the header (a value with a line break inside counts twice). None when the file cannot be read."""
    kind = UPLOAD_SUFFIXES.get(path.suffix.lower())
    try:
        if kind == "CSV":
            lines, last = 0, b"\n"
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    lines += block.count(b"\n")
                    last = block[-1:]
            return max(lines + (last != b"\n") - 1, 0)
        if kind == "Parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        import pyogrio

        n = int(pyogrio.read_info(path).get("features", -1))
        return n if n >= 0 else None
    except Exception:  # the import itself says what is wrong with the file; the count is only for the bar
        return None


def upload_root(app_ctx: AppContext) -> Path:
    """Folder of uploaded files waiting to be imported: ``<db>.uploads`` next to the database."""
    db = app_ctx.settings.db_path
    return db.with_name(db.name + ".uploads")


def _upload_path(app_ctx: AppContext, uploaded: dict[str, Any] | None) -> Path | None:
    token = str((uploaded or {}).get("token") or "")
    name = str((uploaded or {}).get("name") or "")
    if not _TOKEN.match(token) or not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = upload_root(app_ctx) / token / name
    return path if path.is_file() else None


def _discard(app_ctx: AppContext, uploaded: dict[str, Any] | None) -> None:
    path = _upload_path(app_ctx, uploaded)
    if path is not None:
        shutil.rmtree(path.parent, ignore_errors=True)


def _remove_stale(root: Path) -> None:
    if not root.is_dir():
        return
    now = time.time()
    for folder in root.iterdir():
        try:
            if folder.is_dir() and _TOKEN.match(folder.name) and now - folder.stat().st_mtime > _STALE_UPLOAD_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def start_import(app_ctx: AppContext, path: Path, options: dict[str, Any]) -> str:
    """Start importing ``path`` as a job (lane :data:`LANE`) and return its id; the file's folder is removed when
    the job ends.

    Parameters
    ----------
    app_ctx
        The app context (its store and working calendar are used).
    path
        The uploaded file, alone in a folder of its own.
    options
        ``preset, crs, mapping, source`` (:func:`dashboards.import_figures.import_options`).

    Raises
    ------
    JobBusy
        When an import is running already.
    """
    store, calendar = app_ctx.store, app_ctx.settings.calendar
    key_of = str(store.path)

    def work(progress: Callable[[str, float], None], cancel: threading.Event) -> ImportResult:
        try:
            progress("start", 0.01)
            watched = _WatchedStore(store, total=count_rows(path), progress=progress, cancel=cancel)
            if cancel.is_set():
                raise ImportCancelled("the import was cancelled; nothing was written")
            try:
                result = ingest_file(watched, path, calendar=calendar, **options)  # type: ignore[arg-type]
            except InputError as exc:
                # The server's folder means nothing to the user; the file's name does.
                raise InputError(str(exc).replace(str(path), path.name)) from None
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
        if not result.already_imported:
            with _LOCK:
                _SECONDS[(key_of, result.batch_id)] = result.seconds
            if result.accepted:
                # New cases: pages re-read the context (time range, planner caches) and open pages redraw.
                reload_context()
                live.bump()
        log.info("import: %s → batch %s, %d accepted, %d rejected%s in %.1f s", path.name, result.batch_id,
                 result.accepted, result.rejected, " (already imported)" if result.already_imported else "",
                 result.seconds)
        return result

    job_id = RUNNER.start(work, lane=LANE)
    with _LOCK:
        _JOB_FILES[job_id] = path.name
    return job_id


def _batch_rejects(store: Store, batch_id: int) -> pd.DataFrame:
    key = (str(store.path), batch_id)
    with _LOCK:
        cached = _REJECTS.get(key)
    if cached is not None:
        return cached
    rejects = store.rejects(batch_id)
    with _LOCK:
        _REJECTS[key] = rejects
        while len(_REJECTS) > _REJECTS_KEPT:
            _REJECTS.popitem(last=False)
    return rejects


# -- layout ---------------------------------------------------------------------------------------------------
def layout(lang: str = "en", **_query: str) -> html.Div:
    """The Import page (built from the job runner and the shipped presets; no database access).

    Parameters
    ----------
    lang
        ``en`` or ``zh`` from the ``?lang=`` query string.
    """
    lang = normalize_lang(lang)
    running = RUNNER.running(LANE)  # an import started before this page was (re)opened is followed again
    return html.Div(className="imports", children=[
        dcc.Store(id=ids.IM_LANG, data=lang),
        dcc.Store(id=ids.IM_UPLOADED, data=None),
        dcc.Store(id=ids.IM_JOB, data={"id": running, "name": _JOB_FILES.get(running, "")} if running else None),
        dcc.Store(id=ids.IM_REV, data={"n": 0, "batch": None}),
        dcc.Interval(id=ids.IM_POLL, interval=POLL_MS, disabled=running is None),
        _form(lang, running=running is not None),
        html.Section(className="im-main", children=[
            html.Div(className="ov-head", children=[
                html.Div([html.H1(t("im_title", lang)), html.P(t("im_subtitle", lang), className="st-subtitle")]),
            ]),
            html.Div(id=ids.IM_RESULT, className="im-result"),
            html.Div(className="card im-pick", children=[
                html.Label(t("im_batches", lang), className="field-label", htmlFor=ids.IM_BATCH),
                dcc.Dropdown(id=ids.IM_BATCH, options=[], value=None, clearable=False,
                             placeholder=t("im_batches_none", lang)),
            ]),
            dcc.Loading(html.Div(id=ids.IM_STATS, className="im-stats"), type="dot", color="#1d4ed8"),
        ]),
    ])


def _field(label: str, control: Any, **kwargs: Any) -> html.Div:
    return html.Div(className="field", children=[html.Label(label, className="field-label"), control], **kwargs)


def _upload(lang: str) -> dcc.Upload:
    # Built afresh after every upload: a file input only reports a change, so choosing the same file again (to
    # import it again) would otherwise do nothing.
    return dcc.Upload(id=ids.IM_UPLOAD, multiple=False, accept=",".join(sorted(UPLOAD_SUFFIXES)), className="im-drop",
                      className_active="im-drop active",
                      children=html.Div([t("im_drop", lang), html.A(t("im_browse", lang), className="im-browse")]))


def _form(lang: str, *, running: bool) -> html.Aside:
    presets = [{"label": t("im_preset_none", lang), "value": "none"},
               *({"label": name, "value": name} for name in preset_names())]
    return html.Aside(className="filters card im-side", children=[
        html.H2(t("im_form_title", lang)),
        _field(t("im_file", lang), html.Div(id=ids.IM_UPLOAD_BOX, children=_upload(lang))),
        html.Div(t("im_file_help", lang, limit=fmt_size(MAX_UPLOAD_BYTES)), id=ids.IM_FILE_NOTE,
                 className="caption im-file-note"),
        _field(t("im_preset", lang), dcc.Dropdown(id=ids.IM_PRESET, options=presets, value="none", clearable=False)),
        _field(t("im_coords", lang), dcc.RadioItems(
            id=ids.IM_DATUM, value="preset", className="stacked",
            options=[{"label": t(f"im_coords_{k}", lang), "value": k} for k in DATUMS])),
        html.Div(id=ids.IM_CRS_BOX, className="field", style={"display": "none"}, children=[
            dcc.Input(id=ids.IM_CRS, type="text", value="", placeholder=t("im_crs_placeholder", lang),
                      className="st-input"),
        ]),
        _field(t("im_mapping", lang), dcc.Textarea(id=ids.IM_MAPPING, value="", className="im-mapping",
                                                   placeholder=t("im_mapping_placeholder", lang))),
        _field(t("im_source", lang), dcc.Input(id=ids.IM_SOURCE, type="text", value="", maxLength=60,
                                               placeholder=t("im_source_placeholder", lang), className="st-input")),
        html.Div(className="pl-buttons", children=[
            html.Button(t("im_start", lang), id=ids.IM_START, className="btn btn-primary", n_clicks=0,
                        disabled=running),
            html.Button(t("im_cancel", lang), id=ids.IM_CANCEL, className="btn", n_clicks=0, disabled=not running),
        ]),
        html.Div(id=ids.IM_PROGRESS, className="pl-progress" + ("" if running else " idle"), children=[
            html.Div(className="pl-track", children=html.Div(id=ids.IM_PROGRESS_BAR, className="pl-bar",
                                                             style={"width": "0%"})),
            html.Div(t("im_phase_start", lang) if running else "", id=ids.IM_PROGRESS_TEXT,
                     className="pl-progress-text"),
        ]),
        html.Div(id=ids.IM_FORM_MSG, className="pl-msg"),
    ])


def _error_box(title: str, text: str) -> html.Div:
    return html.Div(className="pl-error", children=[html.Strong(title), html.P(text)])


def _allowed() -> bool:
    return access.may_open(access.signed_in(), PAGE)


# -- callbacks: the file and the job --------------------------------------------------------------------------
@callback(Output(ids.IM_CRS_BOX, "style"), Input(ids.IM_DATUM, "value"))
def _show_crs(datum: str | None) -> dict[str, str]:
    return {} if datum == "other" else {"display": "none"}


@callback(Output(ids.IM_UPLOADED, "data"), Output(ids.IM_FILE_NOTE, "children"), Output(ids.IM_UPLOAD_BOX, "children"),
          Input(ids.IM_UPLOAD, "contents"), State(ids.IM_UPLOAD, "filename"), State(ids.IM_UPLOADED, "data"),
          State(ids.IM_LANG, "data"), prevent_initial_call=True)
def _receive(contents: str | None, filename: str | None, previous: dict[str, Any] | None,
             lang: str | None) -> tuple[Any, Any, Any]:
    lang = normalize_lang(lang)
    if not contents:
        return no_update, no_update, no_update
    if not _allowed():
        return None, html.Span(t("im_not_allowed", lang), className="flag"), _upload(lang)
    app_ctx = get_context()
    try:
        name, raw = decode_upload(contents, filename)
    except InputError as exc:
        # A fresh upload box either way: the browser's copy of the file is dropped.
        return None, html.Span(t("im_file_refused", lang, reason=str(exc)), className="flag"), _upload(lang)
    root = upload_root(app_ctx)
    _discard(app_ctx, previous)
    _remove_stale(root)
    token = secrets.token_hex(8)
    folder = root / token
    folder.mkdir(parents=True)
    (folder / name).write_bytes(raw)
    log.info("import: received %s (%s)", name, fmt_size(len(raw)))
    return ({"token": token, "name": name, "size": len(raw)},
            html.Span(t("im_file_ready", lang, name=name, size=fmt_size(len(raw))), className="im-ready"),
            _upload(lang))


@callback(Output(ids.IM_JOB, "data"), Output(ids.IM_POLL, "disabled"), Output(ids.IM_START, "disabled"),
          Output(ids.IM_CANCEL, "disabled"), Output(ids.IM_PROGRESS, "className"), Output(ids.IM_FORM_MSG, "children"),
          Output(ids.IM_UPLOADED, "data", allow_duplicate=True), Output(ids.IM_RESULT, "children"),
          Output(ids.IM_FILE_NOTE, "children", allow_duplicate=True),
          Input(ids.IM_START, "n_clicks"), State(ids.IM_UPLOADED, "data"), State(ids.IM_PRESET, "value"),
          State(ids.IM_DATUM, "value"), State(ids.IM_CRS, "value"), State(ids.IM_MAPPING, "value"),
          State(ids.IM_SOURCE, "value"),
          State(ids.IM_LANG, "data"), prevent_initial_call=True)
def _start(_n: int | None, uploaded: dict[str, Any] | None, preset: str | None, datum: str | None,
           crs_text: str | None, mapping_text: str | None, source: str | None, lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    unchanged = (no_update,) * 5

    def say(msg: Any) -> tuple[Any, ...]:
        return (*unchanged, msg, no_update, no_update, no_update)

    if not _allowed():  # checked here too, not only by the menu and the access guard
        return say(html.Span(t("im_not_allowed", lang), className="flag"))
    app_ctx = get_context()
    path = _upload_path(app_ctx, uploaded)
    if path is None:
        return say(html.Span(t("im_no_file", lang), className="flag"))
    try:
        options = import_options(preset=preset, datum=datum, crs_text=crs_text, mapping_text=mapping_text,
                                 source=source)
    except InputError as exc:
        return say(_error_box(t("im_bad_option", lang), str(exc)))
    try:
        job_id = start_import(app_ctx, path, options)
    except JobBusy as busy:  # someone else's import: follow it, keep this file for afterwards
        with _LOCK:
            other = {"id": busy.job_id, "name": _JOB_FILES.get(busy.job_id, "")}
        return (other, False, True, True, "pl-progress", html.Div(t("im_busy", lang), className="pl-note"),
                no_update, "", no_update)
    return ({"id": job_id, "name": path.name}, False, True, False, "pl-progress", "", None, "",
            t("im_file_help", lang, limit=fmt_size(MAX_UPLOAD_BYTES)))


@callback(Output(ids.IM_PROGRESS_TEXT, "children", allow_duplicate=True),
          Output(ids.IM_CANCEL, "disabled", allow_duplicate=True),
          Input(ids.IM_CANCEL, "n_clicks"), State(ids.IM_JOB, "data"), State(ids.IM_LANG, "data"),
          prevent_initial_call=True)
def _cancel(_n: int | None, job: dict[str, Any] | None, lang: str | None) -> tuple[Any, bool]:
    if _allowed() and job and RUNNER.cancel(job.get("id")):
        return t("im_cancelling", normalize_lang(lang)), True
    return no_update, True


def _phase_text(status: JobStatus, lang: str) -> str:
    phase = status.phase
    if phase.startswith("rows:"):
        _, done, total = [*phase.split(":"), "", ""][:3]
        text = (t("im_phase_rows", lang, done=fmt_int(int(done)), total=fmt_int(int(total))) if total
                else t("im_phase_rows_open", lang, done=fmt_int(int(done))))
    else:
        key = f"im_phase_{phase}"
        text = t(key, lang) if key in ("im_phase_start", "im_phase_publish", "im_phase_done") else phase
    return t("im_progress", lang, phase=text, secs=f"{time.time() - status.started:.0f}")


@callback(Output(ids.IM_PROGRESS_BAR, "style"), Output(ids.IM_PROGRESS_TEXT, "children"),
          Output(ids.IM_PROGRESS, "className", allow_duplicate=True),
          Output(ids.IM_RESULT, "children", allow_duplicate=True),
          Output(ids.IM_JOB, "data", allow_duplicate=True), Output(ids.IM_POLL, "disabled", allow_duplicate=True),
          Output(ids.IM_START, "disabled", allow_duplicate=True),
          Output(ids.IM_CANCEL, "disabled", allow_duplicate=True),
          Output(ids.IM_REV, "data"),
          Input(ids.IM_POLL, "n_intervals"), State(ids.IM_JOB, "data"), State(ids.IM_REV, "data"),
          State(ids.IM_LANG, "data"),
          prevent_initial_call=True)
def _poll(_tick: int | None, job: dict[str, Any] | None, rev: dict[str, Any] | None,
          lang: str | None) -> tuple[Any, ...]:
    lang = normalize_lang(lang)
    status = RUNNER.get((job or {}).get("id"))
    idle = ({"width": "0%"}, "", "pl-progress idle")
    n = int((rev or {}).get("n") or 0) + 1
    if status is None:
        return (*idle, no_update, None, True, False, True, no_update)
    if not status.over:
        return ({"width": f"{max(status.fraction * 100, 2):.0f}%"}, _phase_text(status, lang), "pl-progress",
                no_update, no_update, False, True, no_update, no_update)
    if status.state == "cancelled":
        return (*idle, html.Div(t("im_cancelled", lang), className="pl-note"), None, True, False, True,
                {"n": n, "batch": None})
    if status.state == "failed":
        name = str((job or {}).get("name") or "")
        return (*idle, _error_box(t("im_failed", lang, name=name), str(status.error)), None, True, False, True,
                {"n": n, "batch": None})
    res: ImportResult = status.result
    name = Path(res.file).name
    if res.already_imported:
        banner = html.Div(t("im_already", lang, name=name, batch=res.batch_id), className="pl-note im-already")
    else:
        banner = html.Div(t("im_done", lang, name=name, batch=res.batch_id, accepted=fmt_int(res.accepted),
                            rejected=fmt_int(res.rejected)), className="pl-ok im-done")
    return (*idle, banner, None, True, False, True, {"n": n, "batch": res.batch_id})


# -- callbacks: statistics of a batch -------------------------------------------------------------------------
@callback(Output(ids.IM_BATCH, "options"), Output(ids.IM_BATCH, "value"),
          Input(ids.IM_REV, "data"), State(ids.IM_BATCH, "value"), State(ids.IM_LANG, "data"))
def _batches(rev: dict[str, Any] | None, current: int | None, lang: str | None) -> tuple[list[dict[str, Any]], Any]:
    lang = normalize_lang(lang)
    batches = get_context().store.import_batches()
    options = [{"label": t("im_batch_label", lang, batch=int(b.batch_id), name=Path(str(b.file)).name,
                           at=fmt_time(b.imported_at)), "value": int(b.batch_id)}
               for b in batches.itertuples(index=False)]
    known = {o["value"] for o in options}
    wanted = (rev or {}).get("batch")
    if wanted in known:
        return options, wanted
    if current in known:
        return options, no_update
    return options, options[0]["value"] if options else None


@callback(Output(ids.IM_STATS, "children"), Input(ids.IM_BATCH, "value"), State(ids.IM_LANG, "data"))
def _stats(batch_id: int | None, lang: str | None) -> Any:
    lang = normalize_lang(lang)
    if batch_id is None:
        return html.P(t("im_batches_none", lang), className="muted")
    app_ctx = get_context()
    store = app_ctx.store
    batches = store.import_batches()
    found = batches[batches["batch_id"] == int(batch_id)]
    if found.empty:
        return html.P(t("im_batches_none", lang), className="muted")
    batch = found.iloc[0].to_dict()
    with _LOCK:
        seconds = _SECONDS.get((str(store.path), int(batch_id)))
    params = batch_params(batch.get("params"))
    counts = store.reject_counts(int(batch_id))
    rejects = _batch_rejects(store, int(batch_id)) if int(batch["rejected"]) else pd.DataFrame(
        columns=["row_no", "field", "reason", "raw"])
    return [
        _batch_head(batch, params, lang),
        html.Div(id=ids.IM_CARDS, className="kpis im-kpis", children=[
            html.Div(className=f"kpi {c['tone']}".strip(), id=f"im-kpi-{c['key']}", children=[
                html.Div(c["label"], className="kpi-label"),
                html.Div(c["value"], className="kpi-value"),
                html.Div(c["note"], className="kpi-note"),
            ]) for c in summary_cards(batch, seconds=seconds, lang=lang)
        ]),
        html.Div(className="im-lower", children=[
            html.Div(className="im-tables", children=[
                _reasons_card(counts, lang),
                _first_card(rejects, int(batch_id), int(batch["rejected"]), lang),
            ]),
            _map_card(app_ctx, rejects, params, counts.get(OUTSIDE_REASON, 0), lang),
        ]),
    ]


def _batch_head(batch: dict[str, Any], params: dict[str, Any], lang: str) -> html.Div:
    shown = {k: v for k, v in params.items() if v not in (None, "", [], {})}
    if shown.get("preset"):
        shown["preset"] = Path(str(shown["preset"])).stem
    options = json.dumps(shown, ensure_ascii=False) if shown else "—"
    return html.Div(className="im-batch-head", children=[
        html.H2(t("im_batch_head", lang, batch=int(batch["batch_id"]), name=Path(str(batch["file"])).name)),
        html.Div(t("im_batch_meta", lang, at=fmt_time(batch["imported_at"]), source=batch.get("source") or "—",
                   options=options), className="muted"),
    ])


def _reasons_card(counts: dict[str, int], lang: str) -> html.Div:
    rows = reason_rows(counts, lang=lang)
    body: Any
    if not rows:
        body = html.P(t("im_reasons_none", lang), className="muted")
    else:
        body = html.Table(id=ids.IM_REASONS, className="cases im-table", children=[
            html.Thead(html.Tr([html.Th(t("im_col_code", lang)), html.Th(t("im_col_text", lang)),
                                html.Th(t("im_col_count", lang), className="num"),
                                html.Th(t("im_col_share", lang), className="num")])),
            html.Tbody([html.Tr(id=f"im-reason-{r['code']}", children=[
                html.Td(html.Code(r["code"])), html.Td(r["text"]),
                html.Td(fmt_int(r["count"]), className="num"), html.Td(fmt_pct(r["share"]), className="num"),
            ]) for r in rows]),
        ])
    return html.Div(className="card im-card", children=[html.H2(t("im_reasons_title", lang)), body])


def _first_card(rejects: pd.DataFrame, batch_id: int, total: int, lang: str) -> html.Div:
    rows = reject_rows(rejects, lang=lang)
    if not rows:
        return html.Div()
    return html.Div(className="card im-card", children=[
        html.H2(t("im_first_title", lang)),
        html.Div(className="table-wrap", children=html.Table(id=ids.IM_FIRST, className="cases im-table", children=[
            html.Thead(html.Tr([html.Th(t("im_col_row", lang), className="num"), html.Th(t("im_col_field", lang)),
                                html.Th(t("im_col_code", lang)), html.Th(t("im_col_message", lang))])),
            html.Tbody([html.Tr([
                html.Td(fmt_int(r["row_no"]), className="num"), html.Td(r["field"]), html.Td(html.Code(r["reason"])),
                html.Td(r["message"]),
            ]) for r in rows]),
        ])),
        html.P(t("im_first_note", lang, n=fmt_int(total), batch=batch_id), className="muted"),
    ])


def _map_card(app_ctx: AppContext, rejects: pd.DataFrame, params: dict[str, Any], n_outside: int,
              lang: str) -> html.Div:
    try:
        points = outside_points(rejects, crs=params.get("crs"))
    except InputError:
        points = outside_points(rejects.iloc[0:0])
    shown = sample_points(points, max_points=MAX_MAP_POINTS, seed=MAP_SEED)
    outline = dash.get_relative_path(app_ctx.geo_path("streets"))
    fig = outside_map(shown, outline_source=outline, bounds=app_ctx.bounds, lang=lang, width_px=_MAP_W,
                      height_px=_MAP_H)
    notes = [t("im_map_caption", lang, n=fmt_int(n_outside))]
    if len(shown) < len(points):
        notes.append(t("im_map_sample", lang, shown=fmt_int(len(shown)), seed=MAP_SEED))
    if len(points) < n_outside:
        notes.append(t("im_map_unread", lang, n=fmt_int(n_outside - len(points))))
    return html.Div(className="card im-map-card", children=[
        html.H2(t("im_map_title", lang)),
        dcc.Graph(id=ids.IM_MAP, figure=fig, config=GRAPH_CONFIG, className="im-map"),
        html.P(" ".join(notes), id=ids.IM_MAP_NOTE, className="muted"),
    ])
