"""Households where the data has none, and footprints that overlap: pure checks of
buildings on import.

The estimate is footprint area x floors / floor area per household, the figures per
place type from :class:`gridmap.settings.HouseholdEstimate` (and their sources);
rows it fills are marked ``households_estimated``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from pyproj import Transformer

from gridmap.settings import HouseholdEstimate

#: Uses whose buildings have households.
RESIDENTIAL_USES = frozenset({"residential", "mixed"})
#: Two footprints overlap when the shared area is more than this share of the smaller
#: one: OSM outlines that share a wall meet along a line (no area), and digitising
#: noise stays far below 1%.
OVERLAP_SHARE = 0.01


def areas_m2(polygons: Sequence[shapely.Geometry]) -> np.ndarray:
    """Areas (m²) of lon/lat polygons, in a Lambert equal-area projection centred on them.

    One projection for the lot; being equal-area, it keeps areas however wide the
    file (only shapes far from its centre are distorted).
    """
    if len(polygons) == 0:
        return np.zeros(0)
    array = np.asarray(polygons, dtype=object)
    xmin, ymin, xmax, ymax = shapely.total_bounds(array)
    transformer = Transformer.from_crs(
        "EPSG:4326",
        f"+proj=laea +lat_0={(ymin + ymax) / 2} +lon_0={(xmin + xmax) / 2} +datum=WGS84",
        always_xy=True,
    )

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.area(shapely.transform(array, project))


def estimate_households(
    areas: np.ndarray, floors: Sequence[int | None], estimate: HouseholdEstimate
) -> tuple[np.ndarray, np.ndarray]:
    """Households from footprint areas and floors.

    Parameters
    ----------
    areas
        Footprint areas in m².
    floors
        Floors of each building, ``None`` where unknown (then the place type's
        assumed floors are used).
    estimate
        The figures of the place type.

    Returns
    -------
    households, assumed
        Whole households, at least 1 per building (a residential building is
        someone's home), and whether each used the assumed floors.

    Examples
    --------
    A 20 m x 30 m six-storey block at 95.7 m² per household: 600 x 6 / 95.7 = 37.6.

    >>> estimate_households(np.array([600.0]), [6], HouseholdEstimate())[0].tolist()
    [38]
    """
    assumed = np.array([f is None for f in floors], dtype=bool)
    levels = np.array([estimate.assumed_floors if f is None else f for f in floors], dtype=float)
    floor_area = np.asarray(areas, dtype=float) * levels
    households = np.rint(floor_area / estimate.floor_area_per_household_m2)
    return np.maximum(households, 1).astype(np.int64), assumed


def overlapping_pairs(
    footprints: Sequence[shapely.Geometry], share: float = OVERLAP_SHARE
) -> list[tuple[int, int, str]]:
    """Pairs of footprints that overlap or lie one inside the other.

    Candidate pairs come from one STRtree query (bounding boxes), then exact
    intersection areas are computed for those pairs only.

    Parameters
    ----------
    footprints
        Polygons (any CRS; shares are ratios of areas).
    share
        Smallest shared area, as a share of the smaller footprint, that counts.

    Returns
    -------
    list of (i, j, kind)
        ``i < j`` positions in ``footprints``; ``kind`` is ``"nested"`` when the
        smaller lies (all but ``share`` of it) inside the other, else ``"overlap"``.
    """
    array = np.asarray(footprints, dtype=object)
    if len(array) < 2:
        return []
    tree = shapely.STRtree(array)
    left, right = tree.query(array, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return []
    shared = shapely.area(shapely.intersection(array[left], array[right]))
    smaller = np.minimum(shapely.area(array[left]), shapely.area(array[right]))
    found = shared > share * smaller
    # Nested: (almost) all of the smaller footprint is shared, edges touching or not.
    nested = shared >= (1 - share) * smaller
    return [
        (int(i), int(j), "nested" if n else "overlap")
        for i, j, n in zip(left[found], right[found], nested[found], strict=True)
    ]
