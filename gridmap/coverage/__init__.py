"""The 10-minute service circle: who reaches a station of a kind on foot, and who does not.

:func:`analyse` loads an area's buildings, stations and roads once into arrays
(:mod:`gridmap.coverage.store`), computes every building's nearest station by
walking distance (:mod:`~gridmap.coverage.network`, one multi-source pass) or by
straight line times a detour factor (:mod:`~gridmap.coverage.euclidean`), and
returns a :class:`Coverage` that aggregates per grid, community and station.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy.orm import Session

from gridmap.coverage import shapes
from gridmap.coverage.euclidean import nearest_by_air
from gridmap.coverage.network import build_network, building_distances, nearest_stations
from gridmap.coverage.store import AreaData, load_area
from gridmap.settings import CoverageRules

METHODS = ("auto", "network", "euclidean")


@dataclass
class Coverage:
    """Every building's nearest station of one kind, and what follows from it."""

    area: str
    kind: str
    minutes: float
    distance_m: float
    method: str
    data: AreaData
    distance: np.ndarray  # metres to the nearest station, inf when none is reachable
    station: np.ndarray  # index into data.stations, -1 when none
    rules: CoverageRules
    nearest: Any = None  # the network pass, kept for service areas

    @property
    def covered(self) -> np.ndarray:
        """Whether each building is inside the circle."""
        return self.distance <= self.distance_m

    @property
    def minutes_to(self) -> np.ndarray:
        """Walking minutes from each building to its nearest station."""
        return self.distance / self.rules.walking_speed_m_per_min

    def _totals(self, mask: np.ndarray) -> dict[str, Any]:
        b = self.data.buildings
        covered = self.covered & mask
        households, covered_households = (
            int(b.households[mask].sum()),
            int(b.households[covered].sum()),
        )
        return {
            "buildings": int(mask.sum()),
            "buildings_covered": int(covered.sum()),
            "households": households,
            "households_covered": covered_households,
            "population": int(b.population[mask].sum()),
            "population_covered": int(b.population[covered].sum()),
            "share": round(covered_households / households, 4) if households else None,
        }

    def summary(self) -> dict[str, Any]:
        """Totals for the whole area."""
        return self._totals(np.ones(len(self.distance), dtype=bool))

    def by(self, labels: np.ndarray) -> list[dict[str, Any]]:
        """Totals for each distinct label (grid or community code) of the buildings."""
        return [
            {"code": code, **self._totals(labels == code)}
            for code in sorted({c for c in labels if c is not None})
        ]

    def station_loads(self) -> list[dict[str, Any]]:
        """Households whose nearest station each one is (inside the circle), against capacity."""
        stations = self.data.stations
        b = self.data.buildings
        inside = self.covered
        load = np.bincount(
            self.station[inside], weights=b.households[inside], minlength=len(stations.ids)
        ).astype(int)
        return [
            {
                "id": int(i),
                "name": name,
                "capacity": cap,
                "load": int(n),
                "overloaded": bool(cap is not None and n > cap),
            }
            for i, name, cap, n in zip(
                stations.ids, stations.names, stations.capacity, load, strict=True
            )
        ]

    def gaps(self) -> list[shapely.Geometry]:
        """Gap areas in lon/lat: uncovered residential land."""
        b = self.data.buildings
        uncovered = ~self.covered & (b.households > 0)
        polygons = shapes.gap_areas(
            b.shapes_m, uncovered, self.rules.gap_buffer_m, self.data.area_m
        )
        return [self.data.frame.to_lonlat(p) for p in polygons]

    def service_areas(self) -> list[shapely.Geometry | None]:
        """Each station's service area in lon/lat (an isochrone along the network)."""
        stations = self.data.stations
        if self.method == "network":
            net = self.nearest
            polygons = shapes.network_service_areas(
                net.network.node_xy,
                net.network.edges,
                net.result.station,
                net.result.distance,
                self.distance_m,
                len(stations.ids),
                self.rules.gap_buffer_m,
            )
        else:
            polygons = shapes.circle_service_areas(
                stations.xy, self.distance_m / self.rules.detour_factor
            )
        return [None if p is None else self.data.frame.to_lonlat(p) for p in polygons]


@dataclass
class _NetworkPass:
    network: Any
    result: Any


def analyse(
    session: Session,
    area: str,
    kind: str,
    minutes: float = 10,
    method: str = "auto",
    rules: CoverageRules | None = None,
) -> Coverage:
    """Coverage of an area's households by stations of one kind.

    Parameters
    ----------
    area
        Street or community code.
    kind
        Station kind.
    minutes
        The circle (10: GB 50180-2018's 500 m).
    method
        ``network`` (walking distance on the roads), ``euclidean`` (straight line
        times the detour factor) or ``auto`` (the network where the area has roads).

    Raises
    ------
    gridmap.features.NotFound
        No area with that code.
    """
    rules = rules or CoverageRules()
    reach = rules.circle_metres(minutes)
    data = load_area(session, area, kind, reach)
    if method == "auto":
        method = "network" if len(data.roads_m) else "euclidean"
    b = data.buildings
    if method == "network" and len(data.roads_m):
        network = build_network(
            data.roads_m, shapely.points(b.xy), shapely.points(data.stations.xy)
        )
        result = nearest_stations(network)
        distance, station = building_distances(network, result)
        far = network.building_connector > rules.max_connector_m
        distance[far], station[far] = np.inf, -1
        extra = _NetworkPass(network, result)
    else:
        method = "euclidean"
        distance, station = nearest_by_air(b.xy, data.stations.xy, rules.detour_factor)
        extra = None
    station = np.where(np.isfinite(distance), station, -1)
    return Coverage(area, kind, minutes, reach, method, data, distance, station, rules, extra)
