"""Cells that tile a community exactly, one per building site, cut by barrier roads.

The community is first cut into blocks by its barrier roads; each block is then
divided into Voronoi cells of the building points inside it, and every footprint
is given whole to its own building's cell (taken from the cells it pokes into),
so that grids made of whole cells never split a building. Buildings that stand in
one another (an outline inside another, as nested OSM outlines often are, a point
inside another's footprint, footprints that overlap) share one cell. Blocks
holding no building join the neighbouring block that shares the longest boundary
with them.

Everything here works in a metric CRS on plain shapely geometries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from gridmap.settings import PRECISION_M

#: Shared boundaries shorter than this (m) do not make two cells neighbours.
MIN_SHARED_M = 0.5
#: Vertices of neighbouring cells this close (m) are made one: gridmap's one precision.
SNAP_M = PRECISION_M


@dataclass
class Tessellation:
    """Cells of a community and how they touch.

    Attributes
    ----------
    cells
        One polygon per site (metric CRS); together they tile the community.
    site
        For each building, the index of its cell (buildings at the same point, or
        standing in one another, share one).
    block
        For each cell, the barrier-road block it lies in.
    adjacency
        Sparse symmetric matrix: shared boundary length (m) between touching cells.
    barrier
        Sparse symmetric matrix: shared length between cells of different blocks, which
        runs along a barrier road.
    """

    cells: np.ndarray
    site: np.ndarray
    block: np.ndarray
    adjacency: sparse.csr_matrix
    barrier: sparse.csr_matrix


def blocks(boundary: shapely.Geometry, barriers: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """The community cut into faces by barrier roads (the whole community without any)."""
    lines = [shapely.boundary(boundary)] + [
        shapely.intersection(line, boundary) for line in barriers
    ]
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(lines))))
    inside = [f for f in faces if shapely.area(shapely.intersection(f, boundary)) > 0.5 * f.area]
    return inside or [boundary]


def _owners(faces: list[shapely.Geometry], sites: np.ndarray) -> np.ndarray:
    """The face of each site (the first that covers it: a site on a road is on two)."""
    owner = np.full(len(sites), len(faces))
    site_idx, face_idx = shapely.STRtree(faces).query(sites, predicate="covered_by")
    np.minimum.at(owner, site_idx, face_idx)
    return np.where(owner == len(faces), -1, owner)


def _assign_blocks(faces: list[shapely.Geometry], sites: np.ndarray) -> tuple[list, np.ndarray]:
    """Faces that each hold a site, and the face of each site: a face without any
    joins the neighbour sharing the longest boundary with it."""
    faces = list(faces)
    while True:
        owner = _owners(faces, sites)
        counts = np.bincount(owner[owner >= 0], minlength=len(faces))
        empty = np.flatnonzero(counts == 0)
        if not len(empty) or len(faces) == 1:
            return faces, owner
        i = int(empty[0])
        shared = [
            shapely.length(shapely.intersection(faces[i].boundary, f.boundary)) if j != i else -1.0
            for j, f in enumerate(faces)
        ]
        j = int(np.argmax(shared))
        if shared[j] <= 0:  # an island block: join the nearest
            others = [k for k in range(len(faces)) if k != i]
            j = min(others, key=lambda k: faces[i].distance(faces[k]))
        faces[j] = shapely.union(faces[j], faces[i])
        del faces[i]


def shared_sites(point_site: np.ndarray, points: np.ndarray, footprints: np.ndarray) -> np.ndarray:
    """Group the distinct building points whose buildings must share a cell.

    A building shares its cell with another when its point lies on the other's
    footprint (an outline inside another, a point-only building in a footprint), or
    when their footprints overlap by more than a square of :data:`SNAP_M` (what they
    share cannot lie in two grids); groups are the connected components of those
    pairs.

    Parameters
    ----------
    point_site
        For each building, the index of its distinct point.
    points, footprints
        Each building's point and footprint (or ``None``), metric.

    Returns
    -------
    numpy.ndarray
        For each distinct point, its group (numbered from 0 in order of first point).
    """
    n = int(point_site.max()) + 1 if len(point_site) else 0
    known = np.flatnonzero([f is not None for f in footprints])
    rows, cols = [np.arange(n)], [np.arange(n)]
    if len(known):
        prints = footprints[known].astype(object)
        tree = shapely.STRtree(prints)
        building, hit = tree.query(points, predicate="intersects")
        foreign = building != known[hit]
        rows.append(point_site[building[foreign]])
        cols.append(point_site[known[hit[foreign]]])
        a, b = tree.query(prints, predicate="intersects")
        a, b = a[a < b], b[a < b]
        if len(a):
            shared = shapely.area(shapely.intersection(prints[a], prints[b])) > SNAP_M**2
            rows.append(point_site[known[a[shared]]])
            cols.append(point_site[known[b[shared]]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    _, labels = csgraph.connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))  # number groups by their first point
    return order[labels]


def _grouped(
    voronoi: np.ndarray, unique: np.ndarray, point_block: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One cell per group of distinct points (the union of their Voronoi cells), the
    point(s) each cell holds, and the block of its first point."""
    n = int(group.max()) + 1
    cells = np.empty(n, dtype=object)
    anchors = np.empty(n, dtype=object)
    block = np.zeros(n, dtype=int)
    members_of = np.split(np.argsort(group, kind="stable"), np.cumsum(np.bincount(group))[:-1])
    for g, members in enumerate(members_of):
        if len(members) == 1:
            cells[g], anchors[g] = voronoi[members[0]], shapely.points(unique[members[0]])
        else:
            cells[g] = shapely.union_all(voronoi[members])
            anchors[g] = shapely.multipoints(unique[members])
        block[g] = point_block[members[0]]
    return cells, anchors, block


def _voronoi(points: np.ndarray, block: shapely.Geometry) -> np.ndarray:
    """Voronoi cells of distinct points clipped to the block, in the points' order."""
    if len(points) == 1:
        return np.array([block], dtype=object)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=block, ordered=True)
    )
    try:
        return shapely.intersection(cells, block)
    except shapely.errors.GEOSException:  # rounding in a sliver of a cell: snap-round it
        return shapely.intersection(cells, block, grid_size=SNAP_M / 10)


def _footprints_whole(cells: np.ndarray, site: np.ndarray, footprints: np.ndarray) -> np.ndarray:
    """Give each footprint wholly to its building's cell, taking it from the others."""
    known = np.array([f is not None for f in footprints])
    if not known.any():
        return cells
    prints, owners = footprints[known], site[known]
    tree = shapely.STRtree(prints)
    cell_idx, print_idx = tree.query(cells, predicate="intersects")
    foreign = owners[print_idx] != cell_idx
    cells = cells.copy()
    for c in np.unique(cell_idx[foreign]):
        taken = shapely.union_all(prints[print_idx[(cell_idx == c) & foreign]])
        cells[c] = shapely.difference(cells[c], taken)
    alone = np.bincount(owners, minlength=len(cells)) == 1
    single = alone[owners]  # sites with one footprint: one vectorised union
    cells[owners[single]] = shapely.union(cells[owners[single]], prints[single])
    for c in np.unique(owners[~single]):
        cells[c] = shapely.union_all([cells[c], *prints[owners == c]])
    return cells


def _polygonal(cells: np.ndarray) -> np.ndarray:
    """Each cell's polygons only (overlays may leave stray lines or points beside them)."""
    out = cells.copy()
    for i in np.flatnonzero(shapely.get_type_id(cells) == 7):  # GeometryCollection
        parts = shapely.get_parts(cells[i])
        out[i] = shapely.union_all(parts[np.isin(shapely.get_type_id(parts), (3, 6))])
    return out


def _one_piece_each(cells: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Give each stray piece of a cell (cut off by another building's footprint) to the
    neighbour sharing the longest boundary with it, so every cell is one polygon.

    ``sites`` holds each cell's building point(s); the piece holding one stays."""
    cells = cells.copy()
    tree = shapely.STRtree(cells)
    for i in np.flatnonzero(shapely.get_num_geometries(cells) > 1):
        pieces = shapely.get_parts(cells[i])
        home = int(np.argmax(shapely.intersects(pieces, sites[i]) * 1e12 + shapely.area(pieces)))
        cells[i] = pieces[home]
        for k, piece in enumerate(pieces):
            if k == home:
                continue
            near = [j for j in tree.query(piece, predicate="intersects") if j != i]
            if not near:  # nowhere else to go: it stays with its cell
                cells[i] = shapely.union(cells[i], piece)
                continue
            shared = shapely.length(
                shapely.intersection(piece.boundary, shapely.boundary(cells[near]))
            )
            j = near[int(np.argmax(shared))]
            cells[j] = shapely.coverage_union_all([cells[j], piece])
    return cells


def _without_empty(
    cells: np.ndarray, site: np.ndarray, block: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop cells left empty by cleaning; their buildings go to the cell on their point
    (the nearest where none holds it). Cells are renumbered in order."""
    empty = shapely.is_empty(cells) | (shapely.area(cells) <= 0)
    if not empty.any():
        return cells, site, block
    kept = np.flatnonzero(~empty)
    new_index = np.full(len(cells), -1)
    new_index[kept] = np.arange(len(kept))
    site = new_index[site]
    lost = np.flatnonzero(site < 0)
    if len(lost):
        _, nearest = shapely.STRtree(cells[kept]).query_nearest(points[lost], all_matches=False)
        site[lost] = nearest
    return cells[kept], site, block[kept]


def _adjacency(cells: np.ndarray, block: np.ndarray) -> tuple:
    """Shared boundary lengths between cells, and the part of it between blocks."""
    n = len(cells)
    boundaries = shapely.boundary(cells)
    a, b = shapely.STRtree(cells).query(cells, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    length = np.asarray(
        shapely.length(shapely.intersection(boundaries[a], boundaries[b])), dtype=float
    )
    ok = length > MIN_SHARED_M
    a, b, length = a[ok], b[ok], length[ok]
    between_blocks = np.where(block[a] != block[b], length, 0.0)

    def symmetric(values: np.ndarray) -> sparse.csr_matrix:
        return sparse.coo_matrix(
            (np.r_[values, values], (np.r_[a, b], np.r_[b, a])), shape=(n, n)
        ).tocsr()

    return symmetric(length), symmetric(between_blocks)


def tessellate(
    boundary: shapely.Geometry,
    points: np.ndarray,
    footprints: np.ndarray,
    barriers: list[shapely.Geometry],
) -> Tessellation:
    """Tile ``boundary`` with one cell per building site (buildings at one point, or
    standing in one another, share one: :func:`shared_sites`).

    Parameters
    ----------
    boundary
        The community (metric CRS).
    points
        Each building's point (metric CRS), inside ``boundary``.
    footprints
        Each building's footprint or ``None`` (metric CRS).
    barriers
        Barrier roads as lines; cells never cross them (footprints aside).

    Returns
    -------
    Tessellation
        Cells, the cell of each building, and the cells' adjacency.
    """
    coords = np.round(shapely.get_coordinates(points), 3)
    unique, point_site = np.unique(coords, axis=0, return_inverse=True)
    point_site = point_site.ravel()
    distinct = shapely.points(unique)
    faces, point_block = _assign_blocks(blocks(boundary, barriers), distinct)
    if (point_block < 0).any():
        raise ValueError("building points must lie inside the community")
    voronoi = np.empty(len(distinct), dtype=object)
    for b, face in enumerate(faces):
        members = np.flatnonzero(point_block == b)
        voronoi[members] = _voronoi(unique[members], face)
    footprints = np.array(
        [None if f is None else shapely.intersection(f, boundary) for f in footprints],
        dtype=object,
    )
    footprints[[f is not None and f.is_empty for f in footprints]] = None
    group = shared_sites(point_site, np.asarray(points), footprints)
    site = group[point_site]
    cells, anchors, block = _grouped(voronoi, unique, point_block, group)
    cells = _footprints_whole(cells, site, footprints)
    # Cells were cut by separate overlays, so shared edges agree only to rounding;
    # GEOS's coverage cleaner makes them identical, so unions of cells are exact.
    cleaned = shapely.coverage_clean(_polygonal(cells), snapping_distance=SNAP_M)
    cells = _one_piece_each(cleaned, anchors)
    cells, site, block = _without_empty(cells, site, block, np.asarray(points))
    adjacency, barrier = _adjacency(cells, block)
    return Tessellation(cells, site, block, adjacency, barrier)
