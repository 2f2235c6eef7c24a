"""The 10-minute service circle: who reaches a station of a kind on foot, and who does not.

:func:`analyse` loads an area's buildings, stations and roads once into arrays
(:mod:`gridmap.coverage.store`), computes every building's nearest station by
walking distance (:mod:`~gridmap.coverage.network`, one multi-source pass) or by
straight line times a detour factor (:mod:`~gridmap.coverage.euclidean`), and
returns a :class:`Coverage` that aggregates per grid, community and station.
Every network answer states how whole the network is (:class:`Connectivity`: its
pieces, who could not join it) and warns when it is broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy.orm import Session

from gridmap.coverage import shapes
from gridmap.coverage.euclidean import nearest_by_air
from gridmap.coverage.network import (
    JUNCTION_RULES,
    Connectivity,
    build_network,
    building_distances,
    connectivity,
    nearest_stations,
)
from gridmap.coverage.store import AreaData, load_area
from gridmap.settings import CoverageRules

METHODS = ("auto", "network", "euclidean")
__all__ = ["JUNCTION_RULES", "METHODS", "Coverage", "analyse", "broken", "network_warnings"]


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
    network: Connectivity | None = None  # how whole the network is (None: not built)
    warnings: list[str] = field(default_factory=list)

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
        """Totals for each distinct label (grid or community code) of the buildings,
        in code order; buildings without a label are left out.

        One pass over the buildings (``numpy.unique`` and sums per label), so a city's
        thousands of grids cost no more than a street's few.
        """
        known = np.array([c is not None for c in labels], dtype=bool)
        if not known.any():
            return []
        codes, label = np.unique(np.asarray(labels[known], dtype=str), return_inverse=True)
        b = self.data.buildings
        n = len(codes)

        def per_label(weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return np.bincount(label[mask[known]], weights=weights[known][mask[known]], minlength=n)

        every = np.ones(len(labels), dtype=bool)
        covered = self.covered
        ones = np.ones(len(labels))
        buildings, buildings_covered = per_label(ones, every), per_label(ones, covered)
        households = per_label(b.households, every)
        households_covered = per_label(b.households, covered)
        population = per_label(b.population, every)
        population_covered = per_label(b.population, covered)
        return [
            {
                "code": str(codes[k]),
                "buildings": int(buildings[k]),
                "buildings_covered": int(buildings_covered[k]),
                "households": int(households[k]),
                "households_covered": int(households_covered[k]),
                "population": int(population[k]),
                "population_covered": int(population_covered[k]),
                "share": round(int(households_covered[k]) / int(households[k]), 4)
                if households[k]
                else None,
            }
            for k in range(n)
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


def network_warnings(net: Connectivity, rules: CoverageRules) -> list[str]:
    """What a user must know about a network before trusting distances measured on it.

    Parameters
    ----------
    net
        The network's pieces and who could not join it.
    rules
        ``max_off_main_share`` (when the network is broken) and ``max_connector_m``.

    Returns
    -------
    list of str
        One sentence per problem; empty when the network is whole enough.
    """
    notes = []
    if broken(net, rules):
        notes.append(
            f"the road network is in {net.pieces} pieces and {net.off_main_share:.0%} of the "
            "joined buildings are off its main piece: roads probably do not join where they "
            "meet (junctions=crossings joins lines that cross without a shared vertex)"
        )
    if net.buildings_not_joined:
        notes.append(
            f"{net.buildings_not_joined} buildings are farther than {rules.max_connector_m:g} m "
            "from every walkable road and count as uncovered"
        )
    if net.stations_not_joined:
        notes.append(
            f"{net.stations_not_joined} stations are farther than {rules.max_connector_m:g} m "
            "from every walkable road and serve no one along it"
        )
    return notes


def broken(net: Connectivity, rules: CoverageRules) -> bool:
    """Whether the network's main piece misses more of the joined buildings than
    ``rules.max_off_main_share`` allows."""
    return net.off_main_share > rules.max_off_main_share


def analyse(
    session: Session,
    area: str,
    kind: str,
    minutes: float = 10,
    method: str = "auto",
    rules: CoverageRules | None = None,
    junctions: str | None = None,
    shapes: bool = True,
) -> Coverage:
    """Coverage of an area's households by stations of one kind.

    Parameters
    ----------
    area
        Code of an area of any level: community, street, district or city.
    kind
        Station kind.
    minutes
        The circle (10: GB 50180-2018's 500 m).
    method
        ``network`` (walking distance on the roads), ``euclidean`` (straight line
        times the detour factor) or ``auto`` (the network where the area has roads
        and it is not broken, see :func:`network_warnings`; otherwise straight line,
        with a warning).
    junctions
        Where roads join (:data:`JUNCTION_RULES`; default ``rules.junctions``).
    shapes
        Whether to load the buildings' footprints (:meth:`Coverage.gaps` and any map or
        GeoJSON of the buildings need them; totals do not).

    Raises
    ------
    gridmap.features.NotFound
        No area with that code.
    """
    rules = rules or CoverageRules()
    junctions = junctions or rules.junctions
    reach = rules.circle_metres(minutes)
    data = load_area(session, area, kind, reach, roads=method != "euclidean", shapes=shapes)
    b = data.buildings
    extra, net, warnings = None, None, []
    if method in ("auto", "network") and len(data.roads_m):
        network = build_network(
            data.roads_m,
            shapely.points(b.xy),
            shapely.points(data.stations.xy),
            junctions,
            data.road_levels,
            rules.max_connector_m,
            rules.crossing_snap_m,
        )
        net = connectivity(network, junctions)
        warnings = network_warnings(net, rules)
        if method == "auto" and broken(net, rules):
            warnings.append(
                "method=auto therefore measured by straight line (euclidean); "
                "method=network measures on the network as it is"
            )
        else:
            method = "network"
            result = nearest_stations(network)
            distance, station = building_distances(network, result)
            extra = _NetworkPass(network, result)
    if extra is None:
        if method == "network":
            warnings.append("the area has no walkable roads: distances are by straight line")
        method = "euclidean"
        distance, station = nearest_by_air(b.xy, data.stations.xy, rules.detour_factor)
    station = np.where(np.isfinite(distance), station, -1)
    return Coverage(
        area, kind, minutes, reach, method, data, distance, station, rules, extra, net, warnings
    )
