"""Measures of a plan: balance, compactness, contiguity, roads followed, stability.

Pure functions on a :class:`~gridmap.redraw.engine.Plan` in a metric CRS.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import shapely

from gridmap.redraw.engine import Plan, PlannedGrid, RedrawRules

#: A grid boundary within this distance (m) of a road centre line runs along it.
ROAD_BUFFER_M = 6.0
#: Kinds that tile the community together (micro grids tile their general grid).
TOP_KINDS = ("general", "dedicated")


def polsby_popper(geom: shapely.Geometry) -> float:
    """Compactness 4πA/P²: 1 for a circle, about 0.785 for a square, near 0 for a sliver."""
    perimeter = shapely.length(geom)
    return float(4 * np.pi * shapely.area(geom) / perimeter**2) if perimeter > 0 else 0.0


def household_stats(values: Sequence[int], low: int, high: int) -> dict:
    """Count, min, max, mean, coefficient of variation and share inside [low, high]."""
    if not len(values):
        return {"count": 0, "min": None, "max": None, "mean": None, "cv": None, "in_range": None}
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    return {
        "count": len(arr),
        "min": int(arr.min()),
        "max": int(arr.max()),
        "mean": round(mean, 1),
        "cv": round(float(arr.std() / mean), 3) if mean > 0 else None,
        "in_range": round(float(((arr >= low) & (arr <= high)).mean()), 3),
    }


def road_share(
    grids: Sequence[PlannedGrid], boundary: shapely.Geometry, roads: Sequence[shapely.Geometry]
) -> float | None:
    """Share of the inner boundary between grids that runs along a road."""
    lines = shapely.union_all([shapely.boundary(g.geometry) for g in grids])
    inner = shapely.difference(lines, shapely.buffer(shapely.boundary(boundary), 0.5))
    total = shapely.length(inner)
    if total <= 0:
        return None
    if not roads:
        return 0.0
    # Each road grown, then joined: 40 times faster than growing the joined network
    # (0.09 s against 3.5 s for 900 OSM ways), the same area.
    near = shapely.union_all(shapely.buffer(np.asarray(roads, dtype=object), ROAD_BUFFER_M))
    along = shapely.intersection(inner, near)
    return round(float(shapely.length(along) / total), 3)


def households_moved(
    grids: Sequence[PlannedGrid], households: np.ndarray, current: Sequence[str | None]
) -> int:
    """Households whose grid changes: each planned grid continues the grid of today that
    holds most of its households, and a building moves when its grid today is another."""
    moved = 0
    for grid in grids:
        today: dict[str | None, int] = defaultdict(int)
        for b in grid.buildings:
            today[current[b]] += int(households[b])
        if not today:
            continue
        heir = max(today, key=lambda code: (today[code], code is not None, str(code)))
        moved += sum(h for code, h in today.items() if code != heir and code is not None)
    return moved


def plan_metrics(
    plan: Plan,
    boundary: shapely.Geometry,
    households: np.ndarray,
    current: Sequence[str | None],
    roads: Sequence[shapely.Geometry],
    rules: RedrawRules,
) -> dict:
    """Every measure of a plan, JSON-ready.

    Parameters
    ----------
    plan
        The plan (metric CRS).
    boundary
        The community (metric CRS).
    households, current
        Each building's households and today's grid code (general or dedicated).
    roads
        Every road of the community (metric CRS).
    """
    top = [g for g in plan.grids if g.kind in TOP_KINDS]
    compactness = {g.key: polsby_popper(g.geometry) for g in plan.grids}
    by_kind: dict[str, list[float]] = defaultdict(list)
    for g in plan.grids:
        by_kind[g.kind].append(compactness[g.key])
    pieces = [len(shapely.get_parts(g.geometry)) for g in plan.grids]
    return {
        "grids": dict(sorted(Counter(g.kind for g in plan.grids).items())),
        "general_households": household_stats(
            [g.households for g in plan.grids if g.kind == "general"], *rules.general
        ),
        "micro_households": household_stats(
            [g.households for g in plan.grids if g.kind == "micro"], *rules.micro
        ),
        "polsby_popper_mean": {k: round(float(np.mean(v)), 3) for k, v in sorted(by_kind.items())},
        "contiguous_share": round(float(np.mean([p == 1 for p in pieces])), 3),
        "road_boundary_share": road_share(top, boundary, roads),
        "households": int(households.sum()),
        "households_moved": households_moved(top, households, current),
        "oversize_buildings": sum(1 for g in plan.grids if g.note),
    }
