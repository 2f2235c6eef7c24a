"""Straight-line coverage: nearest station by KD-tree, distance times a detour factor."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def nearest_by_air(
    buildings_xy: np.ndarray, stations_xy: np.ndarray, detour_factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Estimated walk (m) from each building to its nearest station, and which station.

    Parameters
    ----------
    buildings_xy, stations_xy
        ``(n, 2)`` coordinates in metres.
    detour_factor
        Straight-line distance times this estimates the walk.

    Returns
    -------
    distance, station
        ``inf`` and ``-1`` for every building when there is no station.
    """
    if len(stations_xy) == 0:
        return np.full(len(buildings_xy), np.inf), np.full(len(buildings_xy), -1)
    distance, station = cKDTree(stations_xy).query(buildings_xy, k=1)
    return np.asarray(distance) * detour_factor, np.asarray(station)
