"""The layout validator: pure checks on geometries, no database.

One set of checks serves import, edits, plans and apply. Input is a community's
boundary, its active grids and its buildings, in metres; output is a list of
:class:`Finding`, each with the grids involved and the geometry of the fault.
Every check compares at one precision (:mod:`gridmap.topology.precision`):
polygons snapped to a grid of ``rules.precision_m``, overlays on that grid, and a
gap, overlap or part outside counted only where it is larger than its area
tolerance and wider than ``rules.sliver_m``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import shapely

from gridmap.settings import LayoutRules
from gridmap.topology.precision import significant, snapped

#: Kinds of finding that make a layout invalid; the rest are warnings.
ERROR_KINDS = frozenset(
    {
        "invalid_geometry",
        "not_contiguous",
        "overlap",
        "gap",
        "outside_parent",
        "building_unassigned",
        "building_in_several",
    }
)
#: Grid kinds that tile a community together.
COMMUNITY_TILES = ("general", "dedicated")


@dataclass
class GridShape:
    """One grid as the validator sees it."""

    id: int
    code: str
    kind: str
    geom: shapely.Geometry
    parent_id: int | None = None
    worker_id: int | None = None


@dataclass
class Buildings:
    """Buildings of the area: points and footprints (``None`` where unknown)."""

    codes: Sequence[str]
    points: np.ndarray  # shapely Points
    footprints: np.ndarray  # shapely Polygons or None
    households: np.ndarray

    @classmethod
    def empty(cls) -> Buildings:
        return cls(
            [], np.array([], dtype=object), np.array([], dtype=object), np.array([], dtype=int)
        )


@dataclass
class Finding:
    """One thing wrong with a layout."""

    kind: str
    grids: list[str]
    detail: str
    geometry: shapely.Geometry | None = None
    area_m2: float | None = None
    buildings: list[str] = field(default_factory=list)

    @property
    def severity(self) -> str:
        """``error`` (the layout is invalid) or ``warning`` (worth a planner's look)."""
        return "error" if self.kind in ERROR_KINDS else "warning"


def _pieces(geom: shapely.Geometry, tolerance: float, rules: LayoutRules) -> list[shapely.Geometry]:
    """Polygon parts of a metric geometry that are more than drawing noise: larger
    than ``tolerance`` m² and wider than ``rules.sliver_m``."""
    parts = shapely.get_parts(geom)
    parts = parts[shapely.get_type_id(parts) == 3]
    return list(parts[significant(parts, tolerance, rules.sliver_m)])


def check_grids(grids: Sequence[GridShape], rules: LayoutRules) -> list[Finding]:
    """Invalid and non-contiguous grids."""
    findings = []
    for grid in grids:
        if not grid.geom.is_valid:
            findings.append(
                Finding(
                    "invalid_geometry", [grid.code], shapely.is_valid_reason(grid.geom), grid.geom
                )
            )
            continue
        parts = _pieces(grid.geom, rules.gap_tolerance_m2, rules)
        if len(parts) > 1:
            findings.append(
                Finding(
                    "not_contiguous",
                    [grid.code],
                    f"{grid.code} is in {len(parts)} separate pieces",
                    grid.geom,
                )
            )
    return findings


def check_siblings(
    siblings: Sequence[GridShape],
    parent: shapely.Geometry,
    parent_code: str,
    rules: LayoutRules,
) -> list[Finding]:
    """Overlaps between siblings, gaps they leave in their parent, parts outside it.

    Parameters
    ----------
    siblings
        Grids that must tile ``parent`` together (metres, on the precision grid).
    parent
        The community or general grid they tile.
    parent_code
        Its code, for the findings' text.
    """
    findings: list[Finding] = []
    valid = [g for g in siblings if g.geom.is_valid]
    if not valid:
        return findings
    geoms = np.array([g.geom for g in valid], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    grid_size = rules.precision_m
    for i, j in zip(left, right, strict=True):
        if i >= j:
            continue
        pieces = _pieces(
            shapely.intersection(geoms[i], geoms[j], grid_size=grid_size),
            rules.overlap_tolerance_m2,
            rules,
        )
        if pieces:
            shared = shapely.union_all(pieces)
            size = float(shapely.area(shared))
            a, b = valid[i].code, valid[j].code
            findings.append(
                Finding(
                    "overlap",
                    [a, b],
                    f"{a} and {b} overlap by {size:.1f} m²",
                    shared,
                    round(size, 2),
                )
            )
    union = shapely.union_all(geoms, grid_size=grid_size)
    gaps = shapely.difference(parent, union, grid_size=grid_size)
    for piece in _pieces(gaps, rules.gap_tolerance_m2, rules):
        size = float(shapely.area(piece))
        near = tree.query(piece, predicate="dwithin", distance=grid_size)
        touching = sorted(valid[k].code for k in near)
        findings.append(
            Finding(
                "gap",
                touching,
                f"{size:.1f} m² of {parent_code} is in no grid",
                piece,
                round(size, 2),
            )
        )
    for grid in valid:
        outside = _pieces(
            shapely.difference(grid.geom, parent, grid_size=grid_size),
            rules.outside_tolerance_m2,
            rules,
        )
        if outside:
            size = float(sum(shapely.area(p) for p in outside))
            findings.append(
                Finding(
                    "outside_parent",
                    [grid.code],
                    f"{size:.1f} m² of {grid.code} lies outside {parent_code}",
                    shapely.union_all(outside),
                    round(size, 2),
                )
            )
    return findings


def check_buildings(
    grids: Sequence[GridShape],
    buildings: Buildings,
    rules: LayoutRules,
) -> tuple[list[Finding], np.ndarray]:
    """Buildings in no grid, in several, or split between grids.

    A building belongs to the grids its point lies in; a point in none but within
    ``rules.precision_m`` of a grid belongs to the nearest. With buildings and no
    grids at all, every building is in no grid.

    Returns
    -------
    findings, households
        The findings, and the households inside each grid (by its point), in the
        order of ``grids``.
    """
    findings: list[Finding] = []
    households = np.zeros(len(grids), dtype=np.int64)
    if len(buildings.codes) == 0:
        return findings, households
    geoms = np.array([g.geom for g in grids], dtype=object)
    tree = shapely.STRtree(geoms)
    building_idx, grid_idx = tree.query(buildings.points, predicate="intersects")
    counts = np.bincount(building_idx, minlength=len(buildings.codes))
    near = np.flatnonzero(counts == 0)
    if len(near) and len(grids):
        found, nearest = tree.query_nearest(
            buildings.points[near], max_distance=rules.precision_m, all_matches=False
        )
        building_idx = np.r_[building_idx, near[found]]
        grid_idx = np.r_[grid_idx, nearest]
        counts = np.bincount(building_idx, minlength=len(buildings.codes))
    np.add.at(households, grid_idx, buildings.households[building_idx])
    codes = np.asarray(buildings.codes, dtype=object)
    unassigned = np.flatnonzero(counts == 0)
    if len(unassigned):
        findings.append(
            Finding(
                "building_unassigned",
                [],
                f"{len(unassigned)} building(s) in no grid",
                shapely.multipoints(list(buildings.points[unassigned])),
                buildings=list(codes[unassigned]),
            )
        )
    several = np.flatnonzero(counts > 1)
    for b in several:
        involved = sorted(grids[k].code for k in grid_idx[building_idx == b])
        findings.append(
            Finding(
                "building_in_several",
                involved,
                f"building {codes[b]} lies in {', '.join(involved)}",
                buildings.points[b],
                buildings=[codes[b]],
            )
        )
    owner = np.full(len(buildings.codes), -1)
    owner[building_idx] = grid_idx
    has_footprint = np.array([f is not None for f in buildings.footprints], dtype=bool)
    placed = np.flatnonzero((owner >= 0) & has_footprint)
    if len(placed):
        footprints = buildings.footprints[placed]
        inside = shapely.area(shapely.intersection(footprints, geoms[owner[placed]]))
        share_out = 1 - inside / np.maximum(shapely.area(footprints), 1e-12)
        for k in np.flatnonzero(share_out > rules.split_share):
            b = placed[k]
            findings.append(
                Finding(
                    "building_split",
                    [grids[owner[b]].code],
                    f"{share_out[k]:.0%} of building {codes[b]} lies outside its grid "
                    f"{grids[owner[b]].code}",
                    buildings.footprints[b],
                    buildings=[codes[b]],
                )
            )
    return findings, households


def check_households(
    grids: Sequence[GridShape], households: np.ndarray, rules: LayoutRules
) -> list[Finding]:
    """Grids whose households fall outside their kind's range."""
    findings = []
    for grid, count in zip(grids, households, strict=True):
        bounds = rules.household_range(grid.kind)
        if bounds and not bounds[0] <= count <= bounds[1]:
            findings.append(
                Finding(
                    "households_out_of_range",
                    [grid.code],
                    f"{grid.code} has {int(count)} households; {grid.kind} grids take "
                    f"{bounds[0]}-{bounds[1]}",
                    grid.geom,
                )
            )
    return findings


def check_workers(grids: Sequence[GridShape], rules: LayoutRules) -> list[Finding]:
    """General grids without a worker, and workers on more general grids than allowed."""
    general = [g for g in grids if g.kind == "general"]
    findings = [
        Finding("no_worker", [g.code], f"{g.code} has no grid worker", g.geom)
        for g in general
        if g.worker_id is None
    ]
    load = Counter(g.worker_id for g in general if g.worker_id is not None)
    for worker, count in sorted(load.items()):
        if count > rules.grids_per_worker:
            codes = sorted(g.code for g in general if g.worker_id == worker)
            findings.append(
                Finding(
                    "worker_overloaded",
                    codes,
                    f"one worker serves {count} general grids ({', '.join(codes)}); the rule is "
                    f"{rules.grids_per_worker}",
                )
            )
    return findings


def validate_layout(
    community: shapely.Geometry,
    community_code: str,
    grids: Sequence[GridShape],
    buildings: Buildings,
    rules: LayoutRules,
) -> list[Finding]:
    """Every check on one community's layout, in metres.

    Polygons are snapped to a grid of ``rules.precision_m`` first (their validity is
    judged as given), so vertices that differ by rounding are one, and overlays
    run on that grid.

    Parameters
    ----------
    community
        The community's boundary (metres, as every geometry here).
    community_code
        Its code, for the findings' text.
    grids
        Its active grids of every kind.
    buildings
        Its buildings.
    rules
        Tolerances, precision and household ranges (the community's own where it has
        them).

    Returns
    -------
    list of Finding
        Empty for a valid layout with nothing to warn about.
    """
    findings = check_grids(grids, rules)
    grids = [
        replace(g, geom=snapped(g.geom, rules.precision_m)) if g.geom.is_valid else g for g in grids
    ]
    community = snapped(community, rules.precision_m)
    tiles = [g for g in grids if g.kind in COMMUNITY_TILES]
    findings += check_siblings(tiles, community, community_code, rules)
    micro_by_parent: dict[int, list[GridShape]] = defaultdict(list)
    for grid in grids:
        if grid.kind == "micro" and grid.parent_id is not None:
            micro_by_parent[grid.parent_id].append(grid)
    by_id = {g.id: g for g in grids}
    for parent_id, micros in sorted(micro_by_parent.items()):
        parent = by_id.get(parent_id)
        if parent is not None and parent.geom.is_valid:
            findings += check_siblings(micros, parent.geom, parent.code, rules)
    building_findings, households = check_buildings(tiles, buildings, rules)
    findings += building_findings
    findings += check_households(tiles, households, rules)
    micros = [g for g in grids if g.kind == "micro"]
    if micros:
        _, micro_households = check_buildings(micros, buildings, rules)
        findings += check_households(micros, micro_households, rules)
    findings += check_workers(grids, rules)
    return findings
