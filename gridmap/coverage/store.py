"""Loading an area's buildings, stations and roads from PostGIS into arrays, once.

Every query here lets the GiST indexes answer: areas of any level (a community, a
street, a district, a whole city) are matched with ``ST_Intersects`` on geometry,
and "within so many metres" is a bounding-box test in degrees (``&&`` with
``ST_Expand``, wide enough for the metres at the area's latitude) before the exact
test on the spheroid (:func:`within_metres`). ``ST_DWithin`` on geography alone
cannot use the geometry index and read every road of a city for each call.
Geometry comes as WKB in bulk and is decoded by shapely in one call per column;
each building's grid and community are found in one STRtree query over the area's
grids and communities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from sqlalchemy import ColumnElement, LargeBinary, and_, func, literal, null, or_, select, text
from sqlalchemy.orm import Session

from gridmap.coverage.network import road_levels
from gridmap.features import NotFound
from gridmap.geometry import MetricFrame
from gridmap.models import Area, Building, Grid, Road, Station
from gridmap.settings import STORAGE_SRID
from gridmap.topology.checks import COMMUNITY_TILES

#: Metres in a degree of latitude, rounded down from its shortest (110,574 m at the
#: equator on WGS 84), so a box this many degrees wide holds at least the metres asked.
METRES_PER_DEGREE = 110_000.0


@dataclass
class BuildingArrays:
    """Residential buildings (households > 0) of the area; coordinates in metres."""

    ids: np.ndarray
    codes: np.ndarray
    households: np.ndarray
    population: np.ndarray
    xy: np.ndarray
    grid: np.ndarray  # code of the general or dedicated grid holding the point, or None
    community: np.ndarray  # code of the community holding the point, or None
    frame: MetricFrame | None = None
    #: Footprints (or points) as fetched: one ``ST_Collect`` WKB and the order that
    #: sorts its parts by id; decoded and projected when first asked for.
    shapes_wkb: bytes | None = field(default=None, repr=False)
    shapes_order: np.ndarray | None = field(default=None, repr=False)
    _shapes_m: np.ndarray | None = field(default=None, repr=False)

    @property
    def shapes_m(self) -> np.ndarray:
        """Footprint, or the point where there is none, in metres (decoded and projected
        when first asked: a summary does not need them).

        Raises
        ------
        ValueError
            The buildings were loaded without their shapes (``load_area(shapes=False)``).
        """
        if self._shapes_m is None:
            if len(self.ids) and self.shapes_wkb is None:
                raise ValueError("these buildings were loaded without their shapes")
            lonlat = _parts(self.shapes_wkb)
            if self.shapes_order is not None:
                lonlat = lonlat[self.shapes_order]
            self._shapes_m = (
                self.frame.to_metric(lonlat)
                if self.frame is not None and len(lonlat)
                else np.array([], dtype=object)
            )
        return self._shapes_m


@dataclass
class StationArrays:
    """Stations of one kind that can serve the area (within reach of it)."""

    ids: np.ndarray
    names: list[str]
    capacity: list[int | None]
    xy: np.ndarray


@dataclass
class AreaData:
    """What a coverage analysis needs, fetched once."""

    frame: MetricFrame
    area_m: shapely.Geometry
    buildings: BuildingArrays
    stations: StationArrays
    roads_m: np.ndarray
    road_levels: np.ndarray  # level of each road (bridge, tunnel, layer), 0 at grade


def _wkb(values) -> np.ndarray:
    return shapely.from_wkb([bytes(v) for v in values]) if len(values) else np.array([])


def _parts(collection) -> np.ndarray:
    """The geometries of a collection's WKB (``ST_Collect``), in order; none for NULL."""
    if collection is None:
        return np.array([], dtype=object)
    return shapely.get_parts(shapely.from_wkb(bytes(collection)))


def _xy(points: np.ndarray) -> np.ndarray:
    return shapely.get_coordinates(points) if len(points) else np.zeros((0, 2))


def within_metres(
    column: ColumnElement,
    area: ColumnElement,
    metres: float,
    bounds: tuple[float, float, float, float],
) -> ColumnElement:
    """SQL: ``column`` lies within ``metres`` of ``area`` on the spheroid, tested first
    against ``area``'s box grown by as many degrees as those metres can span, so the
    GiST index on ``column`` answers.

    Parameters
    ----------
    column, area
        Geometries in lon/lat (EPSG:4326); ``area`` a value or scalar subquery.
    metres
        The distance on the spheroid (``ST_DWithin`` on geography).
    bounds
        ``area``'s bounds in degrees (min lon, min lat, max lon, max lat): the box is
        widest in longitude at the latitude farthest from the equator.

    Returns
    -------
    sqlalchemy.ColumnElement
        ``column && ST_Expand(area, dx, dy) AND (ST_Intersects(column, area) OR
        ST_DWithin(Geography(column), Geography(area), metres))``; what lies in the
        area is never measured.
    """
    dy = metres / METRES_PER_DEGREE
    latitude = min(max(abs(bounds[1]), abs(bounds[3])) + dy, 89.0)
    dx = min(metres / (METRES_PER_DEGREE * math.cos(math.radians(latitude))), 360.0)
    return and_(
        column.op("&&")(func.ST_Expand(area, dx, dy)),
        or_(
            func.ST_Intersects(column, area),
            func.ST_DWithin(func.Geography(column), func.Geography(area), metres),
        ),
    )


def _holder_codes(points: np.ndarray, polygons: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The least code of the polygons holding each point (``None`` where none does),
    as ``min(code)`` over ``ST_Intersects`` gives it."""
    holder = np.full(len(points), None, dtype=object)
    if not len(points) or not len(polygons):
        return holder
    point_of, polygon_of = shapely.STRtree(polygons).query(points, predicate="intersects")
    if len(point_of):
        # Sort by point, then code (by its rank among the codes), keep each point's first.
        rank = np.empty(len(codes), dtype=np.int64)
        rank[np.argsort(codes.astype(str))] = np.arange(len(codes))
        order = np.lexsort((rank[polygon_of], point_of))
        point_of, polygon_of = point_of[order], polygon_of[order]
        first = np.concatenate([[True], point_of[1:] != point_of[:-1]])
        holder[point_of[first]] = codes[polygon_of[first]]
    return holder


def _polygons(session: Session, query) -> tuple[np.ndarray, np.ndarray]:
    rows = session.execute(query).all()
    codes = np.array([r[0] for r in rows], dtype=object)
    return _wkb([r[1] for r in rows]), codes


def load_area(
    session: Session,
    code: str,
    kind: str,
    reach_m: float,
    roads: bool = True,
    shapes: bool = True,
) -> AreaData:
    """Buildings in the area, stations of ``kind`` and walkable roads (with their
    levels) within reach of it.

    Stations and roads just outside the area count: residents cross its edge.

    Parameters
    ----------
    code
        Code of an area of any level (community, street, district, city).
    reach_m
        Metres beyond the area's edge from which stations and roads are taken.
    roads
        Whether to load the roads (not needed for straight-line coverage).
    shapes
        Whether to load the footprints (for gaps, maps and GeoJSON; a summary needs
        none: without them a city of 900,000 homes loads 1 s sooner).

    Raises
    ------
    gridmap.features.NotFound
        No area with that code.
    """
    # These queries are index scans: compiling them (PostgreSQL's JIT, which their cost
    # estimates set off) took longer than running them (0.2 s against 0.07 s for a street).
    session.execute(text("SET LOCAL jit = off"))
    found = session.execute(
        select(Area.id, func.ST_AsBinary(Area.geom)).where(Area.code == code)
    ).first()
    if found is None:
        raise NotFound(f"no area with code {code!r}")
    area_lonlat = shapely.from_wkb(bytes(found[1]))
    frame = MetricFrame(area_lonlat)
    # The area as a value, not a subquery: the planner then sees how much of each table
    # it holds (a city: most of it, read in a parallel scan, 0.5 s for 900,000 buildings
    # against 2.1 s through the index, which it picks for an unknown area).
    area_geom = func.ST_GeomFromWKB(literal(bytes(found[1]), LargeBinary), STORAGE_SRID)
    # One row of arrays and collections: decoding 100,000 rows one by one took longer
    # than the query. The aggregates take the rows in one order (one scan feeds them
    # all) and are sorted by id here: a sort per aggregate in the database cost more.
    ids, codes, households, population, points_wkb, shapes_wkb = session.execute(
        select(
            func.array_agg(Building.id),
            func.array_agg(Building.code),
            func.array_agg(Building.households),
            func.array_agg(Building.population),
            func.ST_AsBinary(func.ST_Collect(Building.point)),
            func.ST_AsBinary(func.ST_Collect(func.coalesce(Building.footprint, Building.point)))
            if shapes
            else null(),
        ).where(Building.households > 0, func.ST_Intersects(Building.point, area_geom))
    ).one()
    ids = np.array(ids or [], dtype=np.int64)
    by_id = np.argsort(ids, kind="stable")
    points = _parts(points_wkb)[by_id]
    grids, grid_codes = _polygons(
        session,
        select(Grid.code, func.ST_AsBinary(Grid.geom)).where(
            Grid.active,
            Grid.kind.in_(COMMUNITY_TILES),
            func.ST_Intersects(Grid.geom, area_geom),
        ),
    )
    communities, community_codes = _polygons(
        session,
        select(Area.code, func.ST_AsBinary(Area.geom)).where(
            Area.level == "community", func.ST_Intersects(Area.geom, area_geom)
        ),
    )
    buildings = BuildingArrays(
        ids=ids[by_id],
        codes=np.array(codes or [], dtype=object)[by_id],
        households=np.array(households or [], dtype=np.int64)[by_id],
        population=np.array(population or [], dtype=np.int64)[by_id],
        xy=_xy(frame.to_metric(points)) if len(points) else np.zeros((0, 2)),
        grid=_holder_codes(points, grids, grid_codes),
        community=_holder_codes(points, communities, community_codes),
        frame=frame,
        shapes_wkb=None if shapes_wkb is None else bytes(shapes_wkb),
        shapes_order=by_id,
    )

    bounds = area_lonlat.bounds
    station_rows = session.execute(
        select(Station.id, Station.name, Station.capacity, func.ST_AsBinary(Station.geom))
        .where(Station.kind == kind, within_metres(Station.geom, area_geom, reach_m, bounds))
        .order_by(Station.id)
    ).all()
    stations = StationArrays(
        ids=np.array([r[0] for r in station_rows], dtype=np.int64),
        names=[r[1] for r in station_rows],
        capacity=[r[2] for r in station_rows],
        xy=_xy(frame.to_metric(_wkb([r[3] for r in station_rows]))),
    )

    road_ids, roads_wkb, bridge, tunnel, layer = (
        session.execute(
            select(
                func.array_agg(Road.id),
                func.ST_AsBinary(func.ST_Collect(Road.geom)),
                func.array_agg(Road.bridge),
                func.array_agg(Road.tunnel),
                func.array_agg(Road.layer),
            ).where(Road.walkable, within_metres(Road.geom, area_geom, reach_m, bounds))
        ).one()
        if roads
        else (None, None, None, None, None)
    )
    by_id = np.argsort(np.array(road_ids or [], dtype=np.int64), kind="stable")
    roads_lonlat = _parts(roads_wkb)[by_id]
    bridge, tunnel, layer = (
        np.array(v or [], dtype=object)[by_id] for v in (bridge, tunnel, layer)
    )
    return AreaData(
        frame,
        frame.to_metric(area_lonlat),
        buildings,
        stations,
        frame.to_metric(roads_lonlat),
        road_levels(bridge, tunnel, layer, n=len(roads_lonlat)),
    )
