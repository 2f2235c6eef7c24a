"""Geometry checks and CRS handling shared by import, the API and the engines.

Geometry crosses between PostGIS (WKB) and shapely here and in :mod:`gridmap.io.store`;
every input geometry passes :func:`geometry_problems` before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiLineString, MultiPolygon

from gridmap.settings import EQUIVALENT_SRIDS, STORAGE_SRID

_LOCATION = re.compile(r"\[(-?[\d.eE+-]+) (-?[\d.eE+-]+)\]")


#: Most vertices one geometry of a layer may have. A building's footprint of 5,000
#: vertices is already a surveyed outline traced at centimetres; a grid or an area of
#: 50,000 follows every wall of a large community. Each is read, checked and drawn in
#: well under a second; the 500,000-vertex footprint of issue 12 took 3.7 s per read.
MAX_VERTICES: dict[str, int] = {
    "buildings": 5_000,
    "stations": 1,
    "roads": 20_000,
    "grids": 50_000,
    "areas": 50_000,
}
#: How far (degrees) outside the area of use of its CRS a coordinate may lie: a UTM
#: zone is used a zone's half-width beyond its edges by cities that straddle two.
CRS_AREA_MARGIN_DEG = 3.0
#: How far (metres) from every stored street or community a new feature may lie;
#: farther, its coordinates are taken to be in another CRS than the one named (an
#: EPSG:3857 point sent as EPSG:4326 lands 12,000 km away). Without areas, any place.
MAX_DISTANCE_FROM_AREAS_M = 50_000.0


class CRSProblem(ValueError):
    """An input CRS gridmap cannot take."""


def parse_crs(value: str | int | None) -> CRS:
    """Read a CRS given as ``EPSG:4490``, an OGC URN or URL, WKT, or an EPSG number.

    ``None`` means GeoJSON's default, WGS 84 longitude/latitude.
    """
    if value is None or value == "":
        return CRS.from_epsg(STORAGE_SRID)
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise CRSProblem(f"unknown CRS {value!r}") from exc


@lru_cache(maxsize=32)
def _transformer(crs_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(crs_wkt), STORAGE_SRID, always_xy=True)


def to_storage_crs(geoms: Sequence[shapely.Geometry | None], crs: CRS) -> list:
    """Reproject geometries to EPSG:4326 (CGCS2000 and WGS 84 pass through unchanged).

    Parameters
    ----------
    geoms
        Shapely geometries (``None`` stays ``None``) in ``crs``.
    crs
        Their coordinate reference system.

    Returns
    -------
    list
        The geometries in longitude/latitude degrees.
    """
    if crs.to_epsg() in EQUIVALENT_SRIDS:
        return list(geoms)
    transformer = _transformer(crs.to_wkt())

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return [None if g is None else shapely.transform(g, project) for g in geoms]


def crs_area_problems(geoms: Sequence[shapely.Geometry | None], crs: CRS) -> list[dict]:
    """Geometries (in EPSG:4326) that lie outside the area of use of the CRS they came in.

    Parameters
    ----------
    geoms
        Geometries already reprojected to longitude/latitude (``None`` is skipped).
    crs
        The CRS they were sent in; one without a stated area of use is taken anywhere.

    Returns
    -------
    list of dict
        ``{"index", "reason", "location"}`` per geometry outside the area (by
        :data:`CRS_AREA_MARGIN_DEG` or more).
    """
    area = crs.area_of_use
    if area is None or crs.to_epsg() == STORAGE_SRID:  # the world: geometry_problems says it
        return []
    margin = CRS_AREA_MARGIN_DEG
    problems = []
    for index, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        coords = shapely.get_coordinates(geom)
        outside = (
            (coords[:, 0] < area.west - margin)
            | (coords[:, 0] > area.east + margin)
            | (coords[:, 1] < area.south - margin)
            | (coords[:, 1] > area.north + margin)
        )
        outside |= ~np.isfinite(coords).all(axis=1)  # beyond what the projection maps
        if outside.any():
            lon, lat = coords[int(np.argmax(outside))]
            problem = {
                "index": index,
                "reason": f"coordinate outside the area of use of {crs.name} "
                f"({area.name}): is the CRS right?",
            }
            if np.isfinite([lon, lat]).all():
                problem["location"] = [float(lon), float(lat)]
            problems.append(problem)
    return problems


def vertex_problem(geom: shapely.Geometry | None, limit: int | None) -> dict | None:
    """The problem of a geometry with more than ``limit`` vertices, or ``None``."""
    if geom is None or limit is None:
        return None
    count = int(shapely.get_num_coordinates(geom))
    if count <= limit:
        return None
    return {"reason": f"geometry has {count} vertices; at most {limit} are taken here"}


def geometry_problems(
    geom: shapely.Geometry | None, allowed: Sequence[str], max_vertices: int | None = None
) -> list[dict]:
    """Everything wrong with one input geometry, or an empty list.

    Parameters
    ----------
    geom
        A shapely geometry in EPSG:4326, or ``None`` when the input had none.
    allowed
        Geometry type names the layer takes (``"Polygon"``, ``"Point"``, ...).
    max_vertices
        Most vertices the layer takes (:data:`MAX_VERTICES`); checked before the
        costly validity test.

    Returns
    -------
    list of dict
        Each problem has a ``reason`` and, where it has one, a ``location``
        ``[lon, lat]`` of the fault.
    """
    if geom is None:
        return [{"reason": "missing geometry"}]
    if geom.geom_type not in allowed:
        return [{"reason": f"geometry type {geom.geom_type} is not one of {', '.join(allowed)}"}]
    if geom.is_empty:
        return [{"reason": "empty geometry"}]
    too_many = vertex_problem(geom, max_vertices)
    if too_many:
        return [too_many]
    coords = shapely.get_coordinates(geom)
    finite = np.isfinite(coords).all(axis=1)
    if not finite.all():
        return [
            {
                "reason": "coordinate is not a finite number (NaN or infinity)",
                "index": int(np.argmin(finite)),
            }
        ]
    outside = (np.abs(coords[:, 0]) > 180) | (np.abs(coords[:, 1]) > 90)
    if outside.any():
        lon, lat = coords[int(np.argmax(outside))]
        return [
            {
                "reason": "coordinate outside longitude -180..180 / latitude -90..90 "
                "(is the CRS right?)",
                "location": [float(lon), float(lat)],
            }
        ]
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        problem: dict = {"reason": f"invalid geometry: {reason}"}
        match = _LOCATION.search(reason)
        if match:
            problem["location"] = [float(match.group(1)), float(match.group(2))]
        return [problem]
    return []


def as_multipolygon(geom: shapely.Geometry) -> MultiPolygon:
    """A Polygon or MultiPolygon as a MultiPolygon."""
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def single_part(geom: shapely.Geometry) -> shapely.Geometry:
    """A one-part Multi* geometry as its part; anything else unchanged."""
    if isinstance(geom, MultiPolygon | MultiLineString) and len(geom.geoms) == 1:
        return geom.geoms[0]
    return geom


#: GeoJSON geometry types and how deep their coordinate arrays nest.
_NESTING = {
    "Point": 0,
    "LineString": 1,
    "Polygon": 2,
    "MultiPoint": 1,
    "MultiLineString": 2,
    "MultiPolygon": 3,
}


def _position_problem(position: object) -> str | None:
    if not isinstance(position, list) or len(position) < 2:
        return "a position must be an array of two numbers [lon, lat]"
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in position):
        return "coordinates must be numbers"
    return None


def _structure_problems(value: object, depth: int, kind: str, path: str) -> list[dict]:
    """Problems in nested coordinate arrays (closed rings, positions of numbers)."""
    if depth == 0:
        problem = _position_problem(value)
        return [{"reason": f"{problem} (coordinates{path})"}] if problem else []
    if not isinstance(value, list):
        return [{"reason": f"coordinates{path} must be an array"}]
    problems: list[dict] = []
    for i, item in enumerate(value):
        problems.extend(_structure_problems(item, depth - 1, kind, f"{path}[{i}]"))
    if problems:
        return problems
    if kind in ("Polygon", "MultiPolygon") and depth == 1:
        if len(value) < 4:
            return [
                {
                    "reason": f"ring coordinates{path} needs at least 4 positions",
                    "location": value[0][:2] if value else None,
                }
            ]
        if value[0][:2] != value[-1][:2]:
            return [
                {
                    "reason": f"ring coordinates{path} is not closed (first and last "
                    "positions differ)",
                    "location": value[0][:2],
                }
            ]
    if kind == "LineString" and depth == 1 and len(value) < 2:
        return [{"reason": "a LineString needs at least 2 positions"}]
    return problems


def geometry_from_geojson(obj: object) -> tuple[shapely.Geometry | None, list[dict]]:
    """Parse a GeoJSON geometry object strictly (no silent ring closing).

    Returns
    -------
    geometry, problems
        The shapely geometry, or ``None`` with the reasons it could not be read
        (each with a ``location`` where there is one).
    """
    if obj is None:
        return None, []
    if not isinstance(obj, dict) or obj.get("type") not in _NESTING:
        return None, [
            {
                "reason": "geometry must be a GeoJSON geometry object with a type of "
                + ", ".join(_NESTING)
            }
        ]
    kind = obj["type"]
    if "coordinates" not in obj:
        return None, [{"reason": f"{kind} has no coordinates"}]
    problems = _structure_problems(obj["coordinates"], _NESTING[kind], kind, "")
    if problems:
        return None, problems
    try:
        # Heights are dropped: gridmap's geometry is two-dimensional.
        return shapely.force_2d(shapely.geometry.shape(obj)), []
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        return None, [{"reason": f"unreadable {kind}: {exc}"}]


class MetricFrame:
    """A metric CRS for one area (the UTM zone of its centre), and the way there and back.

    Areas, lengths and tolerances in metres are computed in this frame; results
    go back to longitude/latitude for storage and maps.
    """

    def __init__(self, reference: shapely.Geometry):
        centre = reference.centroid
        zone = int((centre.x + 180) // 6) % 60 + 1
        self.epsg = (32600 if centre.y >= 0 else 32700) + zone
        self._forward = Transformer.from_crs(STORAGE_SRID, self.epsg, always_xy=True)
        self._back = Transformer.from_crs(self.epsg, STORAGE_SRID, always_xy=True)

    @staticmethod
    def _apply(transformer: Transformer, geom):
        def project(coords: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(coords[:, 0], coords[:, 1])
            return np.column_stack([x, y])

        return None if geom is None else shapely.transform(geom, project)

    def to_metric(self, geom):
        """A lon/lat geometry (or array of them) in this frame's metres."""
        return self._apply(self._forward, geom)

    def to_lonlat(self, geom):
        """A geometry in this frame's metres back in lon/lat."""
        return self._apply(self._back, geom)
