"""Loading an area's buildings, stations and roads from PostGIS into arrays, once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from gridmap.coverage.network import road_levels
from gridmap.features import NotFound
from gridmap.geometry import MetricFrame
from gridmap.models import Area, Building, Grid, Road, Station
from gridmap.topology.checks import COMMUNITY_TILES


@dataclass
class BuildingArrays:
    """Residential buildings (households > 0) of the area; coordinates in metres."""

    ids: np.ndarray
    codes: np.ndarray
    households: np.ndarray
    population: np.ndarray
    xy: np.ndarray
    shapes_m: np.ndarray  # footprint, or the point where there is none
    grid: np.ndarray  # code of the general or dedicated grid holding the point, or None
    community: np.ndarray  # code of the community holding the point, or None


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


def _xy(points: np.ndarray) -> np.ndarray:
    return shapely.get_coordinates(points) if len(points) else np.zeros((0, 2))


def load_area(session: Session, code: str, kind: str, reach_m: float) -> AreaData:
    """Buildings in the area, stations of ``kind`` and walkable roads (with their
    levels) within reach of it.

    Stations and roads just outside the area count: residents cross its edge.
    """
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        raise NotFound(f"no area with code {code!r}")
    frame = MetricFrame(to_shape(area.geom))
    area_geom = select(Area.geom).where(Area.id == area.id).scalar_subquery()
    grid = aliased(Grid)
    community = aliased(Area)
    rows = session.execute(
        select(
            Building.id,
            Building.code,
            Building.households,
            Building.population,
            func.ST_AsBinary(Building.point),
            func.ST_AsBinary(func.coalesce(Building.footprint, Building.point)),
            func.min(grid.code),
            func.min(community.code),
        )
        .outerjoin(
            grid,
            and_(
                grid.active,
                grid.kind.in_(COMMUNITY_TILES),
                func.ST_Intersects(grid.geom, Building.point),
            ),
        )
        .outerjoin(
            community,
            and_(
                community.level == "community", func.ST_Intersects(community.geom, Building.point)
            ),
        )
        .where(Building.households > 0, func.ST_Intersects(Building.point, area_geom))
        .group_by(Building.id)
        .order_by(Building.id)
    ).all()
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 8
    points = frame.to_metric(_wkb(columns[4]))
    buildings = BuildingArrays(
        ids=np.array(columns[0], dtype=np.int64),
        codes=np.array(columns[1], dtype=object),
        households=np.array(columns[2], dtype=np.int64),
        population=np.array(columns[3], dtype=np.int64),
        xy=_xy(points),
        shapes_m=frame.to_metric(_wkb(columns[5])),
        grid=np.array(columns[6], dtype=object),
        community=np.array(columns[7], dtype=object),
    )

    near = func.ST_DWithin(func.Geography(Station.geom), func.Geography(area_geom), reach_m)
    station_rows = session.execute(
        select(Station.id, Station.name, Station.capacity, func.ST_AsBinary(Station.geom))
        .where(Station.kind == kind, near)
        .order_by(Station.id)
    ).all()
    stations = StationArrays(
        ids=np.array([r[0] for r in station_rows], dtype=np.int64),
        names=[r[1] for r in station_rows],
        capacity=[r[2] for r in station_rows],
        xy=_xy(frame.to_metric(_wkb([r[3] for r in station_rows]))),
    )

    road_rows = session.execute(
        select(func.ST_AsBinary(Road.geom), Road.bridge, Road.tunnel, Road.layer)
        .where(
            Road.walkable,
            func.ST_DWithin(func.Geography(Road.geom), func.Geography(area_geom), reach_m),
        )
        .order_by(Road.id)
    ).all()
    road_columns = list(zip(*road_rows, strict=True)) if road_rows else [[]] * 4
    return AreaData(
        frame,
        frame.to_metric(to_shape(area.geom)),
        buildings,
        stations,
        frame.to_metric(_wkb(road_columns[0])),
        road_levels(*road_columns[1:], n=len(road_rows)),
    )
