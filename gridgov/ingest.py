"""Validated import of incidents from CSV, Parquet, GeoJSON and GeoPackage files.

Every input row ends up either as an incident or as a reject with a stable reason code and the raw source row, so
nothing is lost. A file imports once: its SHA-256 is recorded with the batch, and importing the same content again
changes nothing. A batch (its ``import_batch`` row, incidents and rejects) is written in one transaction, streamed in
chunks of :data:`CHUNK_ROWS` rows so that memory stays bounded whatever the file size.

An import is a pipeline: one background thread reads chunks, another validates them (units, due times, duplicates
within the chunk), and the caller's thread checks ids against the store and stages each chunk, in file order, while
the next chunks are read and validated (:data:`PIPELINE_DEPTH`); a third background thread hashes the file meanwhile.
CSV chunks stay Arrow tables of text from the reader to the store. Only the caller's thread touches the store, so a
batch is still all or nothing, and the results are the same as one chunk at a time in one thread.

The pieces, from the inside out:

* :func:`validate` — pure: one DataFrame in, accepted incident rows and rejects out (no database).
* :func:`ingest_frame` — validate an in-memory frame and write it as one batch (reused by live intake).
* :func:`ingest_file` — read a file in chunks (CSV, Parquet/GeoParquet, GeoJSON, GeoPackage) and import it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import queue
import re
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gridgov import coords, datasets
from gridgov.config import WorkCalendar
from gridgov.errors import InputError, StoreError
from gridgov.incidents import OPEN_STATUSES, STATUSES, due_times
from gridgov.locate import PointLocator
from gridgov.store import Store

#: Fields an input column can be mapped to (``--map SRC=FIELD``). A file already using these names needs no mapping.
CANONICAL_FIELDS: tuple[str, ...] = (
    "external_id", "reported_at", "category", "lon", "lat", "status", "closed_at", "description", "address",
    "source", "reporter_name", "reporter_phone",
)
_TEXT_FIELDS: tuple[str, ...] = ("description", "address", "reporter_name", "reporter_phone")

#: Rows per chunk: the unit of validation and of memory use (a few chunks of the file are in memory at a time).
CHUNK_ROWS = 100_000

#: Chunks read, and chunks validated, ahead of the one being staged in the store. Reading and validating run on two
#: background threads (Arrow and numpy release the GIL), so on two cores they overlap with the store's writes;
#: ``0`` does everything in the caller's thread, one chunk at a time. Store calls always stay in the caller's thread.
PIPELINE_DEPTH = 1

# Bytes the CSV reader parses at a time. Arrow reads a few blocks ahead on its own threads, so this sets most of
# the reader's memory (8 MB blocks cost ~250 MB of RSS, 1 MB blocks ~80 MB); a single row must fit in one block.
_CSV_BLOCK_BYTES = 1 << 20

#: Source label of rows that name none, when neither ``source`` nor a preset gives one.
DEFAULT_SOURCE = "import"

#: Reject reason codes (stable; stored in ``reject.reason``) and what they mean. A row gets the first that applies,
#: in this order.
REASONS: dict[str, str] = {
    "missing_coordinates": "no longitude/latitude (or no point geometry)",
    "bad_coordinates": "coordinates are not numbers, not a point, out of range or cannot be reprojected",
    "missing_reported_at": "no report time",
    "bad_reported_at": "report time is not a date-time in a known format",
    "bad_closed_at": "closing time is not a date-time in a known format",
    "closed_before_reported": "closing time is earlier than the report time",
    "missing_category": "no category",
    "unknown_category": "category is none of our codes or names and not in the category map (see --category-map, "
                        "--other)",
    "unknown_status": "status matches none of " + ", ".join(STATUSES) + " nor a known alias",
    "open_with_closed_at": "status is an open one but a closing time is given",
    "outside_district": "point lies in no unit of the district",
    "duplicate_external_id": "external id already imported for this source (earlier in the file or before)",
}

#: Source status values (compared case-insensitively, ``_``/``-``/spaces alike) → our lifecycle status.
STATUS_ALIASES: dict[str, str] = {
    **dict.fromkeys(["reported", "report", "new", "open", "opened", "submitted", "received",
                     "上报", "已上报", "新建", "待受理", "待处理", "未处理", "未受理"], "reported"),
    **dict.fromkeys(["registered", "accepted", "acknowledged", "pending",
                     "立案", "已立案", "受理", "已受理", "待派遣", "待派单"], "registered"),
    **dict.fromkeys(["dispatched", "assigned", "in progress", "processing", "working",
                     "派遣", "已派遣", "派单", "已派单", "处置中", "处理中", "办理中", "转办", "已转办"], "dispatched"),
    **dict.fromkeys(["handled", "awaiting verification", "to verify",
                     "已处置", "处置完成", "待核查", "待核实", "已反馈", "待回访"], "handled"),
    **dict.fromkeys(["closed", "resolved", "completed", "complete", "done", "finished",
                     "办结", "已办结", "完成", "已完成", "结案", "已结案", "关闭", "已关闭", "已解决"], "closed"),
    **dict.fromkeys(["cancelled", "canceled", "void", "voided", "withdrawn", "rejected",
                     "作废", "已作废", "撤销", "已撤销", "撤单", "已撤单", "无效", "不予受理"], "cancelled"),
}

_EXTENSIONS: dict[str, str] = {
    ".csv": "csv", ".txt": "csv", ".tsv": "csv",
    ".parquet": "parquet", ".pq": "parquet", ".geoparquet": "parquet",
    ".geojson": "ogr", ".json": "ogr", ".gpkg": "ogr",
}

# Columns the readers add for point geometries; they never appear in a reject's raw row.
_GEOM_LON = "__gridgov_geom_lon"
_GEOM_LAT = "__gridgov_geom_lat"
_GEOM_STATE = "__gridgov_geom_state"
_GEOM_FIELD = "geometry"
_INTERNAL = (_GEOM_LON, _GEOM_LAT, _GEOM_STATE)

_CATEGORY_MAP_HEADERS = {"code", "category", "category_code", "our_code", "gridgov", "target", "to"}
_PRESET_KEYS = {"description", "columns", "crs", "source", "other", "category_map", "status", "time_format"}
_MIN_YEAR, _MAX_YEAR = 1900, 2100
# Ideographic and no-break spaces are written literally so that Python's re and Arrow's RE2 read the same pattern.
_SPACES = "[\\s\u3000\u00a0]+"
_STATUS_SEPARATORS = "[\\s\u3000\u00a0_\\-]+"


# ---------------------------------------------------------------------------------------------------------------
# Presets and rules
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """A column-mapping preset read from TOML.

    Parameters
    ----------
    name
        Built-in name or the file's stem.
    path
        The TOML file.
    columns
        Source column → canonical field.
    crs, source, other
        Defaults for the options of the same names.
    category_map
        CSV of (source value, our code), resolved relative to the preset file.
    status
        Source status value → our status (on top of :data:`STATUS_ALIASES`).
    time_format
        ``strptime`` format tried first for ``reported_at``/``closed_at``.
    """

    name: str
    path: Path
    columns: dict[str, str] = field(default_factory=dict)
    crs: str | None = None
    source: str | None = None
    other: str | None = None
    category_map: Path | None = None
    status: dict[str, str] = field(default_factory=dict)
    time_format: str | None = None


def preset_names() -> list[str]:
    """Names of the presets shipped in ``geodata/presets/``."""
    folder = datasets.path("presets")
    return sorted(p.stem for p in folder.glob("*.toml"))


def load_preset(name_or_path: str | Path) -> Preset:
    """Read a preset by built-in name (``la311``) or path (``my_city.toml``).

    Parameters
    ----------
    name_or_path
        A name from :func:`preset_names` or the path of a TOML file.

    Returns
    -------
    Preset
        The validated preset.

    Raises
    ------
    InputError
        Unknown name, unreadable TOML, unknown keys or fields, bad status values (field ``--preset``).
    """
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix == ".toml" or "/" in text or "\\" in text or candidate.is_file():
        path = candidate
        if not path.is_file():
            raise InputError(f"preset file {path} does not exist", field="--preset")
    else:
        builtin = datasets.path("presets") / f"{text}.toml"
        if not builtin.is_file():
            raise InputError(f"unknown preset {text!r}; built-in presets: {', '.join(preset_names())}, "
                             "or give the path of a TOML file", field="--preset")
        path = builtin
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"preset {path} is not valid TOML: {exc}", field="--preset") from None
    unknown = sorted(set(raw) - _PRESET_KEYS)
    if unknown:
        raise InputError(f"preset {path} has unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(_PRESET_KEYS))}", field="--preset")
    columns = raw.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise InputError(f"preset {path}: [columns] must map source column names to field names",
                         field="--preset")
    for src, target in columns.items():
        if target not in CANONICAL_FIELDS:
            raise InputError(f"preset {path}: column {src!r} maps to {target!r}, which is not one of "
                             f"{', '.join(CANONICAL_FIELDS)}", field="--preset")
    status = raw.get("status", {})
    if not isinstance(status, dict):
        raise InputError(f"preset {path}: [status] must map source values to statuses", field="--preset")
    for value, ours in status.items():
        if ours not in STATUSES:
            raise InputError(f"preset {path}: status {value!r} maps to {ours!r}, which is not one of "
                             f"{', '.join(STATUSES)}", field="--preset")
    for key in ("crs", "source", "other", "category_map", "time_format"):
        if key in raw and not isinstance(raw[key], str | int):
            raise InputError(f"preset {path}: {key} must be a string", field="--preset")
    cmap = raw.get("category_map")
    return Preset(
        name=path.stem,
        path=path,
        columns=dict(columns),
        crs=str(raw["crs"]) if "crs" in raw else None,
        source=raw.get("source"),
        other=raw.get("other"),
        category_map=(path.parent / cmap) if cmap else None,
        status=dict(status),
        time_format=raw.get("time_format"),
    )


@dataclass(frozen=True)
class IngestRules:
    """Everything validation needs, resolved from the options, the preset and the store's category table.

    Build it with :func:`make_rules`.

    Parameters
    ----------
    columns
        Source column → canonical field (``--map`` over the preset's ``[columns]``).
    strict_columns
        Source columns given by ``--map``: they must exist in the file (a preset's may be absent).
    crs
        CRS of lon/lat columns (and of geometries of files that declare none); ``None`` means EPSG:4326.
    source
        Source label that overrides every row's (``--source``).
    default_source
        Label of rows without one: the preset's ``source``, else :data:`DEFAULT_SOURCE`.
    category_lookup
        Normalised source value → our category code (codes, names, then the category map).
    other
        Code given to category values nothing matches, or ``None`` to reject them.
    sla_hours
        Category code → time limit in working hours.
    status_lookup
        Normalised source status → our status.
    time_format
        ``strptime`` format tried before the built-in ones.
    calendar
        Working time for due times.
    """

    columns: dict[str, str]
    strict_columns: frozenset[str]
    crs: str | None
    source: str | None
    default_source: str
    category_lookup: dict[str, str]
    other: str | None
    sla_hours: dict[str, float]
    status_lookup: dict[str, str]
    time_format: str | None
    calendar: WorkCalendar
    params: dict[str, Any] = field(default_factory=dict)


def _norm(value: str) -> str:
    return re.sub(_SPACES, " ", str(value)).strip().lower()


def _norm_status(value: str) -> str:
    return re.sub(_STATUS_SEPARATORS, " ", str(value)).strip().lower()


def _parse_mapping(mapping: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    pairs: list[tuple[str, str]] = []
    if isinstance(mapping, Mapping):
        pairs = [(str(k), str(v)) for k, v in mapping.items()]
    else:
        for item in mapping:
            # Split at the last "=": field names never contain one, source column names might.
            src, sep, target = str(item).rpartition("=")
            if not sep or not src.strip() or not target.strip():
                raise InputError(f"must look like SRC=FIELD, got {item!r}", field="--map")
            pairs.append((src.strip(), target.strip()))
    out: dict[str, str] = {}
    for src, target in pairs:
        if target not in CANONICAL_FIELDS:
            raise InputError(f"{src}={target}: {target!r} is not a field; fields are {', '.join(CANONICAL_FIELDS)}",
                             field="--map")
        if target in out.values():
            first = next(s for s, t in out.items() if t == target)
            raise InputError(f"both {first!r} and {src!r} map to {target!r}; map one column per field",
                             field="--map")
        out[src] = target
    return out


def _crs_string(value: str | int) -> str:
    text = str(value).strip()
    datum = coords.chinese_datum(text)
    if datum is not None:  # GCJ-02 / BD-09 web-map coordinates: shifted lon/lat, not a CRS pyproj knows
        return datum
    try:
        crs = CRS.from_user_input(int(text) if text.isdigit() else text)
    except CRSError:
        raise InputError(f"not a CRS pyproj knows: {text!r} (use e.g. 4326, EPSG:32651, or gcj02/bd09 for "
                         "Chinese web-map coordinates)", field="--crs") from None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _category_lookup(categories: pd.DataFrame) -> dict[str, str]:
    lookup: dict[str, str] = {}
    # Names first and codes last, so that a code always wins over another category's name.
    for col in ("name_en", "name_zh"):
        for code, name in zip(categories["code"], categories[col], strict=True):
            if isinstance(name, str) and name.strip():
                lookup.setdefault(_norm(name), code)
    for code in categories["code"]:
        lookup[_norm(code.replace("_", " "))] = code
        lookup[_norm(code)] = code
    return lookup


def _read_text_guess(path: Path) -> str:
    data = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path} is neither UTF-8 nor GB18030 text", field="--category-map")


def read_category_map(path: Path | str, lookup: Mapping[str, str]) -> dict[str, str]:
    """Read a category map CSV: source value, our category (code, or Chinese/English name).

    Parameters
    ----------
    path
        Two-column CSV, UTF-8 or GB18030. An optional header row (second cell ``code``, ``category`` …), blank
        lines and lines starting with ``#`` are skipped.
    lookup
        Normalised names/codes → code, from the store's categories.

    Returns
    -------
    dict
        Normalised source value → our code.

    Raises
    ------
    InputError
        Field ``--category-map`` and the 1-based line of the first bad entry.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"category map {path} does not exist", field="--category-map")
    out: dict[str, str] = {}
    text = _read_text_guess(path)
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            raise InputError(f"{path} needs two columns (source value, our code), got {row!r}",
                             field="--category-map", row=line_no)
        value, ours = row[0].strip(), row[1].strip()
        target = lookup.get(_norm(ours))
        if target is None:
            if not out and _norm(ours) in _CATEGORY_MAP_HEADERS:
                continue
            raise InputError(f"{ours!r} (for {value!r}) is not a category code or name in {path}",
                             field="--category-map", row=line_no)
        if not value:
            raise InputError(f"empty source value in {path}", field="--category-map", row=line_no)
        key = _norm(value)
        if key in out and out[key] != target:
            raise InputError(f"{value!r} is mapped twice ({out[key]} and {target}) in {path}",
                             field="--category-map", row=line_no)
        out[key] = target
    return out


def make_rules(categories: pd.DataFrame, *, mapping: Sequence[str] | Mapping[str, str] = (),
               preset: str | Path | Preset | None = None, crs: str | int | None = None,
               category_map: Path | str | None = None, other: str | None = None, source: str | None = None,
               calendar: WorkCalendar | None = None) -> IngestRules:
    """Resolve import options against a preset and a category table.

    Parameters
    ----------
    categories
        The store's category table (``code, name_zh, name_en, sla_hours`` …).
    mapping
        ``["SRC=FIELD", ...]`` or ``{SRC: FIELD}``; wins over the preset's columns.
    preset
        Built-in name, TOML path or a loaded :class:`Preset`.
    crs
        CRS of lon/lat columns, e.g. ``4326`` or ``"EPSG:32651"``; wins over the preset's.
    category_map
        CSV of (source value, our code); its entries win over the preset's map.
    other
        Catch-all category (code or name) for values nothing matches; wins over the preset's.
    source
        Source label for every row.
    calendar
        Working time for due times; default :class:`WorkCalendar`.

    Returns
    -------
    IngestRules

    Raises
    ------
    InputError
        Naming the option at fault.
    """
    pre = preset if isinstance(preset, Preset) or preset is None else load_preset(preset)
    explicit = _parse_mapping(mapping)
    columns = dict(pre.columns) if pre else {}
    for src, target in explicit.items():
        # An explicit mapping replaces whatever the preset sent to the same field.
        columns = {s: t for s, t in columns.items() if t != target and s != src}
        columns[src] = target
    lookup = _category_lookup(categories)
    cat_lookup = dict(lookup)
    if pre and pre.category_map:
        cat_lookup.update(read_category_map(pre.category_map, lookup))
    if category_map is not None:
        cat_lookup.update(read_category_map(category_map, lookup))
    other_value = other if other is not None else (pre.other if pre else None)
    other_code = None
    if other_value is not None:
        other_code = lookup.get(_norm(other_value))
        if other_code is None:
            raise InputError(f"{other_value!r} is not a category code or name; `gridgov categories` lists them",
                             field="--other")
    status_lookup = {_norm_status(k): v for k, v in STATUS_ALIASES.items()}
    if pre:
        status_lookup.update({_norm_status(k): v for k, v in pre.status.items()})
    crs_value = crs if crs is not None else (pre.crs if pre else None)
    crs_str = _crs_string(crs_value) if crs_value is not None else None
    if source is not None and not str(source).strip():
        raise InputError("must not be empty", field="--source")
    params = {
        "mapping": explicit, "preset": str(pre.path) if pre else None, "crs": crs_str,
        "category_map": str(category_map) if category_map is not None else None, "other": other_code,
        "source": source,
    }
    return IngestRules(
        columns=columns,
        strict_columns=frozenset(explicit),
        crs=crs_str if crs_str != "EPSG:4326" else None,
        source=str(source).strip() if source is not None else None,
        default_source=(pre.source if pre and pre.source else DEFAULT_SOURCE),
        category_lookup=cat_lookup,
        other=other_code,
        sla_hours=dict(zip(categories["code"], categories["sla_hours"].astype(float), strict=True)),
        status_lookup=status_lookup,
        time_format=pre.time_format if pre else None,
        calendar=calendar or WorkCalendar(),
        params=params,
    )


def bind_columns(rules: IngestRules, columns: Sequence[str], *, has_geometry: bool = False) -> dict[str, str]:
    """Which source column feeds each canonical field.

    Explicit (``--map``/preset) entries first; then columns already named like a field (case-insensitive).

    Parameters
    ----------
    rules
        From :func:`make_rules`.
    columns
        The file's column names.
    has_geometry
        The file has point geometries, used for lon/lat when no columns are given for them.

    Returns
    -------
    dict
        Field → source column (``lon``/``lat`` absent when geometry is used).

    Raises
    ------
    InputError
        A ``--map`` column missing from the file, or no column for a required field.
    """
    present = [c for c in columns if c not in _INTERNAL]
    by_lower: dict[str, list[str]] = {}
    for c in present:
        by_lower.setdefault(c.strip().lower(), []).append(c)
    out: dict[str, str] = {}
    used: set[str] = set()
    for src, target in rules.columns.items():
        if target in out:  # a preset may list several header names for a field: the first one present is used
            continue
        col = src if src in present else None
        if col is None and len(by_lower.get(src.strip().lower(), [])) == 1:
            col = by_lower[src.strip().lower()][0]
        if col is None:
            if src in rules.strict_columns:
                raise InputError(f"column {src!r} is not in the file; its columns are: {', '.join(present)}",
                                 field="--map")
            continue
        out[target] = col
        used.add(col)
    for name in CANONICAL_FIELDS:
        if name in out:
            continue
        matches = [c for c in by_lower.get(name, []) if c not in used]
        if len(matches) == 1:
            out[name] = matches[0]
            used.add(matches[0])
    if ("lon" in out) != ("lat" in out):
        have, lack = ("lon", "lat") if "lon" in out else ("lat", "lon")
        raise InputError(f"column {out[have]!r} gives {have} but no column gives {lack}; map one with "
                         f"--map SRC={lack}", field=lack)
    if "lon" not in out and not has_geometry:
        raise InputError("no coordinates: the file has no point geometry and no lon/lat columns; map them with "
                         "--map SRC=lon --map SRC=lat", field="lon")
    for req in ("reported_at", "category"):
        if req not in out:
            raise InputError(f"no column for {req}; map one with --map SRC={req}", field=req)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------------------------
_RASTER_POINTS_PER_UNIT = 64


class UnitIndex:
    """Finds the unit containing each point (EPSG:4326).

    A point on the shared edge of several units goes to the one with the lowest ``unit_id``, so the answer never
    depends on file order or on the index's internal layout. Lookups go through a raster of the units with an exact
    fallback near unit boundaries (:class:`gridgov.locate.PointLocator`), so they are exact and cheap.

    Parameters
    ----------
    units
        Unit polygons with a ``unit_id`` column, in EPSG:4326.
    """

    def __init__(self, units: gpd.GeoDataFrame) -> None:
        if units.crs is None or units.crs.to_epsg() != 4326:
            raise InputError(f"units must be in EPSG:4326, got {units.crs}", field="units")
        self.unit_ids = units["unit_id"].to_numpy(dtype="int64")
        # The raster pays off after some 64 points per unit (its build costs about 0.2 ms per unit); live intake of
        # a few rows keeps to the exact test.
        self._locator = PointLocator(np.asarray(units.geometry.values), self.unit_ids,
                                     raster_after=_RASTER_POINTS_PER_UNIT * len(self.unit_ids))

    def __len__(self) -> int:
        return len(self.unit_ids)

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """``unit_id`` of each point, ``-1`` where no unit contains it (or the point is NaN)."""
        return self._locator.locate(lon, lat)


# ---------------------------------------------------------------------------------------------------------------
# Parsing helpers (vectorised)
# ---------------------------------------------------------------------------------------------------------------
# A column is a pandas Series (frames, Parquet, GeoJSON/GeoPackage) or an Arrow string array (CSV chunks, which
# never become pandas frames: Arrow compute on them is several times cheaper and releases the GIL).
_Column = pd.Series | pa.Array


def _is_textual(s: _Column) -> bool:
    if isinstance(s, pa.Array):
        return True
    return bool(pd.api.types.is_string_dtype(s.dtype) or s.dtype == object)


def _arrow_text(s: _Column) -> pa.Array:
    """Values as stripped Arrow strings, null where missing or empty. Integral floats print without ``.0`` (ids)."""
    if isinstance(s, pa.Array):
        arr = s
    elif pd.api.types.is_float_dtype(s.dtype):
        vals = s.to_numpy(dtype="float64", na_value=np.nan)
        integral = np.isfinite(vals) & (np.floor(vals) == vals)
        obj = np.array([None if np.isnan(v) else str(v) for v in vals], dtype=object)
        obj[integral] = [str(int(v)) for v in vals[integral]]
        arr = pa.array(obj, type=pa.string())
    else:
        try:
            arr = pc.cast(pa.array(s, from_pandas=True), pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            # Mixed Python objects in one column: fall back to str() of each value.
            arr = pa.array([None if pd.isna(v) else str(v) for v in s.to_numpy(dtype=object)], type=pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    empty = pc.equal(arr, "")
    if not pc.any(empty).as_py():
        return arr
    return pc.if_else(empty, pa.nulls(len(arr), pa.string()), arr)


def _objects(arr: pa.Array) -> np.ndarray:
    """An Arrow array as a numpy object array with None for nulls."""
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def _bools(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean array as numpy booleans (null counts as false)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(s: _Column) -> tuple[np.ndarray, np.ndarray]:
    """``(missing, values)``: where a value is absent (or empty text), and the values as floats (NaN if not one)."""
    if isinstance(s, pd.Series) and pd.api.types.is_numeric_dtype(s.dtype) \
            and not pd.api.types.is_bool_dtype(s.dtype):
        return s.isna().to_numpy(dtype=bool), s.to_numpy(dtype="float64", na_value=np.nan)
    if isinstance(s, pa.Array):
        try:
            # Arrow's parser refuses spaces and empty text, so when every value parses, none needed trimming.
            values = pc.cast(s, pa.float64())
            return s.is_null().to_numpy(zero_copy_only=False), values.to_numpy(zero_copy_only=False).astype("float64")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    text = _arrow_text(s)
    missing = text.is_null().to_numpy(zero_copy_only=False) if _is_textual(s) else s.isna().to_numpy(dtype=bool)
    try:
        return missing, pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False).astype("float64")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Some value is not a number: the slower path turns each bad one into NaN.
        return missing, pd.to_numeric(pd.Series(_objects(text)), errors="coerce").to_numpy(dtype="float64",
                                                                                          na_value=np.nan)


@dataclass(frozen=True)
class _Lookup:
    """A lookup table in Arrow form: normalised keys, and for each the position of its value in ``values``."""

    keys: pa.Array
    target: np.ndarray
    values: tuple[str, ...]

    @classmethod
    def of(cls, table: Mapping[str, str], values: Sequence[str] = ()) -> _Lookup:
        ordered = list(dict.fromkeys([*values, *table.values()]))
        where = {v: i for i, v in enumerate(ordered)}
        return cls(keys=pa.array(list(table), type=pa.string()),
                   target=np.array([where[v] for v in table.values()], dtype="int64"), values=tuple(ordered))

    def position(self, value: str) -> int:
        return self.values.index(value)


def _lookup(s: _Column, separators: str, table: _Lookup) -> tuple[np.ndarray, np.ndarray]:
    """Normalise values (separators → one space, trimmed, lower case) and look them up.

    Returns ``(given, found)``: whether the row has a value, and the position of its match in ``table.values``
    (-1 where none).
    """
    # A column holds few distinct values: trim, normalise and look up each once, then spread the answers.
    coded = pc.dictionary_encode(s if isinstance(s, pa.Array) else _arrow_text(s))
    if isinstance(coded, pa.ChunkedArray):
        coded = coded.combine_chunks()
    trimmed = pc.utf8_trim_whitespace(coded.dictionary)
    keys = pc.utf8_lower(pc.utf8_trim_whitespace(pc.replace_substring_regex(trimmed, pattern=separators,
                                                                            replacement=" ")))
    pos = pc.index_in(keys, value_set=table.keys).to_numpy(zero_copy_only=False)
    # One slot past the per-value answers stands for "no value" (a null row, or only spaces).
    per_value = np.full(len(keys) + 1, -1, dtype="int64")
    hit = ~np.isnan(pos) if pos.dtype.kind == "f" else np.ones(len(pos), dtype=bool)
    per_value[:-1][hit] = table.target[pos[hit].astype("int64")]
    given_value = np.append(_bools(pc.not_equal(trimmed, "")), False)
    per_value[~given_value] = -1
    idx = pc.fill_null(coded.indices, -1).to_numpy(zero_copy_only=False).astype("int64")
    return given_value[idx], per_value[idx]


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d%H%M%S", "%Y%m%d")
_ISO_SECONDS = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
# Byte offsets and values of the separators of YYYY-MM-DD hh:mm:ss.
_ISO_SEPARATORS = ((4, ord("-")), (7, ord("-")), (10, ord(" ")), (13, ord(":")), (16, ord(":")))


def _canon_time_text(arr: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.utf8_lower(arr), pattern=r"(^|\D)0+(\d)", replacement=r"\1\2")


def _strptime_checked(arr: pa.Array, fmt: str) -> pa.Array:
    """``strptime`` that refuses impossible dates.

    Arrow's parser rolls 2026-02-30 over to 2026-03-02 instead of failing. Such a roll-over always lands on day 1-3,
    so only those rows are formatted back and compared with the input (leading zeros and case ignored).
    """
    parsed = pc.strptime(arr, format=fmt, unit="us", error_is_null=True)
    suspect = pc.fill_null(pc.less_equal(pc.day(parsed), 3), False).to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(suspect)
    if not len(idx):
        return parsed
    # Whole seconds: Arrow prints %S of a microsecond timestamp with a fraction.
    back = pc.strftime(parsed.take(idx).cast(pa.timestamp("s"), safe=False), format=fmt)
    given = arr.take(idx)
    # Text that prints back identically is a real date; only the rest (other padding or case) is canonicalised.
    same = pc.fill_null(pc.equal(back, given), False).to_numpy(zero_copy_only=False)
    if same.all():
        return parsed
    other = np.flatnonzero(~same)
    same[other] = pc.equal(_canon_time_text(back.take(other)),
                           _canon_time_text(given.take(other))).to_numpy(zero_copy_only=False)
    if same.all():
        return parsed
    wrong = np.zeros(len(arr), dtype=bool)
    wrong[idx[~same]] = True
    return pc.if_else(pa.array(wrong), pa.nulls(len(arr), parsed.type), parsed)


def _iso_shaped(arr: pa.Array, todo: np.ndarray) -> np.ndarray:
    """Rows still to do whose text is 19 bytes with ``-``, ``-``, `` ``, ``:``, ``:`` where ISO puts them.

    Reads the separators straight from the string buffer, which costs a fraction of a regular expression; the
    digits in between are left to Arrow's cast parser, which refuses anything else.
    """
    if not isinstance(arr, pa.StringArray) or not len(arr):
        return todo & _bools(pc.match_substring_regex(arr, pattern=_ISO_SECONDS))
    offsets = np.frombuffer(arr.buffers()[1], dtype="int32", count=len(arr) + 1, offset=arr.offset * 4)
    shaped = todo & (np.diff(offsets) == 19)
    idx = np.flatnonzero(shaped)
    if not len(idx):
        return shaped
    data = np.frombuffer(arr.buffers()[2], dtype="uint8")
    starts = offsets[idx]
    ok = np.ones(len(idx), dtype=bool)
    for at, byte in _ISO_SEPARATORS:
        ok &= data[starts + at] == byte
    shaped[idx[~ok]] = False
    return shaped


def _parse_iso_seconds(arr: pa.Array, out: np.ndarray, todo: np.ndarray) -> None:
    """Parse rows still to do that read exactly ``YYYY-MM-DD hh:mm:ss`` into ``out`` and clear them in ``todo``.

    Arrow's cast parser is many times faster than its ``strptime`` and refuses impossible dates and times instead of
    rolling them over. When it refuses any row (2026-02-30, a leap second) nothing is taken from it: ``strptime``
    then decides every row as it always did, so the results never depend on this shortcut.
    """
    iso = _iso_shaped(arr, todo)
    for attempt in range(2):
        idx = np.flatnonzero(iso)
        if not len(idx):
            return
        try:
            parsed = pc.cast(arr if len(idx) == len(arr) else arr.take(idx), pa.timestamp("us"))
            break
        except pa.ArrowInvalid:
            if attempt:
                return
            # A row shaped like ISO but with a non-digit in it: keep to the exact pattern and try once more.
            iso &= _bools(pc.match_substring_regex(arr, pattern=_ISO_SECONDS))
    out[idx] = parsed.to_numpy(zero_copy_only=False).astype("datetime64[us]")
    todo[idx] = False


def _parse_time_text(arr: pa.Array, fmt: str | None) -> np.ndarray:
    n = len(arr)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    todo = arr.is_valid().to_numpy(zero_copy_only=False).copy()
    # Fast path on the raw text: the preset's format, then the most common export format. Only the rest is
    # normalised with regular expressions.
    for f in ([fmt] if fmt else []) + [_TIME_FORMATS[0]]:
        if f == _TIME_FORMATS[0]:
            _parse_iso_seconds(arr, out, todo)
        idx = np.flatnonzero(todo)
        if not len(idx):
            return out
        parsed = _strptime_checked(arr if len(idx) == n else arr.take(idx), f)
        ok = parsed.is_valid().to_numpy(zero_copy_only=False)
        out[idx[ok]] = parsed.to_numpy(zero_copy_only=False).astype("datetime64[us]")[ok]
        todo[idx[ok]] = False
    idx = np.flatnonzero(todo)
    if not len(idx):
        return out
    rest = arr.take(idx)
    norm = pc.replace_substring_regex(rest, pattern=r"^(\d{4})[/.年](\d{1,2})[/.月](\d{1,2})日?",
                                      replacement=r"\1-\2-\3")
    norm = pc.replace_substring_regex(norm, pattern=r"(\d)[Tt](\d)", replacement=r"\1 \2")
    norm = pc.replace_substring_regex(norm, pattern=r"\s*(?:[Zz]|UTC|[+-]\d{2}:?\d{2})$", replacement="")
    frac = pc.struct_field(pc.extract_regex(norm, pattern=r"^.*\d:\d{2}:\d{2}[.,](?P<f>\d{1,9})$"), [0])
    norm = pc.replace_substring_regex(norm, pattern=r"(\d:\d{2}:\d{2})[.,]\d+$", replacement=r"\1")
    parsed = pa.nulls(len(idx), pa.timestamp("us"))
    for f in _TIME_FORMATS:
        parsed = pc.coalesce(parsed, _strptime_checked(norm, f))
    values = parsed.to_numpy(zero_copy_only=False).astype("datetime64[us]")
    has_frac = pc.is_valid(frac).to_numpy(zero_copy_only=False)
    if has_frac.any():
        digits = pc.utf8_slice_codeunits(pc.utf8_rpad(frac, width=6, padding="0"), start=0, stop=6)
        micro = pc.fill_null(pc.cast(digits, pa.int64()), 0).to_numpy(zero_copy_only=False)
        values = values + micro.astype("timedelta64[us]")
    out[idx] = values
    return out


def _parse_times(s: _Column, fmt: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse date-times to naive ``datetime64[us]``.

    Returns ``(values, missing, bad)``. Accepted text: ``YYYY-MM-DD[ hh:mm[:ss[.ffffff]]]`` with ``-``, ``/``, ``.``
    or 年月日 between the date parts and ``T`` or a space before the time; ``YYYYMMDD[hhmmss]``; a trailing ``Z`` or
    UTC offset is ignored (the wall-clock time is taken as district local time). Numbers are rejected: epoch values
    are UTC and the district's time zone is not known here.
    """
    n = len(s)
    if isinstance(s, pa.Array) and fmt is None:
        out, missing = _parse_raw_times(s)
        return _in_years(out, missing)
    is_datetime = isinstance(s, pd.Series) and pd.api.types.is_datetime64_any_dtype(s.dtype)
    textual = _is_textual(s) and not is_datetime
    arr = _arrow_text(s) if textual else None
    missing = arr.is_null().to_numpy(zero_copy_only=False) if arr is not None else s.isna().to_numpy(dtype=bool)
    if is_datetime:
        values = s
        if getattr(s.dt, "tz", None) is not None:
            values = s.dt.tz_localize(None)
        out = values.to_numpy(dtype="datetime64[us]")
    elif arr is None:
        out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    else:
        out = _parse_time_text(arr, fmt)
    return _in_years(out, missing)


def _parse_raw_times(raw: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(values, missing)`` of untrimmed Arrow text, as :func:`_parse_time_text` of the trimmed text gives them.

    Rows that read exactly ``YYYY-MM-DD hh:mm:ss`` have nothing to trim, so they are parsed from the raw text
    (saving a trimmed copy of the column); only the others are trimmed and go the whole way.
    """
    out = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[us]")
    todo = raw.is_valid().to_numpy(zero_copy_only=False).copy()
    _parse_iso_seconds(raw, out, todo)
    missing = raw.is_null().to_numpy(zero_copy_only=False).copy()
    rest = np.flatnonzero(todo)
    if len(rest):
        text = _arrow_text(raw if len(rest) == len(raw) else raw.take(rest))
        missing[rest] = text.is_null().to_numpy(zero_copy_only=False)
        out[rest] = _parse_time_text(text, None)
    return out, missing


def _in_years(out: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, missing, bad)``: values outside the years we accept become NaT and count as bad."""
    # Year bounds as two comparisons (NaT compares false); converting to years would walk the calendar.
    in_range = ((out >= np.datetime64(f"{_MIN_YEAR}-01-01", "us"))
                & (out < np.datetime64(f"{_MAX_YEAR + 1}-01-01", "us")))
    out = np.where(in_range, out, np.datetime64("NaT"))
    bad = ~missing & ~in_range
    return out, missing, bad


@lru_cache(maxsize=16)
def _transformer(crs: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)


def _to_lonlat(x: np.ndarray, y: np.ndarray, crs: str | None) -> tuple[np.ndarray, np.ndarray]:
    if crs is None:
        return x, y
    if crs in coords.CHINESE_DATUMS:
        with np.errstate(invalid="ignore"):
            return coords.CHINESE_DATUMS[crs](x, y)
    with np.errstate(invalid="ignore"):
        lon, lat = _transformer(crs).transform(x, y, errcheck=False)
    return np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")


def _point_columns(geoms: np.ndarray, crs: str | None) -> dict[str, np.ndarray]:
    """Internal lon/lat (EPSG:4326) and state (``ok``/``missing``/``not_point``) of point geometries."""
    missing = shapely.is_missing(geoms)
    missing[~missing] = shapely.is_empty(geoms[~missing])
    kind = shapely.get_type_id(geoms)
    single = (kind == 4) & ~missing
    single[single] = shapely.get_num_geometries(geoms[single]) == 1
    pts = geoms.copy()
    if single.any():
        pts[single] = shapely.get_geometry(geoms[single], 0)
    is_point = ~missing & (shapely.get_type_id(pts) == 0)
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    if is_point.any():
        x[is_point] = shapely.get_x(pts[is_point])
        y[is_point] = shapely.get_y(pts[is_point])
    lon, lat = _to_lonlat(x, y, crs)
    state = np.where(missing, "missing", np.where(is_point, "ok", "not_point")).astype(object)
    return {_GEOM_LON: lon, _GEOM_LAT: lat, _GEOM_STATE: state}


# ---------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Validation:
    """Result of :func:`validate`.

    Parameters
    ----------
    accepted
        ``row_no`` plus the incident columns (``source, external_id, category_code, reported_at, due_at, status,
        closed_at, lon, lat, unit_id, address, description, reporter_name, reporter_phone``), in file order.
    rejects
        ``row_no, field, reason, message, raw`` in file order; ``field`` is the source column (``geometry`` for
        geometries), ``reason`` a code of :data:`REASONS`, ``raw`` the source row as JSON text.
    """

    accepted: pd.DataFrame
    rejects: pd.DataFrame


_REJECT_COLUMNS = ("row_no", "field", "reason", "message", "raw")
# Index 0 stands for "not rejected"; the others are the codes of REASONS.
_REASON_CODES: tuple[str | None, ...] = (None, *REASONS)
_ACCEPTED_COLUMNS = ("row_no", "source", "external_id", "category_code", "reported_at", "due_at", "status",
                     "closed_at", "lon", "lat", "unit_id", *_TEXT_FIELDS)


def _str_series(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    """An Arrow string array as a pandas text column without copying each value into a Python object."""
    return pd.Series(arr.to_pandas(), copy=False) if len(arr) else pd.Series(np.array([], dtype=object))


def _column(chunk: pa.Table | pd.DataFrame, name: str) -> _Column:
    """One column of a chunk: an Arrow string array for Arrow chunks, else a pandas Series."""
    if isinstance(chunk, pd.DataFrame):
        return chunk[name]
    col = chunk.column(name)
    arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        # Only text is read into Arrow chunks; anything else keeps the pandas rules (integral floats as ids …).
        return pd.Series(arr.to_pandas(), copy=False)
    return arr


def _raw_json(frame: pa.Table | pd.DataFrame, mask: np.ndarray) -> list[str]:
    if not mask.any():
        return []
    if isinstance(frame, pa.Table):
        cols = [c for c in frame.column_names if c not in _INTERNAL]
        # Only the rejected rows become a pandas frame: the same writer as for pandas chunks, so the same text.
        sub = frame.select(cols).filter(pa.array(mask)).to_pandas()
    else:
        cols = [c for c in frame.columns if c not in _INTERNAL]
        sub = frame.loc[mask, cols]
    # One JSON object per line; JSON escapes newlines inside strings, so splitting on lines is safe.
    text = sub.to_json(orient="records", lines=True, force_ascii=False, date_format="iso", date_unit="us",
                       default_handler=str)
    return text.splitlines()


def _message(code: str, detail: str | None) -> str:
    if code == "duplicate_external_id" and detail:
        return detail
    return REASONS[code] + (f" (got {detail})" if detail else "")


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "empty"
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _cells(col: _Column, mask: np.ndarray) -> list[str]:
    """The source values of the masked rows as shown in messages."""
    values = col.filter(pa.array(mask)).to_pylist() if isinstance(col, pa.Array) else col[mask].to_numpy(dtype=object)
    return [_shown(v) for v in values]


def _first_seen(keys: Sequence[pa.Array]) -> np.ndarray:
    """True for the first row of each distinct combination of the (non-null) key arrays."""
    n = len(keys[0])
    combined = np.zeros(n, dtype="int64")
    for key in keys:
        coded = pc.dictionary_encode(key)
        width = max(len(coded.dictionary), 1)
        combined = combined * width + coded.indices.to_numpy(zero_copy_only=False).astype("int64")
    first = np.zeros(n, dtype=bool)
    first[np.unique(combined, return_index=True)[1]] = True
    return first


@dataclass
class _Checked:
    """One validated chunk: accepted rows as an Arrow table, rejects as columns (:data:`_REJECT_COLUMNS`)."""

    accepted: pa.Table
    rejects: dict[str, Any]

    def rejects_table(self) -> pa.Table:
        r = self.rejects
        return pa.table({"row_no": pa.array(r["row_no"], type=pa.int64()),
                         **{c: pa.array(list(r[c]), type=pa.string()) for c in _REJECT_COLUMNS[1:]}})


def _check(frame: pa.Table | pd.DataFrame, rules: IngestRules, index: UnitIndex, *, first_row_no: int) -> _Checked:
    """:func:`validate` on a pandas frame or on an Arrow table of text columns (the CSV reader's chunks)."""
    names = frame.column_names if isinstance(frame, pa.Table) else list(frame.columns)
    n = len(frame)
    cols = bind_columns(rules, names, has_geometry=_GEOM_STATE in names)
    row_no = np.arange(first_row_no, first_row_no + n, dtype="int64")
    # Position of each row's reason in _REASON_CODES (0: none yet); small integers compare fast, strings do not.
    reason = np.zeros(n, dtype="int8")
    # The field of each rejected row (position in `fields`) and the details shown in messages, by row.
    fields: list[str] = [""]
    where = np.zeros(n, dtype="int16")
    details: list[tuple[np.ndarray, list[str]]] = []

    def reject(mask: np.ndarray, code: str, col: str, shown: Callable[[np.ndarray], list[str]] | None = None) -> None:
        new = mask & (reason == 0)
        if not new.any():
            return
        reason[new] = _REASON_CODES.index(code)
        if col not in fields:
            fields.append(col)
        where[new] = fields.index(col)
        if shown is not None:
            details.append((np.flatnonzero(new), shown(new)))

    def cell(col: str) -> Callable[[np.ndarray], list[str]]:
        return lambda m: _cells(_column(frame, col), m)

    # Coordinates: columns (in rules.crs) or the file's point geometry (already EPSG:4326).
    if "lon" in cols:
        cx, cy = cols["lon"], cols["lat"]
        coord_field = f"{cx},{cy}"
        (miss_x, x), (miss_y, y) = _numbers(_column(frame, cx)), _numbers(_column(frame, cy))
        reject(miss_x, "missing_coordinates", cx)
        reject(miss_y, "missing_coordinates", cy)
        reject(~np.isfinite(x), "bad_coordinates", cx, cell(cx))
        reject(~np.isfinite(y), "bad_coordinates", cy, cell(cy))
        finite = np.isfinite(x) & np.isfinite(y)
        if rules.crs is None:
            lon, lat = np.where(finite, x, np.nan), np.where(finite, y, np.nan)
        else:
            lon, lat = _to_lonlat(np.where(np.isfinite(x), x, 0.0), np.where(np.isfinite(y), y, 0.0), rules.crs)
            lon, lat = np.where(finite, lon, np.nan), np.where(finite, lat, np.nan)
    else:
        coord_field = _GEOM_FIELD
        state = frame[_GEOM_STATE].to_numpy(dtype=object)
        lon = frame[_GEOM_LON].to_numpy(dtype="float64")
        lat = frame[_GEOM_LAT].to_numpy(dtype="float64")
        reject(state == "missing", "missing_coordinates", coord_field)
        reject(state == "not_point", "bad_coordinates", coord_field, lambda m: ["not a point"] * int(m.sum()))
    with np.errstate(invalid="ignore"):
        out_of_range = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    reject(out_of_range, "bad_coordinates", coord_field,
           lambda m: [f"lon {a:.6g}, lat {b:.6g} after reprojection" for a, b in zip(lon[m], lat[m], strict=True)])

    # Times.
    rcol = cols["reported_at"]
    reported, miss_r, bad_r = _parse_times(_column(frame, rcol), rules.time_format)
    reject(miss_r, "missing_reported_at", rcol)
    reject(bad_r, "bad_reported_at", rcol, cell(rcol))
    closed = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    has_closed = np.zeros(n, dtype=bool)
    if "closed_at" in cols:
        ccol = cols["closed_at"]
        closed, miss_c, bad_c = _parse_times(_column(frame, ccol), rules.time_format)
        has_closed = ~miss_c
        reject(bad_c, "bad_closed_at", ccol, cell(ccol))
        before = has_closed & ~bad_c & ~np.isnat(reported) & (closed < reported)
        reject(before, "closed_before_reported", ccol,
               lambda m: [f"closed {c} < reported {r}" for c, r in zip(closed[m].astype("datetime64[s]"),
                                                                         reported[m].astype("datetime64[s]"),
                                                                         strict=True)])

    # Category: the category map and our codes/names; then the catch-all.
    categories = _Lookup.of(rules.category_lookup, [rules.other] if rules.other is not None else [])
    kcol = cols["category"]
    has_k, code = _lookup(_column(frame, kcol), _SPACES, categories)
    miss_k = ~has_k
    unknown = ~miss_k & (code < 0)
    if rules.other is not None:
        code[unknown] = categories.position(rules.other)
        unknown[:] = False
    reject(miss_k, "missing_category", kcol)
    reject(unknown, "unknown_category", kcol, cell(kcol))

    # Status: a row without one is closed when it has a closing time, else just reported.
    statuses = _Lookup.of(rules.status_lookup, STATUSES)
    status = np.where(has_closed, statuses.position("closed"), statuses.position("reported"))
    if "status" in cols:
        scol = cols["status"]
        given, mapped = _lookup(_column(frame, scol), _STATUS_SEPARATORS, statuses)
        reject(given & (mapped < 0), "unknown_status", scol, cell(scol))
        status = np.where(given & (mapped >= 0), mapped, status)
        is_open = np.isin(status, [statuses.position(s) for s in OPEN_STATUSES])
        reject(given & has_closed & is_open, "open_with_closed_at", scol, cell(scol))

    # Unit of each still-valid point.
    unit_id = np.full(n, -1, dtype="int64")
    todo = reason == 0
    if todo.any():
        unit_id[todo] = index.locate(lon[todo], lat[todo])
    reject(todo & (unit_id < 0), "outside_district", coord_field,
           lambda m: [f"lon {a:.6f}, lat {b:.6f}" for a, b in zip(lon[m], lat[m], strict=True)])

    # Source and external id (Arrow strings: only rejected rows become Python objects); duplicates among the rows
    # still valid (first one wins).
    one_source = rules.source if rules.source is not None else None if "source" in cols else rules.default_source
    if one_source is not None:
        source = pa.repeat(pa.scalar(one_source, pa.string()), n)
    else:
        source = pc.fill_null(_arrow_text(_column(frame, cols["source"])), rules.default_source)
    ext = _arrow_text(_column(frame, cols["external_id"])) if "external_id" in cols else pa.nulls(n, pa.string())
    if "external_id" in cols:
        ecol = cols["external_id"]
        keyed = (reason == 0) & ext.is_valid().to_numpy(zero_copy_only=False)
        if keyed.any():
            mask = pa.array(keyed)
            keys = [ext.filter(mask)] if one_source is not None else [source.filter(mask), ext.filter(mask)]
            dup = np.zeros(n, dtype=bool)
            dup[np.flatnonzero(keyed)[~_first_seen(keys)]] = True
            reject(dup, "duplicate_external_id", ecol,
                   lambda m: [f"external id {_shown(e)} is taken by an earlier row of this file"
                              for e in ext.filter(pa.array(m)).to_pylist()])

    ok = reason == 0
    keep = pa.array(ok)
    n_ok = int(ok.sum())
    code_values = pa.array(categories.values, type=pa.string())
    sla_of_code = np.array([rules.sla_hours.get(c, np.nan) for c in categories.values], dtype="float64")
    acc_code = code[ok]
    acc_reported = reported[ok]
    text_cols = {f: _arrow_text(_column(frame, cols[f])).filter(keep) if f in cols else pa.nulls(n_ok, pa.string())
                 for f in _TEXT_FIELDS}
    accepted = pa.table({
        "row_no": pa.array(row_no[ok]),
        "source": source.filter(keep),
        "external_id": ext.filter(keep),
        "category_code": code_values.take(pa.array(acc_code)),
        "reported_at": pa.array(acc_reported),
        "due_at": pa.array(due_times(acc_reported, sla_of_code[acc_code], rules.calendar) if n_ok else acc_reported),
        "status": pa.array(statuses.values, type=pa.string()).take(pa.array(status[ok])),
        "closed_at": pa.array(closed[ok]),
        "lon": pa.array(lon[ok]),
        "lat": pa.array(lat[ok]),
        "unit_id": pa.array(unit_id[ok]),
        **text_cols,
    })

    bad = ~ok
    bad_rows = np.flatnonzero(bad)
    detail = np.full(len(bad_rows), None, dtype=object)
    for rows, shown in details:
        detail[np.searchsorted(bad_rows, rows)] = np.array(shown, dtype=object)
    reasons = np.array(_REASON_CODES, dtype=object)[reason[bad]]
    rejects = {
        "row_no": row_no[bad],
        "field": np.array(fields, dtype=object)[where[bad]],
        "reason": reasons,
        "message": [_message(r, d) for r, d in zip(reasons, detail, strict=True)],
        "raw": _raw_json(frame, bad),
    }
    return _Checked(accepted=accepted, rejects=rejects)


def validate(frame: pd.DataFrame, rules: IngestRules, units: UnitIndex | gpd.GeoDataFrame, *,
             first_row_no: int = 1) -> Validation:
    """Split rows into incidents to store and rejects with reasons (no database involved).

    Checks run in the order of :data:`REASONS`; a row is rejected for the first that fails. Rows repeating the
    ``(source, external_id)`` of an earlier valid row of the same frame are ``duplicate_external_id`` (the first
    one wins); rows without an external id are never duplicates.

    Parameters
    ----------
    frame
        Source rows with the file's column names (point geometries, when any, already turned into the internal
        lon/lat columns by the readers).
    rules
        From :func:`make_rules`.
    units
        Unit polygons (EPSG:4326) or a :class:`UnitIndex` of them.
    first_row_no
        Row number of the frame's first row: 1-based data row in the file (the header is not counted).

    Returns
    -------
    Validation
    """
    index = units if isinstance(units, UnitIndex) else UnitIndex(units)
    frame = frame.reset_index(drop=True)  # a new frame: renaming its columns leaves the caller's alone
    frame.columns = [str(c) for c in frame.columns]
    checked = _check(frame, rules, index, first_row_no=first_row_no)
    acc = checked.accepted
    accepted = pd.DataFrame({c: _str_series(acc.column(c)) if pa.types.is_string(acc.schema.field(c).type)
                             else acc.column(c).to_numpy() for c in _ACCEPTED_COLUMNS})
    rejects = pd.DataFrame(checked.rejects, columns=list(_REJECT_COLUMNS))
    return Validation(accepted=accepted, rejects=rejects)


# ---------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    """What one import did.

    Parameters
    ----------
    batch_id
        The batch (for an already-imported file: the original batch).
    file, sha256
        Input file (or label of a frame) and its content hash.
    rows_in
        Data rows read (``accepted + rejected``).
    accepted, rejected, duplicates
        Rows stored as incidents; rows rejected (duplicates included); of those, duplicate external ids.
    rejected_by_reason
        Rejected rows per reason code.
    already_imported
        The same content was imported before; nothing was written.
    seconds
        Wall time.
    sample_rejects
        The first few rejects (``row_no, field, reason, message``) for the terminal.
    """

    batch_id: int
    file: str
    sha256: str
    rows_in: int
    accepted: int
    rejected: int
    duplicates: int
    rejected_by_reason: dict[str, int]
    already_imported: bool
    seconds: float
    sample_rejects: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-able dict."""
        return {
            "batch_id": self.batch_id, "file": self.file, "sha256": self.sha256, "rows_in": self.rows_in,
            "accepted": self.accepted, "rejected": self.rejected, "duplicates": self.duplicates,
            "rejected_by_reason": dict(self.rejected_by_reason), "already_imported": self.already_imported,
            "seconds": round(self.seconds, 3), "sample_rejects": list(self.sample_rejects),
        }

    def summary(self) -> str:
        """A few lines for the terminal (no markup)."""
        if self.already_imported:
            return (f"{self.file}: already imported as batch {self.batch_id} (same content, sha256 "
                    f"{self.sha256[:12]}); nothing changed.")
        lines = [
            f"Imported {self.file} as batch {self.batch_id} in {self.seconds:.1f} s",
            f"  rows in   {self.rows_in:>10,}",
            f"  accepted  {self.accepted:>10,}",
            f"  rejected  {self.rejected:>10,}" + (f"  (duplicates {self.duplicates:,})" if self.duplicates else ""),
        ]
        width = max((len(r) for r in self.rejected_by_reason), default=0)
        for code, count in sorted(self.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {code:<{width}}  {count:>8,}  {REASONS.get(code, '')}")
        if self.sample_rejects:
            lines.append("  first rejects:")
            for r in self.sample_rejects:
                lines.append(f"    row {r['row_no']}, field '{r['field']}': {r['message']}")
        if self.rejected:
            lines.append(f"  all rejects with their raw rows: reject table, batch_id = {self.batch_id}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Readers: each yields (chunk, progress advance) with at most CHUNK_ROWS rows per chunk. A chunk is a pandas frame,
# or for CSV an Arrow table of text columns with one buffer per column.
# ---------------------------------------------------------------------------------------------------------------
_Chunk = pd.DataFrame | pa.Table


@dataclass
class _Reader:
    columns: list[str]
    has_geometry: bool
    total: int | None
    unit: str
    chunks: Callable[[], Iterator[tuple[_Chunk, int]]]


class _CountingFile(io.RawIOBase):
    """A binary file that counts the bytes handed out, for the progress bar."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)
        self.count += n or 0
        return n or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


def _sniff_csv(path: Path) -> tuple[str, str, list[str]]:
    """Encoding, delimiter and header of a CSV file."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    encoding = "utf-8"
    try:
        # A multi-byte character may be cut at the end of the sample; an incremental decoder forgives that.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        encoding = "gb18030"
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    first = text.splitlines()[0] if text else ""
    if not first.strip():
        raise InputError(f"{path} is empty or its first line is blank; the first line must be the header",
                         field="FILE")
    delimiter = max([",", "\t", ";", "|"], key=first.count)
    header = next(csv.reader([first], delimiter=delimiter))
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(f"{path} has duplicate column name(s) {', '.join(dupes)}; rename them", field="FILE")
    return encoding, delimiter, header


def _open_csv(src: Any, path: Path, **options: Any) -> pcsv.CSVStreamingReader:
    try:
        return pcsv.open_csv(src, **options)
    except pa.ArrowInvalid as exc:
        # The reader parses the first block on open, so a bad row near the top fails here.
        raise InputError(f"{path} is not well-formed CSV near the top of the file: {exc}; fix the file (quote "
                         "values that contain the delimiter) and import again", field="FILE") from None


def _csv_reader(path: Path) -> _Reader:
    encoding, delimiter, header = _sniff_csv(path)

    def chunks() -> Iterator[tuple[pa.Table, int]]:
        src = _CountingFile(path)
        try:
            reader = _open_csv(
                src, path,
                read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, encoding=encoding),
                parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                                    strings_can_be_null=True, quoted_strings_can_be_null=True,
                                                    null_values=[""]),
            )
            pending: list[pa.RecordBatch] = []
            size = 0
            done = 0
            seen_bytes = 0
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    # Arrow does not say which row; the ones read so far were fine, so the bad one comes after them.
                    raise InputError(f"{path} is not well-formed CSV somewhere after data row {done + size:,}: "
                                     f"{exc}; fix the file (quote values that contain the delimiter) and import "
                                     "again", field="FILE") from None
                pending.append(batch)
                size += batch.num_rows
                if size >= CHUNK_ROWS:
                    table = pa.Table.from_batches(pending)
                    for start in range(0, table.num_rows - table.num_rows % CHUNK_ROWS, CHUNK_ROWS):
                        part = table.slice(start, CHUNK_ROWS)
                        advance = src.count - seen_bytes
                        seen_bytes = src.count
                        yield part.combine_chunks(), advance
                    rest = table.slice(table.num_rows - table.num_rows % CHUNK_ROWS)
                    done += table.num_rows - rest.num_rows
                    pending, size = ([*rest.to_batches()], rest.num_rows) if rest.num_rows else ([], 0)
            if size:
                yield pa.Table.from_batches(pending).combine_chunks(), src.count - seen_bytes
        finally:
            src.close()

    return _Reader(columns=header, has_geometry=False, total=path.stat().st_size, unit="bytes", chunks=chunks)


def _geo_parquet_column(schema: pa.Schema) -> tuple[str | None, str | None]:
    """Primary geometry column of a GeoParquet file and its CRS (None: OGC:CRS84 by the spec)."""
    meta = schema.metadata or {}
    if b"geo" not in meta:
        return None, None
    try:
        geo = json.loads(meta[b"geo"])
        col = geo["primary_column"]
        crs = geo.get("columns", {}).get(col, {}).get("crs")
    except (ValueError, KeyError):
        return None, None
    if crs is None:
        return col, None
    return col, CRS.from_user_input(crs).to_string()


def _with_geometry(df: pd.DataFrame, wkb_col: str, crs: str | None, rules: IngestRules) -> pd.DataFrame:
    geoms = shapely.from_wkb(df[wkb_col].to_numpy(dtype=object))
    target = rules.crs if rules.crs is not None else crs
    target = None if target in (None, "EPSG:4326", "OGC:CRS84") else target
    extra = _point_columns(geoms, target)
    df = df.drop(columns=[wkb_col])
    df[_GEOM_FIELD] = shapely.to_wkt(geoms, rounding_precision=-1)
    for k, v in extra.items():
        df[k] = v
    return df


def _parquet_reader(path: Path, rules: IngestRules) -> _Reader:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path} is not a readable Parquet file: {exc}", field="FILE") from None
    schema = pf.schema_arrow
    geom_col, geom_crs = _geo_parquet_column(schema)
    columns = [c for c in schema.names if c != geom_col]
    if geom_col is not None:
        columns.append(_GEOM_FIELD)

    def chunks() -> Iterator[tuple[pd.DataFrame, int]]:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            df = batch.to_pandas()
            if geom_col is not None:
                df = _with_geometry(df, geom_col, geom_crs, rules)
            yield df, batch.num_rows

    return _Reader(columns=columns, has_geometry=geom_col is not None, total=pf.metadata.num_rows, unit="rows",
                   chunks=chunks)


def _ogr_reader(path: Path, rules: IngestRules) -> _Reader:
    import pyogrio
    from pyogrio.raw import open_arrow

    try:
        info = pyogrio.read_info(path)
    except Exception as exc:  # pyogrio raises several DataSource/DataLayer error types
        raise InputError(f"{path} cannot be read as {path.suffix[1:]}: {exc}", field="FILE") from None
    fields = [str(f) for f in info["fields"]]
    crs = info.get("crs")
    crs_str = CRS.from_user_input(crs).to_string() if crs else None
    total = int(info["features"]) if info.get("features", -1) >= 0 else None

    def chunks() -> Iterator[tuple[pd.DataFrame, int]]:
        with open_arrow(path, batch_size=CHUNK_ROWS, use_pyarrow=True, datetime_as_string=True) as (meta, reader):
            wkb_col = meta.get("geometry_name") or "wkb_geometry"
            for batch in reader:
                df = batch.to_pandas()
                if wkb_col not in df.columns:
                    wkb_col = next(c for c in df.columns if c not in fields)
                df = _with_geometry(df, wkb_col, crs_str, rules)
                yield df, batch.num_rows

    return _Reader(columns=[*fields, _GEOM_FIELD], has_geometry=True, total=total, unit="rows", chunks=chunks)


def _file_kind(path: Path) -> str:
    kind = _EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path.name}: unsupported file type {path.suffix or '(none)'}; use "
                         f"{', '.join(sorted(_EXTENSIONS))}", field="FILE")
    return kind


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# The import
# ---------------------------------------------------------------------------------------------------------------
def _progress(enabled: bool, total: int | None, unit: str) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    return Progress(TextColumn("importing"), BarColumn(), count, TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def _already(existing: dict[str, Any], label: str, sha256: str, started: float) -> ImportResult:
    rows = int(existing["rows_in"])
    return ImportResult(batch_id=int(existing["batch_id"]), file=label, sha256=sha256, rows_in=rows, accepted=0,
                        rejected=0, duplicates=rows, rejected_by_reason={}, already_imported=True,
                        seconds=time.perf_counter() - started)


class _Ahead(Iterator[Any]):
    """Runs an iterator on a background thread, at most ``depth`` items ahead of the consumer, in order.

    An exception of the iterator is raised by the consumer's ``next`` at the place of the item it cut short.
    :meth:`close` stops the thread (it finishes the item in hand first) and closes the iterator; the consumer must
    call it, normally through ``with``.
    """

    _END = object()

    def __init__(self, source: Iterator[Any], *, depth: int, name: str) -> None:
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: Any, error: BaseException | None = None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(self._END, exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __next__(self) -> Any:
        while True:
            try:
                item, error = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise StopIteration from None  # closed: nothing more will come
        if error is not None:
            raise error
        if item is self._END:
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> _Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Hash:
    """The content hash of the input, computed on a background thread when ``threaded``."""

    def __init__(self, compute: Callable[[], str], *, threaded: bool) -> None:
        self._value: str | None = None
        self._error: BaseException | None = None
        self._compute = compute
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._work, name="gridgov-ingest-hash", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        try:
            self._value = self._compute()
        except BaseException as exc:  # raised by result()
            self._error = exc

    def result(self) -> str:
        if self._thread is None:
            return self._compute()
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


@dataclass
class _Validated:
    """A chunk, its validation and its place in the file."""

    chunk: _Chunk
    checked: _Checked
    first_row_no: int
    advance: int


def _validated(chunks: Iterator[tuple[_Chunk, int]], rules: IngestRules, index: UnitIndex) -> Iterator[_Validated]:
    rows = 0
    for chunk, advance in chunks:
        if isinstance(chunk, pd.DataFrame):
            chunk = chunk.reset_index(drop=True)
        yield _Validated(chunk, _check(chunk, rules, index, first_row_no=rows + 1), rows + 1, advance)
        rows += len(chunk)


def _run(store: Store, reader: _Reader, rules: IngestRules, *, label: str, sha256: Callable[[], str],
         progress: bool, started: float) -> ImportResult:
    # Bad options fail here, before any work.
    bound = bind_columns(rules, reader.columns, has_geometry=reader.has_geometry)
    depth = PIPELINE_DEPTH
    with ExitStack() as stack:
        # While the content is hashed, the first chunks are read and validated already: the common case is a new
        # file. A re-import pays for it with a few chunks read and validated, and the unit raster built, for nothing
        # (its peak RSS was 0.63 GB instead of 0.22 GB for 1 M rows over 1,024 units). Only this thread uses the store.
        digest = _Hash(sha256, threaded=depth > 0)
        units = store.units()
        index = UnitIndex(units) if not units.empty else None
        ahead: Iterator[_Validated] = iter(())
        if index is not None:
            if depth > 0:
                reads = stack.enter_context(_Ahead(reader.chunks(), depth=depth, name="gridgov-ingest-read"))
                ahead = stack.enter_context(_Ahead(_validated(reads, rules, index), depth=depth,
                                                   name="gridgov-ingest-validate"))
            else:
                chunks = reader.chunks()
                stack.callback(chunks.close)
                ahead = _validated(chunks, rules, index)
        content = digest.result()
        existing = store.find_import_batch(content)
        if existing is not None:
            return _already(existing, label, content, started)
        if index is None:
            raise StoreError(f"{store.label} has no unit grids; build the district (e.g. `gridgov demo`) before "
                             "importing incidents")
        return _stage_and_publish(store, ahead, rules, reader=reader, ext_field=bound.get("external_id", "external_id"),
                                  label=label, sha256=content, progress=progress, started=started)


def _stage_and_publish(store: Store, ahead: Iterator[_Validated], rules: IngestRules, *, reader: _Reader,
                       ext_field: str, label: str, sha256: str, progress: bool, started: float) -> ImportResult:
    by_reason: Counter[str] = Counter()
    samples: list[dict[str, Any]] = []
    rows_in = 0
    bar = _progress(progress, reader.total, reader.unit)
    task = bar.add_task("import", total=reader.total) if bar is not None else None
    if bar is not None:
        bar.start()
    try:
        # Chunks are staged in short steps without the write lock (bounded memory; live writes carry on);
        # publish_import numbers the incidents and makes the batch visible in one transaction. Any error before
        # that leaves incident, reject and import_batch untouched.
        with store.import_staging():
            item: _Validated | None = None
            for item in ahead:
                rej = _stage_chunk(store, item, ext_field=ext_field)
                rows_in += len(item.chunk)
                by_reason.update(rej.reasons)
                if len(samples) < 5:
                    samples.extend(rej.samples[:5 - len(samples)])
                if bar is not None:
                    bar.update(task, advance=item.advance)
            item = None
            # The chunks' buffers go back to the system before the publishing transaction, the import's peak.
            pa.default_memory_pool().release_unused()
            batch = store.publish_import(
                file=label, sha256=sha256, source=rules.source or rules.default_source, params=rules.params,
                rows_in=rows_in, duplicates=by_reason.get("duplicate_external_id", 0),
                imported_at=datetime.now().replace(microsecond=0), external_id_field=ext_field,
            )
    finally:
        if bar is not None:
            bar.stop()
    if batch["already_imported"]:
        return _already(batch, label, sha256, started)
    # Rows whose external id someone else (the intake API) wrote while the file was staged, rejected at publish.
    late = batch.get("late_duplicates", [])
    if late:
        by_reason["duplicate_external_id"] += len(late)
        samples = sorted([*samples, *({"row_no": r["row_no"], "field": ext_field, "reason": "duplicate_external_id",
                                       "message": _taken_message(r["external_id"], r["source"])} for r in late)],
                         key=lambda r: r["row_no"])[:5]
    return ImportResult(
        batch_id=int(batch["batch_id"]), file=label, sha256=sha256, rows_in=rows_in,
        accepted=int(batch["accepted"]), rejected=int(batch["rejected"]), duplicates=int(batch["duplicates"]),
        rejected_by_reason=dict(sorted(by_reason.items())), already_imported=False,
        seconds=time.perf_counter() - started, sample_rejects=samples,
    )


@dataclass
class _Staged:
    """What staging one chunk did: incidents staged, and the reject reasons and first rejects of the chunk."""

    accepted: int
    reasons: list[str]
    samples: list[dict[str, Any]]


def _stage_chunk(store: Store, item: _Validated, *, ext_field: str) -> _Staged:
    """Drop external ids the store already has and stage the chunk (the store numbers the incidents at publish)."""
    acc, dup = _drop_known(store, item.checked.accepted, item.chunk, first_row_no=item.first_row_no,
                           ext_field=ext_field)
    rej = item.checked.rejects_table()
    if dup.num_rows:
        rej = pa.concat_tables([rej, dup]).sort_by("row_no")
    store.stage_incidents(acc)
    store.stage_rejects(rej)
    samples = [{k: v for k, v in r.items() if k != "raw"} for r in rej.slice(0, 5).to_pylist()]
    return _Staged(accepted=acc.num_rows, reasons=rej.column("reason").to_pylist(), samples=samples)


def _drop_known(store: Store, acc: pa.Table, chunk: _Chunk, *, first_row_no: int,
                ext_field: str) -> tuple[pa.Table, pa.Table]:
    """Move accepted rows whose (source, external_id) is taken — in the store or by an earlier chunk — to rejects."""
    empty = pa.table({"row_no": pa.array([], pa.int64()),
                      **{c: pa.array([], pa.string()) for c in _REJECT_COLUMNS[1:]}})
    keyed = acc.column("external_id").is_valid().to_numpy(zero_copy_only=False)
    if not keyed.any():
        return acc, empty
    mask = pa.array(keyed)
    keys = pd.DataFrame({"key": np.flatnonzero(keyed),
                         "source": _str_series(acc.column("source").filter(mask)),
                         "external_id": _str_series(acc.column("external_id").filter(mask))})
    known = store.known_external_ids(keys)
    if known.empty:
        return acc, empty
    pos = known["key"].to_numpy(dtype="int64")
    staged = known["staged"].to_numpy(dtype=bool)
    taken = pa.array(pos)
    row_no = acc.column("row_no").take(taken).to_numpy()
    ext = acc.column("external_id").take(taken).to_pylist()
    src = acc.column("source").take(taken).to_pylist()
    in_chunk = np.zeros(len(chunk), dtype=bool)
    in_chunk[row_no - first_row_no] = True
    raw = dict(zip(np.flatnonzero(in_chunk) + first_row_no, _raw_json(chunk, in_chunk), strict=True))
    rejects = pa.table({
        "row_no": pa.array(row_no, type=pa.int64()),
        "field": pa.array([ext_field] * len(pos), type=pa.string()),
        "reason": pa.array(["duplicate_external_id"] * len(pos), type=pa.string()),
        "message": pa.array([f"external id {e!r} is taken by an earlier row of this file" if here else
                             _taken_message(e, s)
                             for e, s, here in zip(ext, src, staged, strict=True)], type=pa.string()),
        "raw": pa.array([raw[r] for r in row_no], type=pa.string()),
    })
    drop = np.zeros(acc.num_rows, dtype=bool)
    drop[pos] = True
    return acc.filter(pa.array(~drop)), rejects


def _taken_message(external_id: str, source: str) -> str:
    """The message of a row whose external id the store already holds for its source."""
    return f"external id {external_id!r} was imported before for source {source!r}"


def _frame_chunks(frame: pd.DataFrame, rules: IngestRules) -> _Reader:
    df = pd.DataFrame(frame).reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    has_geometry = False
    if isinstance(frame, gpd.GeoDataFrame) and frame.active_geometry_name in frame.columns:
        geom_name = frame.geometry.name
        crs = frame.crs.to_string() if frame.crs is not None else None
        wkb = shapely.to_wkb(np.asarray(frame.geometry.values))
        df = df.drop(columns=[geom_name]).assign(**{"__gridgov_wkb": wkb})
        df = _with_geometry(df, "__gridgov_wkb", crs, rules)
        has_geometry = True
    columns = [c for c in df.columns if c not in _INTERNAL]

    def chunks() -> Iterator[tuple[pd.DataFrame, int]]:
        for start in range(0, len(df), CHUNK_ROWS):
            part = df.iloc[start:start + CHUNK_ROWS]
            yield part.reset_index(drop=True), len(part)

    return _Reader(columns=columns, has_geometry=has_geometry, total=len(df), unit="rows", chunks=chunks)


def _frame_sha256(frame: pd.DataFrame) -> str:
    df = pd.DataFrame(frame)
    if isinstance(frame, gpd.GeoDataFrame):
        name = frame.geometry.name
        df = df.assign(**{name: shapely.to_wkb(np.asarray(frame.geometry.values))})
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(df, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def ingest_frame(store: Store, frame: pd.DataFrame, *, mapping: Sequence[str] | Mapping[str, str] = (),
                 preset: str | Path | None = None, crs: str | None = None, category_map: Path | None = None,
                 other: str | None = None, source: str | None = None, calendar: WorkCalendar | None = None,
                 label: str = "<frame>", sha256: str | None = None, progress: bool = False) -> ImportResult:
    """Validate the rows of a DataFrame and store them as one import batch.

    Same rules and options as :func:`ingest_file`. A GeoDataFrame's point geometry gives lon/lat when no columns
    do (in the frame's CRS unless ``crs`` says otherwise).

    Parameters
    ----------
    store
        Open, writable store with units and categories.
    frame
        Source rows; row numbers in rejects count its rows from 1.
    mapping, preset, crs, category_map, other, source, calendar
        As for :func:`ingest_file`.
    label
        Stored as the batch's ``file``.
    sha256
        Identity of the content for idempotency; default a hash of the frame's data (Arrow IPC), so the same rows
        sent twice import once.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    ImportResult
    """
    started = time.perf_counter()
    rules = make_rules(store.categories(), mapping=mapping, preset=preset, crs=crs, category_map=category_map,
                       other=other, source=source, calendar=calendar)
    digest = sha256 or _frame_sha256(frame)
    return _run(store, _frame_chunks(frame, rules), rules, label=label, sha256=lambda: digest, progress=progress,
                started=started)


def ingest_file(store: Store, path: Path | str, *, mapping: Sequence[str] | Mapping[str, str] = (),
                preset: str | None = None, crs: str | None = None, category_map: Path | None = None,
                other: str | None = None, source: str | None = None, calendar: WorkCalendar | None = None,
                progress: bool = False) -> ImportResult:
    """Import incidents from a file, validating every row; rejected rows are kept with a reason.

    Parameters
    ----------
    store
        Open, writable store with units and categories.
    path
        CSV (UTF-8 or GB18030; comma, tab, semicolon or pipe), Parquet/GeoParquet, GeoJSON or GeoPackage (first
        layer).
    mapping
        ``["SRC=FIELD", ...]`` or ``{SRC: FIELD}``: which source column feeds which field of
        :data:`CANONICAL_FIELDS`. Columns already named like a field need no mapping.
    preset
        Built-in preset name (``geodata/presets/NAME.toml``) or the path of a preset TOML.
    crs
        CRS of lon/lat columns (e.g. ``"EPSG:32651"``); also overrides the CRS a geometry file declares.
    category_map
        CSV of (source value, our code) for a city's own types.
    other
        Catch-all category for types nothing matches; without it they are rejected (``unknown_category``).
    source
        Source label of every row (default: the ``source`` column, else the preset's, else ``"import"``);
        external ids are unique per source.
    calendar
        Working time for due times; default :class:`WorkCalendar`.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    ImportResult
        Counts; ``already_imported`` when the same content was imported before (nothing is written then).

    Raises
    ------
    InputError
        Bad options, a missing or unsupported file, a malformed CSV (nothing is written then).
    """
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file", field="FILE")
    kind = _file_kind(path)
    rules = make_rules(store.categories(), mapping=mapping, preset=preset, crs=crs, category_map=category_map,
                       other=other, source=source, calendar=calendar)
    if kind == "csv":
        reader = _csv_reader(path)
    elif kind == "parquet":
        reader = _parquet_reader(path, rules)
    else:
        reader = _ogr_reader(path, rules)
    return _run(store, reader, rules, label=str(path), sha256=lambda: _sha256_file(path), progress=progress,
                started=started)
