"""Where new stations should go: candidates, who each would reach, and the choice.

:func:`plan_sites` takes the households an area's existing stations of a kind leave
outside the circle, builds which candidate site would reach which of them (walking
on the network, or by straight line), and chooses sites with
:mod:`gridmap.planning.siting`. Existing stations stay where they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy.sparse import csc_matrix, hstack
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap.coverage import analyse
from gridmap.coverage.network import build_network, end_points, junction_numbers, road_edges
from gridmap.models import Area, Building
from gridmap.planning.siting import maximal_covering, set_covering

#: Candidates whose reach is computed in one Dijkstra call (bounds memory).
CHUNK = 64


class PlanningProblem(ValueError):
    """A siting question that cannot be answered as asked."""


@dataclass
class Candidates:
    """Candidate sites in metres and where each came from."""

    xy: np.ndarray
    sources: list[str]


def collect_candidates(
    session: Session,
    area_code: str,
    frame,
    roads_m: np.ndarray,
    points: list[tuple[float, float]] | None = None,
    uses: list[str] | None = None,
    spacing_m: float | None = None,
    junctions: str = "vertices",
    road_levels: np.ndarray | None = None,
    snap_m: float = 0.0,
) -> Candidates:
    """Given points (lon/lat), buildings of some uses in the area, and road junctions
    (where roads join by the ``junctions`` rule) thinned to one per ``spacing_m`` square."""
    xy: list[np.ndarray] = []
    sources: list[str] = []
    if points:
        metric = frame.to_metric(shapely.points(np.asarray(points, dtype=float)))
        xy.append(shapely.get_coordinates(metric))
        sources += ["point"] * len(points)
    if uses:
        area_geom = select(Area.geom).where(Area.code == area_code).scalar_subquery()
        rows = session.execute(
            select(Building.code, func.ST_AsBinary(Building.point))
            .where(Building.use.in_(uses), func.ST_Intersects(Building.point, area_geom))
            .order_by(Building.id)
        ).all()
        if rows:
            metric = frame.to_metric(shapely.from_wkb([bytes(r[1]) for r in rows]))
            xy.append(shapely.get_coordinates(metric))
            sources += [f"building {r[0]}" for r in rows]
    if spacing_m and len(roads_m):
        edges = road_edges(roads_m, junctions, road_levels, snap_m).lines
        _, nodes = junction_numbers(np.concatenate(end_points(edges)))
        _, keep = np.unique(np.floor(nodes / spacing_m), axis=0, return_index=True)
        xy.append(nodes[np.sort(keep)])
        sources += ["road junction"] * len(keep)
    if not sources:
        raise PlanningProblem("give candidates: points, building uses or a network spacing")
    return Candidates(np.concatenate(xy), sources)


def reach_matrix(
    demand_xy: np.ndarray,
    candidates_xy: np.ndarray,
    reach_m: float,
    method: str,
    roads_m: np.ndarray,
    detour_factor: float,
    junctions: str = "vertices",
    road_levels: np.ndarray | None = None,
    max_connector_m: float = np.inf,
    snap_m: float = 0.0,
) -> csc_matrix:
    """``(demand, candidates)`` 0/1: which candidate site is within ``reach_m`` of whom
    (on the network the roads make by the ``junctions`` rule, or by straight line)."""
    n_demand, n_sites = len(demand_xy), len(candidates_xy)
    if method == "euclidean":
        rows, cols = [], []
        for j, near in enumerate(
            cKDTree(demand_xy).query_ball_point(candidates_xy, r=reach_m / detour_factor)
        ):
            rows += near
            cols += [j] * len(near)
        return csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_demand, n_sites))
    network = build_network(
        roads_m,
        shapely.points(demand_xy),
        shapely.points(candidates_xy),
        junctions,
        road_levels,
        max_connector_m,
        snap_m,
    )
    connector = np.where(network.building_joined, network.building_connector, np.inf)
    blocks = []
    for start in range(0, n_sites, CHUNK):
        sources = network.station_nodes[start : start + CHUNK]
        dist = dijkstra(network.graph, directed=False, indices=sources, limit=reach_m)
        walk = dist[:, network.building_nodes] + connector[None, :]
        blocks.append(csc_matrix((walk <= reach_m).T.astype(float)))
    return hstack(blocks).tocsc()


def plan_sites(
    session: Session,
    area: str,
    kind: str,
    minutes: float = 10,
    method: str = "auto",
    k: int | None = None,
    share: float | None = None,
    points: list[tuple[float, float]] | None = None,
    uses: list[str] | None = None,
    spacing_m: float | None = None,
    time_limit_s: float = 30.0,
    junctions: str | None = None,
) -> dict[str, Any]:
    """Propose new stations of ``kind`` for an area.

    Parameters
    ----------
    k
        Maximal covering: choose this many sites covering the most uncovered households.
    share
        Set covering: the fewest sites that bring coverage of households to this share
        (0-1; default 1 when ``k`` is not given).
    points, uses, spacing_m
        Candidates: lon/lat points, buildings of these uses, road junctions on a spacing.
    junctions
        Where roads join (``vertices`` or ``crossings``; default the coverage rules').
    """
    if k is not None and share is not None:
        raise PlanningProblem("give k (maximal covering) or share (set covering), not both")
    coverage = analyse(session, area, kind, minutes, method, junctions=junctions, shapes=False)
    rules = coverage.rules
    junctions = coverage.network.junctions if coverage.network else rules.junctions
    data, b = coverage.data, coverage.data.buildings
    candidates = collect_candidates(
        session,
        area,
        data.frame,
        data.roads_m,
        points,
        uses,
        spacing_m,
        junctions,
        data.road_levels,
        rules.crossing_snap_m,
    )
    uncovered = ~coverage.covered
    weights = b.households[uncovered].astype(float)
    total = int(b.households.sum())
    before = int(b.households[coverage.covered].sum())
    cover = reach_matrix(
        b.xy[uncovered],
        candidates.xy,
        coverage.distance_m,
        coverage.method,
        data.roads_m,
        rules.detour_factor,
        junctions,
        data.road_levels,
        rules.max_connector_m,
        rules.crossing_snap_m,
    )
    if k is not None:
        result = maximal_covering(cover, weights, k, time_limit_s)
        objective = "maximal_covering"
    else:
        target = share if share is not None else 1.0
        needed = max(0.0, (target * total - before) / weights.sum()) if weights.sum() else 0.0
        result = set_covering(cover, weights, min(needed, 1.0), time_limit_s)
        objective = "set_covering"
    sites = []
    for rank, (j, gain) in enumerate(zip(result.sites, result.gains, strict=True), start=1):
        lonlat = data.frame.to_lonlat(shapely.Point(candidates.xy[j]))
        sites.append(
            {
                "rank": rank,
                "source": candidates.sources[j],
                "gain_households": int(gain),
                "location": [round(lonlat.x, 7), round(lonlat.y, 7)],
            }
        )
    after = before + int(result.covered)
    return {
        "area": area,
        "kind": kind,
        "minutes": minutes,
        "distance_m": coverage.distance_m,
        "method": coverage.method,
        "network": coverage.network.as_dict() if coverage.network else None,
        "warnings": coverage.warnings,
        "objective": objective,
        "solver": result.solver,
        "optimal": result.optimal,
        "notes": result.notes,
        "candidates": len(candidates.sources),
        "households": total,
        "households_covered_before": before,
        "households_covered_after": after,
        "share_before": round(before / total, 4) if total else None,
        "share_after": round(after / total, 4) if total else None,
        "sites": sites,
    }
