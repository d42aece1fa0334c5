"""Import admin boundaries (district, street, community) from a GIS file into the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgov.errors import InputError
from gridgov.geo import WGS84, metric_crs_for

if TYPE_CHECKING:
    from gridgov.store import Store

LEVELS = ("district", "street", "community")
#: Length of a level's code in the hierarchical scheme grid codes are built on (:mod:`gridgov.codes`).
CODE_DIGITS = {"district": 6, "street": 9, "community": 12}
_PARENT_LEVELS = {"district": (), "street": ("district",), "community": ("street", "district")}
_MIN_AREA_M2 = 1.0
_CODE_CANDIDATES = ("code", "adcode", "admin_code", "area_code", "community_code", "street_code", "district_code")
_NAME_CANDIDATES = ("name", "name_zh", "NAME", "Name", "mc", "MC")


@dataclass
class AreaImportReport:
    """What :func:`import_areas` did: counts, repairs, rejects with reasons, overlaps and gaps between siblings."""

    level: str
    file: str
    crs_in: str
    metric_crs: str
    rows_in: int = 0
    stored: int = 0
    repaired: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    parents_inferred: int = 0
    merged: list[str] = field(default_factory=list)
    dropped_parts: list[dict[str, Any]] = field(default_factory=list)
    fixed_rows: list[dict[str, Any]] = field(default_factory=list)
    district: dict[str, Any] | None = None
    categories_added: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for JSON)."""
        return asdict(self)

    def summary(self) -> str:
        """One paragraph for the terminal."""
        lines = [f"{self.stored} of {self.rows_in} {self.level} area(s) stored from {self.file} "
                 f"(CRS {self.crs_in}, areas measured in {self.metric_crs})"]
        for f in self.fixed_rows:
            lines.append(f"row {f['row']} set to code {f['code']}" + (f" ({f['name']})" if f["name"] else ""))
        if self.merged:
            lines.append(f"features with the same code and name merged into one area: {', '.join(self.merged)}")
        if self.repaired:
            lines.append(f"repaired invalid geometry: {', '.join(self.repaired)}")
        for d in self.dropped_parts:
            lines.append(f"dropped {d['parts']} speck(s) under {_MIN_AREA_M2:g} m² from {d['code']} "
                         f"({d['area_m2']:g} m² in all, the farthest {d['farthest_m']:,.0f} m from the area)")
        for r in self.rejected:
            lines.append(f"rejected {r['code']}: {r['reason']}")
        if self.parents_inferred:
            lines.append(f"parent inferred by containment for {self.parents_inferred} area(s)")
        for o in self.overlaps:
            lines.append(f"overlap {o['a']} / {o['b']}: {o['area_m2']:.0f} m²")
        for g in self.gaps:
            lines.append(f"gap inside {g['parent'] or 'the layer'}: {g['area_m2']:.0f} m²")
        if self.district:
            lines.append(f"district {self.district['code']} ({self.district['name']}) stored as the union of the "
                         f"areas: {self.district['area_m2'] / 1e6:.1f} km²")
        if self.categories_added:
            lines.append(f"new place: the default category table stored ({self.categories_added} categories)")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def parse_fix_row(text: str) -> tuple[int, str, str | None]:
    """Read one ``ROW=CODE[:NAME]`` correction (ROW is the 1-based feature number the import report prints).

    Examples
    --------
    >>> parse_fix_row("99=90:Harbor Gateway North")
    (99, '90', 'Harbor Gateway North')
    >>> parse_fix_row("1=128")
    (1, '128', None)
    """
    row_s, sep, rest = text.partition("=")
    code, _, name = rest.partition(":")
    if not sep or not row_s.strip().isdigit() or int(row_s) < 1 or not code.strip():
        raise InputError(f"must look like ROW=CODE or ROW=CODE:NAME with ROW a feature number from 1, got {text!r}",
                         field="fix_row")
    return int(row_s), code.strip(), (name.strip() or None)


def parse_district(text: str) -> tuple[str, str]:
    """Read a ``CODE:NAME`` district (NAME defaults to CODE).

    Examples
    --------
    >>> parse_district("064400:City of Los Angeles")
    ('064400', 'City of Los Angeles')
    """
    code, _, name = text.partition(":")
    if not code.strip():
        raise InputError(f"must look like CODE:NAME, got {text!r}", field="district")
    return code.strip(), (name.strip() or code.strip())


def _pick(columns: list[str], given: str | None, candidates: tuple[str, ...], what: str) -> str:
    if given is not None:
        if given not in columns:
            raise InputError(f"the file has no column {given!r}; columns are {', '.join(columns)}", field=what)
        return given
    for c in candidates:
        if c in columns:
            return c
    raise InputError(f"no {what} column found; name it with --{what.replace('_', '-')} (columns are "
                     f"{', '.join(columns)})", field=what)


def _polygonal(geom: Any) -> Any:
    """The polygonal part of a geometry (what ``make_valid`` may wrap in a collection)."""
    if geom is None or geom.is_empty:
        return None
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return None
    out = shapely.union_all(parts)
    return out if not out.is_empty else None


def _read(path: Path, crs: str | None) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputError(f"file {path} does not exist", field="file")
    try:
        gdf = gpd.read_parquet(path) if path.suffix.lower() in (".parquet", ".geoparquet") else gpd.read_file(path)
    except InputError:
        raise
    except Exception as exc:  # readers raise many types; the message is what the user needs
        raise InputError(f"cannot read {path}: {exc}", field="file") from exc
    if crs is not None:
        wanted = pyproj.CRS.from_user_input(int(crs) if str(crs).isdigit() else crs)
        if gdf.crs is None:
            gdf = gdf.set_crs(wanted)
        elif not pyproj.CRS(gdf.crs).equals(wanted):
            raise InputError(f"the file says its CRS is {gdf.crs.to_string()}, but --crs says {crs}; "
                             "drop --crs or fix the file", field="crs")
    if gdf.crs is None:
        raise InputError(f"{path} has no CRS; give it with --crs, e.g. --crs 4326", field="crs")
    return gdf


def import_areas(store: Store, path: Path | str, *, level: str, code_col: str | None = None,
                 name_col: str | None = None, parent_col: str | None = None, crs: str | None = None,
                 fix_rows: Mapping[int, tuple[str, str | None]] | None = None, code_prefix: str | None = None,
                 district: tuple[str, str] | None = None,
                 categories: pd.DataFrame | None = None) -> AreaImportReport:
    """Load admin boundaries of one level into the store, replacing that level.

    Features are numbered from 1 in file order ("row N" in the report). Several features with the same code and the
    same name are one area split over rows and are merged; the same code under another name is rejected.

    Parameters
    ----------
    store
        An open, writable store.
    path
        GeoJSON, GeoPackage, Shapefile or GeoParquet in any CRS.
    level
        ``district``, ``street`` or ``community``.
    code_col, name_col, parent_col
        Columns holding the code, the name and the parent's code; code and name are guessed when missing. Without
        a parent column each area's parent is the stored area of the level above that it overlaps most.
    crs
        CRS of the file when it carries none (``4326``, ``EPSG:32651``).
    fix_rows
        Corrections ``{row: (code, name or None)}`` applied before anything else: features whose code is missing
        or wrong in the file (1-based feature numbers).
    code_prefix
        Digits put in front of every (numeric) code, which is first zero-padded so the whole code has the level's
        length (:data:`CODE_DIGITS`: 6, 9 or 12): grid codes are built on 12-digit community codes.
    district
        ``(code, name)`` of a district to store as the union of the imported areas (replacing the district level)
        when the file has no district of its own; it becomes the parent of the areas when no closer level exists.
    categories
        Category table stored when the store has none yet (a new place), e.g.
        :func:`gridgov.incidents.load_categories`.

    Returns
    -------
    AreaImportReport
        Counts, corrected, merged, repaired and rejected areas (with reasons), overlaps and gaps between siblings
        (> 1 m²), the district made, and notes on what later steps need.

    Raises
    ------
    InputError
        When the level, a column, a correction, the prefix or the CRS is wrong, or no area survives validation.
    """
    if level not in LEVELS:
        raise InputError(f"must be one of {', '.join(LEVELS)}, got {level!r}", field="level")
    if district is not None and level == "district":
        raise InputError("makes a district from the imported areas, so the level must be street or community",
                         field="district")
    if district is not None and not (district[0].isdigit() and len(district[0]) == CODE_DIGITS["district"]):
        raise InputError(f"the district code must be {CODE_DIGITS['district']} digits, got {district[0]!r}",
                         field="district")
    path = Path(path)
    gdf = _read(path, crs)
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    code_c = _pick(columns, code_col, _CODE_CANDIDATES, "code_col")
    name_c = _pick(columns, name_col, _NAME_CANDIDATES, "name_col") if (name_col or any(
        c in columns for c in _NAME_CANDIDATES)) else None
    if parent_col is not None:
        _pick(columns, parent_col, (), "parent_col")
    if len(gdf) == 0:
        raise InputError(f"{path} has no features", field="file")
    metric = metric_crs_for(gdf[~gdf.geometry.isna()])
    report = AreaImportReport(level=level, file=str(path), crs_in=pyproj.CRS(gdf.crs).to_string(),
                              metric_crs=metric, rows_in=len(gdf))

    codes = gdf[code_c].astype("string").str.strip().replace("", pd.NA)
    names = gdf[name_c].astype("string").str.strip() if name_c else pd.Series(pd.NA, index=gdf.index, dtype="string")
    for row, (code, name) in sorted((fix_rows or {}).items()):
        if not 1 <= row <= len(gdf):
            raise InputError(f"row {row} is not a feature of {path} (it has {len(gdf)})", field="fix_row")
        codes.iloc[row - 1] = code
        if name is not None:
            names.iloc[row - 1] = name
        report.fixed_rows.append({"row": row, "code": code, "name": name})
    if not name_c:
        names = names.fillna(codes)
    if code_prefix is not None:
        codes = _prefixed(codes, code_prefix, CODE_DIGITS[level])

    first_row: dict[str, int] = {}
    keep_rows: list[int] = []
    geoms: list[Any] = []
    for i, (code, geom) in enumerate(zip(codes, gdf.geometry, strict=True)):
        label = str(code) if pd.notna(code) else f"row {i + 1}"
        if pd.isna(code):
            report.rejected.append({"code": label, "reason": "no code (give one with --fix-row "
                                                             f"{i + 1}=CODE:NAME)"})
            continue
        if geom is None or geom.is_empty:
            report.rejected.append({"code": label, "reason": "empty geometry"})
            continue
        if not geom.is_valid:
            fixed = _polygonal(shapely.make_valid(geom))
            if fixed is None:
                report.rejected.append({"code": label, "reason": f"invalid geometry ({shapely.is_valid_reason(geom)})"
                                        " that cannot be repaired into a polygon"})
                continue
            report.repaired.append(label)
            geom = fixed
        else:
            geom = _polygonal(geom)
            if geom is None:
                report.rejected.append({"code": label, "reason": "not a polygon"})
                continue
        if code in first_row:
            j = first_row[code]
            if _same_name(names.iloc[j], names.iloc[i]):
                at = keep_rows.index(j)
                geoms[at] = _polygonal(shapely.union_all([geoms[at], geom]))
                if label not in report.merged:
                    report.merged.append(label)
            else:
                report.rejected.append({"code": f"row {i + 1}", "reason": f"duplicate code {code} (row {j + 1}, "
                                        f"{names.iloc[j]}, has it; correct one with --fix-row {i + 1}=CODE)"})
            continue
        first_row[str(code)] = i
        keep_rows.append(i)
        geoms.append(geom)
    if not keep_rows:
        raise InputError(f"no {level} area in {path} survived validation: "
                         + "; ".join(f"{r['code']}: {r['reason']}" for r in report.rejected[:5]), field="file")

    src = gdf.iloc[keep_rows]
    areas = gpd.GeoDataFrame({
        "code": codes.iloc[keep_rows].astype(str).to_numpy(),
        "name": names.iloc[keep_rows].fillna("").astype(str).to_numpy(),
        "level": level,
    }, geometry=geoms, crs=gdf.crs)
    in_metric = areas.to_crs(metric)
    geoms_in, geoms_metric, report.dropped_parts = _drop_specks(areas, in_metric)
    areas, in_metric = areas.set_geometry(geoms_in, crs=gdf.crs), in_metric.set_geometry(geoms_metric, crs=metric)
    areas["area_m2"] = in_metric.area.to_numpy()
    small = areas["area_m2"] < _MIN_AREA_M2
    for code in areas.loc[small, "code"]:
        report.rejected.append({"code": code, "reason": f"area below {_MIN_AREA_M2:g} m²"})
    areas, in_metric = areas[~small].reset_index(drop=True), in_metric[~small].reset_index(drop=True)

    stored = store.admin_areas()
    if district is not None:
        made = _district_of(in_metric, district, metric)
        report.district = {"code": district[0], "name": district[1], "area_m2": round(float(made["area_m2"].iloc[0]),
                                                                                       1)}
        stored = pd.concat([stored[stored["level"] != "district"], made.to_crs(WGS84)], ignore_index=True)
        stored = gpd.GeoDataFrame(stored, geometry="geometry", crs=WGS84)
    parents = _parents(stored, level, metric)
    if parent_col is not None:
        areas["parent_code"] = src[parent_col].astype("string").to_numpy()[~small.to_numpy()]
    elif parents is not None and len(parents):
        areas["parent_code"] = _infer_parents(in_metric.geometry.to_numpy(), parents)
        report.parents_inferred = int(areas["parent_code"].notna().sum())
    else:
        areas["parent_code"] = None

    report.overlaps = _overlaps(in_metric.geometry.to_numpy(), areas["code"].tolist())
    # A district made from these areas has no gaps by construction: report the holes of the layer instead.
    report.gaps = _gaps(in_metric.geometry.to_numpy(), areas["parent_code"].tolist(),
                        None if district is not None else parents)

    out = areas.to_crs(WGS84)
    others = stored[stored["level"] != level]
    merged = pd.concat([others[["code", "name", "name_en", "level", "parent_code", "area_m2", "geometry"]],
                        out.assign(name_en=None)[["code", "name", "name_en", "level", "parent_code", "area_m2",
                                                  "geometry"]]], ignore_index=True)
    clash = merged["code"].duplicated(keep=False)
    if bool(clash.any()):
        raise InputError(f"code(s) {', '.join(sorted(set(merged.loc[clash, 'code'])))[:200]} already used by "
                         "another level", field="code_col")
    store.write_admin_areas(gpd.GeoDataFrame(merged, geometry="geometry", crs=WGS84), replace=True)
    meta = store.meta()
    if "metric_crs" not in meta:
        store.set_meta({"metric_crs": metric})
    if level == "district" and len(out) == 1:
        store.set_meta({"district_code": out["code"].iloc[0], "district_name": out["name"].iloc[0]})
    if district is not None:
        store.set_meta({"district_code": district[0], "district_name": district[1]})
    if categories is not None and len(store.categories()) == 0:
        store.write_categories(categories)
        report.categories_added = len(categories)
    if level == "community":
        short = [c for c in out["code"] if not (len(c) == CODE_DIGITS["community"] and c.isdigit())]
        if short:
            report.notes.append(f"{len(short)} community code(s) such as {short[0]!r} are not 12 digits; "
                                "`gridgov regrid` numbers grids inside 12-digit community codes — re-import with "
                                "--code-prefix")
    report.stored = len(out)
    return report


def _drop_specks(areas: gpd.GeoDataFrame,
                 in_metric: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Geometries (as given and in the metric CRS) without the parts of multi-part areas smaller than 1 m²
    (digitising debris, which may lie far away and would stretch the district's extent), and what was dropped."""
    geoms, mgeoms = areas.geometry.to_numpy().copy(), in_metric.geometry.to_numpy().copy()
    parts, idx = shapely.get_parts(geoms, return_index=True)
    mparts = shapely.get_parts(mgeoms)
    speck = shapely.area(mparts) < _MIN_AREA_M2
    out: list[dict[str, Any]] = []
    for i in np.unique(idx[speck]).tolist():
        own = idx == i
        keep, drop = own & ~speck, own & speck
        if not keep.any():
            continue  # the whole area is below the minimum: rejected as such by the caller
        kept = shapely.union_all(mparts[keep])
        out.append({"code": str(areas["code"].iloc[i]), "parts": int(drop.sum()),
                    "area_m2": round(float(shapely.area(mparts[drop]).sum()), 3),
                    "farthest_m": round(float(shapely.distance(kept, mparts[drop]).max()), 1)})
        geoms[i] = _polygonal(shapely.union_all(parts[keep]))
        mgeoms[i] = _polygonal(kept)
    return geoms, mgeoms, out


def _same_name(a: Any, b: Any) -> bool:
    return bool(pd.notna(a) and pd.notna(b) and str(a).strip().casefold() == str(b).strip().casefold())


def _prefixed(codes: pd.Series, prefix: str, digits: int) -> pd.Series:
    """``prefix`` + each numeric code zero-padded so the whole has ``digits`` digits (missing codes stay missing)."""
    if not prefix.isdigit() or len(prefix) >= digits:
        raise InputError(f"must be fewer than {digits} digits (the level's code length), got {prefix!r}",
                         field="code_prefix")
    width = digits - len(prefix)
    out = codes.copy()
    for i, code in enumerate(codes):
        if pd.isna(code):
            continue
        text = str(code)
        if text.endswith(".0") and text[:-2].isdigit():  # numbers read as floats by some drivers
            text = text[:-2]
        if not text.isdigit() or len(text) > width:
            raise InputError(f"code {text!r} cannot take the prefix {prefix}: it must be a number of at most "
                             f"{width} digits", field="code_prefix", row=i + 1)
        out.iloc[i] = prefix + text.zfill(width)
    return out


def _district_of(areas: gpd.GeoDataFrame, district: tuple[str, str], metric: str) -> gpd.GeoDataFrame:
    """The district made of ``areas`` (metric CRS): their union, one row in the store's admin-area shape."""
    code, name = district
    geom = _polygonal(shapely.union_all(areas.geometry.to_numpy()))
    return gpd.GeoDataFrame({"code": [code], "name": [name], "name_en": [None], "level": ["district"],
                             "parent_code": [None], "area_m2": [float(shapely.area(geom))]},
                            geometry=[geom], crs=metric)


def _parents(stored: gpd.GeoDataFrame, level: str, metric: str) -> gpd.GeoDataFrame | None:
    """Stored areas of the nearest level above ``level`` (in the metric CRS), or None."""
    for parent_level in _PARENT_LEVELS[level]:
        found = stored[stored["level"] == parent_level]
        if len(found):
            return found.to_crs(metric).reset_index(drop=True)
    return None


def _infer_parents(geoms: np.ndarray, parents: gpd.GeoDataFrame) -> list[str | None]:
    pgeoms = parents.geometry.to_numpy()
    pcodes = parents["code"].to_numpy()
    out: list[str | None] = []
    for g in geoms:
        shared = shapely.area(shapely.intersection(pgeoms, g))
        out.append(str(pcodes[int(np.argmax(shared))]) if shared.max() > 0 else None)
    return out


def _overlaps(geoms: np.ndarray, codes: list[str]) -> list[dict[str, Any]]:
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    out = []
    for a, b in zip(left[keep], right[keep], strict=True):
        area = float(shapely.area(shapely.intersection(geoms[a], geoms[b])))
        if area > _MIN_AREA_M2:
            out.append({"a": codes[a], "b": codes[b], "area_m2": round(area, 1)})
    return out


def _gaps(geoms: np.ndarray, parent_codes: list[str | None],
          parents: gpd.GeoDataFrame | None) -> list[dict[str, Any]]:
    """Parts of each parent no child covers; without parents, holes enclosed by the layer's union."""
    out: list[dict[str, Any]] = []
    if parents is not None and len(parents):
        for code, pgeom in zip(parents["code"], parents.geometry, strict=True):
            children = [g for g, p in zip(geoms, parent_codes, strict=True) if p == code]
            if not children:
                continue
            area = float(shapely.area(shapely.difference(pgeom, shapely.union_all(children))))
            if area > _MIN_AREA_M2:
                out.append({"parent": str(code), "area_m2": round(area, 1)})
        return out
    union = shapely.union_all(geoms)
    holes = 0.0
    for poly in shapely.get_parts(union):
        for ring in poly.interiors:
            holes += float(shapely.area(shapely.Polygon(ring)))
    if holes > _MIN_AREA_M2:
        out.append({"parent": None, "area_m2": round(holes, 1)})
    return out


@dataclass
class AreaJoinReport:
    """What :func:`join_table` matched: table rows (numbered from 1 after the header) to stored areas, and what
    found no partner."""

    level: str
    table: str
    on: str
    rows_in: int = 0
    matched: int = 0
    unmatched_rows: list[dict[str, Any]] = field(default_factory=list)
    areas_without_row: list[str] = field(default_factory=list)
    out: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for JSON)."""
        return asdict(self)

    def summary(self) -> str:
        """One paragraph for the terminal."""
        lines = [f"{self.matched} of {self.rows_in} row(s) of {self.table} matched a stored {self.level} area by "
                 f"{self.on!r}" + (f"; written to {self.out}" if self.out else "")]
        for r in self.unmatched_rows:
            lines.append(f"row {r['row']} ({r['value']}): {r['reason']}")
        if self.areas_without_row:
            lines.append(f"{len(self.areas_without_row)} area(s) without a row: {', '.join(self.areas_without_row)}")
        return "\n".join(lines)


def _key(value: Any) -> str:
    """Matching key of a name or code: case, spaces and punctuation ignored ("P.I.C.O." matches "PICO")."""
    return "".join(ch for ch in str(value).casefold() if ch.isalnum())


def join_table(store: Store, table: Path | str, *, on: str, level: str = "community",
               aliases: Mapping[str, str] | None = None) -> tuple[gpd.GeoDataFrame, AreaJoinReport]:
    """Attach the rows of a table (e.g. population per council) to the stored areas they name.

    A row matches the area whose code or name equals its ``on`` value, ignoring case, spaces and punctuation; an
    alias maps a value spelled otherwise to the area's name or code. The result is a GIS layer that
    ``gridgov units build --population`` shares out to units by area.

    Parameters
    ----------
    store
        An open store with admin areas of ``level``.
    table
        CSV (UTF-8, or GB18030) with a header row.
    on
        Column of ``table`` naming the area (its code or name).
    level
        ``district``, ``street`` or ``community``.
    aliases
        ``{value in the table: area name or code}`` for names spelled differently in the two sources.

    Returns
    -------
    tuple of geopandas.GeoDataFrame and AreaJoinReport
        The matched areas (EPSG:4326; ``code``, ``name`` and the table's columns), and what matched and what did
        not (unmatched rows with the reason, areas no row named).

    Raises
    ------
    InputError
        When the level or ``on`` is wrong, the table cannot be read, an alias names no area, or nothing matches.
    """
    if level not in LEVELS:
        raise InputError(f"must be one of {', '.join(LEVELS)}, got {level!r}", field="level")
    path = Path(table)
    if not path.exists():
        raise InputError(f"file {path} does not exist", field="table")
    try:
        try:
            rows = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except UnicodeDecodeError:
            rows = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="gb18030")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path} as CSV: {exc}", field="table") from None
    if on not in rows.columns:
        raise InputError(f"{path} has no column {on!r}; columns are {', '.join(map(str, rows.columns))}",
                         field="on")
    areas = store.admin_areas(level).reset_index(drop=True)
    if len(areas) == 0:
        raise InputError(f"the store has no {level} areas; import them first with `gridgov areas import`",
                         field="level")
    index: dict[str, int | None] = {}
    for i, (code, name) in enumerate(zip(areas["code"], areas["name"], strict=True)):
        for k in {_key(code), _key(name)} - {""}:
            index[k] = i if index.get(k, i) == i else None  # a key two areas share matches neither
    alias_keys: dict[str, int] = {}
    for value, target in (aliases or {}).items():
        hit = index.get(_key(target))
        if hit is None:
            raise InputError(f"alias {value!r} → {target!r}: no single {level} area has that name or code",
                             field="alias")
        alias_keys[_key(value)] = hit
    report = AreaJoinReport(level=level, table=str(path), on=on, rows_in=len(rows))
    taken: dict[int, int] = {}
    row_of_area: list[int] = []
    area_rows: list[int] = []
    for r, value in enumerate(rows[on].tolist()):
        k = _key(value)
        hit = alias_keys.get(k, index.get(k))
        if not k:
            report.unmatched_rows.append({"row": r + 1, "value": value, "reason": f"empty {on}"})
        elif hit is None:
            why = "names two areas" if k in index else f"no {level} area has this name or code (add an alias)"
            report.unmatched_rows.append({"row": r + 1, "value": value, "reason": why})
        elif hit in taken:
            report.unmatched_rows.append({"row": r + 1, "value": value,
                                          "reason": f"row {taken[hit] + 1} already matched {areas['name'][hit]}"})
        else:
            taken[hit] = r
            row_of_area.append(r)
            area_rows.append(hit)
    if not area_rows:
        raise InputError(f"no row of {path} names a stored {level} area by {on!r}", field="on")
    report.matched = len(area_rows)
    report.areas_without_row = [str(n) for i, n in enumerate(areas["name"]) if i not in taken]
    picked = areas.iloc[area_rows].reset_index(drop=True)
    extra = rows.iloc[row_of_area].reset_index(drop=True).drop(columns=[c for c in ("code", "name", "geometry")
                                                                        if c in rows.columns])
    for col in extra.columns:
        numeric = pd.to_numeric(extra[col], errors="coerce")
        if numeric.notna().all():
            extra[col] = numeric
    out = gpd.GeoDataFrame(pd.concat([picked[["code", "name"]], extra], axis=1), geometry=picked.geometry.values,
                           crs=WGS84)
    return out, report


def write_layer(layer: gpd.GeoDataFrame, path: Path | str) -> Path:
    """Write a layer as GeoJSON, GeoPackage or GeoParquet, chosen by the file's extension."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".geojson", ".json", ".gpkg", ".parquet", ".geoparquet"):
        raise InputError(f"must end in .geojson, .gpkg or .parquet, got {path.name!r}", field="out")
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext in (".parquet", ".geoparquet"):
        layer.to_parquet(path)
    else:
        if path.exists():
            path.unlink()
        layer.to_file(path, driver="GPKG" if ext == ".gpkg" else "GeoJSON")
    return path
