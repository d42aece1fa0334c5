"""Pure builders of the worker's My grids page: urgency of a case, dates in the reader's language, list rows and the
map figure. No Dash callbacks and no database access; tested without a browser.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboards.figures import JUST_OVERDUE_HOURS, fmt_duration, local_name, map_view, offline_map_layout
from dashboards.i18n import t
from gridgov.config import WorkCalendar
from gridgov.incidents import due_times

#: Pin colours by time left to the deadline (the legend repeats them).
URGENCY_COLORS: dict[str, str] = {"overdue": "#c81e1e", "soon": "#e67700", "later": "#2f8a3e"}
URGENCY_KEYS: dict[str, str] = {"overdue": "wk_legend_overdue", "soon": "wk_legend_soon", "later": "wk_legend_later"}
GRID_LINE = "#1d4ed8"


def urgency(due_at: pd.Series, *, now: datetime, calendar: WorkCalendar) -> pd.Series:
    """``overdue`` past the deadline, ``soon`` when less than one working day is left, else ``later``.

    "One working day" is counted on the working calendar: on Friday at 16:00 a case due Monday at 15:00 is ``soon``.

    Examples
    --------
    >>> from datetime import datetime
    >>> due = pd.Series(pd.to_datetime(["2026-11-27 15:00", "2026-11-30 15:00", "2026-12-02 09:00"]))
    >>> urgency(due, now=datetime(2026, 11, 27, 16, 0), calendar=WorkCalendar()).tolist()
    ['overdue', 'soon', 'later']
    """
    day_hours = calendar.day_minutes / 60.0
    one_day = pd.Timestamp(due_times(np.array([np.datetime64(now, "us")]), np.array([day_hours]), calendar)[0])
    due = pd.to_datetime(due_at)
    out = np.where(due < pd.Timestamp(now), "overdue", np.where(due < one_day, "soon", "later"))
    return pd.Series(out, index=due_at.index, dtype=object)


def fmt_when(value: datetime | pd.Timestamp | None, lang: str = "en", *, now: datetime | None = None) -> str:
    """A date and time the way a reader of ``lang`` writes it: ``Wed 1 Jul 09:00`` or ``7月1日 周三 09:00``; the year
    is added when it differs from ``now``'s.

    Examples
    --------
    >>> fmt_when(datetime(2026, 7, 1, 9, 0), "en"), fmt_when(datetime(2026, 7, 1, 9, 0), "zh")
    ('Wed 1 Jul 09:00', '7月1日 周三 09:00')
    """
    if value is None or pd.isna(value):
        return "—"
    ts = pd.Timestamp(value)
    months, days = t("wk_months", lang).split(), t("wk_weekdays", lang).split()
    key = "wk_date" if now is None or ts.year == now.year else "wk_date_year"
    return t(key, lang, wd=days[ts.weekday()], d=ts.day, mon=months[ts.month - 1], year=ts.year,
             time=ts.strftime("%H:%M"))


def case_label(external_id: Any, incident_id: Any) -> str:
    """How a case is named to people: its source's id when it has one, else ``#`` and gridgov's number."""
    return external_id if isinstance(external_id, str) and external_id else f"#{int(incident_id)}"


def case_rows(cases: pd.DataFrame, *, now: datetime, calendar: WorkCalendar, lang: str = "en") -> list[dict[str, Any]]:
    """Display rows of a worker's open cases, in the order given (soonest deadline first).

    Returns
    -------
    list of dict
        ``incident_id, case, category, address, grid, status, due, left, urgency, just_overdue`` per case
        (``just_overdue``: the deadline passed less than :data:`JUST_OVERDUE_HOURS` ago).
    """
    if cases.empty:
        return []
    levels = urgency(cases["due_at"], now=now, calendar=calendar)
    rows = []
    rec: Any
    for rec, level in zip(cases.itertuples(index=False), levels, strict=True):
        hours = (pd.Timestamp(rec.due_at) - pd.Timestamp(now)).total_seconds() / 3600.0
        rows.append({
            "incident_id": int(rec.incident_id),
            "case": case_label(rec.external_id, rec.incident_id),
            "category": local_name(rec.name_zh, rec.name_en, lang),
            "address": rec.address if isinstance(rec.address, str) else "",
            "grid": str(rec.grid_code),
            "status": t(f"status_{rec.status}", lang),
            "due": fmt_when(rec.due_at, lang, now=now),
            "left": t("overdue_by" if hours < 0 else "due_in", lang, d=fmt_duration(hours, lang)),
            "urgency": level,
            "just_overdue": bool(-JUST_OVERDUE_HOURS < hours < 0),
        })
    return rows


def grid_bounds(features: list[dict[str, Any]]) -> tuple[float, float, float, float] | None:
    """``(min_lon, min_lat, max_lon, max_lat)`` of some GeoJSON polygon features, or None without any."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords: Any) -> None:
        if coords and isinstance(coords[0], int | float):
            xs.append(float(coords[0]))
            ys.append(float(coords[1]))
        else:
            for c in coords:
                walk(c)

    for feature in features:
        walk(feature["geometry"]["coordinates"])
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


def worker_map(features: list[dict[str, Any]], rows: list[dict[str, Any]], cases: pd.DataFrame, *,
               lang: str = "en", width_px: int = 360, height_px: int = 300) -> go.Figure:
    """The worker's map: their grids outlined on the offline blank style and a pin per open case.

    Parameters
    ----------
    features
        GeoJSON features (WGS84) of the worker's grids, ``id`` = grid code.
    rows
        :func:`case_rows` of ``cases`` (same order).
    cases
        The cases with ``lon``/``lat`` (WGS84).
    """
    collection = {"type": "FeatureCollection", "features": features}
    located = [(r, lon, lat) for r, lon, lat in zip(rows, cases["lon"], cases["lat"], strict=True)
               if pd.notna(lon) and pd.notna(lat)]
    fig = go.Figure()
    for level in ("later", "soon", "overdue"):  # the most urgent drawn last, on top
        pins = [(r, lon, lat) for r, lon, lat in located if r["urgency"] == level]
        fig.add_trace(go.Scattermap(
            lon=[p[1] for p in pins], lat=[p[2] for p in pins], mode="markers",
            marker={"size": 16, "color": URGENCY_COLORS[level]},
            customdata=[p[0]["incident_id"] for p in pins],
            text=[f"{p[0]['case']} · {p[0]['category']}<br>{t('wk_due', lang, when=p[0]['due'])}" for p in pins],
            hovertemplate="%{text}<extra></extra>", name=t(URGENCY_KEYS[level], lang), showlegend=False,
        ))
    view = map_view(grid_bounds(features), width_px=width_px, height_px=height_px)
    layers = [
        {"sourcetype": "geojson", "source": collection, "type": "fill", "color": GRID_LINE, "opacity": 0.07,
         "below": "traces"},
        {"sourcetype": "geojson", "source": collection, "type": "line", "color": GRID_LINE, "line": {"width": 2.5},
         "below": "traces"},
    ]
    fig.update_layout(**offline_map_layout(view, layers, revision="my-grids"), showlegend=False,
                      hoverlabel={"font": {"size": 14}})
    return fig
