"""Pure geometry of grid edits: snapping, handing area to neighbours, splitting.

Edits work on lon/lat geometries as stored, so that untouched boundaries keep
their exact vertices; only measurements (which neighbour shares the longest
boundary) are made in metres, through a :class:`~gridmap.geometry.MetricFrame`.
"""

from __future__ import annotations

from collections.abc import Mapping

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.ops import split

from gridmap.geometry import MetricFrame

#: Metres in one degree of latitude (WGS 84 mean); used to turn snapping
#: tolerances in metres into degrees.
METRES_PER_DEGREE = 111_320.0


class EditProblem(ValueError):
    """An edit that cannot be made as asked (a line that does not cut the grid, ...)."""


def snap_to_neighbours(
    geom: shapely.Geometry, neighbours: list[shapely.Geometry], tolerance_m: float
) -> shapely.Geometry:
    """Move vertices of ``geom`` within ``tolerance_m`` of a neighbour onto its boundary.

    The tolerance is turned into degrees of latitude, so east-west it reaches
    ``cos(latitude)`` times less far (about 0.43 m for 0.5 m at 30° N).
    """
    if not neighbours:
        return geom
    reference = shapely.union_all([shapely.boundary(n) for n in neighbours])
    snapped = shapely.snap(geom, reference, tolerance_m / METRES_PER_DEGREE)
    return snapped if snapped.is_valid else shapely.make_valid(snapped)


def _polygons(geom: shapely.Geometry) -> list[Polygon]:
    return [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]


def _as_area(geom: shapely.Geometry) -> shapely.Geometry:
    """Only the polygonal part of a geometry (overlay results may carry lines)."""
    parts = _polygons(geom)
    return MultiPolygon(parts) if parts else MultiPolygon()


def hand_over(
    old: shapely.Geometry,
    new: shapely.Geometry,
    neighbours: Mapping[int, shapely.Geometry],
    frame: MetricFrame,
) -> dict[int, shapely.Geometry]:
    """Neighbours' geometries after a grid changes from ``old`` to ``new``.

    Each neighbour gives up what ``new`` now covers; each piece that ``old`` covered
    and ``new`` does not goes to the neighbour sharing the longest boundary with it
    (a piece no neighbour touches is left as a gap, for the validator to refuse).

    Returns
    -------
    dict
        Neighbour id → new geometry, for the neighbours that changed.
    """
    changed: dict[int, shapely.Geometry] = {}
    for id_, geom in neighbours.items():
        if shapely.intersects(geom, new) and shapely.area(shapely.intersection(geom, new)) > 0:
            changed[id_] = _as_area(shapely.difference(geom, new))
    current = {id_: changed.get(id_, geom) for id_, geom in neighbours.items()}
    for piece in _polygons(shapely.difference(old, new)):
        shared = {
            id_: frame.to_metric(
                shapely.intersection(shapely.boundary(piece), shapely.boundary(geom))
            ).length
            for id_, geom in current.items()
            if shapely.intersects(piece, geom)
        }
        if shared and max(shared.values()) > 0:
            taker = max(shared, key=lambda k: (shared[k], -k))
            current[taker] = changed[taker] = _as_area(shapely.union(current[taker], piece))
    return changed


def split_by_line(geom: shapely.Geometry, line: shapely.Geometry) -> list[Polygon]:
    """Cut a one-piece grid in two along a line that crosses it from edge to edge.

    Raises
    ------
    EditProblem
        The line does not cut the grid into exactly two pieces.
    """
    polygons = _polygons(geom)
    if len(polygons) != 1:
        raise EditProblem("only a grid in one piece can be split")
    if line.geom_type != "LineString":
        raise EditProblem("the split line must be a LineString")
    pieces = _polygons(split(polygons[0], line))
    if len(pieces) != 2:
        raise EditProblem(
            f"the line cuts the grid into {len(pieces)} piece(s), not 2: draw it across the "
            "grid from one edge to another"
        )
    return sorted(pieces, key=lambda p: (-p.centroid.y, p.centroid.x))


def merged(geoms: list[shapely.Geometry]) -> Polygon:
    """The union of grids that touch each other, as one polygon.

    Raises
    ------
    EditProblem
        The grids do not form one connected piece.
    """
    union = shapely.union_all(geoms)
    parts = _polygons(union)
    if len(parts) != 1:
        raise EditProblem(
            "only grids that share a boundary can be merged "
            f"(these form {len(parts)} separate pieces)"
        )
    return parts[0]
