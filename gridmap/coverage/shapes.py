"""Polygons of coverage for the map: gap areas and stations' service areas (pure)."""

from __future__ import annotations

import numpy as np
import shapely


def gap_areas(
    footprints: np.ndarray, uncovered: np.ndarray, buffer_m: float, within: shapely.Geometry
) -> list[shapely.Geometry]:
    """Residential land outside the circle: uncovered buildings grown by ``buffer_m``,
    merged where they meet and clipped to the area; one polygon per gap, in metres."""
    if not uncovered.any():
        return []
    grown = shapely.buffer(footprints[uncovered], buffer_m, quad_segs=4)
    union = shapely.intersection(shapely.union_all(grown), within)
    return [p for p in shapely.get_parts(union) if p.geom_type == "Polygon"]


def network_service_areas(
    node_xy: np.ndarray,
    edges: np.ndarray,
    station_of: np.ndarray,
    distance: np.ndarray,
    threshold: float,
    n_stations: int,
    buffer_m: float,
) -> list[shapely.Geometry | None]:
    """Each station's service area along the network: the edges whose both ends are
    nearest to it and within ``threshold``, grown by ``buffer_m`` (an isochrone)."""
    u, v = edges[:, 0], edges[:, 1]
    inside = (
        (distance[u] <= threshold)
        & (distance[v] <= threshold)
        & (station_of[u] == station_of[v])
        & (station_of[u] >= 0)
    )
    lines = shapely.linestrings(np.stack([node_xy[u[inside]], node_xy[v[inside]]], axis=1))
    owner = station_of[u[inside]]
    areas: list[shapely.Geometry | None] = []
    for s in range(n_stations):
        mine = lines[owner == s]
        areas.append(
            shapely.union_all(shapely.buffer(mine, buffer_m, quad_segs=4)) if len(mine) else None
        )
    return areas


def circle_service_areas(stations_xy: np.ndarray, radius: float) -> list[shapely.Geometry]:
    """Each station's straight-line circle (the euclidean method's service area)."""
    return list(shapely.buffer(shapely.points(stations_xy), radius, quad_segs=16))
