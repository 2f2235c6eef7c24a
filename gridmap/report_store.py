"""What the reports need from PostGIS: names, and per-grid workload figures, once.

:mod:`gridmap.reports` builds the tables from these; this module only reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from gridmap.coverage import Coverage
from gridmap.features import NotFound, area_and_descendants
from gridmap.models import Area, Building, Grid, Station, Worker
from gridmap.reports import AreaNames, GridInfo
from gridmap.topology.checks import COMMUNITY_TILES


def _area(session: Session, code: str) -> Area:
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        raise NotFound(f"no area with code {code!r}")
    return area


def area_names(session: Session, code: str) -> AreaNames:
    """Names of an area (a community, or any level above), its communities and their
    active general and dedicated grids, with each grid's worker's name.

    Raises
    ------
    gridmap.features.NotFound
        No area with that code.
    """
    area = _area(session, code)
    within = area_and_descendants(code)
    communities = dict(
        session.execute(
            select(Area.code, Area.name).where(Area.id.in_(within), Area.level == "community")
        ).all()
    )
    community = aliased(Area)
    rows = session.execute(
        select(Grid.code, Grid.name, community.code, Worker.name)
        .join(community, community.id == Grid.community_id)
        .outerjoin(Worker, Worker.id == Grid.worker_id)
        .where(Grid.active, Grid.kind.in_(COMMUNITY_TILES), Grid.community_id.in_(within))
    ).all()
    grids = {g: GridInfo(g, name, c, worker) for g, name, c, worker in rows}
    return AreaNames(area.code, area.name, communities, grids)


def workload_figures(session: Session, code: str) -> list[dict[str, Any]]:
    """Per active general and dedicated grid of an area: buildings, households (and
    how many of them are estimated), residents (None where no building of the grid
    has a figure) and the stations standing in it.

    A building belongs to the grid holding its point, as everywhere in gridmap.

    Raises
    ------
    gridmap.features.NotFound
        No area with that code.
    """
    _area(session, code)
    tiles = and_(
        Grid.active,
        Grid.kind.in_(COMMUNITY_TILES),
        Grid.community_id.in_(area_and_descendants(code)),
    )
    buildings = (
        select(
            Grid.id.label("grid_id"),
            func.count(Building.id).label("buildings"),
            func.coalesce(func.sum(Building.households), 0).label("households"),
            func.coalesce(
                func.sum(Building.households).filter(Building.households_estimated), 0
            ).label("estimated"),
            func.sum(Building.population).filter(Building.population > 0).label("population"),
        )
        .select_from(Grid)
        .outerjoin(Building, func.ST_Intersects(Grid.geom, Building.point))
        .where(tiles)
        .group_by(Grid.id)
    ).subquery()
    stations = (
        select(Grid.id.label("grid_id"), func.count(Station.id).label("stations"))
        .select_from(Grid)
        .outerjoin(Station, func.ST_Intersects(Grid.geom, Station.geom))
        .where(tiles)
        .group_by(Grid.id)
    ).subquery()
    rows = session.execute(
        select(
            Grid.code,
            buildings.c.buildings,
            buildings.c.households,
            buildings.c.estimated,
            buildings.c.population,
            stations.c.stations,
        )
        .join(buildings, buildings.c.grid_id == Grid.id)
        .join(stations, and_(stations.c.grid_id == Grid.id))
        .order_by(Grid.code)
    ).all()
    return [
        {
            "code": grid,
            "buildings": int(n),
            "households": int(households),
            "households_estimated": int(estimated),
            "population": None if population is None else int(population),
            "stations": int(count),
        }
        for grid, n, households, estimated, population, count in rows
    ]


def coverage_rows(result: Coverage) -> dict[str, Any]:
    """A coverage's totals as the coverage report takes them: per grid, per community,
    the buildings of each community in no grid, and the area's total."""
    b = result.data.buildings
    loose = np.array(
        [c if g is None else None for g, c in zip(b.grid, b.community, strict=True)], dtype=object
    )
    return {
        "grids": result.by(b.grid),
        "communities": result.by(b.community),
        "no_grid": result.by(loose),
        "total": result.summary(),
    }
