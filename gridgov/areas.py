"""Import admin boundaries (district, street, community) from a GIS file into the store."""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for JSON)."""
        return asdict(self)

    def summary(self) -> str:
        """One paragraph for the terminal."""
        lines = [f"{self.stored} of {self.rows_in} {self.level} area(s) stored from {self.file} "
                 f"(CRS {self.crs_in}, areas measured in {self.metric_crs})"]
        if self.repaired:
            lines.append(f"repaired invalid geometry: {', '.join(self.repaired)}")
        for r in self.rejected:
            lines.append(f"rejected {r['code']}: {r['reason']}")
        if self.parents_inferred:
            lines.append(f"parent inferred by containment for {self.parents_inferred} area(s)")
        for o in self.overlaps:
            lines.append(f"overlap {o['a']} / {o['b']}: {o['area_m2']:.0f} m²")
        for g in self.gaps:
            lines.append(f"gap inside {g['parent'] or 'the layer'}: {g['area_m2']:.0f} m²")
        return "\n".join(lines)


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
                 name_col: str | None = None, parent_col: str | None = None,
                 crs: str | None = None) -> AreaImportReport:
    """Load admin boundaries of one level into the store, replacing that level.

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

    Returns
    -------
    AreaImportReport
        Counts, repaired and rejected areas (with reasons), overlaps and gaps between siblings (> 1 m²).

    Raises
    ------
    InputError
        When the level, a column or the CRS is wrong, or no area survives validation.
    """
    if level not in LEVELS:
        raise InputError(f"must be one of {', '.join(LEVELS)}, got {level!r}", field="level")
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

    codes = gdf[code_c].astype("string").str.strip()
    seen: set[str] = set()
    keep_rows: list[int] = []
    geoms: list[Any] = []
    for i, (code, geom) in enumerate(zip(codes, gdf.geometry, strict=True)):
        label = str(code) if pd.notna(code) else f"row {i + 1}"
        if pd.isna(code) or not str(code):
            report.rejected.append({"code": label, "reason": "no code"})
            continue
        if code in seen:
            report.rejected.append({"code": label, "reason": "duplicate code"})
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
        seen.add(str(code))
        keep_rows.append(i)
        geoms.append(geom)
    if not keep_rows:
        raise InputError(f"no {level} area in {path} survived validation: "
                         + "; ".join(f"{r['code']}: {r['reason']}" for r in report.rejected[:5]), field="file")

    src = gdf.iloc[keep_rows]
    areas = gpd.GeoDataFrame({
        "code": codes.iloc[keep_rows].astype(str).to_numpy(),
        "name": (src[name_c].astype("string").fillna("").to_numpy() if name_c else codes.iloc[keep_rows].to_numpy()),
        "level": level,
    }, geometry=geoms, crs=gdf.crs)
    in_metric = areas.to_crs(metric)
    areas["area_m2"] = in_metric.area.to_numpy()
    small = areas["area_m2"] < _MIN_AREA_M2
    for code in areas.loc[small, "code"]:
        report.rejected.append({"code": code, "reason": f"area below {_MIN_AREA_M2:g} m²"})
    areas, in_metric = areas[~small].reset_index(drop=True), in_metric[~small].reset_index(drop=True)

    stored = store.admin_areas()
    parents = _parents(stored, level, metric)
    if parent_col is not None:
        areas["parent_code"] = src[parent_col].astype("string").to_numpy()[~small.to_numpy()]
    elif parents is not None and len(parents):
        areas["parent_code"] = _infer_parents(in_metric.geometry.to_numpy(), parents)
        report.parents_inferred = int(areas["parent_code"].notna().sum())
    else:
        areas["parent_code"] = None

    report.overlaps = _overlaps(in_metric.geometry.to_numpy(), areas["code"].tolist())
    report.gaps = _gaps(in_metric.geometry.to_numpy(), areas["parent_code"].tolist(), parents)

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
    report.stored = len(out)
    return report


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
