"""Pure helpers of the Import page: the uploaded file, the import options, and the statistics and map of a batch.

Nothing here reads the database, the file system or Dash callback state, so every function is tested without a
server (``tests/test_import_page.py``). The page reads the store and the job runner, then hands the values to these.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from dashboards.figures import fmt_int, fmt_num, map_view, offline_map_layout
from dashboards.i18n import STRINGS, t
from gridgov import coords
from gridgov.errors import InputError
from gridgov.ingest import REASONS

#: Largest file the page accepts. The browser sends an upload base64-encoded inside one request (a third bigger)
#: and the server holds it in memory once while writing it to disk; bigger exports go through ``gridgov ingest``
#: with the server stopped, or in parts.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: File name endings the page accepts, and the kind each is read as (the readers of :mod:`gridgov.ingest`).
UPLOAD_SUFFIXES: dict[str, str] = {
    ".csv": "CSV", ".tsv": "CSV", ".txt": "CSV",
    ".parquet": "Parquet", ".pq": "Parquet", ".geoparquet": "Parquet",
    ".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
}
#: The reject reason of points that lie in no unit of the district (``gridgov.ingest.REASONS``).
OUTSIDE_REASON = "outside_district"
#: Points drawn on the outside-district map at most (a seeded random sample of them when there are more).
MAX_MAP_POINTS = 2_000
#: Rejected rows listed under "first rejects".
FIRST_REJECTS = 10
#: Choices of the coordinates option and the ``crs`` they give :func:`gridgov.ingest.ingest_file` (``None``: the
#: preset's CRS, else WGS 84; ``other`` takes the typed CRS).
DATUMS: dict[str, str | None] = {"preset": None, "wgs84": "EPSG:4326", "gcj02": "gcj02", "bd09": "bd09",
                                 "other": None}
OUTSIDE_COLOR = "#dc2626"
OUTLINE_COLOR = "#1f2937"
_UNSAFE_NAME = re.compile(r"[^\w.\-]+", re.UNICODE)


# -- the upload -----------------------------------------------------------------------------------------------
def safe_filename(name: str | None) -> str:
    """The last part of an uploaded file's name with only letters, digits, ``.``, ``-`` and ``_`` kept.

    Raises
    ------
    InputError
        When nothing usable is left (field ``file``).
    """
    base = PurePath(str(name or "").replace("\\", "/")).name
    cleaned = _UNSAFE_NAME.sub("_", base).strip("._")
    if not cleaned:
        raise InputError(f"the file name {name!r} is empty or unusable; rename the file", field="file")
    return cleaned[:120]


def fmt_size(n_bytes: float) -> str:
    """A file size in MB (one decimal) or kB."""
    return f"{n_bytes / 1024 / 1024:.1f} MB" if n_bytes >= 1024 * 1024 else f"{max(n_bytes / 1024, 0.1):.1f} kB"


def decode_upload(contents: str | None, filename: str | None, *,
                  max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[str, bytes]:
    """The safe name and the bytes of a ``dcc.Upload`` file, refusing unknown types and files over the limit.

    Parameters
    ----------
    contents
        ``data:<type>;base64,<data>`` as ``dcc.Upload`` gives it.
    filename
        The file's name in the browser.
    max_bytes
        Largest decoded size accepted; checked from the length of the base64 text before anything is decoded.

    Returns
    -------
    tuple of (str, bytes)

    Raises
    ------
    InputError
        Field ``file``: no file, an unsupported type, too big, empty, or not base64.
    """
    if not contents:
        raise InputError("no file was received; choose a file", field="file")
    name = safe_filename(filename)
    suffix = PurePath(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InputError(f"{name}: files ending {suffix or '(nothing)'} cannot be imported; use "
                         f"{', '.join(sorted(UPLOAD_SUFFIXES))}", field="file")
    _head, sep, data = contents.partition(",")
    if not sep or ";base64" not in _head:
        raise InputError(f"{name} did not arrive as a base64 data URL", field="file")
    size = len(data) * 3 // 4 - data[-2:].count("=")
    if size > max_bytes:
        raise InputError(f"{name} is {fmt_size(size)}; the page takes files up to {fmt_size(max_bytes)}. Split "
                         "the file, or stop the server and use `gridgov ingest`", field="file")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{name} did not arrive as valid base64", field="file") from None
    if not raw:
        raise InputError(f"{name} is empty", field="file")
    return name, raw


# -- options --------------------------------------------------------------------------------------------------
def import_options(*, preset: str | None, datum: str | None, crs_text: str | None, mapping_text: str | None,
                   source: str | None) -> dict[str, Any]:
    """Keyword arguments for :func:`gridgov.ingest.ingest_file` from the form, as the CLI passes its options.

    Parameters
    ----------
    preset
        A preset name, or ``None``/``"none"`` for none.
    datum
        A key of :data:`DATUMS`; ``other`` uses ``crs_text``.
    crs_text
        A CRS pyproj knows (``EPSG:32651``), when ``datum`` is ``other``.
    mapping_text
        ``SRC=FIELD`` per line (blank lines and lines starting with ``#`` skipped), like ``--map``.
    source
        Source label of every row, or blank.

    Returns
    -------
    dict
        ``preset, crs, mapping, source`` (absent options are ``None`` or an empty list).

    Raises
    ------
    InputError
        Field ``crs`` for an unknown choice or a missing CRS; field ``mapping`` with the line number (``row``) of
        a line that is not ``SRC=FIELD``.
    """
    choice = datum or "preset"
    if choice not in DATUMS:
        raise InputError(f"must be one of {', '.join(DATUMS)}, got {choice!r}", field="crs")
    crs = DATUMS[choice]
    if choice == "other":
        crs = (crs_text or "").strip() or None
        if crs is None:
            raise InputError("type the CRS of the coordinates, e.g. EPSG:32651", field="crs")
    mapping: list[str] = []
    for line_no, line in enumerate((mapping_text or "").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        src, sep, target = text.rpartition("=")
        if not sep or not src.strip() or not target.strip():
            raise InputError(f"must look like SRC=FIELD, got {text!r}", field="mapping", row=line_no)
        mapping.append(f"{src.strip()}={target.strip()}")
    label = (source or "").strip() or None
    return {"preset": None if preset in (None, "", "none") else preset, "crs": crs, "mapping": mapping,
            "source": label}


# -- statistics -----------------------------------------------------------------------------------------------
def reason_text(code: str, lang: str = "en") -> str:
    """What a reject reason code means: the text of :data:`gridgov.ingest.REASONS` (translated in Chinese)."""
    key = f"im_reason_{code}"
    if lang == "zh" and key in STRINGS:
        return t(key, lang)
    return REASONS.get(code, code)


def summary_cards(batch: Mapping[str, Any], *, seconds: float | None, lang: str = "en") -> list[dict[str, str]]:
    """The cards over a batch's statistics: rows in, accepted, rejected, duplicates, seconds.

    Parameters
    ----------
    batch
        ``rows_in, accepted, rejected, duplicates`` of the batch (an ``import_batch`` row).
    seconds
        How long the import took, when this server ran it (the store does not keep it), else None.

    Returns
    -------
    list of dict
        ``key, label, value, note, tone`` per card.
    """
    rows_in = int(batch["rows_in"])
    rejected = int(batch["rejected"])

    def share(n: int) -> str:
        return t("im_share", lang, pct=f"{n / rows_in * 100:.1f}") if rows_in else ""

    return [
        {"key": "rows_in", "label": t("im_card_rows_in", lang), "value": fmt_int(rows_in), "note": "", "tone": ""},
        {"key": "accepted", "label": t("im_card_accepted", lang), "value": fmt_int(batch["accepted"]),
         "note": share(int(batch["accepted"])), "tone": "good"},
        {"key": "rejected", "label": t("im_card_rejected", lang), "value": fmt_int(rejected),
         "note": share(rejected), "tone": "alert" if rejected else ""},
        {"key": "duplicates", "label": t("im_card_duplicates", lang), "value": fmt_int(batch["duplicates"]),
         "note": t("im_card_duplicates_note", lang), "tone": ""},
        {"key": "seconds", "label": t("im_card_seconds", lang),
         "value": fmt_num(seconds, digits=1) if seconds is not None else "—",
         "note": "" if seconds is not None else t("im_card_seconds_unknown", lang), "tone": ""},
    ]


def reason_rows(counts: Mapping[str, int], *, lang: str = "en") -> list[dict[str, Any]]:
    """Rejected rows per reason, most frequent first (ties by code).

    Returns
    -------
    list of dict
        ``code, text, count, share`` (share of all rejects, 0–1).
    """
    total = sum(int(n) for n in counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), kv[0]))
    return [{"code": code, "text": reason_text(code, lang), "count": int(n), "share": int(n) / total if total else 0.0}
            for code, n in ordered]


def _raw_row(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "empty"
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def reject_rows(rejects: pd.DataFrame, *, limit: int = FIRST_REJECTS, lang: str = "en") -> list[dict[str, Any]]:
    """The first rejected rows with their row number, field and a message.

    Parameters
    ----------
    rejects
        ``row_no, field, reason, raw`` (``Store.rejects``) in file order.
    limit
        Rows returned at most.

    Returns
    -------
    list of dict
        ``row_no, field, reason, message``: the message is what the reason means and, for the field(s) at fault,
        the value the row had (from its raw source row).
    """
    out = []
    for rec in rejects.head(limit).itertuples(index=False):
        raw = _raw_row(rec.raw)
        fields = [f for f in str(rec.field or "").split(",") if f]
        got = [f"{f} = {_shown(raw.get(f))}" for f in fields if f in raw]
        message = reason_text(str(rec.reason), lang) + (f" ({', '.join(got)})" if got else "")
        out.append({"row_no": int(rec.row_no), "field": str(rec.field or ""), "reason": str(rec.reason),
                    "message": message})
    return out


# -- points outside the district ------------------------------------------------------------------------------
def _to_wgs84(x: np.ndarray, y: np.ndarray, crs: str | None) -> tuple[np.ndarray, np.ndarray]:
    if crs is None or crs in ("EPSG:4326", "OGC:CRS84"):
        return x, y
    datum = coords.chinese_datum(crs)
    if datum is not None:
        with np.errstate(invalid="ignore"):
            lon, lat = coords.CHINESE_DATUMS[datum](x, y)
        return np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    try:
        transformer = Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)
    except CRSError:
        raise InputError(f"not a CRS pyproj knows: {crs!r}", field="crs") from None
    with np.errstate(invalid="ignore"):
        lon, lat = transformer.transform(x, y, errcheck=False)
    return np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")


def _number(value: Any) -> float:
    try:
        return float(str(value).strip()) if value is not None else math.nan
    except ValueError:
        return math.nan


def outside_points(rejects: pd.DataFrame, *, crs: str | None = None) -> pd.DataFrame:
    """Longitude and latitude (WGS 84) of the rejected rows that lie outside the district.

    A reject's ``field`` names where its coordinates are: ``"LON_COLUMN,LAT_COLUMN"`` for coordinate columns (in
    ``crs``, the batch's ``params.crs``), or ``geometry`` for a geometry file, whose raw row holds the point as WKT
    (in ``crs`` when given, else WGS 84).

    Parameters
    ----------
    rejects
        ``row_no, field, reason, raw`` (``Store.rejects``); rows of other reasons are ignored.
    crs
        CRS of the source coordinates: ``None``/``EPSG:4326`` for lon/lat, ``GCJ02``/``BD09``, or any CRS pyproj
        knows.

    Returns
    -------
    pandas.DataFrame
        ``row_no, lon, lat``, one row per outside reject whose point could be read, in file order.
    """
    empty = pd.DataFrame({"row_no": pd.Series(dtype="int64"), "lon": pd.Series(dtype="float64"),
                          "lat": pd.Series(dtype="float64")})
    if rejects.empty:
        return empty
    out = rejects[rejects["reason"] == OUTSIDE_REASON]
    if out.empty:
        return empty
    x = np.full(len(out), np.nan)
    y = np.full(len(out), np.nan)
    for i, (field, raw_text) in enumerate(zip(out["field"].astype(str), out["raw"], strict=True)):
        raw = _raw_row(raw_text)
        if "," in field:
            cx, cy = field.split(",", 1)
            x[i], y[i] = _number(raw.get(cx)), _number(raw.get(cy))
        else:
            wkt = raw.get(field)
            try:
                geom = shapely.from_wkt(wkt) if isinstance(wkt, str) else None
            except shapely.errors.GEOSException:
                geom = None
            if geom is not None and not geom.is_empty and geom.geom_type in ("Point", "MultiPoint"):
                pt = geom if geom.geom_type == "Point" else geom.geoms[0]
                x[i], y[i] = pt.x, pt.y
    lon, lat = _to_wgs84(x, y, crs)
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    return pd.DataFrame({"row_no": out["row_no"].to_numpy(dtype="int64")[ok], "lon": lon[ok], "lat": lat[ok]})


def sample_points(points: pd.DataFrame, *, max_points: int = MAX_MAP_POINTS, seed: int = 0) -> pd.DataFrame:
    """At most ``max_points`` rows of ``points``: all of them, or a random sample drawn with ``seed``, in file order.

    Raises
    ------
    ValueError
        When ``max_points`` < 1.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if len(points) <= max_points:
        return points.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(points), size=max_points, replace=False))
    return points.iloc[keep].reset_index(drop=True)


def _union_bounds(bounds: Sequence[float] | None, points: pd.DataFrame) -> tuple[float, float, float, float] | None:
    boxes = []
    if bounds is not None:
        boxes.append(tuple(float(v) for v in bounds))
    if len(points):
        boxes.append((float(points["lon"].min()), float(points["lat"].min()),
                      float(points["lon"].max()), float(points["lat"].max())))
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def outside_map(points: pd.DataFrame, *, outline_source: str | dict[str, Any], bounds: Sequence[float] | None,
                lang: str = "en", width_px: int = 520, height_px: int = 340) -> go.Figure:
    """A small map of rejected points outside the district, over the district's outline.

    Parameters
    ----------
    points
        ``row_no, lon, lat`` of the points to draw (already sampled: :func:`sample_points`).
    outline_source
        GeoJSON (or its URL) of the district's streets, drawn as lines: their outer edge is the district outline.
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` of the district; the view fits it and the points.
    width_px, height_px
        Expected size of the map on screen.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scattermap`` trace of the points (hover: row number and coordinates).
    """
    fig = go.Figure()
    fig.add_trace(go.Scattermap(
        lon=points["lon"].round(6).tolist(), lat=points["lat"].round(6).tolist(), mode="markers",
        marker={"size": 8, "color": OUTSIDE_COLOR, "opacity": 0.8},
        customdata=points["row_no"].astype(int).tolist(),
        hovertemplate=t("im_map_hover", lang) + "<extra></extra>",
        name=t("im_map_points", lang), showlegend=False,
    ))
    layers = [{"sourcetype": "geojson", "source": outline_source, "type": "line", "color": OUTLINE_COLOR,
               "line": {"width": 2.0}, "below": "traces"}]
    view = map_view(_union_bounds(bounds, points), width_px=width_px, height_px=height_px, padding=0.75)
    fig.update_layout(**offline_map_layout(view, layers, revision="im-outside"), showlegend=False,
                      height=height_px)
    if points.empty:
        fig.add_annotation(text=t("im_map_none", lang), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                           font={"color": "#6b7280"})
    return fig


def batch_params(params: Any) -> dict[str, Any]:
    """The options a batch ran with (``import_batch.params``, JSON text or a dict); ``{}`` when unreadable."""
    return _raw_row(params)
