"""Pure builders: data frames in, Plotly figures, GeoJSON and display values out.

Nothing here reads the database or Dash callback state, so every function is tested without a browser
(``tests/test_figures.py``). Pages call the store, then hand the frames to these builders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import shapely

from dashboards.i18n import t
from gridgov import metrics
from gridgov.metrics import DensityBasis

#: Sequential scale for density: pale for few incidents, deep red for many; readable on a white background.
DENSITY_COLORSCALE: list[list[Any]] = [
    [0.0, "#fff7e6"], [0.2, "#fdd49e"], [0.4, "#fdbb84"], [0.6, "#fc8d59"], [0.8, "#e34a33"], [1.0, "#b30000"],
]
#: Basemap choices: blank (offline) first; the others are raster tiles from the internet, drawn as a layer under
#: the grids on top of the always-offline ``white-bg`` style. Switching the map *style* to an online one instead
#: breaks the map for good when the style cannot be fetched; a tile layer that fails just stays empty.
#: Plotly also stops redrawing the map once tiles fail to load, so the page first fetches the ``probe`` tile and
#: falls back to blank when it cannot.
BASEMAPS: dict[str, dict[str, Any]] = {
    "blank": {"tiles": [], "attribution": "", "probe": ""},
    "carto-positron": {
        "tiles": [f"https://{s}.basemaps.cartocdn.com/light_all/{{z}}/{{x}}/{{y}}.png" for s in "abc"],
        "attribution": "© OpenStreetMap contributors © CARTO",
        "probe": "https://a.basemaps.cartocdn.com/light_all/0/0/0.png",
    },
    "open-street-map": {
        "tiles": ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"],
        "attribution": "© OpenStreetMap contributors",
        "probe": "https://tile.openstreetmap.org/0/0/0.png",
    },
}
#: Index of each layer in ``layout.map.layers`` (callbacks patch them by position).
LAYER_BASEMAP, LAYER_GRIDS, LAYER_COMMUNITIES, LAYER_STREETS, LAYER_SELECTED = range(5)
EMPTY_FEATURES: dict[str, Any] = {"type": "FeatureCollection", "features": []}
#: Preset time windows (days ending now) by the value of the window selector.
WINDOW_DAYS: dict[str, int] = {"7": 7, "30": 30, "90": 90, "365": 365}
DEFAULT_WINDOW = "30"
_MAPLIBRE_TILE_PX = 512  # maplibre's zoom 0 shows the world in one 512-px tile


# -- formatting ----------------------------------------------------------------------------------------------
def fmt_int(value: float | int | None) -> str:
    """A count with thousands separators (``1,234``); ``—`` for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{round(value):,}"


def fmt_num(value: float | None, *, digits: int = 1) -> str:
    """A measurement with thousands separators and fixed decimals; ``—`` for missing."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.{digits}f}"


def fmt_pct(share: float | None) -> str:
    """A share 0–1 as a percentage with one decimal; ``—`` when undefined."""
    return "—" if share is None else f"{share * 100:.1f}%"


def fmt_time(value: datetime | pd.Timestamp | None) -> str:
    """A local time to the minute (``2026-06-30 17:00``)."""
    if value is None or pd.isna(value):
        return "—"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def fmt_duration(hours: float, lang: str = "en") -> str:
    """A length of time: hours below two days, whole days above."""
    hours = abs(hours)
    if hours < 48:
        return t("hours", lang, n=f"{max(hours, 0.0):.0f}" if hours >= 1 else "<1")
    return t("days", lang, n=f"{hours / 24:.0f}")


def local_name(name_zh: object, name_en: object, lang: str = "en") -> str:
    """The name in the interface language, falling back to the other one when missing."""
    zh = name_zh.strip() if isinstance(name_zh, str) else ""
    en = name_en.strip() if isinstance(name_en, str) else ""
    return (zh or en) if lang == "zh" else (en or zh)


def bilingual(name_zh: object, name_en: object) -> str:
    """``中文 / English`` when both exist and differ, otherwise whichever exists."""
    zh = name_zh.strip() if isinstance(name_zh, str) else ""
    en = name_en.strip() if isinstance(name_en, str) else ""  # missing names arrive as NaN from pandas
    if zh and en and zh != en:
        return f"{zh} / {en}"
    return zh or en


# -- time window ---------------------------------------------------------------------------------------------
def window_bounds(window: str | None, start_date: str | None, end_date: str | None, *,
                  now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` of the chosen time window: the last N days up to ``now``, or whole custom days.

    Parameters
    ----------
    window
        ``"7"``, ``"30"``, ``"90"``, ``"365"`` or ``"custom"``.
    start_date, end_date
        ISO dates of the custom range (inclusive).
    now
        The dashboard clock.
    """
    if window == "custom" and start_date and end_date:
        start = datetime.fromisoformat(str(start_date)[:10])
        end = datetime.fromisoformat(str(end_date)[:10]) + timedelta(days=1)
        start = min(start, end - timedelta(days=1))
        # A range ending today stops at "now": the rest of the day has no reports yet and would dilute per-day rates.
        return (start, min(end, now) if now > start else end)
    days = WINDOW_DAYS.get(window or DEFAULT_WINDOW, WINDOW_DAYS[DEFAULT_WINDOW])
    return (now - timedelta(days=days), now)


# -- geometry ------------------------------------------------------------------------------------------------
#: Plotly's config for every map of the dashboard: wheel zoom, no logo, none of the selection or export buttons.
GRAPH_CONFIG: dict[str, Any] = {"displaylogo": False, "scrollZoom": True,
                                "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"]}


def to_geojson(gdf: gpd.GeoDataFrame, *, id_column: str, precision: int = 6) -> dict[str, Any]:
    """A FeatureCollection whose feature ``id`` is ``id_column``, coordinates rounded, no properties.

    Parameters
    ----------
    gdf
        Polygons in EPSG:4326.
    id_column
        Column whose value becomes each feature's ``id`` (what ``Choroplethmap.locations`` refers to).
    precision
        Decimal places kept; 6 places of a degree are ~0.1 m, far below a unit grid's 100 m, and halve the
        payload the browser has to download.

    Returns
    -------
    dict
        GeoJSON FeatureCollection in the row order of ``gdf``.
    """
    if gdf.crs is None or gdf.crs.to_epsg() != 4326:
        raise ValueError(f"to_geojson expects EPSG:4326 (lon/lat), got {gdf.crs}")
    geoms = shapely.transform(np.asarray(gdf.geometry.values), lambda xy: np.round(xy, precision))
    features = [
        {"type": "Feature", "id": str(code), "properties": {}, "geometry": shapely.geometry.mapping(geom)}
        for code, geom in zip(gdf[id_column], geoms, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def map_view(bounds: Sequence[float] | None, *, width_px: int = 660, height_px: int = 580,
             padding: float = 0.85) -> dict[str, Any]:
    """Centre and zoom that fit a bounding box into a map of the given size.

    Parameters
    ----------
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)``; ``None`` gives a neutral world view.
    width_px, height_px
        Expected size of the map on screen.
    padding
        Share of the map the box may fill.

    Returns
    -------
    dict
        ``{"center": {"lon", "lat"}, "zoom"}`` for ``layout.map``.
    """
    if bounds is None:
        return {"center": {"lon": 0.0, "lat": 0.0}, "zoom": 1.0}
    x0, y0, x1, y1 = (float(v) for v in bounds)

    def merc(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    dx = max(math.radians(x1 - x0), 1e-9)
    dy = max(merc(y1) - merc(y0), 1e-9)
    zx = math.log2(width_px * padding * 2 * math.pi / (_MAPLIBRE_TILE_PX * dx))
    zy = math.log2(height_px * padding * 2 * math.pi / (_MAPLIBRE_TILE_PX * dy))
    mid_lat = math.degrees(math.atan(math.sinh((merc(y0) + merc(y1)) / 2)))
    return {"center": {"lon": (x0 + x1) / 2, "lat": mid_lat}, "zoom": round(min(zx, zy, 18.0), 2)}


def boundary_layers(*, grids_source: str | dict[str, Any], communities_source: str | dict[str, Any],
                    streets_source: str | dict[str, Any]) -> list[dict[str, Any]]:
    """Our own line layers drawn over the map, in the order of the ``LAYER_*`` constants.

    Parameters
    ----------
    grids_source, communities_source, streets_source
        GeoJSON objects or URLs of GeoJSON served by the app (URLs keep the figure small and are cached).

    Returns
    -------
    list of dict
        Entries for ``layout.map.layers``: the (hidden) basemap tile layer, faint grid outlines (so grids without
        a colour still show), thin community borders, thick street borders, and an empty layer for the selected
        grid.
    """
    def line(source: str | dict[str, Any], color: str, width: float) -> dict[str, Any]:
        return {"sourcetype": "geojson", "source": source, "type": "line", "color": color, "line": {"width": width}}

    return [
        basemap_layer("blank"),
        line(grids_source, "#c3c9d2", 0.5),
        line(communities_source, "#5f6b7a", 1.2),
        line(streets_source, "#1f2937", 2.8),
        line(EMPTY_FEATURES, "#1d4ed8", 3.5),
    ]


def basemap_layer(basemap: str) -> dict[str, Any]:
    """The raster tile layer for a basemap choice (invisible for ``"blank"``), drawn below the grids.

    Parameters
    ----------
    basemap
        A key of :data:`BASEMAPS`.
    """
    if basemap not in BASEMAPS:
        raise ValueError(f"basemap must be one of {list(BASEMAPS)}, got {basemap!r}")
    spec = BASEMAPS[basemap]
    online = bool(spec["tiles"])
    return {"sourcetype": "raster", "source": spec["tiles"] or BASEMAPS["open-street-map"]["tiles"],
            "sourceattribution": spec["attribution"], "below": "traces", "visible": online, "opacity": 0.9}


# -- density map ---------------------------------------------------------------------------------------------
def density_frame(grids: pd.DataFrame, stats: pd.DataFrame, *, basis: DensityBasis = "km2",
                  in_area: pd.Series | None = None) -> pd.DataFrame:
    """Per-grid counts and density, one row per grid in the order of ``grids``.

    Parameters
    ----------
    grids
        ``grid_code, area_m2, population`` (and any other attributes) of every grid on the map.
    stats
        Output of ``Store.grid_stats``; grids without incidents may be absent.
    basis
        ``"km2"`` or ``"residents"`` (per 1,000), see :func:`gridgov.metrics.density`.
    in_area
        Boolean per row of ``grids``: inside the chosen street/community. ``None`` means all grids.

    Returns
    -------
    pandas.DataFrame
        ``grids``' columns plus :data:`gridgov.metrics.COUNT_COLUMNS` (0 where absent), ``density`` and
        ``in_area``.
    """
    frame = grids.reset_index(drop=True).copy()
    # Row of each grid in ``stats`` (-1 when absent): one index lookup instead of a reindex per column.
    pos = pd.Index(stats["grid_code"]).get_indexer(frame["grid_code"]) if len(stats) else np.full(len(frame), -1)
    found = pos >= 0
    for col in metrics.COUNT_COLUMNS:
        values = np.zeros(len(frame), dtype="int64")
        if col in stats:
            values[found] = stats[col].to_numpy(dtype="int64", na_value=0)[pos[found]]
        frame[col] = values
    frame["density"] = metrics.density(frame["reported"], area_m2=frame["area_m2"],
                                       population=frame["population"], basis=basis)
    frame["in_area"] = True if in_area is None else np.asarray(in_area, dtype=bool)
    return frame


def color_range(density: pd.Series) -> tuple[float, float]:
    """Colour scale bounds: 0 to the 95th percentile, so one tiny busy grid does not wash out the rest."""
    finite = density[np.isfinite(density.to_numpy(dtype="float64"))]
    if finite.empty or float(finite.max()) <= 0:
        return (0.0, 1.0)
    cap = float(np.nanpercentile(finite, 95))
    if cap <= 0:
        cap = float(finite.max())
    return (0.0, cap)


def density_trace_values(frame: pd.DataFrame, *, basis: DensityBasis, lang: str = "en") -> dict[str, Any]:
    """The data-dependent properties of the density trace (what a filter change patches).

    Parameters
    ----------
    frame
        Output of :func:`density_frame`.
    basis
        Density basis, for units in the colour bar and hover text.
    lang
        Interface language.

    Returns
    -------
    dict
        ``z`` (None outside the chosen area, which hides the polygon), ``zmin``, ``zmax``, ``customdata`` (reported
        and density per grid, formatted), ``hovertemplate`` and ``colorbar``. What no filter changes (the grid's
        community and households) is the trace's ``text`` (:func:`density_map`) and stays out of the patch.
    """
    shown = frame["in_area"].to_numpy(dtype=bool)
    dens = frame["density"].to_numpy(dtype="float64")
    z = [float(d) if s and math.isfinite(d) else None for d, s in zip(dens, shown, strict=True)]
    zmin, zmax = color_range(frame.loc[shown, "density"])
    unit = t(f"colorbar_{basis}", lang).replace("<br>", " ")
    no_residents = t("no_residents", lang)
    # Formatted inline (as fmt_int/fmt_num do): this runs for every grid on every filter change.
    customdata = [[f"{n:,}", f"{d:,.1f}" if math.isfinite(d) else no_residents]
                  for n, d in zip(frame["reported"].astype("int64").tolist(), dens.tolist(), strict=True)]
    hover = (
        "<b>%{location}</b><br>%{text}<br>"
        f"{t('hover_reported', lang)}: %{{customdata[0]}}<br>"
        f"{t('hover_density', lang)}: %{{customdata[1]}} {unit}<extra></extra>"
    )
    # A short horizontal bar in a corner covers fewer grids than the default full-height one on the right.
    colorbar = {"title": {"text": unit, "side": "top"}, "orientation": "h", "thickness": 10, "len": 0.32,
                "x": 0.015, "xanchor": "left", "y": 0.02, "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.9)",
                "tickformat": ",.0f" if zmax >= 10 else ",.1f", "outlinewidth": 0, "nticks": 5, "ypad": 8,
                "xpad": 10}
    return {"z": z, "zmin": zmin, "zmax": zmax, "customdata": customdata, "hovertemplate": hover,
            "colorbar": colorbar}


def density_map(geojson: dict[str, Any], frame: pd.DataFrame, *, basis: DensityBasis = "km2", lang: str = "en",
                view: Mapping[str, Any] | None = None, layers: list[dict[str, Any]] | None = None,
                community_names: Mapping[str, str] | None = None) -> go.Figure:
    """The Overview map: one ``Choroplethmap`` polygon per grid coloured by density, our boundary layers on top.

    Parameters
    ----------
    geojson
        Grid polygons from :func:`to_geojson` (feature ``id`` = grid code), in the row order of ``frame``.
    frame
        Output of :func:`density_frame`.
    basis, lang
        See :func:`density_trace_values`.
    community_names
        Display name per community code: each grid's hover text names its community and households.
    view
        ``center``/``zoom`` from :func:`map_view`.
    layers
        From :func:`boundary_layers` (its first layer holds the basemap tiles, see :func:`basemap_layer`).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    values = density_trace_values(frame, basis=basis, lang=lang)
    names = community_names or {}
    households = t("hover_households", lang)
    trace = go.Choroplethmap(
        geojson=geojson, locations=frame["grid_code"].astype(str).tolist(), featureidkey="id",
        text=[f"{names.get(c, c)}<br>{households}: {fmt_int(h)}"
              for c, h in zip(frame["community_code"], frame["households"], strict=True)],
        colorscale=DENSITY_COLORSCALE, marker={"opacity": 0.85, "line": {"width": 0.6, "color": "#ffffff"}},
        name="", **values,
    )
    fig = go.Figure(trace)
    view = dict(view or map_view(None))
    fig.update_layout(
        **offline_map_layout(view, layers, revision="overview", map_revision="area:"), clickmode="event",
        hoverlabel={"bgcolor": "#ffffff", "font": {"size": 13}},
    )
    return fig


def density_map_dict(geojson: dict[str, Any], frame: pd.DataFrame, **kwargs: Any) -> dict[str, Any]:
    """:func:`density_map` as the plain dict ``dcc.Graph`` sends, with the polygons as :func:`geojson_arrays`.

    The JSON the browser receives is the same as for the figure object, but Dash writes it ~10× faster: a
    ``go.Figure`` is deep-copied on the way out and every coordinate pair of a dict of lists is visited by a Python
    loop in plotly's encoder, while numpy rings go to orjson whole (1,800 grids: ~0.6 s → ~0.05 s).

    Parameters
    ----------
    geojson, frame, **kwargs
        As for :func:`density_map`.

    Returns
    -------
    dict
        ``{"data": [trace], "layout": {...}}``; build it once and share it, it is never modified.
    """
    figure: dict[str, Any] = density_map(EMPTY_FEATURES, frame, **kwargs).to_plotly_json()
    figure["data"][0]["geojson"] = geojson_arrays(geojson)
    return figure


def geojson_arrays(geojson: dict[str, Any]) -> dict[str, Any]:
    """The same (Multi)Polygon FeatureCollection with each ring as a float64 numpy array of shape ``(n, 2)``.

    Parameters
    ----------
    geojson
        From :func:`to_geojson`: Polygon and MultiPolygon features.

    Returns
    -------
    dict
        A new FeatureCollection (the input is not modified) that serialises to the same JSON with plotly's
        encoder (``plotly.io.json.to_json_plotly``, which Dash uses), but not with the standard ``json`` module.

    Raises
    ------
    ValueError
        For any other geometry type, naming the feature.
    """
    def rings(polygon: Sequence[Any]) -> list[np.ndarray]:
        return [np.asarray(ring, dtype="float64") for ring in polygon]

    features = []
    for feature in geojson["features"]:
        geom = feature["geometry"]
        if geom["type"] == "Polygon":
            coords: list[Any] = rings(geom["coordinates"])
        elif geom["type"] == "MultiPolygon":
            coords = [rings(part) for part in geom["coordinates"]]
        else:
            raise ValueError(f"geojson_arrays takes Polygon or MultiPolygon features, got {geom['type']} for "
                             f"feature {feature.get('id')!r}")
        features.append({**feature, "geometry": {"type": geom["type"], "coordinates": coords}})
    return {**geojson, "features": features}


# -- KPI cards ------------------------------------------------------------------------------------------------
def kpi_items(totals: Mapping[str, float | int | None], *, window_days: float,
              lang: str = "en") -> list[dict[str, str]]:
    """Label, value and footnote of each KPI card, formatted for display.

    Parameters
    ----------
    totals
        Output of :func:`gridgov.metrics.kpis` for the grids and categories in view.
    window_days
        Length of the time window (for the per-day rate).
    lang
        Interface language.

    Returns
    -------
    list of dict
        ``key, label, value, note, tone`` for open, overdue, reported and on-time closure; ``tone`` is
        ``"alert"`` for a card that needs attention, else ``""``.
    """
    opened = int(totals.get("open") or 0)
    overdue = int(totals.get("overdue") or 0)
    reported = int(totals.get("reported") or 0)
    closed = int(totals.get("closed") or 0)
    rate = totals.get("on_time_rate")
    overdue_note = (t("kpi_overdue_note", lang, share=fmt_pct(overdue / opened)) if overdue and opened
                    else t("kpi_overdue_none", lang))
    per_day = reported / window_days if window_days > 0 else 0.0
    return [
        {"key": "open", "label": t("kpi_open", lang), "value": fmt_int(opened), "note": t("kpi_open_note", lang),
         "tone": ""},
        {"key": "overdue", "label": t("kpi_overdue", lang), "value": fmt_int(overdue), "note": overdue_note,
         "tone": "alert" if overdue else ""},
        {"key": "reported", "label": t("kpi_reported", lang), "value": fmt_int(reported),
         "note": t("kpi_reported_note", lang, per_day=fmt_num(per_day)), "tone": ""},
        {"key": "on_time", "label": t("kpi_on_time", lang), "value": fmt_pct(None if rate is None else float(rate)),
         "note": (t("kpi_on_time_note", lang, closed=fmt_int(closed)) if closed else t("kpi_on_time_none", lang)),
         "tone": "alert" if rate is not None and float(rate) < 0.8 else ""},
    ]


def kpi_placeholders(lang: str = "en") -> list[dict[str, str]]:
    """The KPI cards before the first query answers: labels with a dash, so nobody reads a zero that is not one."""
    return [{**item, "value": "—", "note": "", "tone": ""}
            for item in kpi_items({}, window_days=1.0, lang=lang)]


# -- grid detail ----------------------------------------------------------------------------------------------
def category_bar(counts: pd.DataFrame, *, lang: str = "en") -> go.Figure:
    """Horizontal bars of one grid's incidents by category, most frequent on top.

    Parameters
    ----------
    counts
        ``name_zh, name_en, n`` per category (``Store.grid_category_counts``).
    lang
        Interface language.

    Returns
    -------
    plotly.graph_objects.Figure
        With a "no incidents in this window" note and no bars when ``counts`` is empty.
    """
    fig = go.Figure()
    base_layout: dict[str, Any] = {
        "margin": {"l": 8, "r": 28, "t": 4, "b": 4}, "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)", "font": {"size": 12}, "showlegend": False,
    }
    if counts.empty:
        fig.update_layout(height=90, xaxis={"visible": False}, yaxis={"visible": False},
                          annotations=[{"text": t("empty_window", lang), "showarrow": False, "x": 0.5, "y": 0.5,
                                        "xref": "paper", "yref": "paper", "font": {"color": "#6b7280"}}],
                          **base_layout)
        return fig
    # Plotly draws the first bar at the bottom: ascending order puts the most frequent category on top.
    data = counts.sort_values(["n"], ascending=True, kind="stable")
    labels = [_shorten(local_name(z, e, lang), 30) for z, e in zip(data["name_zh"], data["name_en"], strict=True)]
    fig.add_bar(x=data["n"].astype(int).tolist(), y=labels, orientation="h", marker_color="#e34a33",
                text=[fmt_int(v) for v in data["n"]], textposition="outside", cliponaxis=False,
                hovertemplate="%{y}: %{x:,}<extra></extra>")
    fig.update_layout(height=max(80, 24 * len(data) + 16),
                      # Each bar carries its count as text, so the axis would only repeat it.
                      xaxis={"visible": False, "rangemode": "tozero"},
                      yaxis={"automargin": True}, **base_layout)
    return fig


def offline_map_layout(view: Mapping[str, Any], layers: list[dict[str, Any]] | None, *, revision: str,
                       map_revision: str | None = None) -> dict[str, Any]:
    """Layout settings every map of the dashboard shares: the offline ``white-bg`` style with our own layers, no
    margins, and ``uirevision`` keys that keep the user's pan and zoom across updates (``map_revision`` for the map,
    default ``revision``)."""
    return {
        "map": {"style": "white-bg", "center": view["center"], "zoom": view["zoom"], "layers": layers or [],
                "uirevision": map_revision or revision},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "paper_bgcolor": "#ffffff", "uirevision": revision,
    }


#: A case whose deadline passed this recently is flagged "just overdue" on the pages: it needs attention now, and
#: whoever looked an hour ago saw it still in time.
JUST_OVERDUE_HOURS = 1.0


def open_case_rows(cases: pd.DataFrame, *, now: datetime, lang: str = "en") -> list[dict[str, Any]]:
    """Display rows for a grid's open cases, soonest deadline first.

    Parameters
    ----------
    cases
        ``incident_id, external_id, name_zh, name_en, status, reported_at, due_at`` (``Store.grid_open_cases``).
    now
        The dashboard clock.
    lang
        Interface language.

    Returns
    -------
    list of dict
        ``case, category, status, due, left, overdue, just_overdue, reporter`` per case; ``left`` is "overdue 5 h"
        or "in 2 d"; ``just_overdue`` when the deadline passed less than :data:`JUST_OVERDUE_HOURS` ago;
        ``reporter`` is empty unless ``cases`` has ``reporter_name``/``reporter_phone``.
    """
    if cases.empty:
        return []
    ordered = cases.sort_values(["due_at", "incident_id"], kind="stable")
    rows = []
    rec: Any
    for rec in ordered.itertuples(index=False):
        due = pd.Timestamp(rec.due_at)
        hours = (due - pd.Timestamp(now)).total_seconds() / 3600.0
        overdue = hours < 0
        case = rec.external_id if isinstance(rec.external_id, str) and rec.external_id else f"#{rec.incident_id}"
        rows.append({
            "case": case,
            "category": local_name(rec.name_zh, rec.name_en, lang),
            "status": t(f"status_{rec.status}", lang) if f"status_{rec.status}" in _STATUS_KEYS else rec.status,
            "due": fmt_time(due),
            "left": t("overdue_by" if overdue else "due_in", lang, d=fmt_duration(hours, lang)),
            "overdue": overdue,
            "just_overdue": bool(-JUST_OVERDUE_HOURS < hours < 0),
            # Present only when the caller joined reporters in (already masked for whoever looks).
            "reporter": " · ".join(v for v in (getattr(rec, "reporter_name", None),
                                                getattr(rec, "reporter_phone", None)) if isinstance(v, str) and v),
        })
    return rows


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_STATUS_KEYS = {"status_reported", "status_registered", "status_dispatched", "status_handled"}


def with_map_view(figure: Mapping[str, Any], view: Mapping[str, Any], *, uirevision: str) -> dict[str, Any]:
    """A shallow copy of a figure dict looking at ``view``, its map's ``uirevision`` set; ``figure`` is untouched.

    Parameters
    ----------
    figure
        A page's cached map (:func:`density_map_dict`, :func:`dashboards.staffing_figures.staffing_map_dict`),
        shared between requests.
    view
        ``center``/``zoom`` from :func:`map_view`.
    uirevision
        The map's ``uirevision`` (``area:<street code>``): a new value makes the browser move to the new view.

    Returns
    -------
    dict
        New ``figure``, ``layout`` and ``layout.map`` dicts; the traces (and their polygons) are shared.
    """
    layout = dict(figure["layout"])
    layout["map"] = {**layout["map"], "center": view["center"], "zoom": view["zoom"], "uirevision": uirevision}
    return {**figure, "layout": layout}
