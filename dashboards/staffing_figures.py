"""Pure builders of the Staffing & coverage page: a staffing table in, map values, table rows and cards out.

The staffing numbers themselves come from :mod:`gridgov.staffing` (``report``); nothing here computes demand,
supply or gaps, and nothing reads the database or Dash state. ``tests/test_staffing_figures.py`` tests every
function on hand-made frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboards.figures import (
    EMPTY_FEATURES,
    boundary_layers,
    fmt_int,
    fmt_num,
    fmt_pct,
    geojson_arrays,
    map_view,
    offline_map_layout,
)
from dashboards.i18n import t

#: Diverging scale for the gap share (gap / demand): blue where staffed beyond demand, near white within the
#: "ok" band, red where short. Fixed bounds (see :data:`GAP_LIMIT`) keep a colour meaning the same after an edit.
GAP_COLORSCALE: list[list[Any]] = [
    [0.0, "#2166ac"], [0.25, "#67a9cf"], [0.42, "#e3eef7"], [0.5, "#f7f7f7"], [0.58, "#fbe4dc"],
    [0.75, "#ef8a62"], [1.0, "#b2182b"],
]
#: The colour saturates at ±50 % of demand: half a grid's work missing is as alarming as it gets.
GAP_LIMIT = 0.5
UNCOVERED_FILL = "#9ca3af"
UNCOVERED_LINE = "#111827"
#: Index of the layer outlining the grids of the worker picked in the coverage view (after figures' layers).
LAYER_WORKER = 5
WORKER_COLOR = "#c026d3"
STATUSES: tuple[str, ...] = ("uncovered", "under", "ok", "over")
#: Columns of the grid table, in display order (ids of the ``DataTable`` columns).
TABLE_COLUMNS: tuple[str, ...] = ("edited", "grid", "community", "demand", "supply", "gap", "fte", "open",
                                  "overdue", "primary", "backups", "status")
_NUMERIC = {"demand": 1, "supply": 1, "gap": 1, "fte": 2, "open": 0, "overdue": 0}


# -- assignment state (what the page holds as unsaved edits) ------------------------------------------------
def grid_workers(rows: Iterable[Mapping[str, Any]], grid_code: str) -> tuple[str | None, list[str]]:
    """The primary worker and the backups of one grid in a list of assignment rows.

    Parameters
    ----------
    rows
        Assignment rows ``grid_code, worker_id, role, manual``.
    grid_code
        The grid.

    Returns
    -------
    tuple
        ``(primary worker id or None, sorted backup worker ids)``.
    """
    primary = None
    backups = []
    for row in rows:
        if row["grid_code"] != grid_code:
            continue
        if row["role"] == "primary":
            primary = str(row["worker_id"])
        else:
            backups.append(str(row["worker_id"]))
    return primary, sorted(backups)


def set_grid_workers(rows: Sequence[Mapping[str, Any]], grid_code: str, primary: str | None,
                     backups: Iterable[str]) -> list[dict[str, Any]]:
    """Assignment rows with one grid's workers replaced (marked manual); other grids untouched.

    Parameters
    ----------
    rows
        Current rows ``grid_code, worker_id, role, manual``.
    grid_code
        The grid being edited.
    primary
        Its new primary worker, or None to leave it without one.
    backups
        Its backup workers; the primary is dropped from them (one role per worker and grid).

    Returns
    -------
    list of dict
        The new rows, ordered by grid, role (primary first) and worker; the input when nothing changes.
    """
    wanted = {(primary, "primary")} if primary else set()
    wanted |= {(str(w), "backup") for w in backups if w and str(w) != primary}
    current = {(str(r["worker_id"]), str(r["role"])) for r in rows if r["grid_code"] == grid_code}
    if wanted == current:
        return list(rows)  # type: ignore[arg-type]
    kept = [dict(r) for r in rows if r["grid_code"] != grid_code]
    kept += [{"grid_code": grid_code, "worker_id": w, "role": role, "manual": True} for w, role in wanted]
    return sorted(kept, key=lambda r: (r["grid_code"], r["role"] != "primary", r["worker_id"]))


def changed_grids(base: Iterable[Mapping[str, Any]], edits: Iterable[Mapping[str, Any]]) -> list[str]:
    """Grid codes whose workers or roles differ between two sets of assignment rows, sorted."""
    def by_grid(rows: Iterable[Mapping[str, Any]]) -> dict[str, set[tuple[str, str]]]:
        out: dict[str, set[tuple[str, str]]] = {}
        for r in rows:
            out.setdefault(str(r["grid_code"]), set()).add((str(r["worker_id"]), str(r["role"])))
        return out

    a, b = by_grid(base), by_grid(edits)
    return sorted(code for code in a.keys() | b.keys() if a.get(code, set()) != b.get(code, set()))


def assignments_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Assignment rows as the frame ``gridgov.staffing`` takes: ``grid_code, worker_id, role, manual``."""
    frame = pd.DataFrame(list(rows), columns=["grid_code", "worker_id", "role", "manual"])
    frame["manual"] = frame["manual"].fillna(False).astype(bool)
    return frame


def assignment_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows ``grid_code, worker_id, role, manual`` of an assignments frame (store or auto-assign)."""
    if frame.empty:
        return []
    cols = frame[["grid_code", "worker_id", "role", "manual"]]
    rows = [{"grid_code": str(g), "worker_id": str(w), "role": str(r), "manual": bool(m)}
            for g, w, r, m in cols.itertuples(index=False)]
    return sorted(rows, key=lambda r: (r["grid_code"], r["role"] != "primary", r["worker_id"]))


# -- map ------------------------------------------------------------------------------------------------------
def staffing_layers(*, grids_source: str | dict[str, Any], communities_source: str | dict[str, Any],
                    streets_source: str | dict[str, Any]) -> list[dict[str, Any]]:
    """The Overview's boundary layers plus an (empty) outline layer for one worker's grids at :data:`LAYER_WORKER`.

    Parameters
    ----------
    grids_source, communities_source, streets_source
        See :func:`dashboards.figures.boundary_layers`.
    """
    layers = boundary_layers(grids_source=grids_source, communities_source=communities_source,
                             streets_source=streets_source)
    layers.append({"sourcetype": "geojson", "source": EMPTY_FEATURES, "type": "line", "color": WORKER_COLOR,
                   "line": {"width": 4.0}})
    return layers


def _gap_z(table: pd.DataFrame) -> np.ndarray:
    share = pd.to_numeric(table["gap_share"], errors="coerce").to_numpy(dtype="float64")
    gap = pd.to_numeric(table["gap_hours"], errors="coerce").fillna(0.0).to_numpy(dtype="float64")
    # A grid without demand has no share: with nobody on it that is fine, with someone it is all surplus.
    return np.where(np.isfinite(share), share, np.where(gap < 0, -GAP_LIMIT, 0.0))


def status_label(status: str, lang: str = "en") -> str:
    """Display name of a grid status (``uncovered``, ``under``, ``ok``, ``over``)."""
    return t(f"st_status_{status}", lang) if status in STATUSES else status


def _names(ids: object, names: Mapping[str, str]) -> str:
    codes = [c.strip() for c in str(ids).split(",") if c.strip()] if isinstance(ids, str) else []
    return ", ".join(f"{names.get(c, c)}" for c in codes)


def gap_trace_values(table: pd.DataFrame, *, in_area: Sequence[bool] | np.ndarray, lang: str = "en",
                     community_names: Mapping[str, str] | None = None,
                     worker_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The data-dependent properties of the gap trace (what an edit or a street change patches).

    Parameters
    ----------
    table
        ``staffing_table`` output (``grid_code, community_code, demand_hours, supply_hours, gap_hours,
        gap_share, status, primary_id, backup_ids``), one row per map location, in map order.
    in_area
        Per row: inside the chosen street. Grids outside it, and uncovered grids (drawn by the uncovered trace),
        get no colour.
    lang
        Interface language.
    community_names, worker_names
        Display names by code, for the hover text.

    Returns
    -------
    dict
        ``z``, ``zmin``, ``zmax``, ``customdata`` and ``hovertemplate``.
    """
    comms = community_names or {}
    workers = worker_names or {}
    shown = np.asarray(in_area, dtype=bool)
    zs = _gap_z(table)
    status = table["status"].astype(str).to_numpy()
    z = [float(v) if s and st != "uncovered" else None for v, s, st in zip(zs, shown, status, strict=True)]
    # Plain lists: stepping through pandas' Arrow-backed string columns costs more than the formatting.
    columns = (table[c].tolist() for c in ("community_code", "demand_hours", "supply_hours", "gap_hours",
                                           "primary_id", "backup_ids"))
    customdata = [
        [comms.get(c, c), fmt_num(d), fmt_num(s), _signed(g), status_label(st, lang),
         workers.get(str(p), str(p)) if isinstance(p, str) and p else "—", _names(b, workers) or "—"]
        for (c, d, s, g, p, b), st in zip(zip(*columns, strict=True), status.tolist(), strict=True)
    ]
    hover = (
        "<b>%{location}</b><br>%{customdata[0]}<br>"
        f"{t('st_hover_status', lang)}: <b>%{{customdata[4]}}</b><br>"
        f"{t('st_hover_demand', lang)}: %{{customdata[1]}} h<br>"
        f"{t('st_hover_supply', lang)}: %{{customdata[2]}} h<br>"
        f"{t('st_hover_gap', lang)}: %{{customdata[3]}} h<br>"
        f"{t('st_hover_primary', lang)}: %{{customdata[5]}}<br>"
        f"{t('st_hover_backups', lang)}: %{{customdata[6]}}<extra></extra>"
    )
    return {"z": z, "zmin": -GAP_LIMIT, "zmax": GAP_LIMIT, "customdata": customdata, "hovertemplate": hover}


def gap_colorbar(lang: str = "en") -> dict[str, Any]:
    """The gap trace's colour bar: a short horizontal bar in the lower left, from surplus (blue) to short (red).

    It does not depend on the data (the colour range is fixed at ±:data:`GAP_LIMIT`), so it is drawn once with
    the figure and never patched.
    """
    ticks = [-GAP_LIMIT, -GAP_LIMIT / 2, 0.0, GAP_LIMIT / 2, GAP_LIMIT]
    return {
        # A fixed length in pixels: as a share of the width the bar would be too short for its title on a phone.
        "title": {"text": t("st_colorbar", lang), "side": "top", "font": {"size": 11}}, "orientation": "h",
        "thickness": 10, "len": 250, "lenmode": "pixels", "x": 0.02, "xanchor": "left", "y": 0.02, "yanchor": "bottom",
        "bgcolor": "rgba(255,255,255,0.9)", "outlinewidth": 0, "ypad": 8, "xpad": 10, "tickvals": ticks,
        "ticktext": [f"{abs(v):.0%}" if v else "0" for v in ticks],
    }


def uncovered_values(table: pd.DataFrame, *, in_area: Sequence[bool] | np.ndarray) -> dict[str, Any]:
    """Locations of the uncovered-grid trace: grids in the chosen area without an active primary worker."""
    shown = np.asarray(in_area, dtype=bool)
    codes = [str(c) for c, st, s in zip(table["grid_code"], table["status"], shown, strict=True)
             if s and st == "uncovered"]
    return {"locations": codes, "z": [1.0] * len(codes)}


def staffing_map(geojson: dict[str, Any], grid_codes: Sequence[str], *, uncovered_geojson: str | dict[str, Any],
                 values: Mapping[str, Any] | None = None, uncovered: Mapping[str, Any] | None = None,
                 lang: str = "en", view: Mapping[str, Any] | None = None,
                 layers: list[dict[str, Any]] | None = None) -> go.Figure:
    """The staffing map: grids coloured by gap share, uncovered grids grey with a thick dark outline.

    Parameters
    ----------
    geojson
        Grid polygons (feature ``id`` = grid code) in the order of ``grid_codes``.
    grid_codes
        Locations of the gap trace.
    uncovered_geojson
        GeoJSON (or its URL) holding at least the uncovered grids, for the second trace.
    values
        :func:`gap_trace_values`; None draws no colours yet (they arrive with the first callback).
    uncovered
        :func:`uncovered_values`; None draws none.
    lang
        Interface language (legend entry of the uncovered trace).
    view
        ``center``/``zoom`` from :func:`dashboards.figures.map_view`.
    layers
        From :func:`staffing_layers`.

    Returns
    -------
    plotly.graph_objects.Figure
        Trace 0 the gap choropleth, trace 1 the uncovered grids (shown in the legend).
    """
    gap = dict(values or {"z": [None] * len(grid_codes), "zmin": -GAP_LIMIT, "zmax": GAP_LIMIT})
    fig = go.Figure()
    fig.add_trace(go.Choroplethmap(
        geojson=geojson, locations=list(grid_codes), featureidkey="id", colorscale=GAP_COLORSCALE,
        marker={"opacity": 0.85, "line": {"width": 0.6, "color": "#ffffff"}}, name="", showlegend=False,
        colorbar=gap_colorbar(lang), **gap,
    ))
    unc = dict(uncovered or {"locations": [], "z": []})
    fig.add_trace(go.Choroplethmap(
        geojson=uncovered_geojson, featureidkey="id", colorscale=[[0, UNCOVERED_FILL], [1, UNCOVERED_FILL]],
        zmin=0, zmax=1, showscale=False, marker={"opacity": 0.9, "line": {"width": 3.0, "color": UNCOVERED_LINE}},
        name=t("st_legend_uncovered", lang), showlegend=True,
        hovertemplate="<b>%{location}</b><br>" + t("st_status_uncovered", lang) + "<extra></extra>", **unc,
    ))
    view = dict(view or map_view(None))
    fig.update_layout(
        **offline_map_layout(view, layers, revision="staffing", map_revision="area:"), clickmode="event",
        hoverlabel={"bgcolor": "#ffffff", "font": {"size": 13}},
        legend={"x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top", "bgcolor": "rgba(255,255,255,0.9)",
                "font": {"size": 12}},
    )
    return fig


def staffing_map_dict(geojson: dict[str, Any], grid_codes: Sequence[str], **kwargs: Any) -> dict[str, Any]:
    """:func:`staffing_map` as the plain dict ``dcc.Graph`` sends, the gap trace's polygons as numpy rings.

    The browser receives the same JSON as for the figure object, but Dash writes it several times faster (see
    :func:`dashboards.figures.density_map_dict`): no deep copy of a ``go.Figure``, no Python loop over every
    coordinate pair.

    Parameters
    ----------
    geojson, grid_codes, **kwargs
        As for :func:`staffing_map`.

    Returns
    -------
    dict
        ``{"data": [gap trace, uncovered trace], "layout": {...}}``; meant to be built once and shared, so it is
        never modified (:func:`dashboards.figures.with_map_view` gives a page its own view of it).
    """
    figure: dict[str, Any] = staffing_map(EMPTY_FEATURES, grid_codes, **kwargs).to_plotly_json()
    figure["data"][0]["geojson"] = geojson_arrays(geojson)
    return figure


# -- table ----------------------------------------------------------------------------------------------------
def _signed(value: object, digits: int = 1) -> str:
    v = float(value) if value is not None else math.nan  # type: ignore[arg-type]
    if not math.isfinite(v):
        return "—"
    return ("+" if round(v, digits) > 0 else "") + fmt_num(v, digits=digits)


def table_columns(lang: str = "en") -> list[dict[str, Any]]:
    """``DataTable`` column specs of the grid table, numbers right-aligned with fixed decimals."""
    from dash.dash_table.Format import Format, Scheme

    cols = []
    for key in TABLE_COLUMNS:
        spec: dict[str, Any] = {"id": key, "name": t(f"st_col_{key}", lang)}
        if key in _NUMERIC:
            spec["type"] = "numeric"
            spec["format"] = Format(precision=_NUMERIC[key], scheme=Scheme.fixed).group(True)
        cols.append(spec)
    return cols


def table_rows(table: pd.DataFrame, stats: pd.DataFrame | None = None, *, lang: str = "en",
               community_names: Mapping[str, str] | None = None, worker_names: Mapping[str, str] | None = None,
               edited: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One ``DataTable`` row per grid of ``table`` (same order), ``id`` = grid code.

    Parameters
    ----------
    table
        ``staffing_table`` output, possibly filtered to one street.
    stats
        ``grid_code, open, overdue`` (``Store.grid_stats``); grids absent have none.
    lang
        Interface language.
    community_names, worker_names
        Display names by code.
    edited
        Grid codes with unsaved changes; their rows carry a marker.

    Returns
    -------
    list of dict
        Keys :data:`TABLE_COLUMNS` plus ``id`` and ``status_key``; numbers rounded as displayed.
    """
    comms = community_names or {}
    workers = worker_names or {}
    marked = set(edited)
    # Plain dicts: a pandas lookup per grid and column was most of the time of a full table (1,800 grids).
    opens: dict[str, Any] = {}
    overdues: dict[str, Any] = {}
    if stats is not None and len(stats):
        codes = stats["grid_code"].astype(str).tolist()
        opens = dict(zip(codes, stats["open"].tolist(), strict=True))
        overdues = dict(zip(codes, stats["overdue"].tolist(), strict=True))
    rows = []
    columns = (table[c].tolist() for c in ("grid_code", "community_code", "demand_hours", "supply_hours",
                                           "gap_hours", "gap_fte", "primary_id", "backup_ids", "status"))
    for grid, community, demand, supply, gap, fte, primary_id, backup_ids, status in zip(*columns, strict=True):
        code = str(grid)
        primary = primary_id if isinstance(primary_id, str) and primary_id else None
        rows.append({
            "id": code,
            "edited": "●" if code in marked else "",
            "grid": code,
            "community": comms.get(community, community),
            "demand": round(float(demand), 1),
            "supply": round(float(supply), 1),
            "gap": round(float(gap), 1),
            "fte": round(float(fte), 2),
            "open": int(opens.get(code, 0)),
            "overdue": int(overdues.get(code, 0)),
            "primary": f"{workers.get(primary, primary)} ({primary})" if primary else "—",
            "backups": _names(backup_ids, workers) or "",
            "status": status_label(str(status), lang),
            "status_key": str(status),
        })
    return rows


def changed_rows(old: Sequence[Mapping[str, Any]] | None,
                 new: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, Any]] | None:
    """Rows of ``new`` that differ from ``old`` by position, or None when the row ids differ (replace all)."""
    if old is None or len(old) != len(new) or any(a.get("id") != b.get("id") for a, b in zip(old, new, strict=True)):
        return None
    return {i: dict(b) for i, (a, b) in enumerate(zip(old, new, strict=True)) if dict(a) != dict(b)}


def changed_positions(old: Sequence[Any] | None, new: Sequence[Any]) -> list[int] | None:
    """Positions where two equally long lists differ, or None when there is no old list or the lengths differ."""
    if old is None or len(old) != len(new):
        return None
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]


def table_styles(lang: str = "en") -> list[dict[str, Any]]:
    """``style_data_conditional`` of the grid table: gap and status cells tinted by status, edited rows marked."""
    tints = {"uncovered": ("#e5e7eb", "#111827"), "under": ("#fdecea", "#b2182b"), "ok": ("#ffffff", "#1f2937"),
             "over": ("#e8f0f8", "#2166ac")}
    styles: list[dict[str, Any]] = []
    for status, (bg, ink) in tints.items():
        label = status_label(status, lang).replace('"', "")
        styles.append({"if": {"filter_query": f'{{status}} = "{label}"', "column_id": ["status", "gap", "fte"]},
                       "backgroundColor": bg, "color": ink, "fontWeight": 600 if status != "ok" else 400})
    styles.append({"if": {"filter_query": '{edited} = "●"'}, "backgroundColor": "#fff7d6"})
    styles.append({"if": {"column_id": "edited"}, "color": "#b45309", "textAlign": "center"})
    styles.append({"if": {"state": "active"}, "backgroundColor": "#e8eefc", "border": "1px solid #1d4ed8"})
    return styles


# -- KPI cards ------------------------------------------------------------------------------------------------
def kpi_items(coverage: Mapping[str, float], totals: Mapping[str, float], *, need_workers: int, need_hours: float,
              overloaded: int, active: int, band: float, lang: str = "en") -> list[dict[str, str]]:
    """Label, value, footnote and tone of the staffing KPI cards.

    Parameters
    ----------
    coverage
        ``grids``, ``households``, ``incidents`` shares in grids with an active primary.
    totals
        ``gap_hours`` (sum of shortfalls), ``surplus_hours``, ``gap_fte``.
    need_workers, need_hours
        The hiring need: extra standard-week workers and hours per week.
    overloaded, active
        Overloaded workers and all active workers in view.
    band
        The "ok" band as a share of demand (for the footnote).
    lang
        Interface language.

    Returns
    -------
    list of dict
        ``key, label, value, note, tone`` for coverage, gap, hires and overload; ``tone`` is ``"alert"`` when
        the card asks for action, ``"good"`` when all is well.
    """
    grids = coverage.get("grids")
    gap = float(totals.get("gap_hours") or 0.0)
    surplus = float(totals.get("surplus_hours") or 0.0)
    fte = float(totals.get("gap_fte") or 0.0)
    return [
        {"key": "coverage", "label": t("st_kpi_coverage", lang), "value": fmt_pct(grids),
         "note": t("st_kpi_coverage_note", lang, households=fmt_pct(coverage.get("households")),
                   incidents=fmt_pct(coverage.get("incidents"))),
         "tone": "alert" if grids is not None and grids < 1.0 else "good"},
        {"key": "gap", "label": t("st_kpi_gap", lang), "value": t("st_hours_value", lang, n=fmt_num(gap, digits=0)),
         "note": t("st_kpi_gap_note", lang, fte=fmt_num(fte), surplus=fmt_num(surplus, digits=0)),
         "tone": "alert" if gap > 0.5 else "good"},
        {"key": "hire", "label": t("st_kpi_hire", lang), "value": fmt_int(need_workers),
         "note": (t("st_kpi_hire_note", lang, hours=fmt_num(need_hours, digits=0), band=f"{band:.0%}")
                  if need_workers else t("st_kpi_hire_none", lang, band=f"{band:.0%}")),
         "tone": "alert" if need_workers else "good"},
        {"key": "overloaded", "label": t("st_kpi_overloaded", lang), "value": fmt_int(overloaded),
         "note": t("st_kpi_overloaded_note", lang, active=fmt_int(active)),
         "tone": "alert" if overloaded else "good"},
    ]


def kpi_placeholders(lang: str = "en") -> list[dict[str, str]]:
    """The KPI cards before the first computation: labels with a dash."""
    items = kpi_items({}, {}, need_workers=0, need_hours=0.0, overloaded=0, active=0, band=0.1, lang=lang)
    return [{**item, "value": "—", "note": "", "tone": ""} for item in items]


# -- workers --------------------------------------------------------------------------------------------------
def worker_options(loads: pd.DataFrame, *, lang: str = "en") -> list[dict[str, str]]:
    """Dropdown options of active workers, least loaded first, each labelled with their current load.

    Parameters
    ----------
    loads
        ``worker_loads`` output: ``worker_id, name, hours_per_week, n_grids, load_ratio, overloaded``.
    lang
        Interface language.

    Returns
    -------
    list of dict
        ``label`` like ``W0012 王伟 · 40 h · 2 grids · 115% ⚠``, ``value`` the worker id, ``search`` text.
    """
    if loads.empty:
        return []
    ratio = pd.to_numeric(loads["load_ratio"], errors="coerce").fillna(0.0)
    order = loads.assign(sort_ratio=ratio).sort_values(["sort_ratio", "worker_id"], kind="stable")
    out = []
    rec: Any
    for rec in order.itertuples(index=False):
        label = t("st_worker_option", lang, id=rec.worker_id, name=rec.name,
                  hours=fmt_num(rec.hours_per_week, digits=0), grids=int(rec.n_grids), load=fmt_pct(rec.sort_ratio))
        if bool(rec.overloaded):
            label += " ⚠"
        elif int(rec.n_grids) == 0:
            label += " · " + t("st_worker_free", lang)
        out.append({"label": label, "value": str(rec.worker_id), "search": f"{rec.worker_id} {rec.name}"})
    return out


def demand_supply_bar(row: Mapping[str, Any], *, lang: str = "en") -> go.Figure:
    """Two horizontal bars for one grid: demand split into incidents, patrol and visits; supply beside it.

    Parameters
    ----------
    row
        One ``staffing_table`` row: ``incident_hours, patrol_hours, visit_hours, supply_hours``.
    lang
        Interface language.
    """
    parts = [("incident_hours", "st_part_incidents", "#e34a33"), ("patrol_hours", "st_part_patrol", "#fc8d59"),
             ("visit_hours", "st_part_visits", "#fdbb84")]
    demand_label, supply_label = t("st_bar_demand", lang), t("st_bar_supply", lang)
    fig = go.Figure()
    for col, key, color in parts:
        value = float(row.get(col) or 0.0)
        fig.add_bar(x=[value], y=[demand_label], orientation="h", name=t(key, lang), marker_color=color,
                    hovertemplate=f"{t(key, lang)}: %{{x:.1f}} h<extra></extra>")
    fig.add_bar(x=[float(row.get("supply_hours") or 0.0)], y=[supply_label], orientation="h",
                name=t("st_bar_supply", lang), marker_color="#4b77be", showlegend=False,
                hovertemplate=f"{supply_label}: %{{x:.1f}} h<extra></extra>")
    fig.update_layout(
        barmode="stack", height=130, margin={"l": 8, "r": 8, "t": 4, "b": 4}, paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)", font={"size": 12},
        xaxis={"title": {"text": t("st_bar_axis", lang)}, "rangemode": "tozero", "gridcolor": "#eef1f5"},
        yaxis={"automargin": True, "categoryorder": "array", "categoryarray": [supply_label, demand_label]},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "font": {"size": 11}},
    )
    return fig
