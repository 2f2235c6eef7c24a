"""China's offset coordinate systems: GCJ-02 (Amap, Tencent) and BD-09 (Baidu).

PROJ has neither: GCJ-02 is WGS 84 longitude/latitude shifted by a published
obfuscation formula (the Krasovsky 1940 ellipsoid's a = 6378245 m and
e² = 0.00669342162296594323), and BD-09 is GCJ-02 shifted again by Baidu's formula.
The forward shifts are closed formulas; the way back to WGS 84 is found by fixed-point
iteration (the shift changes by well under a millimetre per metre, so each step
gains about four decimal places; 1e-9° ≈ 0.1 mm). Inside mainland China only: outside
the rough box the offset does not apply (as the Chinese map services themselves do).

No well-kept library was found on PyPI (``eviltransform``, ``coord-convert`` and
``prcoords`` had their last releases in 2018-2019 and work point by point), so the
formula is here, vectorised with numpy, and tested against published pairs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely

#: Krasovsky 1940 semi-major axis (m) and first eccentricity squared, as GCJ-02 uses.
KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323
#: Baidu's constant (π × 3000 / 180).
_X_PI = np.pi * 3000.0 / 180.0

#: Names (upper case, without punctuation) accepted for each system.
OFFSET_CRS = {
    "GCJ02": "GCJ-02",
    "GCJ": "GCJ-02",
    "AMAP": "GCJ-02",
    "TENCENT": "GCJ-02",
    "MARS": "GCJ-02",
    "BD09": "BD-09",
    "BD09LL": "BD-09",
    "BAIDU": "BD-09",
}


def offset_crs(value: str | None) -> str | None:
    """``"GCJ-02"`` or ``"BD-09"`` when ``value`` names one of them, else ``None``.

    >>> offset_crs("gcj02"), offset_crs("BD-09"), offset_crs("EPSG:4490")
    ('GCJ-02', 'BD-09', None)
    """
    if not value or not isinstance(value, str):
        return None
    key = "".join(ch for ch in value.upper() if ch.isalnum())
    return OFFSET_CRS.get(key)


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Whether points lie in the box where the offset applies (73.66–137.05° E,
    3.86–53.55° N, the box every published implementation uses)."""
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _shift(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 offset (degrees) at WGS 84 points."""
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1 - KRASOVSKY_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1 - KRASOVSKY_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (KRASOVSKY_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 longitude/latitude (degrees) to GCJ-02."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _shift(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(
    lon: np.ndarray, lat: np.ndarray, tolerance: float = 1e-10, max_steps: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitude/latitude (degrees) to WGS 84, by fixed-point iteration.

    Starts at ``gcj - shift(gcj)`` and corrects by the residual of the forward
    formula until every point moves less than ``tolerance`` degrees.
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(max_steps):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        wlon, wlat = wlon - dlon, wlat - dlat
        if np.all(np.abs(dlon) < tolerance) and np.all(np.abs(dlat) < tolerance):
            break
    return wlon, wlat


def gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to BD-09 (Baidu's published formula)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to GCJ-02 (the inverse Baidu formula, exact to a few centimetres)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = lon - 0.0065, lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def bd09_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to WGS 84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def wgs84_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 to BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


_TO_WGS84: dict[str, Callable] = {"GCJ-02": gcj02_to_wgs84, "BD-09": bd09_to_wgs84}
_FROM_WGS84: dict[str, Callable] = {"GCJ-02": wgs84_to_gcj02, "BD-09": wgs84_to_bd09}


def _transform_geoms(geoms: list, function: Callable) -> list:
    def apply(coords: np.ndarray) -> np.ndarray:
        lon, lat = function(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return [None if g is None else shapely.transform(g, apply) for g in geoms]


def to_wgs84(geoms: list, system: str) -> list:
    """Geometries in ``"GCJ-02"`` or ``"BD-09"`` as WGS 84 (``None`` stays ``None``)."""
    return _transform_geoms(geoms, _TO_WGS84[system])


def from_wgs84(geoms: list, system: str) -> list:
    """WGS 84 geometries as ``"GCJ-02"`` or ``"BD-09"`` (``None`` stays ``None``)."""
    return _transform_geoms(geoms, _FROM_WGS84[system])
