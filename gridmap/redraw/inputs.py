"""Loading a community's redraw inputs from PostGIS, once, into metric arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from gridmap.features import NotFound
from gridmap.geometry import MetricFrame
from gridmap.models import Area, Building, Grid, Road
from gridmap.redraw.engine import Sites
from gridmap.topology.checks import COMMUNITY_TILES
from gridmap.topology.precision import metric


@dataclass
class Inputs:
    """A community and what stands on it, in the community's metric frame."""

    community: Area
    frame: MetricFrame
    boundary: shapely.Geometry
    sites: Sites
    barriers: list[shapely.Geometry]
    roads: list[shapely.Geometry]


def _wkb(values) -> np.ndarray:
    return shapely.from_wkb([bytes(v) for v in values]) if len(values) else np.array([])


def community_by_code(session: Session, code: str) -> Area:
    """The community with that code.

    Raises
    ------
    NotFound
        No community has it (a street is not redrawn as a whole).
    """
    community = session.scalar(select(Area).where(Area.code == code, Area.level == "community"))
    if community is None:
        raise NotFound(f"no community with code {code!r}")
    return community


def load_inputs(session: Session, community: Area) -> Inputs:
    """The community's buildings (by their point), with today's grid of each, and its roads.

    Polygons come to metres as the validator takes them (:func:`metric`, edges divided
    so they stay where they are in lon/lat), so a plan drawn on them checks clean.
    """
    frame = MetricFrame(to_shape(community.geom))
    grid = aliased(Grid)
    rows = session.execute(
        select(
            Building.code,
            func.ST_AsBinary(Building.point),
            func.ST_AsBinary(Building.footprint),
            Building.households,
            Building.use,
            Building.compound,
            func.min(grid.code),
        )
        .outerjoin(
            grid,
            and_(
                grid.active,
                grid.community_id == community.id,
                grid.kind.in_(COMMUNITY_TILES),
                func.ST_Intersects(grid.geom, Building.point),
            ),
        )
        .where(func.ST_Intersects(Building.point, community.geom))
        .group_by(Building.id)
        .order_by(Building.id)
    ).all()
    footprints = np.array(
        [
            None if r[2] is None else metric(frame, shapely.from_wkb(bytes(r[2])), None)
            for r in rows
        ],
        dtype=object,
    )
    sites = Sites(
        codes=[r[0] for r in rows],
        points=frame.to_metric(_wkb([r[1] for r in rows])),
        footprints=footprints,
        households=np.array([r[3] for r in rows], dtype=np.int64),
        uses=[r[4] for r in rows],
        compounds=[r[5] for r in rows],
        current=[r[6] for r in rows],
    )
    roads = session.execute(
        select(Road.barrier, func.ST_AsBinary(Road.geom)).where(
            func.ST_Intersects(Road.geom, community.geom)
        )
    ).all()
    shapes = {True: [], False: []}
    for barrier, wkb in roads:
        shapes[bool(barrier)].append(frame.to_metric(shapely.from_wkb(bytes(wkb))))
    return Inputs(
        community,
        frame,
        metric(frame, to_shape(community.geom), None),
        sites,
        shapes[True],
        shapes[True] + shapes[False],
    )
