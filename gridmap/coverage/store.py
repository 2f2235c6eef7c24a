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
from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from gridmap.coverage.network import road_levels
from gridmap.features import NotFound
from gridmap.geometry import MetricFrame
from gridmap.models import Area, Building, Grid, Road, Station
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
    shapes_lonlat: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    _shapes_m: np.ndarray | None = field(default=None, repr=False)

    @property
    def shapes_m(self) -> np.ndarray:
        """Footprint, or the point where there is none, in metres (projected when
        first asked: a summary does not need them)."""
        if self._shapes_m is None:
            self._shapes_m = (
                self.frame.to_metric(self.shapes_lonlat)
                if self.frame is not None and len(self.shapes_lonlat)
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
        # Sort by point, then code, and keep each point's first.
        order = np.lexsort((codes[polygon_of].astype(str), point_of))
        point_of, polygon_of = point_of[order], polygon_of[order]
        first = np.concatenate([[True], point_of[1:] != point_of[:-1]])
        holder[point_of[first]] = codes[polygon_of[first]]
    return holder


def _polygons(session: Session, query) -> tuple[np.ndarray, np.ndarray]:
    rows = session.execute(query).all()
    codes = np.array([r[0] for r in rows], dtype=object)
    return _wkb([r[1] for r in rows]), codes


def load_area(
    session: Session, code: str, kind: str, reach_m: float, roads: bool = True
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
    area_geom = select(Area.geom).where(Area.id == found[0]).scalar_subquery()
    # One row of arrays and collections: decoding 100,000 rows one by one took longer
    # than the query.
    order = Building.id
    ids, codes, households, population, points_wkb, shapes_wkb = session.execute(
        select(
            func.array_agg(aggregate_order_by(Building.id, order)),
            func.array_agg(aggregate_order_by(Building.code, order)),
            func.array_agg(aggregate_order_by(Building.households, order)),
            func.array_agg(aggregate_order_by(Building.population, order)),
            func.ST_AsBinary(func.ST_Collect(aggregate_order_by(Building.point, order))),
            func.ST_AsBinary(
                func.ST_Collect(
                    aggregate_order_by(func.coalesce(Building.footprint, Building.point), order)
                )
            ),
        ).where(Building.households > 0, func.ST_Intersects(Building.point, area_geom))
    ).one()
    points = _parts(points_wkb)
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
        ids=np.array(ids or [], dtype=np.int64),
        codes=np.array(codes or [], dtype=object),
        households=np.array(households or [], dtype=np.int64),
        population=np.array(population or [], dtype=np.int64),
        xy=_xy(frame.to_metric(points)) if len(points) else np.zeros((0, 2)),
        grid=_holder_codes(points, grids, grid_codes),
        community=_holder_codes(points, communities, community_codes),
        frame=frame,
        shapes_lonlat=_parts(shapes_wkb),
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

    roads_wkb, bridge, tunnel, layer = (
        session.execute(
            select(
                func.ST_AsBinary(func.ST_Collect(aggregate_order_by(Road.geom, Road.id))),
                func.array_agg(aggregate_order_by(Road.bridge, Road.id)),
                func.array_agg(aggregate_order_by(Road.tunnel, Road.id)),
                func.array_agg(aggregate_order_by(Road.layer, Road.id)),
            ).where(Road.walkable, within_metres(Road.geom, area_geom, reach_m, bounds))
        ).one()
        if roads
        else (None, None, None, None)
    )
    roads_lonlat = _parts(roads_wkb)
    return AreaData(
        frame,
        frame.to_metric(area_lonlat),
        buildings,
        stations,
        frame.to_metric(roads_lonlat),
        road_levels(bridge or [], tunnel or [], layer or [], n=len(roads_lonlat)),
    )
