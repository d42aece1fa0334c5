"""Pure builders of the Planner page: frames in, figures, GeoJSON and display rows out.

Nothing here reads the database or Dash state (``tests/test_planner_figures.py`` tests them without a browser).
The page reads layouts, units and the comparison from :mod:`gridgov.scenarios` and hands them over.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import shapely
from plotly.subplots import make_subplots

from dashboards.figures import (
    EMPTY_FEATURES,
    basemap_layer,
    fmt_int,
    fmt_num,
    fmt_pct,
    map_view,
    offline_map_layout,
    to_geojson,
)
from dashboards.i18n import t
from gridgov.errors import InputError

#: Demand per grid, hours a week: pale for light grids, deep blue for heavy ones (a workload, not an alarm).
DEMAND_COLORSCALE: list[list[Any]] = [
    [0.0, "#f1f5fb"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1.0, "#08306b"],
]
KEPT_FILL = "#e5e7eb"
NEW_CODE_FILL = "#c7d2fe"
MOVED_FILL = "#f97316"
#: Rows of the comparison in display order: metric key, how to format it, and the share shown next to it.
_ROWS: tuple[tuple[str, str, str | None], ...] = (
    ("n_grids", "int", None), ("demand_min", "hours", None), ("demand_median", "hours", None),
    ("demand_max", "hours", None), ("max_over_mean", "ratio", None), ("cv", "ratio", None),
    ("households_min", "int", None), ("households_max", "int", None), ("outside_range", "int", None),
    ("pp_median", "ratio", None), ("households_moved", "int", "households_moved_share"),
    ("incidents_moved", "int", "incidents_moved_share"), ("workers_changed", "int", None),
    ("gap_hours", "hours", None), ("worst_gap_hours", "hours", None), ("forecast_on_time", "pct", None),
)
STATUSES = ("current", "scenario", "archived")


# -- the form -------------------------------------------------------------------------------------------------
def regrid_kwargs(*, name: str | None, mode: str | None, n_grids: Any, households: str | None, weight: str | None,
                  tolerance_pct: Any, respect: str | None, minimal_change: bool, seed: Any,
                  taken: Sequence[str] = ()) -> dict[str, Any]:
    """Keyword arguments of :func:`gridgov.regrid.regrid` from the values of the scenario form.

    Parameters
    ----------
    name
        Scenario name; blank gives the first free ``Scenario N``.
    mode
        ``count`` (use ``n_grids``) or ``range`` (use ``households`` as ``MIN-MAX``).
    tolerance_pct
        Tolerance in percent above the mean load (the form speaks percent; ``regrid`` takes a share).
    taken
        Layout names already in use.

    Raises
    ------
    InputError
        Naming the form field and the offending value.
    """
    name = (name or "").strip()
    if not name:
        used = set(taken)
        name = next(f"Scenario {i}" for i in range(1, len(used) + 2) if f"Scenario {i}" not in used)
    elif name in set(taken):
        raise InputError(f"a layout named {name!r} already exists; choose another name", field="name")
    kwargs: dict[str, Any] = {"name": name, "weight": weight if weight in ("demand", "households") else "demand",
                              "respect": respect if respect in ("community", "street", "none") else "community",
                              "minimal_change": bool(minimal_change)}
    if mode == "range":
        text = (households or "").replace("–", "-").replace(" ", "")
        parts = text.split("-")
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise InputError(f"must be MIN-MAX, e.g. 300-500, got {households!r}", field="households") from None
        if len(parts) != 2 or not 0 < lo < hi:
            raise InputError(f"must satisfy 0 < MIN < MAX, got {households!r}", field="households")
        kwargs["households"] = f"{lo:g}-{hi:g}"
    else:
        count = _number(n_grids, "n_grids")
        if count < 1 or count != int(count):
            raise InputError(f"must be a whole number ≥ 1, got {n_grids!r}", field="n_grids")
        kwargs["n_grids"] = int(count)
    tol = _number(tolerance_pct, "tolerance")
    if not 0 < tol <= 500:
        raise InputError(f"must be > 0 and at most 500 %, got {tolerance_pct!r}", field="tolerance")
    kwargs["tolerance"] = tol / 100.0
    seed_value = _number(seed if seed not in (None, "") else 0, "seed")
    if seed_value < 0 or seed_value != int(seed_value):
        raise InputError(f"must be a whole number ≥ 0, got {seed!r}", field="seed")
    kwargs["seed"] = int(seed_value)
    return kwargs


def _number(value: Any, field: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"must be a number, got {value!r}", field=field) from None
    if not math.isfinite(out):
        raise InputError(f"must be a number, got {value!r}", field=field)
    return out


def parse_range(text: str | None) -> tuple[float, float] | None:
    """``(low, high)`` from ``"300-500"``; None when blank or malformed."""
    parts = (text or "").replace("–", "-").replace(" ", "").split("-")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        return None
    return (lo, hi) if len(parts) == 2 and 0 <= lo < hi else None


def suggestions(*, tolerance: float | None, n_grids: Sequence[int], asked_tolerance: float,
                lang: str = "en") -> list[dict[str, str]]:
    """Buttons offering what the engine said would work (:class:`gridgov.planning.InfeasiblePlan` fields).

    Returns
    -------
    list of dict
        ``key`` (``tolerance:0.19`` or ``n_grids:17``) and ``label`` per suggestion, the tolerance first.
    """
    out = []
    if tolerance is not None and tolerance > asked_tolerance + 1e-9:
        pct = math.ceil(tolerance * 1000) / 10  # round up: a rounded-down tolerance would fail again
        out.append({"key": f"tolerance:{pct:g}", "label": t("pl_suggest_tolerance", lang, pct=f"{pct:g}")})
    for count in list(n_grids)[:2]:
        out.append({"key": f"n_grids:{int(count)}", "label": t("pl_suggest_count", lang, n=int(count))})
    return out


# -- scenarios list -------------------------------------------------------------------------------------------
def params_summary(params: Any, lang: str = "en") -> str:
    """One line of what a layout was planned with (``18 grids · demand · ±10% · community``)."""
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return ""
    if not isinstance(params, Mapping):
        return ""
    if str(params.get("method", "")).startswith("demo") or "tolerance" not in params:
        return t("pl_params_drawn", lang)
    parts = []
    if params.get("households"):
        parts.append(t("pl_params_households", lang, range=params["households"]))
    elif params.get("n_grids"):
        parts.append(t("pl_params_count", lang, n=params["n_grids"]))
    if params.get("weight"):
        parts.append(t(f"pl_weight_{params['weight']}", lang))
    if params.get("tolerance") is not None and not params.get("households"):
        parts.append(f"±{float(params['tolerance']) * 100:g}%")
    if params.get("respect"):
        parts.append(t(f"pl_respect_{params['respect']}", lang))
    if params.get("minimal_change"):
        parts.append(t("pl_minimal_short", lang))
    if params.get("seed"):
        parts.append(t("pl_seed_short", lang, seed=params["seed"]))
    return " · ".join(str(p) for p in parts)


def layout_rows(layouts: pd.DataFrame, lang: str = "en") -> list[dict[str, Any]]:
    """Display rows of the scenarios list: current first, then scenarios and archived layouts, newest first.

    Parameters
    ----------
    layouts
        ``Store.layouts()``.
    """
    if layouts.empty:
        return []
    order = {s: i for i, s in enumerate(STATUSES)}
    frame = layouts.assign(_o=layouts["status"].map(order).fillna(9)).sort_values(
        ["_o", "layout_id"], ascending=[True, False], kind="stable")
    return [{"layout_id": int(r.layout_id), "name": str(r.name), "status": str(r.status),
             "status_label": t(f"pl_status_{r.status}", lang), "n_grids": fmt_int(r.n_grids),
             "created": pd.Timestamp(r.created_at).strftime("%Y-%m-%d %H:%M") if pd.notna(r.created_at) else "—",
             "params": params_summary(r.params, lang)}
            for r in frame.itertuples(index=False)]


def default_pair(layouts: pd.DataFrame) -> tuple[int | None, int | None]:
    """What to compare when nothing is chosen: the current layout and the newest scenario (else the newest other)."""
    if layouts.empty:
        return None, None
    cur = layouts.loc[layouts["status"] == "current", "layout_id"]
    a = int(cur.iloc[0]) if len(cur) else int(layouts["layout_id"].max())
    others = layouts[layouts["layout_id"] != a]
    scen = others[others["status"] == "scenario"]
    pool = scen if len(scen) else others
    b = int(pool["layout_id"].max()) if len(pool) else None
    return a, b


# -- maps -----------------------------------------------------------------------------------------------------
def demand_range(*values: Sequence[float]) -> tuple[float, float]:
    """One colour scale for the maps compared: 0 to the largest demand of either layout."""
    top = max((float(np.nanmax(v)) for v in values if len(v) and np.isfinite(np.asarray(v, float)).any()),
              default=1.0)
    return 0.0, max(top, 1e-9)


def demand_map(grids: gpd.GeoDataFrame, demand: Mapping[str, float], *, zrange: tuple[float, float],
               lang: str = "en", view: Mapping[str, Any] | None = None,
               layers: list[dict[str, Any]] | None = None, community_names: Mapping[str, str] | None = None,
               colorbar: bool = True) -> go.Figure:
    """A layout's grids coloured by staffing demand (hours a week), on the offline ``white-bg`` map.

    Parameters
    ----------
    grids
        ``Store.layout_grids`` (EPSG:4326) with ``grid_code, community_code, households``.
    demand
        Demand hours a week per grid code.
    zrange
        Shared colour range (:func:`demand_range`), so that two maps read alike.
    layers
        Line layers drawn on top (:func:`planner_layers`).
    colorbar
        Show the colour bar (one of two maps side by side is enough).
    """
    names = community_names or {}
    codes = grids["grid_code"].astype(str).tolist()
    z = [float(demand[c]) if c in demand and math.isfinite(float(demand[c])) else None for c in codes]
    custom = [[names.get(cc, cc), fmt_int(hh), fmt_num(d) if d is not None else "—"]
              for cc, hh, d in zip(grids["community_code"], grids["households"], z, strict=True)]
    hover = ("<b>%{location}</b><br>%{customdata[0]}<br>"
             f"{t('pl_hover_demand', lang)}: %{{customdata[2]}} {t('pl_unit_hours', lang)}<br>"
             f"{t('hover_households', lang)}: %{{customdata[1]}}<extra></extra>")
    trace = go.Choroplethmap(
        geojson=to_geojson(grids, id_column="grid_code"), locations=codes, featureidkey="id", z=z,
        zmin=zrange[0], zmax=zrange[1], colorscale=DEMAND_COLORSCALE, customdata=custom, hovertemplate=hover,
        marker={"opacity": 0.85, "line": {"width": 1.0, "color": "#ffffff"}}, name="", showscale=colorbar,
        colorbar={"title": {"text": t("pl_colorbar", lang), "side": "top"}, "orientation": "h", "thickness": 9,
                  "len": 0.42, "x": 0.015, "xanchor": "left", "y": 0.02, "yanchor": "bottom",
                  "bgcolor": "rgba(255,255,255,0.9)", "outlinewidth": 0, "nticks": 4, "tickformat": ",.0f"},
    )
    return _map_figure([trace], view=view, layers=layers)


def _map_figure(traces: list[Any], *, view: Mapping[str, Any] | None, layers: list[dict[str, Any]] | None,
                legend: bool = False) -> go.Figure:
    fig = go.Figure(traces)
    view = dict(view or map_view(None))
    fig.update_layout(
        **offline_map_layout(view, layers, revision="planner"),
        hoverlabel={"bgcolor": "#ffffff", "font": {"size": 12}}, showlegend=legend,
        legend={"x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top", "bgcolor": "rgba(255,255,255,0.92)",
                "font": {"size": 11}},
    )
    return fig


def planner_layers(*, communities_source: str | dict[str, Any], streets_source: str | dict[str, Any],
                   old_grids: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Line layers of the planner maps: hidden basemap, community and street borders, and optionally the compared
    layout's grid borders dashed (on the change map)."""
    def line(source: str | dict[str, Any], color: str, width: float, **extra: Any) -> dict[str, Any]:
        return {"sourcetype": "geojson", "source": source, "type": "line", "color": color,
                "line": {"width": width, **extra}}

    layers = [basemap_layer("blank"), line(communities_source, "#5f6b7a", 1.0), line(streets_source, "#1f2937", 2.4)]
    if old_grids is not None:
        layers.append(line(old_grids, "#9a3412", 1.2, dash=[2, 2]))
    return layers


def unit_moves(old_units: pd.DataFrame, new_units: pd.DataFrame, succ: pd.DataFrame) -> pd.DataFrame:
    """Which units change grid from one layout to another, by the successor rule.

    A new grid continues the old grid it draws most households from (:func:`gridgov.scenarios.successors`); a unit
    moves when its new grid does not continue its old grid.

    Parameters
    ----------
    old_units, new_units
        ``unit_id, grid_code`` of each layout.
    succ
        ``new_grid, old_grid`` (one row per new grid).

    Returns
    -------
    pandas.DataFrame
        ``unit_id, old_grid, new_grid, moved`` for the units in both layouts.
    """
    units = old_units.merge(new_units, on="unit_id", suffixes=("_old", "_new"))
    continues = succ.set_index("new_grid")["old_grid"]
    moved = units["grid_code_new"].map(continues).to_numpy() != units["grid_code_old"].to_numpy()
    return pd.DataFrame({"unit_id": units["unit_id"].to_numpy(), "old_grid": units["grid_code_old"].to_numpy(),
                         "new_grid": units["grid_code_new"].to_numpy(), "moved": moved})


def code_status(old_codes: Sequence[str], new_codes: Sequence[str]) -> pd.Series:
    """``kept`` or ``new`` for each grid code of the new layout: kept when the old layout used the same code."""
    old = {str(c) for c in old_codes}
    return pd.Series(["kept" if str(c) in old else "new" for c in new_codes], index=[str(c) for c in new_codes],
                     dtype=object)


def moved_areas(units: gpd.GeoDataFrame, moves: pd.DataFrame) -> gpd.GeoDataFrame:
    """The moving units merged into one polygon per (old grid, new grid) pair, with their households.

    Parameters
    ----------
    units
        ``Store.units()`` (EPSG:4326) with ``unit_id`` and ``households``.
    moves
        :func:`unit_moves`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``area_id, old_grid, new_grid, units, households, geometry``, largest first.
    """
    moving = moves[moves["moved"]]
    cols = ["area_id", "old_grid", "new_grid", "units", "households", "geometry"]
    if moving.empty:
        return gpd.GeoDataFrame({c: [] for c in cols[:-1]}, geometry=[], crs=units.crs)
    geo = units.set_index("unit_id").loc[moving["unit_id"].to_numpy()]
    frame = gpd.GeoDataFrame({"old_grid": moving["old_grid"].to_numpy(), "new_grid": moving["new_grid"].to_numpy(),
                              "households": geo["households"].to_numpy()}, geometry=geo.geometry.to_numpy(),
                             crs=units.crs)
    rows = []
    for (old, new), grp in frame.groupby(["old_grid", "new_grid"], sort=True):
        rows.append({"old_grid": str(old), "new_grid": str(new), "units": len(grp),
                     "households": int(grp["households"].sum()),
                     "geometry": shapely.union_all(grp.geometry.to_numpy())})
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=units.crs)
    out = out.sort_values(["households", "units"], ascending=False, kind="stable").reset_index(drop=True)
    out["area_id"] = [f"m{i}" for i in range(len(out))]
    return out[cols]


def change_map(new_grids: gpd.GeoDataFrame, status: pd.Series, areas: gpd.GeoDataFrame, *, lang: str = "en",
               view: Mapping[str, Any] | None = None, layers: list[dict[str, Any]] | None = None) -> go.Figure:
    """What changes from layout A to layout B.

    Trace 0 fills B's grids: grey where the code is kept, violet where it is re-issued (a new code). Trace 1 marks in
    orange the units that move grid, merged per (old grid → new grid). A's grid borders come dashed in ``layers``.
    """
    codes = new_grids["grid_code"].astype(str).tolist()
    z = [1 if status.get(c) == "new" else 0 for c in codes]
    label = {0: t("pl_code_kept", lang), 1: t("pl_code_new", lang)}
    grids_trace = go.Choroplethmap(
        geojson=to_geojson(new_grids, id_column="grid_code"), locations=codes, featureidkey="id", z=z, zmin=0, zmax=1,
        colorscale=[[0, KEPT_FILL], [0.5, KEPT_FILL], [0.5, NEW_CODE_FILL], [1, NEW_CODE_FILL]], showscale=False,
        customdata=[[label[v]] for v in z], marker={"opacity": 0.9, "line": {"width": 1.4, "color": "#374151"}},
        hovertemplate="<b>%{location}</b><br>%{customdata[0]}<extra></extra>", name=t("pl_legend_new_code", lang),
        showlegend=False,
    )
    traces: list[Any] = [grids_trace]
    ids = areas["area_id"].astype(str).tolist() if len(areas) else []
    moved = go.Choroplethmap(
        geojson=to_geojson(areas, id_column="area_id") if len(areas) else EMPTY_FEATURES, locations=ids,
        featureidkey="id", z=[1] * len(ids), zmin=0, zmax=1, colorscale=[[0, MOVED_FILL], [1, MOVED_FILL]],
        showscale=False, marker={"opacity": 0.75, "line": {"width": 0.5, "color": "#9a3412"}},
        customdata=[[o, n, fmt_int(u), fmt_int(h)] for o, n, u, h in zip(
            areas.get("old_grid", []), areas.get("new_grid", []), areas.get("units", []),
            areas.get("households", []), strict=True)],
        hovertemplate=(f"<b>{t('pl_hover_moves', lang)}</b><br>%{{customdata[0]}} → %{{customdata[1]}}<br>"
                       f"{t('pl_hover_units', lang)}: %{{customdata[2]}}<br>"
                       f"{t('hover_households', lang)}: %{{customdata[3]}}<extra></extra>"),
        name=t("pl_legend_moved", lang), showlegend=False,
    )
    traces.append(moved)
    # The legend is drawn by the page under the map (see :func:`change_legend`): inside the map it hides grids.
    return _map_figure(traces, view=view, layers=layers)


def change_legend(lang: str = "en") -> list[dict[str, str]]:
    """Swatches explaining :func:`change_map`: ``label``, ``color`` and ``kind`` (``fill`` or ``dash``)."""
    return [{"label": t("pl_legend_kept", lang), "color": KEPT_FILL, "kind": "fill"},
            {"label": t("pl_legend_new_code", lang), "color": NEW_CODE_FILL, "kind": "fill"},
            {"label": t("pl_legend_moved", lang), "color": MOVED_FILL, "kind": "fill"},
            {"label": t("pl_legend_old_borders", lang), "color": "#9a3412", "kind": "dash"}]


def change_summary(moves: pd.DataFrame, status: pd.Series, households: Mapping[int, float],
                   lang: str = "en") -> str:
    """The caption under the change map: units and households that move, codes kept and re-issued."""
    moving = moves[moves["moved"]]
    hh = float(sum(households.get(int(u), 0) for u in moving["unit_id"]))
    return t("pl_change_caption", lang, units=fmt_int(len(moving)), households=fmt_int(hh),
             kept=fmt_int(int((status == "kept").sum())), new=fmt_int(int((status == "new").sum())))


# -- metrics table --------------------------------------------------------------------------------------------
def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if kind == "int":
        return fmt_int(value)
    if kind == "hours":
        return fmt_num(float(value))
    if kind == "pct":
        return fmt_pct(float(value))
    return fmt_num(float(value), digits=2)


def _shown_zero(value: float, kind: str) -> bool:
    """True when a change would print as zero (it is then neither better nor worse on screen)."""
    digits = {"int": 0, "hours": 1, "pct": 3, "ratio": 2}.get(kind, 2)
    return round(abs(value), digits) == 0


def _fmt_change(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    v = float(value)
    if _shown_zero(v, kind):
        return "0"
    sign = "+" if v > 0 else "−"
    if kind == "pct":
        return f"{sign}{abs(v) * 100:.1f} pts"
    if kind == "int":
        return f"{sign}{fmt_int(abs(v))}"
    return f"{sign}{fmt_num(abs(v), digits=1 if kind == 'hours' else 2)}"


def metric_rows(table: pd.DataFrame, *, lang: str = "en", household_range: tuple[float, float] | None = None
                ) -> list[dict[str, Any]]:
    """Display rows of the comparison table from :func:`gridgov.scenarios.compare`.

    Returns
    -------
    list of dict
        ``key, label, unit, a, b, change, tone`` per row; ``tone`` is ``better``, ``worse`` or ``""``. A moved count
        carries its share in brackets; the share rows themselves are folded into it.
    """
    by = table.set_index("metric")
    rows = []
    for key, kind, share in _ROWS:
        if key not in by.index:
            continue
        rec = by.loc[key]
        label = t(f"pl_m_{key}", lang)
        if key == "outside_range":
            label = (t("pl_m_outside_range", lang, range=f"{household_range[0]:g}–{household_range[1]:g}")
                     if household_range else t("pl_m_outside_range_none", lang))
        a, b = _fmt(rec["a"], kind), _fmt(rec["b"], kind)
        if share and share in by.index:
            sa, sb = by.loc[share, "a"], by.loc[share, "b"]
            if a != "—" and sa is not None and not pd.isna(sa):
                a = f"{a} ({fmt_pct(float(sa))})"
            if b != "—" and sb is not None and not pd.isna(sb):
                b = f"{b} ({fmt_pct(float(sb))})"
        better = rec["better"]
        change = rec["change"]
        unchanged = change is None or pd.isna(change) or _shown_zero(float(change), kind)
        tone = "" if better is None or pd.isna(better) or unchanged else ("better" if bool(better) else "worse")
        rows.append({"key": key, "label": label, "unit": t(f"pl_unit_{kind}", lang) if kind != "int" else "",
                     "a": a, "b": b, "change": _fmt_change(rec["change"], kind), "tone": tone})
    return rows


def calibration_text(*, error_points: float, grid_error_points: float | None, recorded: float, forecast: float,
                     lang: str = "en") -> dict[str, str]:
    """The calibration sentence and its detail (``docs/replay.md``): how close the replay on the current layout
    comes to the recorded on-time rate on the held-out stretch, and per grid.

    Returns
    -------
    dict
        ``headline``, ``detail`` and ``tone`` (``good`` within ±5 points, else ``warn``).
    """
    headline = t("pl_cal_headline", lang, points=f"{abs(error_points):.1f}")
    detail = t("pl_cal_detail", lang, recorded=fmt_pct(recorded), forecast=fmt_pct(forecast),
               error=f"{error_points:+.1f}",
               grid=f"{grid_error_points:.1f}" if grid_error_points is not None else "—")
    return {"headline": headline, "detail": detail, "tone": "good" if abs(error_points) <= 5 else "warn"}


# -- is today's layout unusual? -------------------------------------------------------------------------------
def outlier_figure(samples: pd.DataFrame, *, layout_max_over_mean: float, layout_pp_median: float,
                   lang: str = "en") -> go.Figure:
    """Two small histograms of the sampled layouts (balance, compactness), a red line where the layout sits."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16,
                        subplot_titles=(t("pl_out_balance_axis", lang), t("pl_out_compact_axis", lang)))
    for col, key, own in ((1, "max_over_mean", layout_max_over_mean), (2, "pp_median", layout_pp_median)):
        values = samples[key].astype(float)
        lo, hi = min(float(values.min()), own), max(float(values.max()), own)
        span = (hi - lo) or max(abs(hi), 1.0) * 0.1
        # Fixed bins over the samples *and* today's value: plotly's own "nice" bins can swallow a tight cluster.
        fig.add_trace(go.Histogram(x=values.tolist(), xbins={"start": lo - span * 0.01, "end": hi + span * 0.01,
                                                             "size": span / 24},
                                   marker_color="#94a3b8", name="", showlegend=False,
                                   hovertemplate="%{x}: %{y}<extra></extra>"), row=1, col=col)
        fig.add_vline(x=own, line_color="#b91c1c", line_width=2.5, row=1, col=col)  # type: ignore[arg-type]
        fig.update_xaxes(range=[lo - span * 0.08, hi + span * 0.08], row=1, col=col)
        fig.add_annotation(x=own, y=1.0, yref="y domain" if col == 1 else "y2 domain", xref=f"x{'' if col == 1 else 2}",
                           text=t("pl_out_today", lang), showarrow=False, xanchor="right" if own >= hi else "left",
                           yanchor="top", font={"color": "#b91c1c", "size": 11}, xshift=-4 if own >= hi else 4)
    fig.update_layout(height=190, margin={"l": 36, "r": 12, "t": 28, "b": 28}, bargap=0.05,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="#f8fafc", font={"size": 11})
    fig.update_annotations(font_size=11)
    return fig


def outlier_text(*, balance_percentile: float, compactness_percentile: float, samples: int,
                 lang: str = "en") -> dict[str, str]:
    """What the percentiles say, in words (see :class:`gridgov.scenarios.Outlier`)."""
    def verdict(pct: float, what: str) -> str:
        if pct >= 95:
            return t(f"pl_out_{what}_worse", lang, pct=f"{pct:.0f}")
        if pct <= 5:
            return t(f"pl_out_{what}_better", lang, pct=f"{pct:.0f}")
        return t(f"pl_out_{what}_typical", lang, pct=f"{pct:.0f}")

    return {"balance": verdict(balance_percentile, "balance"),
            "compactness": verdict(compactness_percentile, "compact"),
            "samples": t("pl_out_samples", lang, n=fmt_int(samples)),
            "outlier": "yes" if balance_percentile >= 95 or compactness_percentile >= 95 else "no"}
