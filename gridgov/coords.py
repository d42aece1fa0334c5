"""Chinese web-map coordinates: GCJ-02 (高德/腾讯/Google China) and BD-09 (百度) to WGS84.

Maps published in China shift coordinates by an obfuscation (GCJ-02; Baidu adds its own on top, BD-09), hundreds
of metres from the true WGS84 position. A 12345 work-order export usually carries GCJ-02 (or BD-09) points, so
importing them as WGS84 would put incidents in the wrong grid. The forward GCJ-02 transform is the published
formula; its inverse has no closed form, so :func:`gcj02_to_wgs84` solves it by fixed-point iteration to about a
millimetre. Outside mainland China (roughly) the offset is not applied, as the map providers do.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_BD_PI = np.pi * 3000.0 / 180.0


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """The rough box inside which the GCJ-02 offset applies."""
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon_a >= 72.004) & (lon_a <= 137.8347) & (lat_a >= 0.8293) & (lat_a <= 55.8271)


def _offset(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, y = lon - 105.0, lat - 35.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
             + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
             + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
             + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    d_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
             + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
             + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
             + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sq = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sq) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sq * np.cos(rad) * np.pi)
    return d_lon, d_lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS84 → GCJ-02 (the published forward formula).

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02([116.391349], [39.907375])  # Tiananmen, Beijing
    >>> round(float(lon[0]), 6), round(float(lat[0]), 6)
    (116.39759, 39.908776)
    >>> wgs84_to_gcj02([-118.2437], [34.0522])[0].tolist()  # Los Angeles: no offset outside China
    [-118.2437]
    """
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    d_lon, d_lat = _offset(lon_a, lat_a)
    inside = in_china(lon_a, lat_a)
    return np.where(inside, lon_a + d_lon, lon_a), np.where(inside, lat_a + d_lat, lat_a)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, iterations: int = 30,
                   tol: float = 1e-9) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GCJ-02 → WGS84 by fixed-point iteration on the forward transform (error well under a metre).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84([116.39759019], [39.90877629])
    >>> round(float(lon[0]), 6), round(float(lat[0]), 6)
    (116.391349, 39.907375)
    """
    g_lon, g_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(iterations):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if np.nanmax(np.abs(np.concatenate([e_lon, e_lat])), initial=0.0) < tol:
            break
    return w_lon, w_lat


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BD-09 (Baidu) → GCJ-02."""
    x = np.asarray(lon, dtype=float) - 0.0065
    y = np.asarray(lat, dtype=float) - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _BD_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_PI)
    return z * np.cos(theta), z * np.sin(theta)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BD-09 (Baidu) → WGS84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


#: Names accepted wherever a CRS is asked for (``--crs``, a preset's ``crs``), besides what pyproj knows.
CHINESE_DATUMS = {"GCJ02": gcj02_to_wgs84, "BD09": bd09_to_wgs84}


def chinese_datum(text: str) -> str | None:
    """``GCJ02``/``BD09`` when ``text`` names one of them (``gcj-02``, ``GCJ02``, ``火星坐标``, ``bd09``, ``百度``…)."""
    key = text.strip().upper().replace("-", "").replace("_", "").replace(" ", "")
    if key in ("GCJ02", "GCJ", "火星坐标", "国测局", "高德"):
        return "GCJ02"
    if key in ("BD09", "BD09LL", "百度", "BAIDU"):
        return "BD09"
    return None
