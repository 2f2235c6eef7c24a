"""One precision for every check: lon/lat to metres faithfully, snapped to one grid.

The redraw engine draws in metres and grids are stored in longitude/latitude; the
validator, edits, plans and apply all compare them here, the same way: edges are
divided into segments of at most :data:`~gridmap.settings.SEGMENT_M` before they go
from lon/lat to metres (a straight edge in one frame bows in the other), coordinates are
snapped to a grid of :data:`~gridmap.settings.PRECISION_M` in the community's
metric frame, and a piece of a difference is drawing noise unless it is both larger
than the area tolerance and wider than :data:`~gridmap.settings.SLIVER_M`.
"""

from __future__ import annotations

import numpy as np
import shapely

from gridmap.geometry import MetricFrame
from gridmap.settings import PRECISION_M, SEGMENT_M
from gridmap.topology.edits import METRES_PER_DEGREE


def _each_known(geoms, operation):
    """``operation`` applied to one geometry or to an array's non-``None`` members."""
    if geoms is None:
        return None
    if isinstance(geoms, np.ndarray):
        out = geoms.copy()
        known = np.array([g is not None for g in geoms], dtype=bool)
        if known.any():
            out[known] = operation(geoms[known].astype(object))
        return out
    return operation(geoms)


def _segmentize(geoms, max_length: float):
    """Geometries (or an array, ``None`` kept) with no segment longer than ``max_length``."""
    return _each_known(geoms, lambda g: shapely.segmentize(g, max_length))


def metric(frame: MetricFrame, geoms, precision_m: float | None = PRECISION_M):
    """Lon/lat geometries (one or an array; ``None`` kept) in the frame's metres.

    Edges are divided every :data:`SEGMENT_M` in lon/lat first, so a straight edge
    stays where it is; with ``precision_m``, coordinates are then snapped to a grid of
    that size, so vertices that were one in lon/lat are one in metres.
    """
    # A degree of longitude is shorter than one of latitude: dividing by the latitude
    # degree keeps segments at most SEGMENT_M long in both directions.
    out = frame.to_metric(_segmentize(geoms, SEGMENT_M / METRES_PER_DEGREE))
    return snapped(out, precision_m) if precision_m else out


def snapped(geoms, precision_m: float = PRECISION_M):
    """Geometries (one or an array; ``None`` kept) on a grid of ``precision_m``, valid."""
    return _each_known(geoms, lambda g: shapely.set_precision(g, precision_m))


def significant(pieces: np.ndarray, area_tolerance_m2: float, sliver_m: float) -> np.ndarray:
    """Which metric polygons are more than drawing noise: larger than the area
    tolerance and somewhere wider than ``sliver_m``.

    Parameters
    ----------
    pieces
        Polygons in metres.
    area_tolerance_m2
        Pieces of this area or less are noise.
    sliver_m
        Pieces that vanish when shrunk by half of this on every side are noise.

    Returns
    -------
    numpy.ndarray of bool
    """
    pieces = np.asarray(pieces, dtype=object)
    if not len(pieces):
        return np.zeros(0, dtype=bool)
    large = shapely.area(pieces) > area_tolerance_m2
    wide = np.zeros(len(pieces), dtype=bool)
    wide[large] = ~shapely.is_empty(shapely.buffer(pieces[large], -sliver_m / 2))
    return large & wide
