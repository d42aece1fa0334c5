"""The demo district: a synthetic 街道/社区 district generated from one seed.

It holds what a real one holds — streets and communities with irregular boundaries, a river, parks, 100 m unit grids
with households and population, a hand-drawn responsibility-grid layout, a roster of grid workers with assignments,
and a year of incidents with their lifecycle — plus some structure for the dashboard to reveal (an overloaded
community, a construction site, an empty riverside park, unstaffed grids, a storm, the Spring Festival).
docs/demo.md describes all of it. Everything random comes from ``numpy.random.default_rng(seed)`` and generators
spawned from it, so the same seed and ``as_of`` give identical tables.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely
import shapely.ops
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gridgov import geo
from gridgov.auth import create_demo_users
from gridgov.codes import assign_grid_codes, reading_order
from gridgov.config import WorkCalendar
from gridgov.errors import InputError, StoreError
from gridgov.incidents import due_times, load_categories
from gridgov.store import Store, describe_location, parse_location

SIZES: tuple[str, ...] = ("small", "medium", "large")
DISTRICT_CODE = "990100"  # deliberately not a GB/T 2260 code: the demo must never pass for real data
DISTRICT_NAME = "滨河区"
DISTRICT_NAME_EN = "Binhe District"
CENTRE_LON, CENTRE_LAT = 121.47, 31.23
UNIT_M = 100.0
#: A clipped unit smaller than this share of a full square joins its neighbour.
SLIVER_SHARE = 0.15
LAND_USES: tuple[str, ...] = ("residential", "mixed", "commercial", "industrial", "park", "water")
GENERATOR_VERSION = "1"
_PRECISION = 0.001  # metres: every metric geometry is snapped to this grid so shared edges stay identical

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


# ---------------------------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    area_km2: float
    streets: int
    communities: int
    grids: int
    incidents: int
    core: float  # radius of the main urban core, as a share of the district radius
    towns: int  # further town centres (suburban sizes)
    old_compounds: int
    towers: int
    markets: int
    villages: int
    industrial: int
    industrial_m: tuple[float, float]  # radius range of an industrial estate
    parks: int  # parks besides the riverside and the central one
    river_m: float
    park_m: float  # width of the riverside park on each bank
    central_park_m: float  # radius of the park near the old core
    site_units: int
    site_share: float  # share of incidents coming from the construction site


_SPECS: dict[str, _Spec] = {
    "small": _Spec(1.8, 2, 6, 16, 7_500, 0.95, 0, 2, 1, 1, 1, 0, (250, 400), 0, 90, 110, 110, 3, 0.02),
    "medium": _Spec(10.0, 4, 25, 80, 100_000, 0.9, 0, 6, 4, 4, 2, 1, (250, 450), 1, 140, 150, 180, 5, 0.012),
    "large": _Spec(400.0, 20, 420, 1_800, 2_150_000, 0.2, 6, 70, 60, 55, 45, 24, (400, 1000), 14, 320, 250, 300, 9,
                   0.002),
}


# ---------------------------------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------------------------------
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
             "傅钟姜崔谭陆范汪顾钱施严金")
_GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力斌宇浩凯鹏晨欣怡婷雪琳颖佳俊峰海波亮国志荣"
          "春兰凤梅燕林云飞龙德成嘉子梓睿萱涵轩雨思诗晓慧蕾")
#: Pinyin of every character used in place names (names get an English form built from it).
_PINYIN = {
    "梅": "mei", "桂": "gui", "康": "kang", "和": "he", "新": "xin", "东": "dong", "西": "xi", "南": "nan",
    "北": "bei", "锦": "jin", "福": "fu", "枫": "feng", "兰": "lan", "翠": "cui", "春": "chun", "阳": "yang",
    "丽": "li", "荷": "he", "金": "jin", "银": "yin", "松": "song", "海": "hai", "长": "chang", "永": "yong",
    "安": "an", "宁": "ning", "平": "ping", "华": "hua", "兴": "xing", "泰": "tai", "昌": "chang", "建": "jian",
    "德": "de", "祥": "xiang", "云": "yun", "丰": "feng", "明": "ming", "光": "guang", "宝": "bao", "瑞": "rui",
    "嘉": "jia", "静": "jing", "清": "qing", "柳": "liu", "桃": "tao", "竹": "zhu", "莲": "lian", "江": "jiang",
    "湖": "hu", "溪": "xi", "林": "lin", "景": "jing", "乐": "le", "盛": "sheng", "富": "fu", "民": "min",
    "顺": "shun", "通": "tong", "泉": "quan", "虹": "hong", "彩": "cai", "曙": "shu", "临": "lin", "滨": "bin",
    "湾": "wan", "桥": "qiao", "晨": "chen", "星": "xing", "月": "yue", "玉": "yu", "凤": "feng", "龙": "long",
    "鹤": "he", "樱": "ying", "杏": "xing", "梧": "wu", "槐": "huai", "芦": "lu", "蓉": "rong", "秀": "xiu",
    "吉": "ji", "庆": "qing", "泽": "ze", "源": "yuan", "汇": "hui", "万": "wan", "仁": "ren", "恒": "heng",
    "达": "da", "隆": "long", "裕": "yu", "益": "yi", "广": "guang", "宏": "hong", "振": "zhen", "定": "ding",
    "延": "yan", "宜": "yi", "怡": "yi", "晖": "hui", "园": "yuan", "苑": "yuan", "村": "cun", "里": "li",
    "坊": "fang", "城": "cheng", "庭": "ting", "居": "ju", "邨": "cun", "港": "gang", "庄": "zhuang", "岸": "an",
    "府": "fu", "泾": "jing", "塘": "tang", "浜": "bang", "山": "shan",
}
_PLACE_FIRST = ("梅桂康和新锦福枫兰翠春阳丽荷金银松海长永安宁平华兴泰昌建德祥云丰明光宝瑞嘉静清柳桃竹莲江湖溪林景乐"
                "盛富民顺通泉虹彩曙临滨晨星月玉凤龙鹤樱杏梧槐芦蓉秀吉庆泽源汇万仁恒达隆裕益广宏振定延宜怡晖")
_COMMUNITY_LAST = "园苑村里坊城湾庭居邨景桥林港源汇庄岸府"
_STREET_LAST = "江华安宁平兴康和新桥湖泾塘浜"
_ROAD_LAST = "江安宁平兴康和定昌阳山海泰乐华德福源"
_PHONE_PREFIXES = (130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157, 158, 159,
                   166, 173, 175, 176, 177, 178, 180, 181, 182, 183, 185, 186, 187, 188, 189, 191, 198, 199)


def _pinyin(name: str) -> str:
    """``"平安"`` → ``"Ping'an"``: syllables joined, an apostrophe before a vowel-initial syllable."""
    out = ""
    for ch in name:
        syl = _PINYIN[ch]
        if out and syl[0] in "aoe":
            out += "'"
        out += syl
    return out[:1].upper() + out[1:]


def _place_names(rng: np.random.Generator, n: int, last: str, *, taken: set[str]) -> list[str]:
    """``n`` distinct two-character place names ending in a character of ``last``, none in ``taken``."""
    combos = [a + b for a in _PLACE_FIRST for b in last if a != b and a + b not in taken]
    if n > len(combos):
        raise InputError(f"cannot name {n} places from {len(combos)} combinations", field="size")
    picked = [combos[i] for i in rng.permutation(len(combos))[:n]]
    taken.update(picked)
    return picked


# ---------------------------------------------------------------------------------------------------------------
# smooth random fields
# ---------------------------------------------------------------------------------------------------------------
class _Field:
    """A smooth random scalar field with mean 0 and variance 1: a sum of plane waves of wavelength ~``scale``."""

    def __init__(self, rng: np.random.Generator, scale: float, origin: tuple[float, float], n: int = 24) -> None:
        angle = rng.uniform(0.0, 2 * math.pi, n)
        k = 2 * math.pi / (scale * rng.uniform(0.6, 1.6, n))
        self._kx = k * np.cos(angle)
        self._ky = k * np.sin(angle)
        self._phase = rng.uniform(0.0, 2 * math.pi, n)
        self._origin = origin
        self._norm = math.sqrt(2.0 / n)

    def __call__(self, x: FloatArray, y: FloatArray) -> FloatArray:
        # Local coordinates keep the phases small, so the result does not depend on UTM false eastings.
        lx = np.asarray(x, dtype=np.float64) - self._origin[0]
        ly = np.asarray(y, dtype=np.float64) - self._origin[1]
        out = np.zeros(np.broadcast(lx, ly).shape)
        for kx, ky, ph in zip(self._kx, self._ky, self._phase, strict=True):
            out += np.cos(kx * lx + ky * ly + ph)
        return out * self._norm


class _Warp:
    """A smooth displacement of the plane, gentle enough (|gradient| well below 1) to stay one-to-one."""

    def __init__(self, rng: np.random.Generator, spacing: float, origin: tuple[float, float]) -> None:
        self._big = (_Field(rng, 1.1 * spacing, origin), _Field(rng, 1.1 * spacing, origin))
        self._small = (_Field(rng, 0.18 * spacing, origin), _Field(rng, 0.18 * spacing, origin))
        self._a_big = 0.045 * spacing
        self._a_small = 0.006 * spacing

    def shift(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        dx = self._a_big * self._big[0](x, y) + self._a_small * self._small[0](x, y)
        dy = self._a_big * self._big[1](x, y) + self._a_small * self._small[1](x, y)
        return dx, dy

    def __call__(self, xy: FloatArray) -> FloatArray:
        dx, dy = self.shift(xy[:, 0], xy[:, 1])
        return np.column_stack([xy[:, 0] + dx, xy[:, 1] + dy])

    def inverse(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        # Fixed-point iteration converges because the warp is a small contraction-like perturbation.
        px, py = np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)
        for _ in range(12):
            dx, dy = self.shift(px, py)
            px, py = x - dx, y - dy
        return px, py


# ---------------------------------------------------------------------------------------------------------------
# district geometry: outline, river, streets and communities
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _District:
    crs: str
    cx: float
    cy: float
    radius: float
    outline: BaseGeometry
    river_line: BaseGeometry
    water: BaseGeometry
    side: Callable[[FloatArray, FloatArray], FloatArray]
    urban: Callable[[FloatArray, FloatArray], FloatArray]
    main_centre: tuple[float, float]
    towns: list[tuple[float, float, float]]  # x, y, radius of every town centre, the main one first
    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame


def _snap(geom: Any) -> Any:
    return shapely.set_precision(geom, _PRECISION)


def _largest_polygon(geom: BaseGeometry) -> BaseGeometry:
    parts = shapely.get_parts(geom)
    polys = [p for p in parts if p.geom_type == "Polygon"]
    return max(polys, key=lambda p: p.area)


def _outline(rng: np.random.Generator, spec: _Spec, cx: float, cy: float, warp: _Warp) -> BaseGeometry:
    radius = math.sqrt(spec.area_km2 * 1e6 / math.pi)
    theta = np.linspace(0.0, 2 * math.pi, 720, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += rng.uniform(0.03, 0.11) / math.sqrt(k - 1) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    ring = np.column_stack([cx + radius * r * np.cos(theta), cy + radius * r * np.sin(theta)])
    poly = shapely.transform(shapely.Polygon(ring), warp)
    poly = _largest_polygon(shapely.make_valid(poly))
    scale = math.sqrt(spec.area_km2 * 1e6 / poly.area)
    poly = shapely.transform(poly, lambda xy: np.column_stack([cx + (xy[:, 0] - cx) * scale,
                                                               cy + (xy[:, 1] - cy) * scale]))
    return _largest_polygon(_snap(poly))


def _river(rng: np.random.Generator, cx: float, cy: float, radius: float
           ) -> tuple[BaseGeometry, Callable[[FloatArray, FloatArray], FloatArray]]:
    """The river centreline (well beyond the district) and a signed distance-like side function (> 0: north bank)."""
    alpha = rng.uniform(-0.45, 0.45)
    v0 = rng.uniform(-0.25, 0.05) * radius
    lam = radius * rng.uniform(0.8, 2.4, 3)
    # Amplitude from the wavelength keeps the slope of each meander below ~0.18, so the banks never fold.
    amp = rng.uniform(0.25, 0.6, 3) * 0.3 * lam / (2 * math.pi)
    phase = rng.uniform(0, 2 * math.pi, 3)
    ca, sa = math.cos(alpha), math.sin(alpha)

    def centre_v(u: FloatArray) -> FloatArray:
        out = np.full(np.shape(u), v0, dtype=np.float64)
        for a, lm, ph in zip(amp, lam, phase, strict=True):
            out += a * np.sin(2 * math.pi * u / lm + ph)
        return out

    u = np.arange(-1.8 * radius, 1.8 * radius, 10.0)
    v = centre_v(u)
    line = shapely.LineString(np.column_stack([cx + u * ca - v * sa, cy + u * sa + v * ca]))

    def side(x: FloatArray, y: FloatArray) -> FloatArray:
        lx, ly = np.asarray(x) - cx, np.asarray(y) - cy
        uu = lx * ca + ly * sa
        vv = -lx * sa + ly * ca
        return vv - centre_v(uu)

    return _snap(line), side


def _blob_polygon(rng: np.random.Generator, x: float, y: float, r: float) -> BaseGeometry:
    theta = np.linspace(0.0, 2 * math.pi, 96, endpoint=False)
    rr = r * (1 + rng.uniform(0, 0.2) * np.cos(2 * theta + rng.uniform(0, 6.3))
              + rng.uniform(0, 0.12) * np.cos(3 * theta + rng.uniform(0, 6.3)))
    return _snap(shapely.Polygon(np.column_stack([x + rr * np.cos(theta), y + rr * np.sin(theta)])))


def _sample_in(rng: np.random.Generator, poly: BaseGeometry, n: int) -> tuple[FloatArray, FloatArray]:
    return geo.points_in_polygons(np.array([poly], dtype=object), np.array([n]), rng)


def _kmeans(rng: np.random.Generator, pts: FloatArray, w: FloatArray, k: int, iters: int = 15) -> FloatArray:
    """Weighted k-means (Lloyd): centres spread by weight, so dense areas get smaller cells."""
    idx = rng.choice(len(pts), size=k, replace=False, p=w / w.sum())
    centres = pts[idx].copy()
    for _ in range(iters):
        d2 = (pts[:, None, 0] - centres[None, :, 0]) ** 2 + (pts[:, None, 1] - centres[None, :, 1]) ** 2
        lab = d2.argmin(axis=1)
        sw = np.bincount(lab, w, k)
        nz = sw > 0
        centres[nz, 0] = np.bincount(lab, w * pts[:, 0], k)[nz] / sw[nz]
        centres[nz, 1] = np.bincount(lab, w * pts[:, 1], k)[nz] / sw[nz]
    return centres


def _allocate(total: int, weights: FloatArray, minimum: IntArray) -> IntArray:
    """Split ``total`` in proportion to ``weights`` (largest remainder), with a floor per item."""
    weights = np.asarray(weights, dtype=np.float64)
    out = np.maximum(np.floor(total * weights / weights.sum()).astype(np.int64), minimum)
    while out.sum() < total:
        gap = total * weights / weights.sum() - out
        out[int(np.argmax(gap))] += 1
    while out.sum() > total:
        slack = np.where(out > minimum, out - total * weights / weights.sum(), -np.inf)
        if not np.isfinite(slack).any():
            break
        out[int(np.argmax(slack))] -= 1
    return np.asarray(out, dtype=np.int64)


def _farthest_points(rng: np.random.Generator, x: FloatArray, y: FloatArray, k: int) -> IntArray:
    """``k`` positions spread over the points (farthest-point sampling from a random start)."""
    chosen = [int(rng.integers(len(x)))]
    d = np.hypot(x - x[chosen[0]], y - y[chosen[0]])
    for _ in range(1, k):
        nxt = int(np.argmax(d))
        chosen.append(nxt)
        d = np.minimum(d, np.hypot(x - x[nxt], y - y[nxt]))
    return np.array(chosen, dtype=np.int64)


def _district(rng: np.random.Generator, spec: _Spec, log: _Progress) -> _District:
    crs = geo.utm_crs(CENTRE_LON, CENTRE_LAT)
    fwd = pyproj.Transformer.from_crs(geo.WGS84, crs, always_xy=True)
    cx, cy = (round(v) for v in fwd.transform(CENTRE_LON, CENTRE_LAT))
    radius = math.sqrt(spec.area_km2 * 1e6 / math.pi)
    spacing = math.sqrt(spec.area_km2 * 1e6 / spec.communities)
    warp = _Warp(rng, spacing, (cx, cy))
    outline = _outline(rng, spec, cx, cy, _Warp(rng, 2.5 * spacing, (cx, cy)))
    line, side = _river(rng, cx, cy, radius)
    river_line = _snap(shapely.intersection(line, outline))
    water = _snap(shapely.intersection(shapely.buffer(line, spec.river_m / 2, cap_style="flat"), outline))

    halves = shapely.get_parts(shapely.ops.split(outline, line))
    rep = shapely.point_on_surface(halves)
    north_side = side(shapely.get_x(rep), shapely.get_y(rep)) > 0
    banks = [_snap(shapely.union_all(halves[north_side])), _snap(shapely.union_all(halves[~north_side]))]

    # Town centres: the old core sits on the north bank, like Puxi; suburban sizes add smaller towns.
    cand_x, cand_y = _sample_in(rng, outline, 4000)
    inner = shapely.distance(outline.boundary, shapely.points(cand_x, cand_y)) > 0.3 * radius
    ok = inner & (side(cand_x, cand_y) > 0.1 * radius)
    if not ok.any():
        ok = inner
    pick = int(rng.choice(np.flatnonzero(ok)))
    main = (float(cand_x[pick]), float(cand_y[pick]))
    towns = [(main[0], main[1], spec.core * radius, 1.0)]
    for _ in range(spec.towns):
        far = np.ones(cand_x.size, dtype=bool)
        for tx, ty, _r, _h in towns:
            far &= np.hypot(cand_x - tx, cand_y - ty) > 0.32 * radius
        choices = np.flatnonzero(far & inner) if (far & inner).any() else np.flatnonzero(far)
        if choices.size == 0:
            break
        j = int(rng.choice(choices))
        towns.append((float(cand_x[j]), float(cand_y[j]), radius * rng.uniform(0.09, 0.14), rng.uniform(0.55, 0.85)))
    noise = _Field(rng, 0.6 * spacing, (cx, cy))

    def urban(x: FloatArray, y: FloatArray) -> FloatArray:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        u = np.zeros(np.broadcast(x, y).shape)
        for tx, ty, tr, th in towns:
            u = np.maximum(u, th * np.exp(-(((x - tx) ** 2 + (y - ty) ** 2) / tr**2)))
        return np.clip(u * np.exp(0.22 * noise(x, y)), 0.0, 1.2)

    streets, communities = _admin_areas(rng, spec, outline, banks, line, side, urban, warp, spacing)
    log("district, river, streets and communities")
    return _District(crs=crs, cx=cx, cy=cy, radius=radius, outline=outline, river_line=river_line,
                     water=water, side=side, urban=urban, main_centre=main,
                     towns=[(t[0], t[1], t[2]) for t in towns], streets=streets, communities=communities)


def _admin_areas(rng: np.random.Generator, spec: _Spec, outline: BaseGeometry, banks: list[BaseGeometry],
                 river_line: BaseGeometry, side: Callable[[FloatArray, FloatArray], FloatArray],
                 urban: Callable[[FloatArray, FloatArray], FloatArray], warp: _Warp, spacing: float,
                 ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Communities as warped Voronoi cells on each bank (weighted k-means seeds), grouped into contiguous streets."""
    px, py = _sample_in(rng, outline, spec.communities * 60)
    pts = np.column_stack([px, py])
    north = side(px, py) > 0
    weight = (0.25 + urban(px, py)) ** 1.5
    margin = 0.12 * spacing
    keep = np.zeros(px.size, dtype=bool)
    for b, mask in ((0, north), (1, ~north)):
        keep |= mask & (shapely.distance(banks[b].boundary, shapely.points(px, py)) >= margin)
    bank_weight = np.array([weight[keep & north].sum(), weight[keep & ~north].sum()])
    per_bank = _allocate(spec.communities, bank_weight, np.array([2, 2]))
    seeds: list[FloatArray] = []
    seed_bank: list[int] = []
    extent = shapely.buffer(outline, 0.5 * spacing)
    edges = []
    for b, mask in ((0, north), (1, ~north)):
        sel = keep & mask
        centres = _kmeans(rng, pts[sel], weight[sel], int(per_bank[b]))
        seeds.append(centres)
        seed_bank += [b] * len(centres)
        if len(centres) > 1:
            vor = shapely.voronoi_polygons(shapely.multipoints(centres), extend_to=extent, only_edges=True)
            vor = shapely.transform(shapely.segmentize(vor, spacing / 40.0), warp)
            # Clip to a slightly larger bank so every edge crosses the bank's border and gets noded onto it;
            # the overhangs are dangles that polygonize drops.
            edges.append(shapely.intersection(vor, shapely.buffer(banks[b], 1.0)))
    all_seeds = np.vstack(seeds)
    banks_of_seed = np.array(seed_bank)
    # The river centreline is clipped with the same 1 m overhang as the edges, so that it is noded onto the outline.
    river_cut = shapely.intersection(river_line, shapely.buffer(outline, 1.0))
    lines = shapely.union_all([outline.boundary, river_cut, *edges])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    faces = faces[shapely.area(faces) > 1.0]
    rep = shapely.point_on_surface(faces)
    rx, ry = shapely.get_x(rep), shapely.get_y(rep)
    inside = shapely.contains_xy(outline, rx, ry)
    faces, rx, ry = faces[inside], rx[inside], ry[inside]
    face_bank = np.where(side(rx, ry) > 0, 0, 1)
    ux, uy = warp.inverse(rx, ry)
    d2 = (ux[:, None] - all_seeds[None, :, 0]) ** 2 + (uy[:, None] - all_seeds[None, :, 1]) ** 2
    d2[face_bank[:, None] != banks_of_seed[None, :]] = np.inf
    owner = d2.argmin(axis=1)

    pairs, lengths = geo.shared_edges(faces, min_shared=1.0)
    same_bank = face_bank[pairs[:, 0]] == face_bank[pairs[:, 1]]
    pairs, lengths = pairs[same_bank], lengths[same_bank]
    face_area = shapely.area(faces)
    owner = _merge_detached(owner, pairs, lengths, face_area)
    used = np.unique(owner)
    owner = np.searchsorted(used, owner)
    n_comm = used.size
    comm_geom = np.array([_snap(shapely.union_all(faces[owner == c])) for c in range(n_comm)], dtype=object)
    comm_bank = np.array([face_bank[owner == c][0] for c in range(n_comm)])
    comm_area = shapely.area(comm_geom)
    a, b = owner[pairs[:, 0]], owner[pairs[:, 1]]
    diff = a != b
    comm_pairs = np.unique(np.sort(np.column_stack([a[diff], b[diff]]), axis=1), axis=0)

    cent = shapely.centroid(comm_geom)
    ccx, ccy = shapely.get_x(cent), shapely.get_y(cent)
    street_of = np.full(n_comm, -1, dtype=np.int64)
    street_weight = np.array([comm_area[comm_bank == 0].sum(), comm_area[comm_bank == 1].sum()])
    per_bank_streets = _allocate(spec.streets, street_weight, np.array([1, 1]))
    next_street = 0
    for bnk in (0, 1):
        members = np.flatnonzero(comm_bank == bnk)
        k = int(min(per_bank_streets[bnk], members.size))
        street_of[members] = next_street + _grow_regions(rng, members, comm_pairs, comm_area, ccx, ccy, k)
        next_street += k
    n_streets = next_street
    street_geom = np.array([_snap(shapely.union_all(comm_geom[street_of == s])) for s in range(n_streets)],
                           dtype=object)
    street_area = shapely.area(street_geom)
    sc = shapely.centroid(street_geom)
    order = reading_order(shapely.get_x(sc), shapely.get_y(sc), band=0.5 * float(np.sqrt(np.median(street_area))))
    rank = np.empty(n_streets, dtype=np.int64)
    rank[order] = np.arange(n_streets)
    street_codes = np.array([f"{DISTRICT_CODE}{rank[s] + 1:03d}" for s in range(n_streets)], dtype=object)
    taken: set[str] = set()
    street_names = _place_names(rng, n_streets, _STREET_LAST, taken=taken)
    comm_names = _place_names(rng, n_comm, _COMMUNITY_LAST, taken=taken)
    comm_codes = np.empty(n_comm, dtype=object)
    for s in range(n_streets):
        members = np.flatnonzero(street_of == s)
        band = 0.5 * float(np.sqrt(np.median(comm_area[members])))
        for i, m in enumerate(members[reading_order(ccx[members], ccy[members], band=band)]):
            comm_codes[m] = f"{street_codes[s]}{i + 1:03d}"
    streets = gpd.GeoDataFrame({
        "code": street_codes,
        "name": [f"{n}街道" for n in street_names],
        "name_en": [f"{_pinyin(n)} Subdistrict" for n in street_names],
        "level": "street", "parent_code": DISTRICT_CODE, "area_m2": street_area,
    }, geometry=street_geom, crs=None).sort_values("code", ignore_index=True)
    communities = gpd.GeoDataFrame({
        "code": comm_codes,
        "name": [f"{n}社区" for n in comm_names],
        "name_en": [f"{_pinyin(n)} Community" for n in comm_names],
        "level": "community", "parent_code": [street_codes[s] for s in street_of], "area_m2": comm_area,
        "bank": comm_bank,
    }, geometry=comm_geom, crs=None).sort_values("code", ignore_index=True)
    return streets, communities


def _merge_detached(owner: IntArray, pairs: IntArray, lengths: FloatArray, area: FloatArray) -> IntArray:
    """Give every detached piece of a region to the neighbour it shares the longest border with."""
    owner = owner.copy()
    n = owner.size
    for _ in range(6):
        same = owner[pairs[:, 0]] == owner[pairs[:, 1]]
        comp = geo.connected_components(n, pairs[same])
        comp_area = np.bincount(comp, area)
        main: dict[int, int] = {}
        for c in np.unique(comp):
            o = int(owner[np.flatnonzero(comp == c)[0]])
            if o not in main or comp_area[c] > comp_area[main[o]]:
                main[o] = int(c)
        changed = False
        for c in np.unique(comp):
            members = np.flatnonzero(comp == c)
            o = int(owner[members[0]])
            if main[o] == c:
                continue
            in_comp = np.isin(pairs, members)
            border = in_comp[:, 0] ^ in_comp[:, 1]
            other = np.where(in_comp[border, 0], owner[pairs[border, 1]], owner[pairs[border, 0]])
            lens = lengths[border]
            lens = lens[other != o]
            other = other[other != o]
            if other.size:
                totals = np.bincount(other, lens)
                owner[members] = int(np.argmax(totals))
                changed = True
        if not changed:
            break
    return owner


def _grow_regions(rng: np.random.Generator, members: IntArray, pairs: IntArray, area: FloatArray, x: FloatArray,
                  y: FloatArray, k: int) -> IntArray:
    """Group ``members`` into ``k`` contiguous regions of similar area (the smallest region grows first)."""
    if k <= 1:
        return np.zeros(members.size, dtype=np.int64)
    local = {int(m): i for i, m in enumerate(members)}
    nbrs: list[list[int]] = [[] for _ in members]
    for a, b in pairs:
        if int(a) in local and int(b) in local:
            nbrs[local[int(a)]].append(local[int(b)])
            nbrs[local[int(b)]].append(local[int(a)])
    mx, my = x[members], y[members]
    seeds = _farthest_points(rng, mx, my, k)
    label = np.full(members.size, -1, dtype=np.int64)
    label[seeds] = np.arange(k)
    size = area[members][seeds].astype(np.float64)
    stuck = np.zeros(k, dtype=bool)
    while (label < 0).any() and not stuck.all():
        r = int(np.argmin(np.where(stuck, np.inf, size)))
        frontier = sorted({j for i in np.flatnonzero(label == r) for j in nbrs[i] if label[j] < 0})
        if not frontier:
            stuck[r] = True
            continue
        f = np.array(frontier)
        j = int(f[np.argmin(np.hypot(mx[f] - mx[seeds[r]], my[f] - my[seeds[r]]))])
        label[j] = r
        size[r] += area[members][j]
    for stray in np.flatnonzero(label < 0).tolist():  # pieces cut off from every seed join the nearest region
        dist = np.hypot(mx[seeds] - mx[stray], my[seeds] - my[stray])
        label[stray] = int(np.argmin(dist))
    return label


# ---------------------------------------------------------------------------------------------------------------
# unit grids
# ---------------------------------------------------------------------------------------------------------------
def _unit_pieces(outline: BaseGeometry) -> tuple[NDArray[np.object_], IntArray, IntArray]:
    """Lattice squares clipped to the district, slivers merged into the neighbour with the longest shared edge."""
    minx, miny, maxx, maxy = outline.bounds
    x0 = math.floor(minx / UNIT_M) * UNIT_M
    y0 = math.floor(miny / UNIT_M) * UNIT_M
    nx = math.ceil((maxx - x0) / UNIT_M)
    ny = math.ceil((maxy - y0) / UNIT_M)
    jj, ii = np.divmod(np.arange(nx * ny, dtype=np.int64), nx)
    boxes = shapely.box(x0 + ii * UNIT_M, y0 + jj * UNIT_M, x0 + (ii + 1) * UNIT_M, y0 + (jj + 1) * UNIT_M)
    shapely.prepare(outline)
    full = shapely.contains(outline, boxes)
    touch = ~full & shapely.intersects(outline, boxes)
    clipped = _snap(shapely.intersection(boxes[touch], outline))
    parts, owner = shapely.get_parts(clipped, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    parts, owner = parts[poly], owner[poly]
    pieces = np.concatenate([boxes[full], parts])
    cell = np.concatenate([np.flatnonzero(full), np.flatnonzero(touch)[owner]])
    area = shapely.area(pieces)
    ok = area > 1.0
    pieces, cell, area = pieces[ok], cell[ok], area[ok]
    sliver = area < SLIVER_SHARE * UNIT_M * UNIT_M
    big = np.flatnonzero(~sliver)
    tree = shapely.STRtree(pieces[big])
    merged: dict[int, list[int]] = {}
    for s in np.flatnonzero(sliver):
        cand = big[tree.query(pieces[s], predicate="intersects")]
        shared = shapely.length(shapely.intersection(shapely.boundary(pieces[s]), shapely.boundary(pieces[cand])))
        if cand.size and shared.max() > 0.01:
            target = int(cand[int(np.argmax(shared))])
        else:
            target = int(big[int(tree.query_nearest(pieces[s])[0])])
        merged.setdefault(target, []).append(int(s))
    geoms = pieces[big].copy()
    index = {int(p): i for i, p in enumerate(big)}
    for target, slivers in sorted(merged.items()):
        geoms[index[target]] = _snap(shapely.union_all(pieces[[target, *slivers]]))
    cells = cell[big]
    return geoms, cells % nx, cells // nx


@dataclass
class _Units:
    geom: NDArray[np.object_]  # metric
    x: FloatArray  # centroid
    y: FloatArray
    area: FloatArray
    community: IntArray  # row of _District.communities
    pairs: IntArray  # rook adjacency
    land_use: NDArray[np.object_] | None = None
    households: IntArray | None = None
    population: IntArray | None = None


def _units(district: _District, log: _Progress) -> _Units:
    geoms, col, row = _unit_pieces(district.outline)
    cent = shapely.centroid(geoms)
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)
    # unit_id in reading order: rows from north to south, west to east.
    order = np.lexsort((cx, col, -row))
    geoms, cx, cy = geoms[order], cx[order], cy[order]
    area = shapely.area(geoms)
    pairs = geo.rook_adjacency(geoms, min_shared=0.5)
    comm = _majority_community(geoms, area, np.asarray(district.communities.geometry.values, dtype=object))
    comm = _absorb_enclaves(comm, pairs, geoms.size)
    log(f"{geoms.size:,} unit grids")
    return _Units(geom=geoms, x=cx, y=cy, area=area, community=comm, pairs=pairs)


def _majority_community(units: NDArray[np.object_], area: FloatArray, communities: NDArray[np.object_]) -> IntArray:
    tree = shapely.STRtree(communities)
    u, c = tree.query(units, predicate="intersects")
    share = np.ones(u.size)
    multi = np.bincount(u, minlength=units.size)[u] > 1
    share[multi] = shapely.area(shapely.intersection(units[u[multi]], communities[c[multi]])) / area[u[multi]]
    order = np.lexsort((c, -share, u))
    u, c = u[order], c[order]
    first = np.ones(u.size, dtype=bool)
    first[1:] = u[1:] != u[:-1]
    out = np.full(units.size, -1, dtype=np.int64)
    out[u[first]] = c[first]
    if (out < 0).any():
        nearest = tree.query_nearest(units[out < 0])[1]
        out[out < 0] = nearest
    return out


def _absorb_enclaves(comm: IntArray, pairs: IntArray, n: int) -> IntArray:
    """Small detached groups of a community's units join the neighbouring community they share most edges with.

    Majority area leaves stray units across a wiggly boundary; a community office would not send a worker through
    another community to reach two units, so those units are administered by the neighbour.
    """
    comm = comm.copy()
    for _ in range(8):
        same = comm[pairs[:, 0]] == comm[pairs[:, 1]]
        comp = geo.connected_components(n, pairs[same])
        sizes = np.bincount(comp)
        comm_units = np.bincount(comm)
        biggest = np.zeros(comm_units.size, dtype=np.int64)
        np.maximum.at(biggest, comm, sizes[comp])
        small = (sizes[comp] < biggest[comm]) & (sizes[comp] < np.maximum(4, 0.35 * comm_units[comm]))
        if not small.any():
            break
        changed = False
        for c in np.unique(comp[small]):
            members = np.flatnonzero(comp == c)
            in_comp = np.isin(pairs, members)
            border = in_comp[:, 0] ^ in_comp[:, 1]
            other = np.where(in_comp[border, 0], comm[pairs[border, 1]], comm[pairs[border, 0]])
            other = other[other != comm[members[0]]]
            if other.size:
                comm[members] = int(np.argmax(np.bincount(other)))
                changed = True
        if not changed:
            break
    return comm


# ---------------------------------------------------------------------------------------------------------------
# land use, households, hotspots
# ---------------------------------------------------------------------------------------------------------------
_DRIVERS: tuple[str, ...] = ("hh", "land", "old", "market", "commercial", "village", "industrial", "towers", "park",
                             "water", "road")


@dataclass
class _Hotspots:
    overloaded: int  # community row
    market_unit: int  # unit index of the overloaded community's wet market
    markets: IntArray  # unit indexes of all markets
    site_units: IntArray  # unit indexes of the construction site
    site_start: datetime
    park_units: IntArray  # units of the riverside park
    drivers: FloatArray  # units × drivers


def _frac_in(units: NDArray[np.object_], area: FloatArray, shape: BaseGeometry) -> FloatArray:
    out = np.zeros(units.size)
    if shape.is_empty:
        return out
    tree = shapely.STRtree(units)
    hit = tree.query(shape, predicate="intersects")
    out[hit] = shapely.area(shapely.intersection(units[hit], shape)) / area[hit]
    return np.clip(out, 0.0, 1.0)


def _membership(x: FloatArray, y: FloatArray, blobs: list[tuple[float, float, float]]) -> FloatArray:
    """0–1 membership of points in round blobs with a soft edge (max over blobs)."""
    m = np.zeros(x.size)
    for bx, by, br in blobs:
        d = np.hypot(x - bx, y - by)
        m = np.maximum(m, np.clip(0.5 + (br - d) / (0.35 * br), 0.0, 1.0))
    return m


def _place(rng: np.random.Generator, x: FloatArray, y: FloatArray, weight: FloatArray, n: int,
           min_dist: float) -> list[int]:
    """Pick up to ``n`` points with probability ∝ weight, each at least ``min_dist`` from the previous picks."""
    w = np.asarray(weight, dtype=np.float64).copy()
    picked: list[int] = []
    for _ in range(n):
        if not (w > 0).any():
            break
        j = int(rng.choice(w.size, p=w / w.sum()))
        picked.append(j)
        w[np.hypot(x - x[j], y - y[j]) < min_dist] = 0.0
    return picked


def _overloaded_community(d: _District, u: _Units, water: FloatArray
                          ) -> tuple[int, tuple[float, float, float], float]:
    """The community that gets the big old compound: nearest the old core, beside (not in) its commercial centre.

    Returns the community row, the compound (x, y, radius) and the radius of the main commercial centre.
    """
    comm_of = u.community
    n_comm = len(d.communities)
    area = np.maximum(np.bincount(comm_of, u.area, n_comm), 1.0)
    comm_water = np.bincount(comm_of, water * u.area, n_comm) / area
    comm_x = np.bincount(comm_of, u.x * u.area, n_comm) / area
    comm_y = np.bincount(comm_of, u.y * u.area, n_comm) / area
    comm_units = np.bincount(comm_of, minlength=n_comm)
    dist_main = np.hypot(comm_x - d.main_centre[0], comm_y - d.main_centre[1])
    # Shops in the commercial centre itself would blur the compound's signature.
    com_r = float(np.clip(0.13 * d.towns[0][2], 160.0, 450.0))
    eligible = (comm_water < 0.08) & (comm_units >= 6)
    beside = eligible & (dist_main > 1.3 * com_r)
    overloaded = int(np.argmin(np.where(beside if beside.any() else eligible, dist_main, np.inf)))
    over_area = float(u.area[comm_of == overloaded].sum())
    compound = (float(comm_x[overloaded]), float(comm_y[overloaded]),
                float(np.clip(0.5 * math.sqrt(over_area), 140.0, 320.0)))
    return overloaded, compound, com_r


def _parks(rng: np.random.Generator, spec: _Spec, d: _District, u: _Units, water: FloatArray, urb: FloatArray,
           compound: tuple[float, float, float], in_over: NDArray[np.bool_]) -> tuple[FloatArray, IntArray]:
    """Share of each unit in a park, and the units of the riverside park.

    Parks: a strip on both banks of the river, away from the overloaded community; one near the old core but outside
    that community; in medium and large a few more.
    """
    parks: list[BaseGeometry] = []
    river_parts = sorted(shapely.get_parts(d.river_line), key=lambda g: -g.length)
    if river_parts:
        main_line = river_parts[0]
        length = main_line.length
        stretch_len = min(0.35 * length, 4000.0)
        starts = np.linspace(0.05 * length, 0.95 * length - stretch_len, 12)
        mids = [main_line.interpolate(s + stretch_len / 2) for s in starts]
        far = np.array([math.hypot(p.x - compound[0], p.y - compound[1]) for p in mids])
        s0 = float(starts[int(rng.choice(np.argsort(-far)[:3]))])
        stretch = shapely.ops.substring(main_line, s0, s0 + stretch_len)
        strip = shapely.buffer(stretch, spec.river_m / 2 + spec.park_m, cap_style="round")
        parks.append(_snap(shapely.intersection(shapely.difference(strip, d.water), d.outline)))
    land = (water < 0.3) & ~in_over
    far_from_over = np.hypot(u.x - compound[0], u.y - compound[1]) > compound[2] + 250
    core_dist = np.hypot(u.x - d.main_centre[0], u.y - d.main_centre[1])
    core_r = d.towns[0][2]
    ring = np.exp(-(((core_dist - 0.35 * core_r) / (0.2 * core_r + 1)) ** 2))
    picks = _place(rng, u.x, u.y, ring * land * far_from_over + 1e-9 * land, 1, 0.0)
    blobs = [(float(u.x[j]), float(u.y[j]), spec.central_park_m) for j in picks]
    extra = _place(rng, u.x, u.y, land * (urb < 0.7) * far_from_over, spec.parks, 1200.0)
    blobs += [(float(u.x[j]), float(u.y[j]), float(rng.uniform(120, 400))) for j in extra]
    parks += [_snap(shapely.intersection(_blob_polygon(rng, *b), d.outline)) for b in blobs]
    if not parks:
        return np.zeros(u.geom.size), np.empty(0, dtype=np.int64)
    park = _frac_in(u.geom, u.area, _snap(shapely.difference(shapely.union_all(parks), d.water)))
    riverside = np.empty(0, dtype=np.int64)
    if river_parts:
        riverside = np.flatnonzero((_frac_in(u.geom, u.area, parks[0]) > 0.5) & (water <= 0.5))
    return park, riverside


def _people(rng: np.random.Generator, spec: _Spec, d: _District, u: _Units, end: datetime,
            log: _Progress) -> _Hotspots:
    """Land use, households and population of every unit, and the hotspots that drive incidents."""
    n = u.geom.size
    urb = d.urban(u.x, u.y)
    water = _frac_in(u.geom, u.area, d.water)
    overloaded, compound, com_r = _overloaded_community(d, u, water)
    in_over = u.community == overloaded
    park, park_units = _parks(rng, spec, d, u, water, urb, compound, in_over)

    # Blobs of the same kind keep apart; the overloaded community's compound is placed, not drawn.
    land = (water < 0.3) & (park < 0.3)
    free = land & ~in_over
    old_blobs = [compound] + [
        (float(u.x[j]), float(u.y[j]), float(rng.uniform(110, 200)))
        for j in _place(rng, u.x, u.y, free * urb**3, spec.old_compounds - 1, 600.0)]
    tower_blobs = [(float(u.x[j]), float(u.y[j]), float(rng.uniform(120, 230)))
                   for j in _place(rng, u.x, u.y, free * np.exp(-(((urb - 0.45) / 0.15) ** 2)), spec.towers, 600.0)]
    village_blobs = [(float(u.x[j]), float(u.y[j]), float(rng.uniform(120, 260)))
                     for j in _place(rng, u.x, u.y, free * (1.05 - np.minimum(urb, 1.0)) ** 4, spec.villages, 800.0)]
    ind_blobs = [(float(u.x[j]), float(u.y[j]), float(rng.uniform(*spec.industrial_m)))
                 for j in _place(rng, u.x, u.y, free * (1.05 - np.minimum(urb, 1.0)) ** 4, spec.industrial, 2500.0)]
    com_blobs = [(d.towns[0][0], d.towns[0][1], com_r)]
    com_blobs += [(tx, ty, float(rng.uniform(200, 350))) for tx, ty, _r in d.towns[1:]]
    old_m = _membership(u.x, u.y, old_blobs)
    tower_m = _membership(u.x, u.y, tower_blobs) * (1 - old_m)
    village_m = _membership(u.x, u.y, village_blobs) * (1 - old_m)
    ind_m = _membership(u.x, u.y, ind_blobs) * (1 - old_m)
    big_m = _membership(u.x, u.y, [compound])
    com_m = _membership(u.x, u.y, com_blobs) * (1 - big_m)

    # Markets: the overloaded community's own, beside its compound, then others in dense areas.
    ang = rng.uniform(0, 2 * math.pi)
    tx, ty = compound[0] + 110 * math.cos(ang), compound[1] + 110 * math.sin(ang)
    over_land = np.flatnonzero(in_over & land)
    market_unit = int(over_land[np.argmin(np.hypot(u.x[over_land] - tx, u.y[over_land] - ty))])
    others = _place(rng, u.x, u.y, free * (ind_m < 0.5) * urb**2 * (np.hypot(u.x - u.x[market_unit],
                                                                              u.y - u.y[market_unit]) > 500),
                    spec.markets - 1, 550.0)
    markets = np.array([market_unit, *others], dtype=np.int64)
    market_x = np.zeros(n)
    for m in markets:
        # The overloaded community's market is the district's big wet market.
        weight = 2.5 if m == market_unit else 1.5
        market_x = np.maximum(market_x, weight * np.exp(-np.hypot(u.x - u.x[m], u.y - u.y[m]) / 110.0))

    # Main shopping streets through each town centre: street-front shops below flats.
    road = np.zeros(n, dtype=bool)
    for tx_, ty_, tr in d.towns:
        theta = rng.uniform(-0.3, 0.3)
        half = 1.1 * tr if tr < d.radius else 0.9 * d.radius
        for phi in (theta, theta + math.pi / 2):
            seg = shapely.LineString([(tx_ - half * math.cos(phi), ty_ - half * math.sin(phi)),
                                      (tx_ + half * math.cos(phi), ty_ + half * math.sin(phi))])
            road |= shapely.distance(seg, shapely.points(u.x, u.y)) < 60.0
    road &= urb > 0.3

    land_use = np.full(n, "residential", dtype=object)
    land_use[road] = "mixed"
    land_use[com_m > 0.5] = "commercial"
    land_use[markets] = "commercial"
    land_use[ind_m > 0.5] = "industrial"
    land_use[park > 0.5] = "park"
    land_use[water > 0.5] = "water"

    site_units = _construction_site(rng, spec, u, land_use, in_over, d)
    site_start = datetime.combine((end - timedelta(days=int(rng.integers(120, 200)))).date(), time(7, 0))

    # Households per full hectare: ~10 at the rural edge, ~200 in the core, up to ~500 in old compounds and towers.
    base = (10.0 + 190.0 * np.minimum(urb, 1.0) ** 1.3) * np.exp(0.2 * _Field(rng, 500.0, (d.cx, d.cy))(u.x, u.y))
    hh_full = np.minimum(base * (1 + 0.9 * old_m + 0.6 * tower_m + 0.6 * big_m), 520.0)
    hh_full = hh_full * (1 - village_m) + village_m * rng.uniform(35, 70, n)
    hh_full = hh_full * np.select([land_use == "mixed", land_use == "commercial", land_use == "industrial"],
                                  [0.75, 0.15, 0.0], 1.0)
    land_frac = np.clip(1.0 - water - park, 0.0, 1.0) * u.area / (UNIT_M * UNIT_M)
    hh = np.round(hh_full * land_frac * rng.gamma(8.0, 1 / 8.0, n)).astype(np.int64)
    hh[np.isin(land_use, ("park", "water", "industrial"))] = 0
    hh[site_units] = 0
    pph = np.clip(2.55 + 0.12 * rng.standard_normal(n) - 0.35 * old_m + 0.25 * tower_m + 0.8 * village_m, 1.6, 4.2)
    pop = np.round(hh * pph).astype(np.int64)
    u.land_use, u.households, u.population = land_use, hh, pop

    area_ha = u.area / (UNIT_M * UNIT_M)
    # Shops, stalls, traffic and workshops stop at the park gate and the river bank.
    built = 1.0 - np.clip(park + water, 0.0, 1.0)
    drivers = np.column_stack([
        hh / 100.0,
        area_ha * (1 - water) * (1 - 0.6 * park),  # street furniture: fewer roads inside parks
        (old_m + 0.5 * big_m) * hh / 100.0,  # the big compound's pipes and residents are the oldest
        market_x * built,
        (com_m + 0.5 * (land_use == "mixed")) * built,
        village_m * (0.5 + hh / 100.0),
        ind_m * area_ha * built,
        tower_m * hh / 100.0,
        park * area_ha,
        water * area_ha,
        (road + 0.3 * com_m) * built,
    ])
    log("land use, households and hotspots")
    return _Hotspots(overloaded=overloaded, market_unit=market_unit, markets=markets,
                     site_units=site_units, site_start=site_start, park_units=park_units, drivers=drivers)


def _construction_site(rng: np.random.Generator, spec: _Spec, u: _Units, land_use: NDArray[np.object_],
                       in_over: NDArray[np.bool_], d: _District) -> IntArray:
    """A block of residential units mid-way out from the core, cleared for new towers."""
    n = u.geom.size
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for a, b in u.pairs:
        nbrs[int(a)].append(int(b))
        nbrs[int(b)].append(int(a))
    res = (land_use == "residential") & ~in_over
    dist = np.hypot(u.x - d.main_centre[0], u.y - d.main_centre[1])
    lo, hi = np.quantile(dist[res], [0.4, 0.75]) if res.any() else (0.0, np.inf)
    good = np.array([res[i] and lo <= dist[i] <= hi and sum(res[j] for j in nbrs[i]) >= 3 for i in range(n)])
    if not good.any():
        good = res
    start = int(rng.choice(np.flatnonzero(good)))
    site = [start]
    frontier = [start]
    while frontier and len(site) < spec.site_units:
        i = frontier.pop(0)
        for j in sorted(nbrs[i]):
            if res[j] and j not in site and u.community[j] == u.community[start] and len(site) < spec.site_units:
                site.append(j)
                frontier.append(j)
    return np.array(sorted(site), dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------------
# the hand-drawn layout
# ---------------------------------------------------------------------------------------------------------------
def _hand_drawn(rng: np.random.Generator, spec: _Spec, u: _Units, n_comm: int, log: _Progress) -> IntArray:
    """Grid of each unit: multi-source growth inside each community from seeds spread by area, not workload.

    Each community gets grids in proportion to its number of units; seeds are spread by farthest-point sampling and
    grow over the rook graph with random edge costs and a random speed per seed, like a hand-drawn plan: contiguous
    and compact-ish, but unequal in size and very unequal in households and incidents.
    """
    n = u.geom.size
    comm = u.community
    same = comm[u.pairs[:, 0]] == comm[u.pairs[:, 1]]
    inner = u.pairs[same]
    comp = geo.connected_components(n, inner)
    comm_units = np.bincount(comm, minlength=n_comm)
    comps_of: list[IntArray] = [np.unique(comp[comm == c]) for c in range(n_comm)]
    n_comps = np.array([len(c) for c in comps_of])
    per_comm = _allocate(spec.grids, comm_units.astype(np.float64), np.maximum(n_comps, 1))
    per_comm[comm_units == 0] = 0
    cost = rng.uniform(0.6, 1.4, len(inner))
    nbrs: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for (a, b), w in zip(inner.tolist(), cost.tolist(), strict=True):
        nbrs[a].append((b, w))
        nbrs[b].append((a, w))
    grid = np.full(n, -1, dtype=np.int64)
    next_grid = 0
    for c in range(n_comm):
        if comm_units[c] == 0:
            continue
        comp_ids = comps_of[c]
        comp_sizes = np.array([(comp == k).sum() for k in comp_ids], dtype=np.float64)
        per_comp = _allocate(int(per_comm[c]), comp_sizes, np.ones(len(comp_ids), dtype=np.int64))
        for k, m in zip(comp_ids, per_comp, strict=True):
            members = np.flatnonzero(comp == k)
            m = int(min(m, members.size))
            seeds = _spread_seeds(rng, u.x[members], u.y[members], u.area[members], m, members)
            speed = np.exp(0.35 * rng.standard_normal(m))
            heap: list[tuple[float, int, int, int]] = []
            for g, s in enumerate(seeds.tolist()):
                heapq.heappush(heap, (0.0, s, s, g))
            while heap:
                dist, _tie, unit, g = heapq.heappop(heap)
                if grid[unit] >= 0:
                    continue
                grid[unit] = next_grid + g
                for v, w in nbrs[unit]:
                    if grid[v] < 0:
                        heapq.heappush(heap, (dist + w / speed[g], v, v, g))
            next_grid += m
    grid = _dissolve_tiny_grids(grid, inner, comm)
    log(f"{int(grid.max()) + 1} responsibility grids (hand-drawn)")
    return grid


def _dissolve_tiny_grids(grid: IntArray, pairs: IntArray, comm: IntArray) -> IntArray:
    """Merge grids that a faster neighbour left with almost nothing into that neighbour.

    A seed that grows slowly can be boxed in after a unit or two; nobody draws a one-hectare grid by hand, so a grid
    smaller than a quarter of its community's average (and below 3 units) joins the neighbouring grid of the same
    community it shares most edges with. ``pairs`` only links units of the same community.
    """
    grid = grid.copy()
    for _ in range(10):
        size = np.bincount(grid)
        grids_in_comm = np.bincount(comm, minlength=comm.max() + 1).astype(np.float64)
        n_grids_in_comm = np.zeros_like(grids_in_comm)
        first_unit = np.unique(grid, return_index=True)[1]
        np.add.at(n_grids_in_comm, comm[first_unit], 1.0)
        mean_size = grids_in_comm / np.maximum(n_grids_in_comm, 1.0)
        g_comm = np.zeros(size.size, dtype=np.int64)
        g_comm[grid] = comm
        tiny = (size > 0) & (size < np.maximum(3.0, 0.25 * mean_size[g_comm]))
        a, b = grid[pairs[:, 0]], grid[pairs[:, 1]]
        cross = a != b
        a, b = a[cross], b[cross]
        changed = False
        for g in np.flatnonzero(tiny).tolist():
            nbr = np.concatenate([b[a == g], a[b == g]])
            nbr = nbr[~tiny[nbr]] if (~tiny[nbr]).any() else nbr
            if nbr.size:
                grid[grid == g] = int(np.argmax(np.bincount(nbr)))
                tiny[g] = False
                changed = True
        if not changed:
            break
    return np.unique(grid, return_inverse=True)[1].astype(np.int64)


def _spread_seeds(rng: np.random.Generator, x: FloatArray, y: FloatArray, area: FloatArray, k: int,
                  members: IntArray) -> IntArray:
    """``k`` distinct units near the centres of ``k`` equal-area clusters (k-means on the unit centroids)."""
    if k >= members.size:
        return members.copy()
    centres = _kmeans(rng, np.column_stack([x, y]), area, k, iters=8)
    d2 = (x[None, :] - centres[:, 0, None]) ** 2 + (y[None, :] - centres[:, 1, None]) ** 2
    chosen: list[int] = []
    for row in d2:
        for j in np.argsort(row, kind="stable"):
            if int(j) not in chosen:
                chosen.append(int(j))
                break
    return members[np.array(chosen, dtype=np.int64)]


# ---------------------------------------------------------------------------------------------------------------
# people: names and phones
# ---------------------------------------------------------------------------------------------------------------
def _names(rng: np.random.Generator, n: int) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    """Full names and surnames: common surnames more often, one- or two-character given names."""
    rank = np.arange(len(_SURNAMES))
    p = 1.0 / (rank + 6.0)
    sur = np.array(list(_SURNAMES), dtype=object)[rng.choice(len(_SURNAMES), n, p=p / p.sum())]
    given = np.array(list(_GIVEN), dtype=object)
    g1 = given[rng.integers(len(_GIVEN), size=n)]
    g2 = np.where(rng.random(n) < 0.7, given[rng.integers(len(_GIVEN), size=n)], "")
    full = pd.Series(sur, dtype="str") + pd.Series(g1, dtype="str") + pd.Series(g2, dtype="str")
    return full.to_numpy(dtype=object), sur


def _phones(rng: np.random.Generator, n: int, *, landline_share: float = 0.0) -> NDArray[np.object_]:
    prefix = np.array(_PHONE_PREFIXES)[rng.integers(len(_PHONE_PREFIXES), size=n)].astype(str)
    rest = pd.Series(rng.integers(0, 100_000_000, size=n)).astype(str).str.zfill(8)
    mobile = pd.Series(prefix, dtype="str") + rest
    land = "021-" + pd.Series(rng.integers(5_000_0000, 6_999_9999, size=n)).astype(str)
    out = np.where(rng.random(n) < landline_share, land.to_numpy(dtype=object), mobile.to_numpy(dtype=object))
    return np.asarray(out, dtype=object)


# ---------------------------------------------------------------------------------------------------------------
# workers and assignments
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Staff:
    roster: pd.DataFrame
    assignments: pd.DataFrame
    supply: FloatArray  # hours per week per grid (by grid index)
    unstaffed: IntArray  # grid indexes without any worker


def _staff(rng: np.random.Generator, grid_codes: NDArray[np.object_], grid_comm: IntArray,
           grid_pairs: IntArray, comm_codes: NDArray[np.object_], hot: _Hotspots, unit_grid: IntArray,
           grid_hh: IntArray, log: _Progress) -> _Staff:
    """A roster like a real one: most grids one full-timer, some shared, some with a backup, some with nobody."""
    g_count = grid_codes.size
    nbrs: list[list[int]] = [[] for _ in range(g_count)]
    for a, b in grid_pairs.tolist():
        nbrs[a].append(b)
        nbrs[b].append(a)
    over_grids = np.flatnonzero(grid_comm == hot.overloaded)
    market_grid = int(unit_grid[hot.market_unit])
    unstaffed: set[int] = set()
    others_over = [int(g) for g in over_grids if g != market_grid]
    if others_over:
        unstaffed.add(max(others_over, key=lambda g: (grid_hh[g], -g)))
    target = max(1, round(0.06 * g_count))
    pool = [g for g in rng.permutation(g_count).tolist() if grid_comm[g] != hot.overloaded]
    for g in pool:
        if len(unstaffed) >= target:
            break
        if g not in unstaffed and not any(nb in unstaffed for nb in nbrs[g]):
            unstaffed.add(g)
    primary: dict[int, int] = {}  # grid → worker number (creation order)
    workers: list[dict[str, Any]] = []

    def hire(hours: float | None = None) -> int:
        workers.append({"hours": hours})
        return len(workers) - 1

    # The overloaded community's market grid gets one part-timer who also covers a neighbouring grid.
    part_timer = hire(24.0)
    primary[market_grid] = part_timer
    neighbour = [g for g in sorted(nbrs[market_grid]) if g not in unstaffed and g not in primary]
    if neighbour:
        primary[neighbour[0]] = part_timer
    # Some workers cover two adjacent grids.
    n_pairs = max(1, round(0.08 * g_count))
    for a in rng.permutation(g_count).tolist():
        if n_pairs <= 0:
            break
        if a in unstaffed or a in primary or grid_comm[a] == hot.overloaded:
            continue
        cand = [b for b in sorted(nbrs[a]) if b not in unstaffed and b not in primary
                and grid_comm[b] != hot.overloaded]
        same = [b for b in cand if grid_comm[b] == grid_comm[a]]
        if same or cand:
            w = hire()
            primary[a] = w
            primary[(same or cand)[0]] = w
            n_pairs -= 1
    for g in range(g_count):
        if g not in unstaffed and g not in primary:
            primary[g] = hire()
    # Backups: a neighbouring grid's primary worker; never in the overloaded community (that is the point).
    backup: dict[int, int] = {}
    for g in rng.permutation(g_count).tolist():
        if len(backup) >= round(0.18 * g_count):
            break
        if g in unstaffed or grid_comm[g] == hot.overloaded:
            continue
        cand = [primary[b] for b in sorted(nbrs[g], key=lambda b: (grid_comm[b] != grid_comm[g], b))
                if b in primary and primary[b] != primary[g]]
        if cand:
            backup[g] = cand[0]
    # Number workers in the order of the first grid they cover, extras (floaters, inactive) at the end.
    order: list[int] = []
    for g in np.argsort(grid_codes, kind="stable").tolist():
        for who in (primary.get(g), backup.get(g)):
            if who is not None and who not in order:
                order.append(who)
    n_extra_active = max(1, round(0.02 * len(order)))
    n_inactive = max(1, round(0.03 * len(order)))
    for _ in range(n_extra_active + n_inactive):
        order.append(hire())
    n_workers = len(workers)
    wid = {w: f"W{i + 1:04d}" for i, w in enumerate(order)}
    hours = np.where(rng.random(n_workers) < 0.82, 40.0, rng.choice([20.0, 24.0, 28.0, 32.0], n_workers))
    for w, rec in enumerate(workers):
        if rec["hours"] is not None:
            hours[w] = rec["hours"]
    names, _ = _names(rng, n_workers)
    phones = _phones(rng, n_workers)
    while len(set(phones.tolist())) < n_workers:
        phones = _phones(rng, n_workers)
    home: dict[int, int] = {}
    for g in np.argsort(grid_codes, kind="stable").tolist():
        if g in primary:
            home.setdefault(primary[g], int(grid_comm[g]))
    for g, w in backup.items():
        home.setdefault(w, int(grid_comm[g]))
    inactive = set(order[-n_inactive:])
    rows = []
    for w in order:
        base = home.get(w, int(rng.integers(len(comm_codes))))
        rows.append({"worker_id": wid[w], "name": names[w], "phone": phones[w], "hours_per_week": float(hours[w]),
                     "base_community": comm_codes[base], "active": w not in inactive})
    roster = pd.DataFrame(rows)
    assign_rows = [{"grid_code": grid_codes[g], "worker_id": wid[w], "role": "primary", "manual": False}
                   for g, w in primary.items()]
    assign_rows += [{"grid_code": grid_codes[g], "worker_id": wid[w], "role": "backup", "manual": False}
                    for g, w in backup.items()]
    assignments = pd.DataFrame(assign_rows).sort_values(["grid_code", "role", "worker_id"], ascending=[True, False,
                                                                                                    True],
                                                          ignore_index=True)
    # Supply: a worker's hours split over the grids they cover, a backup role counting a quarter of a primary one.
    weight = {"primary": 1.0, "backup": 0.25}
    load: dict[int, float] = {}
    for w in primary.values():
        load[w] = load.get(w, 0.0) + weight["primary"]
    for w in backup.values():
        load[w] = load.get(w, 0.0) + weight["backup"]
    supply = np.zeros(g_count)
    for g, w in primary.items():
        supply[g] += hours[w] * weight["primary"] / load[w]
    for g, w in backup.items():
        supply[g] += hours[w] * weight["backup"] / load[w]
    log(f"{len(roster)} grid workers, {len(assignments)} assignments")
    return _Staff(roster=roster, assignments=assignments, supply=supply,
                  unstaffed=np.array(sorted(unstaffed), dtype=np.int64))


# ---------------------------------------------------------------------------------------------------------------
# incidents: taxonomy behaviour
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Behaviour:
    share: float  # share of all incidents
    drivers: dict[str, float]  # where it happens
    season: tuple[float, int]  # amplitude, day of year of the peak
    week: str
    day: str
    patrol: float  # share found by grid workers on patrol
    app: float  # share reported through the app (the rest: 12345 hotline)
    speed: float  # relative time to close, in units of the category's SLA
    stuck: float  # chance that a case drags on for weeks


def _b(share: float, drivers: dict[str, float], season: tuple[float, int], week: str = "civic", day: str = "day",
       patrol: float = 0.2, app: float = 0.1, speed: float = 1.0, stuck: float = 0.004) -> _Behaviour:
    return _Behaviour(share, drivers, season, week, day, patrol, app, speed, stuck)


_BEHAVIOUR: dict[str, _Behaviour] = {
    "manhole_cover": _b(0.015, {"land": 1.0, "hh": 0.2, "commercial": 0.3, "road": 0.5}, (0.2, 190), patrol=0.55),
    "street_light": _b(0.03, {"land": 1.0, "road": 0.6, "park": 0.6, "village": 0.3, "industrial": 0.4},
                       (0.15, 350), patrol=0.55, speed=1.1),
    "litter_bin": _b(0.025, {"land": 0.4, "commercial": 1.2, "road": 1.0, "park": 0.8, "market": 0.5}, (0.2, 200),
                     patrol=0.55),
    "bench": _b(0.006, {"park": 2.0, "land": 0.2, "commercial": 0.4}, (0.2, 150), patrol=0.55),
    "road_sign": _b(0.006, {"land": 0.8, "road": 1.0, "industrial": 0.4}, (0.1, 200), patrol=0.55),
    "fire_hydrant": _b(0.005, {"land": 0.6, "hh": 0.3, "old": 0.5, "industrial": 0.5}, (0.2, 20), patrol=0.55),
    "traffic_barrier": _b(0.008, {"road": 1.5, "land": 0.3, "commercial": 0.5}, (0.1, 200), patrol=0.55),
    "bus_shelter": _b(0.005, {"road": 1.5, "commercial": 0.6, "land": 0.2}, (0.1, 200), patrol=0.55),
    "street_tree": _b(0.02, {"land": 0.6, "park": 1.2, "road": 0.8, "hh": 0.2}, (0.45, 230), patrol=0.55),
    "public_toilet": _b(0.012, {"market": 1.5, "park": 1.0, "old": 0.8, "commercial": 0.5}, (0.25, 200),
                        patrol=0.55),
    "pavement": _b(0.03, {"land": 0.6, "road": 1.0, "commercial": 0.5, "industrial": 0.5, "hh": 0.2}, (0.15, 60),
                   patrol=0.55),
    "drain_grate": _b(0.015, {"land": 0.6, "road": 0.6, "old": 0.6, "hh": 0.2}, (0.4, 185), week="flat",
                      day="allday", patrol=0.55),
    "exposed_garbage": _b(0.14, {"hh": 1.0, "old": 1.6, "market": 5.0, "village": 1.6, "commercial": 0.5,
                                 "land": 0.15, "water": 0.05, "industrial": 0.3}, (0.25, 200), patrol=0.35,
                          speed=0.9, stuck=0.001),
    "illegal_parking": _b(0.13, {"commercial": 3.0, "road": 2.0, "hh": 0.6, "market": 2.0, "towers": 0.4,
                                 "old": 0.6}, (0.08, 330), week="leisure", day="commute", patrol=0.15, app=0.2,
                          speed=0.7, stuck=0.001),
    "street_vending": _b(0.09, {"market": 6.0, "commercial": 2.5, "road": 1.5, "hh": 0.2, "old": 0.4},
                         (0.3, 200), week="leisure", day="market", patrol=0.45, app=0.08, speed=0.8, stuck=0.001),
    "road_occupation": _b(0.07, {"road": 3.0, "market": 4.0, "commercial": 1.5, "old": 0.5, "village": 0.6},
                          (0.15, 180), day="market", patrol=0.45, app=0.08, speed=0.9),
    "illegal_construction": _b(0.006, {"village": 5.0, "old": 0.8, "industrial": 1.0, "hh": 0.1, "towers": 0.2},
                               (0.25, 100), patrol=0.35, app=0.05, speed=1.2, stuck=0.12),
    "construction_waste": _b(0.025, {"industrial": 2.0, "village": 1.2, "hh": 0.3, "land": 0.3, "old": 0.3},
                             (0.15, 110), patrol=0.3, app=0.08, stuck=0.01),
    "bulky_waste": _b(0.04, {"hh": 1.0, "old": 1.5, "towers": 0.6, "village": 1.0}, (0.2, 45), patrol=0.35,
                      speed=0.9, stuck=0.003),
    "illegal_posters": _b(0.06, {"hh": 0.5, "old": 1.2, "commercial": 1.0, "road": 1.0, "village": 0.8},
                          (0.1, 90), patrol=0.65, app=0.05, speed=0.8, stuck=0.001),
    "graffiti": _b(0.01, {"commercial": 1.0, "road": 1.0, "old": 0.8, "hh": 0.2}, (0.1, 150), patrol=0.5,
                   app=0.05, stuck=0.003),
    "noise": _b(0.06, {"hh": 0.8, "commercial": 1.5, "market": 1.0, "towers": 0.8, "old": 0.8, "road": 0.8},
                (0.3, 205), week="leisure", day="evening", patrol=0.03, app=0.12, stuck=0.01),
    "water_leak": _b(0.015, {"hh": 0.6, "old": 2.0, "land": 0.3}, (0.35, 20), week="flat", day="allday",
                     patrol=0.15, speed=0.9, stuck=0.01),
    "sewage_overflow": _b(0.025, {"hh": 0.5, "old": 2.2, "market": 2.0, "village": 1.0}, (0.5, 185), week="flat",
                          day="allday", patrol=0.2, stuck=0.008),
    "fire_hazard": _b(0.02, {"old": 2.0, "village": 2.0, "market": 1.0, "industrial": 1.0, "hh": 0.3}, (0.3, 20),
                      patrol=0.45, app=0.05, stuck=0.01),
    "neighbour_dispute": _b(0.035, {"hh": 1.0, "old": 2.0, "village": 0.8, "towers": 0.4}, (0.15, 200),
                            patrol=0.05, app=0.05, speed=1.1, stuck=0.03),
    "elderly_visit": _b(0.04, {"hh": 0.6, "old": 3.0, "towers": 0.1}, (0.3, 25), patrol=0.85, app=0.02, speed=0.8,
                        stuck=0.002),
    "homeless_assistance": _b(0.006, {"commercial": 2.0, "park": 1.0, "market": 0.5, "road": 0.5}, (0.45, 10),
                              week="flat", day="allday", patrol=0.3, app=0.05, speed=0.8, stuck=0.003),
    "other": _b(0.03, {"hh": 0.6, "land": 0.3, "commercial": 0.3}, (0.05, 0), stuck=0.01),
}
#: The construction site's own complaints: debris, night work, trucks.
_SITE_MIX = {"construction_waste": 0.42, "noise": 0.3, "illegal_parking": 0.08, "road_occupation": 0.08,
             "pavement": 0.07, "drain_grate": 0.05}

_WEEK = {  # Monday … Sunday
    "civic": (1.06, 1.04, 1.02, 1.02, 1.0, 0.93, 0.93),
    "leisure": (0.88, 0.88, 0.9, 0.95, 1.1, 1.3, 1.2),
    "flat": (1.0,) * 7,
    "patrol": (1.0, 1.0, 1.0, 1.0, 1.0, 0.12, 0.08),
}
_DAY = {  # hour 0 … 23
    "day": (.1, .06, .05, .05, .08, .2, .5, 1.2, 2.2, 3.0, 3.2, 2.8, 2.0, 2.2, 2.8, 2.9, 2.6, 2.0, 1.6, 1.4, 1.2,
            .9, .5, .3),
    "evening": (1.6, 1.0, .6, .3, .2, .3, .8, 1.2, 1.3, 1.2, 1.0, 1.0, 1.3, 1.3, 1.0, 1.0, 1.0, 1.1, 1.4, 2.0, 2.6,
                3.0, 3.2, 2.6),
    "commute": (.4, .2, .1, .1, .1, .3, .9, 2.6, 3.0, 2.2, 1.6, 1.4, 1.5, 1.4, 1.4, 1.5, 1.8, 2.6, 2.8, 2.2, 1.8,
                1.4, 1.0, .7),
    "market": (.1, .05, .05, .1, .4, 1.4, 2.6, 3.0, 2.4, 1.6, 1.3, 1.6, 1.5, 1.1, 1.0, 1.1, 1.6, 2.4, 2.8, 2.7, 2.2,
               1.4, .6, .2),
    "allday": (.5, .4, .35, .35, .4, .6, 1.0, 1.4, 1.6, 1.6, 1.5, 1.4, 1.3, 1.3, 1.4, 1.4, 1.4, 1.4, 1.3, 1.2, 1.1,
               1.0, .8, .6),
    "patrol": (.02, .02, .02, .02, .02, .02, .05, .2, .8, 3.0, 3.5, 2.6, .6, 1.4, 3.0, 3.2, 2.5, .6, .05, .02, .02,
               .02, .02, .02),
    "site_night": (3.0, 2.6, 2.0, 1.2, .8, .8, 1.4, 1.6, 1.0, .8, .8, .8, .8, .8, .8, .8, .8, .8, .9, 1.2, 1.8, 2.4,
                   3.2, 3.4),
}
#: Lunar New Year's day (Spring Festival) — 12345 traffic and patrols drop for a week.
_SPRING_FESTIVAL = {
    2019: "02-05", 2020: "01-25", 2021: "02-12", 2022: "02-01", 2023: "01-22", 2024: "02-10", 2025: "01-29",
    2026: "02-17", 2027: "02-06", 2028: "01-26", 2029: "02-13", 2030: "02-03", 2031: "01-23", 2032: "02-11",
    2033: "01-31", 2034: "02-19", 2035: "02-08",
}
_STORM = {"street_tree": 12.0, "drain_grate": 8.0, "sewage_overflow": 6.0, "manhole_cover": 4.0, "street_light": 3.0,
          "road_sign": 3.0, "traffic_barrier": 3.0, "bus_shelter": 3.0, "water_leak": 2.0}

_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "manhole_cover": ("井盖缺失，存在安全隐患", "井盖破损下陷", "井盖松动，车辆经过有异响", "雨水井盖移位"),
    "street_light": ("路灯不亮", "路灯白天常亮", "路灯灯杆倾斜", "多盏路灯损坏，夜间路段昏暗"),
    "litter_bin": ("垃圾箱破损", "垃圾箱满溢未清运", "垃圾箱缺失", "垃圾箱被移位"),
    "bench": ("座椅破损", "座椅松动", "座椅油漆脱落、有毛刺"),
    "road_sign": ("道路指示牌倾斜", "指示牌被树枝遮挡", "路名牌缺失", "指示牌破损"),
    "fire_hydrant": ("消防栓漏水", "消防栓被圈占遮挡", "消防栓被车辆撞坏", "消防栓缺盖"),
    "traffic_barrier": ("交通护栏倒伏", "护栏被撞变形", "护栏缺失"),
    "bus_shelter": ("候车亭玻璃破碎", "候车亭顶棚漏雨", "候车亭广告灯箱损坏"),
    "street_tree": ("行道树倾斜存在倒伏隐患", "树枝遮挡路灯和信号灯", "枯死行道树未及时更换", "树枝断裂悬挂"),
    "public_toilet": ("公厕卫生差、异味大", "公厕设施损坏", "公厕冲水故障", "公厕未按时开放"),
    "pavement": ("人行道板破损松动", "人行道坑洼积水", "盲道被破坏", "人行道地砖缺失"),
    "drain_grate": ("雨水箅子缺失", "雨水箅子堵塞，路面积水", "雨水箅子破损"),
    "exposed_garbage": ("路边有暴露垃圾未清运", "绿化带内堆放生活垃圾", "垃圾桶周边垃圾散落", "小区门口垃圾堆积有异味"),
    "illegal_parking": ("机动车违停占用人行道", "车辆违停堵塞小区出入口", "非机动车乱停放", "路口违停影响通行",
                        "占用消防通道停车"),
    "street_vending": ("流动摊贩占道经营", "早点摊占用人行道", "夜间流动摊贩扰民", "三轮车流动售卖水果"),
    "road_occupation": ("店铺出店经营占用人行道", "沿街商铺在门口堆放货物", "餐饮店在店外摆放桌椅", "维修店占道作业"),
    "illegal_construction": ("居民楼顶搭建违章建筑", "私自搭建彩钢板房", "底楼住户违规扩建", "破墙开店"),
    "construction_waste": ("建筑垃圾随意倾倒", "渣土车沿途撒漏", "装修垃圾堆放在楼道外", "渣土堆放未覆盖"),
    "bulky_waste": ("废旧家具随意丢弃", "大件垃圾堆放在路边", "旧床垫沙发无人清运"),
    "illegal_posters": ("电线杆上乱贴小广告", "楼道内小广告", "墙面喷涂办证电话", "公交站乱张贴"),
    "graffiti": ("墙面乱涂写", "桥墩涂鸦", "配电箱被乱涂画"),
    "noise": ("广场舞音响声音过大", "商铺高音喇叭招揽顾客", "装修噪声扰民", "餐饮店夜间噪声", "夜间施工噪声扰民"),
    "water_leak": ("路面供水管道漏水", "小区内水管爆裂", "消防水管渗漏", "水表井漏水"),
    "sewage_overflow": ("污水井冒溢", "污水外溢有异味", "化粪池满溢", "下水道堵塞污水漫到路面"),
    "fire_hazard": ("楼道堆放杂物堵塞通道", "电动车在楼道内充电", "私拉电线给电动车充电", "消防通道被占用"),
    "neighbour_dispute": ("邻里因漏水发生纠纷", "楼上楼下噪声纠纷", "邻里因公共空间使用发生矛盾", "宠物扰民引发纠纷"),
    "elderly_visit": ("独居老人定期走访", "高龄老人需要帮扶", "困难家庭走访慰问", "独居老人多日未出门，请求上门查看"),
    "homeless_assistance": ("桥下有流浪人员露宿", "流浪乞讨人员需救助", "街头有人员乞讨"),
    "other": ("其他城市管理问题", "市民咨询", "小区周边环境问题", "其他"),
}
_SITE_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "construction_waste": ("工地渣土车撒漏", "工地出入口道路泥泞，渣土带出", "工地建筑垃圾堆放在围挡外"),
    "noise": ("工地夜间施工噪声扰民", "工地凌晨打桩噪声", "工地夜间浇筑混凝土噪声大"),
    "illegal_parking": ("渣土车在路边违停等候", "工程车辆占道停放"),
    "road_occupation": ("工地材料堆放占用人行道", "工地围挡占用道路"),
    "pavement": ("工程车辆压坏人行道板", "工地门口路面破损"),
    "drain_grate": ("工地泥浆堵塞雨水箅子", "工地排放泥浆进入雨水口"),
}


# ---------------------------------------------------------------------------------------------------------------
# incidents: generation
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Window:
    start: datetime
    end: datetime
    day: IntArray  # per hour of the window
    hour: IntArray
    dow: IntArray
    doy: IntArray
    festival: FloatArray  # per day
    festival_patrol: FloatArray
    storm_day: int


def _window(rng: np.random.Generator, as_of: date) -> _Window:
    end = datetime.combine(as_of + timedelta(days=1), time())
    start = end - timedelta(days=365)
    hours = np.arange(365 * 24, dtype=np.int64)
    day = hours // 24
    days = np.datetime64(start.date(), "D") + np.arange(365)
    dow_d = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    doy_d = (days - days.astype("datetime64[Y]")).astype(np.int64)
    festival = np.ones(365)
    festival_patrol = np.ones(365)
    for year in (start.year, end.year):
        if year not in _SPRING_FESTIVAL:
            continue
        ny = np.datetime64(f"{year}-{_SPRING_FESTIVAL[year]}", "D")
        offset = (days - ny).astype(np.int64)
        festival[(offset >= -1) & (offset <= 6)] = 0.55
        festival[(offset > 6) & (offset <= 14)] = 0.85
        festival_patrol[(offset >= -1) & (offset <= 6)] = 0.15
    months = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    summer = np.flatnonzero((months >= 7) & (months <= 9) & (np.arange(365) < 364))
    storm_day = int(rng.choice(summer)) if summer.size else 200
    return _Window(start=start, end=end, day=day, hour=hours % 24, dow=dow_d[day], doy=doy_d[day],
                   festival=festival, festival_patrol=festival_patrol, storm_day=storm_day)


def _profile(win: _Window, code: str, *, patrol: bool, site_from: int | None = None) -> FloatArray:
    """Relative report rate for every hour of the window."""
    b = _BEHAVIOUR[code]
    amp, peak = b.season
    season = 1 + amp * np.cos(2 * math.pi * (win.doy - peak) / 365.25)
    if site_from is not None:
        day_shape = "site_night" if code == "noise" else "day"
        week_shape = "flat"
    else:
        day_shape = "patrol" if patrol else b.day
        week_shape = "patrol" if patrol else b.week
    p = season * np.array(_WEEK[week_shape])[win.dow] * np.array(_DAY[day_shape])[win.hour]
    p = p * (0.94 + 0.12 * win.day / 365.0)  # 12345 use keeps growing through the year
    p = p * (win.festival_patrol if patrol else win.festival)[win.day]
    if code in _STORM and site_from is None:
        boost = np.ones(365)
        boost[win.storm_day] = _STORM[code]
        if win.storm_day + 1 < 365:
            boost[win.storm_day + 1] = 1 + (_STORM[code] - 1) / 2
        p = p * boost[win.day]
    if site_from is not None:
        p = p * (win.day >= site_from)
    return np.asarray(p, dtype=np.float64)


def _draw_times(rng: np.random.Generator, profile: FloatArray, n: int, start: datetime) -> NDArray[np.datetime64]:
    cdf = np.cumsum(profile)
    hour = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    seconds = hour * 3600 + rng.integers(0, 3600, size=n)
    return np.asarray(np.datetime64(start, "s") + seconds.astype("timedelta64[s]"))


_SOURCES = np.array(["hotline", "app", "patrol"], dtype=object)
_HOTLINE, _APP, _PATROL = 0, 1, 2


@dataclass
class _Draft:
    unit: IntArray
    cat: IntArray
    site: NDArray[np.bool_]
    source: NDArray[np.int8]  # index into _SOURCES
    reported: NDArray[np.datetime64]

    def take(self, order: IntArray) -> _Draft:
        return _Draft(self.unit[order], self.cat[order], self.site[order], self.source[order], self.reported[order])


def _groups(key: IntArray, n_keys: int) -> list[IntArray]:
    """Positions of each key value 0 … n_keys-1 (one sort instead of a mask per value)."""
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(n_keys + 1))
    return [order[bounds[k]:bounds[k + 1]] for k in range(n_keys)]


def _draft_incidents(rng: np.random.Generator, spec: _Spec, codes: list[str], u: _Units, hot: _Hotspots,
                     unit_grid: IntArray, staff: _Staff, win: _Window) -> _Draft:
    """Where, what, who reported and when: intensity per unit and category from the hotspot drivers."""
    n_units = u.geom.size
    n_site = round(spec.incidents * spec.site_share)
    n_base = spec.incidents - n_site
    beta = np.zeros((len(_DRIVERS), len(codes)))
    for j, code in enumerate(codes):
        for name, w in _BEHAVIOUR[code].drivers.items():
            beta[_DRIVERS.index(name), j] = w
    lam = hot.drivers @ beta
    lam *= rng.gamma(3.0, 1 / 3.0, n_units)[:, None]  # some places just generate more complaints
    lam *= rng.gamma(6.0, 1 / 6.0, lam.shape)
    share = np.array([_BEHAVIOUR[c].share for c in codes])
    share /= share.sum()
    col = lam.sum(axis=0)
    lam *= np.where(col > 0, share / np.where(col > 0, col, 1), 0.0)
    counts = rng.multinomial(n_base, (lam / lam.sum()).ravel()).reshape(lam.shape)
    flat = np.flatnonzero(counts)
    unit = np.repeat(flat // len(codes), counts.ravel()[flat])
    cat = np.repeat(flat % len(codes), counts.ravel()[flat])
    site_cat = np.array([codes.index(c) for c in _SITE_MIX])
    site_p = np.array(list(_SITE_MIX.values()))
    s_cat = site_cat[rng.choice(site_cat.size, n_site, p=site_p / site_p.sum())]
    ring = np.unique(u.pairs[np.isin(u.pairs, hot.site_units).any(axis=1)])
    ring = ring[~np.isin(ring, hot.site_units)]
    site_pool = np.concatenate([hot.site_units, ring])
    site_w = np.concatenate([np.full(hot.site_units.size, 3.0), np.ones(ring.size)])
    s_unit = site_pool[rng.choice(site_pool.size, n_site, p=site_w / site_w.sum())]
    unit = np.concatenate([unit, s_unit])
    cat = np.concatenate([cat, s_cat])
    site = np.concatenate([np.zeros(n_base, dtype=bool), np.ones(n_site, dtype=bool)])

    p_patrol = np.where(site, 0.05, np.array([_BEHAVIOUR[c].patrol for c in codes])[cat])
    p_app = np.where(site, 0.1, np.array([_BEHAVIOUR[c].app for c in codes])[cat])
    r = rng.random(unit.size)
    source = np.where(r < p_patrol, _PATROL, np.where(r < p_patrol + p_app, _APP, _HOTLINE)).astype(np.int8)
    # Nobody patrols an unstaffed grid: most of what a worker would have found there is never reported.
    unstaffed = np.zeros(staff.supply.size, dtype=bool)
    unstaffed[staff.unstaffed] = True
    drop = (source == _PATROL) & unstaffed[unit_grid[unit]] & (rng.random(unit.size) < 0.85)
    keep = ~drop
    unit, cat, site, source = unit[keep], cat[keep], site[keep], source[keep]

    reported = np.empty(unit.size, dtype="datetime64[s]")
    site_from = (hot.site_start - win.start).days
    key = cat * 4 + site * 2 + (source == _PATROL)
    for k, sel in enumerate(_groups(key, len(codes) * 4)):
        if sel.size:
            j, is_site, is_patrol = k // 4, bool(k & 2), bool(k & 1)
            prof = _profile(win, codes[j], patrol=is_patrol, site_from=site_from if is_site else None)
            reported[sel] = _draw_times(rng, prof, sel.size, win.start)
    return _Draft(unit=unit, cat=cat, site=site, source=source, reported=reported)


def _incident_points(rng: np.random.Generator, d: _District, u: _Units, units_wgs84: NDArray[np.object_],
                     unit: IntArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Uniform points inside each incident's unit, checked again after projection to lon/lat."""
    order = np.argsort(unit, kind="stable")
    counts = np.bincount(unit, minlength=u.geom.size)
    x = np.empty(unit.size)
    y = np.empty(unit.size)
    sx, sy = geo.points_in_polygons(u.geom, counts, rng)
    x[order], y[order] = sx, sy
    to_lonlat = pyproj.Transformer.from_crs(d.crs, geo.WGS84, always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    shapely.prepare(units_wgs84)
    bad = np.flatnonzero(~shapely.contains_xy(units_wgs84[unit], lon, lat))
    for _ in range(50):  # a point within a hair of an edge may fall outside after projection: draw it again
        if bad.size == 0:
            break
        bx, by = geo.points_in_polygons(u.geom[unit[bad]], np.ones(bad.size, dtype=np.int64), rng)
        blon, blat = to_lonlat.transform(bx, by)
        x[bad], y[bad], lon[bad], lat[bad] = bx, by, blon, blat
        bad = bad[~shapely.contains_xy(units_wgs84[unit[bad]], blon, blat)]
    return x, y, np.asarray(lon), np.asarray(lat)


def _lifecycle(rng: np.random.Generator, codes: list[str], cats: pd.DataFrame, draft: _Draft, unit_grid: IntArray,
               u: _Units, staff: _Staff, win: _Window, calendar: WorkCalendar) -> dict[str, Any]:
    """Dispatch, handling and closing times; closing slows down where a grid's workload exceeds its workers' hours."""
    n = draft.unit.size
    cat_table = cats.set_index("code")
    sla = cat_table.loc[codes, "sla_hours"].to_numpy(dtype=np.float64)[draft.cat]
    handling = cat_table.loc[codes, "handling_minutes"].to_numpy(dtype=np.float64)[draft.cat]
    reported = draft.reported.astype("datetime64[us]")
    due = due_times(reported, sla, calendar)
    grid = unit_grid[draft.unit]
    n_grids = staff.supply.size
    weeks = 365 / 7
    demand = np.bincount(grid, handling / 60.0, n_grids) / weeks
    g_units = np.bincount(unit_grid, minlength=n_grids)
    assert u.households is not None
    g_hh = np.bincount(unit_grid, u.households, n_grids)
    demand += 0.4 * g_units + 0.6 * g_hh / 100.0  # routine patrol and household visits
    # A grid without its own worker is covered by the community office, a few hours a week at best.
    load = demand / (staff.supply + 4.0)
    patrol = draft.source == _PATROL
    speed = np.array([_BEHAVIOUR[c].speed for c in codes])[draft.cat]
    # Median share of the SLA used: ~0.37 (≈95 % on time) at a load of 1, rising slowly with overload
    # (≈85 % on time at load 2, ≈65 % at 4, ≈33 % at 10) and falling a little below it.
    lg = load[grid]
    median = 0.37 * lg ** np.where(lg < 1.0, 0.3, 0.55) * speed * np.where(patrol, 0.6, 1.0)
    f = np.minimum(median, 3.0) * np.exp(0.6 * rng.standard_normal(n))
    stuck_p = np.array([_BEHAVIOUR[c].stuck for c in codes])[draft.cat] * (1 + 0.5 * np.clip(lg - 1, 0, 3))
    stuck = rng.random(n) < stuck_p
    f = np.where(stuck, f * rng.uniform(6.0, 40.0, n), f)
    dispatch_min = np.where(patrol, rng.uniform(1, 8, n),
                            rng.lognormal(math.log(25.0), 0.8, n) * np.where(draft.source == _APP, 1.6, 1.0))
    dispatched = reported + (dispatch_min * 60e6).astype("timedelta64[us]")
    handled = due_times(reported, 0.85 * f * sla, calendar)
    closed = due_times(reported, f * sla, calendar)
    handled = np.maximum(handled, dispatched + (rng.uniform(3, 20, n) * 60e6).astype("timedelta64[us]"))
    closed = np.maximum(closed, handled + (rng.uniform(5, 30, n) * 60e6).astype("timedelta64[us]"))
    cancelled = ~patrol & (rng.random(n) < 0.015)  # duplicates and calls outside our remit
    end = np.datetime64(win.end, "us")
    status = np.select([cancelled, closed <= end, handled <= end, dispatched <= end],
                       ["cancelled", "closed", "handled", "dispatched"], "reported").astype(object)
    nat = np.datetime64("NaT", "us")
    closed = np.where(status == "closed", closed, nat)
    handled = np.where((status == "closed") | (status == "handled"), handled, nat)
    dispatched = np.where(dispatched <= end, dispatched, nat)
    return {"due_at": due, "dispatched_at": dispatched, "handled_at": handled, "closed_at": closed,
            "status": status}


@dataclass
class _Roads:
    ew_y: FloatArray
    ns_x: FloatArray
    names: pa.Array  # east-west roads first, then north-south ones
    minx: float
    maxy: float


def _roads(rng: np.random.Generator, d: _District) -> _Roads:
    """A street plan of names only: east-west and north-south roads every 280–520 m."""
    minx, miny, maxx, maxy = d.outline.bounds
    ew = miny + np.cumsum(rng.uniform(280, 520, int((maxy - miny) / 250) + 2))
    ns = minx + np.cumsum(rng.uniform(280, 520, int((maxx - minx) / 250) + 2))
    ew, ns = ew[ew < maxy], ns[ns < maxx]
    combos = [a + b for a in _PLACE_FIRST for b in _ROAD_LAST if a != b]
    picked = [combos[i] for i in rng.permutation(len(combos))[: ew.size + ns.size]]
    suffix = np.where(rng.random(len(picked)) < 0.85, "路", "街")
    names = pa.array([p + str(s) for p, s in zip(picked, suffix, strict=True)], type=pa.string())
    return _Roads(ew_y=ew, ns_x=ns, names=names, minx=minx, maxy=maxy)


def _nearest_line(pos: FloatArray, lines: FloatArray) -> tuple[IntArray, FloatArray]:
    i = np.clip(np.searchsorted(lines, pos), 1, lines.size - 1)
    lower = np.abs(pos - lines[i - 1]) <= np.abs(lines[i] - pos)
    idx = np.where(lower, i - 1, i)
    return idx, pos - lines[idx]


def _join(*parts: Any) -> pa.Array:
    """Concatenate Arrow string arrays and literal strings element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def _addresses(rng: np.random.Generator, roads: _Roads, x: FloatArray, y: FloatArray, cat: IntArray,
               codes: list[str], unit: IntArray, u: _Units, hot: _Hotspots, market_names: dict[int, str]) -> pa.Array:
    """Synthetic street addresses: nearest road and a house number that grows along it."""
    n = x.size
    ew, dy = _nearest_line(y, roads.ew_y)
    ns, dx = _nearest_line(x, roads.ns_x)
    on_ew = np.abs(dy) <= np.abs(dx)
    # House numbers grow along the road, odd on one side and even on the other.
    num_ew = 2 * ((x - roads.minx) // 16).astype(np.int64) + np.where(dy > 0, 1, 2)
    num_ns = 2 * ((roads.maxy - y) // 16).astype(np.int64) + np.where(dx < 0, 1, 2)
    road = pc.take(roads.names, pa.array(np.where(on_ew, ew, roads.ew_y.size + ns)))
    num = pc.cast(pa.array(np.where(on_ew, num_ew, num_ns)), pa.string())
    addr = _join(road, num, "号")
    compound = hot.drivers[unit, _DRIVERS.index("old")] + hot.drivers[unit, _DRIVERS.index("towers")] > 0.3
    lane = compound & (rng.random(n) < 0.7)
    lane_no = pc.cast(pa.array(rng.integers(1, 40, n)), pa.string())
    addr = pc.if_else(pa.array(lane), _join(road, num, "弄", lane_no, "号"), addr)
    at_crossing = np.isin(cat, [codes.index(c) for c in ("illegal_parking", "traffic_barrier", "road_sign",
                                                          "street_light")]) & (rng.random(n) < 0.45)
    cross = _join(pc.take(roads.names, pa.array(ew)), "与", pc.take(roads.names, pa.array(roads.ew_y.size + ns)),
                  "交叉口")
    addr = pc.if_else(pa.array(at_crossing), cross, addr)
    market_of_unit = np.full(u.geom.size, -1, dtype=np.int64)
    market_list = sorted(market_names)
    market_of_unit[market_list] = np.arange(len(market_list))
    in_market = market_of_unit[unit] >= 0
    if in_market.any():
        mname = pc.take(pa.array([market_names[m] for m in market_list], type=pa.string()),
                        pa.array(np.maximum(market_of_unit[unit], 0)))
        addr = pc.if_else(pa.array(in_market), _join(mname, "菜市场（", addr, "）"), addr)
    assert u.land_use is not None
    open_space = np.isin(u.land_use[unit], ("park", "water"))
    return pc.if_else(pa.array(open_space), _join(addr, "附近"), addr)


def _reporters(rng: np.random.Generator, source: NDArray[np.int8], unit: IntArray, u: _Units
               ) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    """Reporter name and phone: residents of each unit, a few of whom call again and again."""
    n = source.size
    assert u.households is not None
    pool = np.maximum(4, u.households // 15).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(pool)[:-1]])
    n_people = int(pool.sum())
    full, surname = _names(rng, n_people)
    female = rng.random(n_people) < 0.55
    honorific = np.where(female, surname + "女士", surname + "先生")
    phone = _phones(rng, n_people, landline_share=0.08)
    # Heavy-tailed choice within the unit: a few residents report much more than the rest.
    who = offset[unit] + np.minimum((pool[unit] * rng.random(n) ** 2.2).astype(np.int64), pool[unit] - 1)
    form = rng.random(n)
    hotline = source == _HOTLINE
    app = source == _APP
    # Hotline operators mostly write 王先生 / 李女士; some callers give a full name, some stay anonymous.
    pick = np.select([hotline & (form < 0.55), hotline & (form < 0.8), app & (form < 0.85), app], [1, 2, 2, 1], 0)
    name = np.choose(pick, [np.full(n, None, dtype=object), honorific[who], full[who]])
    tel = np.where((hotline & (rng.random(n) < 0.95)) | app, phone[who], None)
    return np.asarray(name, dtype=object), np.asarray(tel, dtype=object)


def _incident_frame(rng: np.random.Generator, spec: _Spec, d: _District, u: _Units, hot: _Hotspots,
                    units_wgs84: NDArray[np.object_], unit_grid: IntArray, staff: _Staff, win: _Window,
                    cats: pd.DataFrame, market_names: dict[int, str], log: _Progress) -> pd.DataFrame:
    codes = cats["code"].tolist()
    draft = _draft_incidents(rng, spec, codes, u, hot, unit_grid, staff, win)
    # Incident ids follow report time; ties (same second) are broken by unit, then at random.
    draft = draft.take(np.lexsort((rng.random(draft.unit.size), draft.unit, draft.reported)))
    x, y, lon, lat = _incident_points(rng, d, u, units_wgs84, draft.unit)
    life = _lifecycle(rng, codes, cats, draft, unit_grid, u, staff, win, WorkCalendar())
    n = draft.unit.size
    desc_idx = rng.random(n)
    description = np.empty(n, dtype=object)
    for k, sel in enumerate(_groups(draft.cat * 2 + draft.site, len(codes) * 2)):
        if sel.size:
            code = codes[k // 2]
            table = _SITE_DESCRIPTIONS if k % 2 and code in _SITE_DESCRIPTIONS else _DESCRIPTIONS
            options = np.array(table[code], dtype=object)
            description[sel] = options[(desc_idx[sel] * options.size).astype(np.int64)]
    address = _addresses(rng, _roads(rng, d), x, y, draft.cat, codes, draft.unit, u, hot, market_names)
    name, phone = _reporters(rng, draft.source, draft.unit, u)
    reported = draft.reported.astype("datetime64[us]")
    year = reported.astype("datetime64[Y]").astype(np.int64) + 1970
    starts = np.flatnonzero(np.r_[True, year[1:] != year[:-1]])
    seq = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])) + 1
    external_id = _join("DEMO-", pc.cast(pa.array(year), pa.string()), "-",
                        pc.utf8_lpad(pc.cast(pa.array(seq), pa.string()), 7, "0"))
    frame = pd.DataFrame({
        "source": pd.array(_SOURCES[draft.source], dtype="str"),
        "external_id": external_id.to_pandas(),
        "category_code": pd.array(np.array(codes, dtype=object)[draft.cat], dtype="str"),
        "reported_at": reported,
        "due_at": life["due_at"],
        "status": pd.array(life["status"], dtype="str"),
        "dispatched_at": life["dispatched_at"],
        "handled_at": life["handled_at"],
        "closed_at": life["closed_at"],
        "lon": lon,
        "lat": lat,
        "unit_id": draft.unit.astype(np.int64) + 1,
        "address": address.to_pandas(),
        "description": pd.array(description, dtype="str"),
        "reporter_name": pd.array(name, dtype="str"),
        "reporter_phone": pd.array(phone, dtype="str"),
        "batch_id": pd.Series(pd.NA, index=pd.RangeIndex(n), dtype="Int64"),
    })
    log(f"{len(frame):,} incidents")
    return frame


# ---------------------------------------------------------------------------------------------------------------
# assembling and writing
# ---------------------------------------------------------------------------------------------------------------
class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = perf_counter()

    def __call__(self, what: str) -> None:
        if self.enabled:
            print(f"demo: {what} ({perf_counter() - self.t0:.1f} s)", file=sys.stderr, flush=True)


def _parse_as_of(as_of: date | str | None) -> date:
    if as_of is None:
        # The last complete day: statuses are as of the midnight after as_of, which must not lie in the future.
        return date.today() - timedelta(days=1)
    if isinstance(as_of, datetime):
        return as_of.date()
    if isinstance(as_of, date):
        return as_of
    try:
        return date.fromisoformat(str(as_of))
    except ValueError:
        raise InputError(f"must be a date like 2026-06-30, got {as_of!r}", field="as_of") from None


def _check_size(size: str) -> _Spec:
    if size not in _SPECS:
        raise InputError(f"must be one of {', '.join(SIZES)}, got {size!r}", field="size")
    return _SPECS[size]


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"must be an integer >= 0, got {seed!r}", field="seed")
    return int(seed)


def build_demo(store: Store, *, size: str = "medium", seed: int = 0, as_of: date | str | None = None,
               progress: bool = False) -> dict[str, Any]:
    """Generate the demo district into an open, empty store.

    Parameters
    ----------
    store
        A freshly created :class:`gridgov.store.Store` without admin areas, units or incidents.
    size
        ``small`` (tests: ~200 units, ~7,500 incidents, seconds), ``medium`` (~1,000 units, ~80 grids,
        ~100,000 incidents) or ``large`` (~40,000 units, ~1,800 grids, > 2 million incidents).
    seed
        Seed of the one random generator; the same seed and ``as_of`` give identical tables.
    as_of
        Last day of the demo year (a date, an ISO date string, or None for yesterday). Incidents are reported during
        the 365 days ending at midnight after it; statuses are as of that midnight.
    progress
        Print each step and its time to stderr.

    Returns
    -------
    dict
        ``size, seed, as_of, streets, communities, units, grids, workers`` (active), ``roster``, ``assignments``,
        ``incidents``, ``open``, ``overdue``, ``households``, ``population``, ``area_km2``, ``layout_id``,
        ``seconds``.

    Raises
    ------
    InputError
        For an unknown ``size``, a negative ``seed`` or an unreadable ``as_of``.
    StoreError
        When the store already holds a district.
    """
    spec = _check_size(size)
    seed = _check_seed(seed)
    day = _parse_as_of(as_of)
    existing = store.counts(now=datetime.combine(day, time()))
    if existing["units"] or existing["incidents"] or any(existing["admin_areas"].values()):
        raise StoreError(f"{store.label} already holds a district; build the demo into a new file "
                         "(or an empty database)")
    t0 = perf_counter()
    log = _Progress(progress)
    root = np.random.default_rng(seed)
    # One child generator per stage: changing how one stage draws leaves the others' draws alone.
    r_geo, r_units, r_layout, r_staff, r_inc, r_win = root.spawn(6)
    win = _window(r_win, day)
    d = _district(r_geo, spec, log)
    u = _units(d, log)
    hot = _people(r_units, spec, d, u, win.end, log)
    comm = d.communities
    n_comm = len(comm)
    unit_grid = _hand_drawn(r_layout, spec, u, n_comm, log)
    assert u.households is not None and u.population is not None and u.land_use is not None

    # Grids: union of their units, coded by community in reading order.
    n_grids = int(unit_grid.max()) + 1
    grid_comm = np.zeros(n_grids, dtype=np.int64)
    grid_comm[unit_grid] = u.community
    members = np.argsort(unit_grid, kind="stable")
    bounds = np.searchsorted(unit_grid[members], np.arange(n_grids + 1))
    grid_geom = np.array([shapely.coverage_union_all(u.geom[members[bounds[g]:bounds[g + 1]]])
                          for g in range(n_grids)], dtype=object)
    comm_codes = comm["code"].to_numpy(dtype=object)
    grids_metric = gpd.GeoDataFrame({"community_code": comm_codes[grid_comm]}, geometry=grid_geom, crs=d.crs)
    grid_codes = assign_grid_codes(grids_metric).to_numpy(dtype=object)
    grid_hh = np.bincount(unit_grid, u.households, n_grids).astype(np.int64)
    gp = unit_grid[u.pairs]
    gp = gp[gp[:, 0] != gp[:, 1]]
    grid_pairs = np.unique(np.sort(gp, axis=1), axis=0)
    log("grid codes")
    staff = _staff(r_staff, grid_codes, grid_comm, grid_pairs, comm_codes, hot, unit_grid, grid_hh, log)

    units_wgs84 = geo.to_wgs84(u.geom, d.crs)
    cats = load_categories()
    market_names = {int(m): name for m, name in zip(hot.markets, _place_names(r_inc, hot.markets.size, "园林景湾",
                                                                              taken=set()), strict=True)}
    incidents = _incident_frame(r_inc, spec, d, u, hot, units_wgs84, unit_grid, staff, win, cats, market_names, log)

    street_code_of = dict(zip(comm["code"], comm["parent_code"], strict=True))
    district_geom = _snap(shapely.union_all(np.asarray(d.streets.geometry.values, dtype=object)))
    areas = pd.concat([
        pd.DataFrame({"code": [DISTRICT_CODE], "name": [DISTRICT_NAME], "name_en": [DISTRICT_NAME_EN],
                      "level": ["district"], "parent_code": [None], "area_m2": [float(shapely.area(district_geom))],
                      "geometry": [district_geom]}),
        pd.DataFrame(d.streets[["code", "name", "name_en", "level", "parent_code", "area_m2", "geometry"]]),
        pd.DataFrame(comm[["code", "name", "name_en", "level", "parent_code", "area_m2", "geometry"]]),
    ], ignore_index=True)
    areas_wgs84 = gpd.GeoDataFrame(areas.drop(columns="geometry"),
                                   geometry=geo.to_wgs84(areas["geometry"].to_numpy(dtype=object), d.crs),
                                   crs=geo.WGS84)
    units_gdf = gpd.GeoDataFrame({
        "unit_id": np.arange(1, u.geom.size + 1, dtype=np.int64),
        "community_code": comm_codes[u.community],
        "land_use": u.land_use,
        "area_m2": u.area,
        "households": u.households,
        "population": u.population,
    }, geometry=units_wgs84, crs=geo.WGS84)
    unit_grid_df = pd.DataFrame({"unit_id": units_gdf["unit_id"], "grid_code": grid_codes[unit_grid]})
    grids_gdf = gpd.GeoDataFrame({
        "grid_code": grid_codes,
        "community_code": comm_codes[grid_comm],
        "street_code": [street_code_of[c] for c in comm_codes[grid_comm]],
        "n_units": np.bincount(unit_grid, minlength=n_grids).astype(np.int64),
        "area_m2": np.bincount(unit_grid, u.area, n_grids),
        "households": grid_hh,
        "population": np.bincount(unit_grid, u.population, n_grids).astype(np.int64),
    }, geometry=geo.to_wgs84(grid_geom, d.crs), crs=geo.WGS84).sort_values("grid_code", ignore_index=True)

    # The layout was in force all year: it is dated at the start of the window, not at build time.
    drawn = win.start
    layout_name = f"hand-drawn {day.year}"
    store.write_categories(cats)
    store.write_admin_areas(areas_wgs84)
    store.write_units(units_gdf)
    layout_id = store.save_layout(layout_name, unit_grid=unit_grid_df, grids=grids_gdf, status="current",
                                  params={"method": "demo hand-drawn", "generator": GENERATOR_VERSION,
                                          "seed": seed, "size": size}, created_at=drawn)
    store.write_workers(staff.roster)
    store.write_assignments(layout_id, staff.assignments)
    chunk = 500_000
    with store.transaction() as con:
        for lo in range(0, len(incidents), chunk):
            store.insert_incidents(incidents.iloc[lo:lo + chunk], con=con)
    log("written")

    over_code = str(comm_codes[hot.overloaded])
    site_grid = sorted({str(grid_codes[unit_grid[s]]) for s in hot.site_units})
    open_mask = incidents["status"].isin(["reported", "dispatched", "handled"])
    overdue = int((open_mask & (incidents["due_at"] < np.datetime64(win.end, "us"))).sum())
    hidden = {
        "overloaded_community": over_code,
        "overloaded_market_unit": int(hot.market_unit) + 1,
        "construction_site_units": [int(s) + 1 for s in hot.site_units],
        "construction_site_grids": site_grid,
        "construction_site_since": hot.site_start.date().isoformat(),
        "riverside_park_units": [int(p) + 1 for p in hot.park_units],
        "unstaffed_grids": sorted(str(grid_codes[g]) for g in staff.unstaffed),
        "storm_day": (win.start.date() + timedelta(days=win.storm_day)).isoformat(),
    }
    store.set_meta({
        "district_name": DISTRICT_NAME,
        "district_name_en": DISTRICT_NAME_EN,
        "district_code": DISTRICT_CODE,
        "metric_crs": d.crs,
        "demo_seed": str(seed),
        "demo_size": size,
        "demo_generator": GENERATOR_VERSION,
        "as_of": day.isoformat(),
        "demo_window_start": win.start.isoformat(),
        "demo_window_end": win.end.isoformat(),
        "demo_hidden": json.dumps(hidden, ensure_ascii=False, sort_keys=True),
    })
    # The documented demo users (docs/access.md), all with the published demo password: `gridgov serve` refuses
    # them unless told it serves a demo (--demo).
    users = create_demo_users(store, at=win.end)
    active = int(staff.roster["active"].sum())
    return {
        "size": size,
        "seed": seed,
        "as_of": day.isoformat(),
        "area_km2": round(float(shapely.area(district_geom)) / 1e6, 2),
        "streets": len(d.streets),
        "communities": n_comm,
        "units": int(u.geom.size),
        "grids": n_grids,
        "workers": active,
        "roster": len(staff.roster),
        "assignments": len(staff.assignments),
        "households": int(u.households.sum()),
        "population": int(u.population.sum()),
        "incidents": len(incidents),
        "open": int(open_mask.sum()),
        "overdue": overdue,
        "layout_id": layout_id,
        "users": [u.username for u in users],
        "seconds": round(perf_counter() - t0, 1),
    }


def build_demo_file(path: Path | str, *, size: str = "medium", seed: int = 0, as_of: date | str | None = None,
                    force: bool = False, progress: bool = False) -> dict[str, Any]:
    """Build the demo district into a new database file.

    The build goes into a temporary file next to ``path`` that is renamed into place at the end, so an interrupted
    build never leaves a half-written database behind. A ``postgresql://`` URL names an existing database that
    must hold no district yet; the demo is written into it (``force`` cannot replace a server database: drop and
    create it with its administrator's tools).

    Parameters
    ----------
    path
        The DuckDB file to create, or a PostgreSQL database URL.
    size, seed, as_of, progress
        As in :func:`build_demo`.
    force
        Replace ``path`` if it exists.

    Returns
    -------
    dict
        The summary of :func:`build_demo` plus ``db`` (the path) and ``seconds`` (whole build).

    Raises
    ------
    InputError
        When ``path`` exists and ``force`` is not set, or an argument is invalid.
    """
    t0 = perf_counter()
    _check_size(size)
    _check_seed(seed)
    _parse_as_of(as_of)
    backend, location = parse_location(path)
    if backend == "postgresql":
        with Store(location) as store:
            summary = build_demo(store, size=size, seed=seed, as_of=as_of, progress=progress)
            store.refresh_statistics()  # the planner's view of the new rows, at once
        return {"db": describe_location(location), **summary, "seconds": round(perf_counter() - t0, 1)}
    target = Path(location)
    if target.exists() and not force:
        raise InputError(f"{target} already exists; pass --force (force=True) to replace it", field="force")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.building-{os.getpid()}")
    tmp_wal = tmp.with_name(tmp.name + ".wal")
    for stale in (tmp, tmp_wal):
        stale.unlink(missing_ok=True)
    try:
        store = Store(tmp)
        try:
            summary = build_demo(store, size=size, seed=seed, as_of=as_of, progress=progress)
        finally:
            store.close()
        # A write-ahead log left by the file we replace would be replayed onto the new one.
        target.with_name(target.name + ".wal").unlink(missing_ok=True)
        if tmp_wal.exists():
            os.replace(tmp_wal, target.with_name(target.name + ".wal"))
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp_wal):
            leftover.unlink(missing_ok=True)
    return {"db": str(target), **summary, "seconds": round(perf_counter() - t0, 1)}
