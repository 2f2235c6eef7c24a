"""The redraw engine: dedicated, general and micro grids of one community.

Pure computation on metric geometries and arrays: :func:`redraw` takes the
community, its buildings and barrier roads and returns planned grids that tile
the community exactly (each a union of whole tessellation cells, so no building
is split). Loading from and storing to PostGIS is :mod:`gridmap.redraw.store`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from gridmap.redraw.partition import Partitioner
from gridmap.redraw.tessellation import Tessellation, tessellate

#: Building use → dedicated grid category (专属网格) when a whole compound has such uses.
DEDICATED_USES = (
    ("school", "school"),
    ("hospital", "hospital"),
    ("commercial", "market"),
    ("industrial", "enterprise"),
    ("office", "enterprise"),
    ("public", "government"),
)
#: Spanning trees per split when drawing micro grids.
MICRO_TREES = 2
#: Words in a compound's name that make a public compound a park.
PARK_WORDS = ("公园", "park", "Park")
#: Grids (or groups of buildings) named one by one in a plan's note; the rest are counted.
NOTE_NAMES = 12


@dataclass(frozen=True)
class RedrawRules:
    """What a plan aims at.

    Attributes
    ----------
    general, micro
        Households per general and micro grid, inclusive (300-500 and 30-100, as
        the validator's defaults).
    dedicated_uses
        Building uses that make a dedicated grid, and the category each gives. A
        compound (or a building outside any compound) becomes one when all its
        buildings have such uses and no households.
    keep_compounds
        Make cutting through a residential compound (小区) costly, so compounds stay
        whole where the range allows.
    stability
        Prefer today's grid boundaries, so fewer households change grid.
    seed
        Seed of the partition's random draws: the same seed gives the same plan.
    road_discount
        Share of the cost saved where a boundary runs along a barrier road.
    compound_factor
        Cost multiplier of a boundary through a compound.
    stability_discount
        Share of the cost saved where a boundary runs along today's grid boundary.
    """

    general: tuple[int, int] = (300, 500)
    micro: tuple[int, int] = (30, 100)
    dedicated_uses: tuple[tuple[str, str], ...] = DEDICATED_USES
    keep_compounds: bool = True
    stability: bool = False
    seed: int = 0
    road_discount: float = 0.8
    compound_factor: float = 4.0
    stability_discount: float = 0.5


@dataclass
class Sites:
    """A community's buildings as the engine sees them (metric CRS).

    ``current`` holds each building's grid code today (general or dedicated), or ``None``.
    """

    codes: Sequence[str]
    points: np.ndarray
    footprints: np.ndarray
    households: np.ndarray
    uses: Sequence[str]
    compounds: Sequence[str | None]
    current: Sequence[str | None]

    def subset(self, index: np.ndarray) -> Sites:
        """These buildings only, in the order of ``index``."""
        return Sites(
            [self.codes[i] for i in index],
            self.points[index],
            self.footprints[index],
            self.households[index],
            [self.uses[i] for i in index],
            [self.compounds[i] for i in index],
            [self.current[i] for i in index],
        )


@dataclass
class PlannedGrid:
    """One grid of a plan.

    ``key`` names it inside the plan (``D01``, ``G01``, ``G01-M01``); ``parent`` is the
    key of a micro grid's general grid; ``buildings`` indexes into the input sites.
    """

    key: str
    kind: str
    geometry: shapely.Geometry
    buildings: np.ndarray
    households: int
    parent: str | None = None
    category: str | None = None
    note: str | None = None


@dataclass
class Plan:
    """The planned grids and what the engine has to say about them."""

    grids: list[PlannedGrid]
    notes: list[str] = field(default_factory=list)


def _dedicated_groups(sites: Sites, rules: RedrawRules) -> list[tuple[str, list[int]]]:
    """Buildings that make dedicated grids, one group per compound, with its category."""
    mapping = dict(rules.dedicated_uses)
    groups: dict[tuple, list[int]] = {}
    for i, compound in enumerate(sites.compounds):
        groups.setdefault((compound,) if compound else ("", i), []).append(i)
    chosen = []
    for key, members in groups.items():
        uses = [sites.uses[i] for i in members]
        if all(u in mapping for u in uses) and not sites.households[members].any():
            category = Counter(mapping[u] for u in uses).most_common(1)[0][0]
            if category == "government" and any(w in key[0] for w in PARK_WORDS):
                category = "park"
            chosen.append((category, members))
    return chosen


def boundary_costs(tiles: Tessellation, sites: Sites, rules: RedrawRules) -> sparse.csr_matrix:
    """The price of a grid boundary between each pair of touching cells: their shared
    length, discounted along barrier roads (and today's boundaries with ``stability``),
    raised inside a compound with ``keep_compounds``."""
    adjacency = tiles.adjacency.tocoo()
    barrier = np.asarray(tiles.barrier.tocsr()[adjacency.row, adjacency.col]).ravel()
    cost = adjacency.data - rules.road_discount * barrier
    site_compound = np.full(len(tiles.cells), None, dtype=object)
    site_current = np.full(len(tiles.cells), None, dtype=object)
    for i, s in enumerate(tiles.site):
        site_compound[s] = sites.compounds[i] or None
        site_current[s] = sites.current[i]
    a, b = adjacency.row, adjacency.col
    if rules.keep_compounds:
        same = (site_compound[a] == site_compound[b]) & (site_compound[a] != None)  # noqa: E711
        cost = np.where(same, cost * rules.compound_factor, cost)
    if rules.stability:
        moved = site_current[a] != site_current[b]
        cost = np.where(moved, cost * (1 - rules.stability_discount), cost)
    cost = np.maximum(np.asarray(cost, dtype=float), 1e-3)
    return sparse.csr_matrix((cost, (a, b)), shape=tiles.adjacency.shape)


def _named(items: list[str]) -> str:
    """Items joined by commas, the first :data:`NOTE_NAMES` of them and a count of the rest."""
    shown = ", ".join(items[:NOTE_NAMES])
    return shown + (f" and {len(items) - NOTE_NAMES} more" if len(items) > NOTE_NAMES else "")


def _site_notes(sites: Sites, tiles: Tessellation) -> list[str]:
    """A note on the buildings that share one cell (nested or overlapping footprints)."""
    shared = np.flatnonzero(np.bincount(tiles.site)[tiles.site] > 1)
    if not len(shared):
        return []
    groups: dict[int, list[str]] = {}
    for b in shared:
        groups.setdefault(int(tiles.site[b]), []).append(str(sites.codes[b]))
    listed = ["+".join(codes) for codes in groups.values()]
    return [
        f"{len(shared)} buildings stand in or on one another (the same point, an outline "
        f"inside another, overlapping footprints) and share a cell, so a grid holds each "
        f"group whole: {_named(listed)}"
    ]


def _micro_notes(grids: list[PlannedGrid], micro_high: int) -> list[str]:
    """Notes naming oversize buildings and micro grids without households."""
    notes = []
    big = [g for g in grids if g.kind == "micro" and g.households > micro_high]
    if big:
        names = [f"{g.key} ({g.households} households)" for g in big]
        notes.append(
            f"{len(big)} micro grid(s) over the micro maximum of {micro_high} households, "
            f"each one building or buildings standing in one another: {_named(names)}"
        )
    empty = [g.key for g in grids if g.kind == "micro" and g.households == 0]
    if empty:
        notes.append(
            f"{len(empty)} micro grid(s) without households (buildings with none recorded, "
            f"or none at all): {_named(empty)}"
        )
    return notes


def _components(costs: sparse.csr_matrix, nodes: np.ndarray) -> list[np.ndarray]:
    count, labels = csgraph.connected_components(costs[nodes][:, nodes], directed=False)
    return [nodes[labels == g] for g in range(count)]


def redraw(
    boundary: shapely.Geometry,
    sites: Sites,
    barriers: list[shapely.Geometry],
    rules: RedrawRules | None = None,
) -> Plan:
    """Plan a community's dedicated, general and micro grids.

    Parameters
    ----------
    boundary
        The community (metric CRS).
    sites
        Its buildings (metric CRS); their points lie inside ``boundary``.
    barriers
        Barrier roads (metric CRS): preferred boundaries that cells never cross.
    rules
        Household ranges, dedicated uses and preferences.

    Returns
    -------
    Plan
        Grids that tile ``boundary``: dedicated grids, general grids, and micro grids
        tiling each general grid. A building with more households than the micro
        maximum is a micro grid of its own. Buildings standing in one another share a
        cell, so they are never split between grids. The notes name oversize
        buildings, micro grids without households, buildings that share a cell and
        general grids outside their range.
    """
    rules = rules or RedrawRules()
    if len(sites.codes) == 0:
        return Plan(
            [PlannedGrid("G01", "general", boundary, np.zeros(0, dtype=int), 0)],
            ["the community has no buildings: one general grid"],
        )
    tiles = tessellate(boundary, sites.points, sites.footprints, barriers)
    n_cells = len(tiles.cells)
    weights = np.bincount(tiles.site, weights=sites.households, minlength=n_cells)
    costs = boundary_costs(tiles, sites, rules)
    centroids = shapely.get_coordinates(shapely.centroid(tiles.cells))
    partitioner = Partitioner(costs, weights, rules.seed, centroids=centroids)
    # Micro grids are many and small: fewer trees per split find good cuts there.
    micro_partitioner = Partitioner(
        costs, weights, rules.seed, trees=MICRO_TREES, centroids=centroids
    )
    members_of = [np.flatnonzero(tiles.site == c) for c in range(n_cells)]

    def grid(key, kind, cells, **extra) -> PlannedGrid:
        buildings = np.sort(np.concatenate([members_of[c] for c in cells]))
        geometry = shapely.coverage_union_all(tiles.cells[cells])
        return PlannedGrid(
            key, kind, geometry, buildings, int(sites.households[buildings].sum()), **extra
        )

    grids: list[PlannedGrid] = []
    notes: list[str] = []
    dedicated = np.zeros(n_cells, dtype=bool)
    for category, members in _dedicated_groups(sites, rules):
        cells = np.unique(tiles.site[members])
        cells = cells[~dedicated[cells]]
        dedicated[cells] = True
        for part in _components(costs, cells):
            grids.append(grid(f"D{len(grids) + 1:02d}", "dedicated", part, category=category))
    general_cells = np.flatnonzero(~dedicated)
    labels = partitioner.partition(*rules.general, general_cells)
    micro_low, micro_high = rules.micro
    for g in range(labels.max() + 1):
        cells = np.flatnonzero(labels == g)
        key = f"G{g + 1:02d}"
        grids.append(grid(key, "general", cells))
        big = cells[weights[cells] > micro_high]
        rest = cells[weights[cells] <= micro_high]
        micro_labels = micro_partitioner.partition(micro_low, micro_high, rest) if len(rest) else []
        count = int(np.max(micro_labels, initial=-1)) + 1
        parts = [np.flatnonzero(micro_labels == m) for m in range(count)]
        for m, part in enumerate([*parts, *([c] for c in big)], start=1):
            note = None
            if len(part) == 1 and weights[part[0]] > micro_high:
                codes = [str(sites.codes[b]) for b in members_of[part[0]]]
                note = (
                    f"building {codes[0]} is over the micro maximum of {micro_high} households"
                    if len(codes) == 1
                    else f"buildings {', '.join(codes)} stand in one another and are over "
                    f"the micro maximum of {micro_high} households together"
                )
            grids.append(grid(f"{key}-M{m:02d}", "micro", np.asarray(part), parent=key, note=note))
    low, high = rules.general
    outside = [g.key for g in grids if g.kind == "general" and not low <= g.households <= high]
    if outside:
        notes.append(
            f"{len(outside)} general grid(s) outside {low}-{high} households where the "
            f"blocks allow no better: {', '.join(outside)}"
        )
    notes += _micro_notes(grids, micro_high) + _site_notes(sites, tiles)
    return Plan(grids, notes)


def micro_grids(
    boundary: shapely.Geometry,
    sites: Sites,
    barriers: list[shapely.Geometry],
    rules: RedrawRules,
    parent: str,
) -> list[PlannedGrid]:
    """Micro grids tiling one general grid (after it was reshaped in a draft).

    ``sites`` are the buildings inside ``boundary``; the grids are keyed
    ``{parent}-M01``, ``{parent}-M02``, ... and index into ``sites``.
    """
    whole = replace(rules, general=(0, 2**31), dedicated_uses=())
    drawn = redraw(boundary, sites, barriers, whole)
    return [
        replace(g, key=f"{parent}-M{n:02d}", parent=parent)
        for n, g in enumerate((g for g in drawn.grids if g.kind == "micro"), start=1)
    ]
