"""Grid edits that keep a layout valid: reshape, split, merge, recode, workers.

Every edit locks its community (one editor at a time per community, so two
neighbours edited at once cannot both win), writes revisions for every grid it
touches, and is refused with the validator's findings when it would leave an
error the layout did not have before. All of it happens in the caller's
transaction: a refused edit writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gridmap import features
from gridmap.features import Conflict, NotFound, VersionMismatch
from gridmap.geometry import MetricFrame, as_multipolygon
from gridmap.io.layers import LAYERS
from gridmap.models import Area, Building, Grid, Worker
from gridmap.settings import LayoutRules
from gridmap.topology import validate_community
from gridmap.topology.checks import COMMUNITY_TILES, Finding
from gridmap.topology.edits import hand_over, merged, snap_to_neighbours, split_by_line

GRIDS = LAYERS["grids"]
#: Fields that decide where a grid sits in the layout; changing one re-validates.
LAYOUT_FIELDS = frozenset({"kind", "community", "parent"})


# -- Names that follow codes ----------------------------------------------------------
#
# A grid's generated name says its community and the number its code ends in:
# 玉林社区第3网格 (general, code ...003), 玉林社区第5专属网格 (dedicated: general and
# dedicated grids share one sequence of numbers), 玉林社区第3网格第2微网格 (micro,
# code ...003002), 玉林社区总网格 (master). A generated name is made again whenever
# the code changes (split, merge, recode, apply, a code set by hand); any other name
# is a planner's own and is kept.

#: Names gridmap made before names followed codes, still taken as generated: a
#: plan's draft names (一般网格G01, 微网格G01-M02) and split pieces (第3网格甲).
_DRAFT_NAME = r"(?:一般网格|微网格|专属网格)[A-Z]\d+(?:-M\d+)?"
_NUMBERED_NAME = r"(?:总网格|第\d+网格(?:第\d+微网格)?|第\d+专属网格)[甲乙]?"


def _number(code: str, end: int) -> str:
    """The number of the three digits ending ``end`` characters before the code's end
    (``003`` -> ``3``); the digits as they are when they are not digits."""
    digits = code[len(code) - end - 3 : len(code) - end]
    return str(int(digits)) if digits.isdigit() else digits


def generated_name(community: str, kind: str, code: str) -> str:
    """The name gridmap gives a grid of ``kind`` with ``code`` in the community named
    ``community``: 玉林社区第3网格, 玉林社区第5专属网格, 玉林社区第3网格第2微网格,
    玉林社区总网格."""
    if kind == "master":
        return f"{community}总网格"
    if kind == "micro":
        return f"{community}第{_number(code, 3)}网格第{_number(code, 0)}微网格"
    if kind == "dedicated":
        return f"{community}第{_number(code, 0)}专属网格"
    return f"{community}第{_number(code, 0)}网格"


def is_generated_name(name: str | None, community: str) -> bool:
    """Whether ``name`` is one gridmap made for a grid of the community named
    ``community`` (whatever number it carries), rather than a planner's own."""
    if not name:
        return True
    pattern = f"{re.escape(community)}(?:{_NUMBERED_NAME}|{_DRAFT_NAME})"
    return re.fullmatch(pattern, name) is not None


def name_for(community: str, kind: str, code: str, name: str | None) -> str:
    """The name a grid with ``code`` carries: its generated name when ``name`` is none
    or generated (so the number follows the code), else ``name`` (a planner's own)."""
    return generated_name(community, kind, code) if is_generated_name(name, community) else name


class LayoutRefused(Conflict):
    """An edit that would leave the layout with new errors; nothing was written."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        details = "; ".join(f.detail for f in findings[:3])
        super().__init__(f"the edit would leave the layout invalid: {details}")


def lock_community(session: Session, community_id: int) -> Area:
    """Take the community's edit lock (held until the transaction ends)."""
    return session.scalars(select(Area).where(Area.id == community_id).with_for_update()).one()


def _grid(session: Session, grid_id: int) -> Grid:
    grid = session.get(Grid, grid_id)
    if grid is None or not grid.active:
        raise NotFound(f"no active grid with id {grid_id}")
    return grid


def _siblings(session: Session, grid: Grid) -> list[Grid]:
    """Grids that tile the same parent as ``grid`` (excluding it)."""
    query = select(Grid).where(
        Grid.active, Grid.id != grid.id, Grid.community_id == grid.community_id
    )
    if grid.kind == "micro":
        query = query.where(Grid.kind == "micro", Grid.parent_id == grid.parent_id)
    else:
        query = query.where(Grid.kind.in_(COMMUNITY_TILES))
    return list(session.scalars(query.order_by(Grid.id)))


def _errors(session: Session, community: Area, rules: LayoutRules) -> list[Finding]:
    return [f for f in validate_community(session, community, rules) if f.severity == "error"]


def new_errors(before: list[Finding], after: list[Finding], rules: LayoutRules) -> list[Finding]:
    """Errors in ``after`` that ``before`` did not have (or had smaller, or with fewer
    buildings: one more building in no grid is a new error)."""
    known: dict[tuple[str, frozenset[str]], float] = {}
    buildings: dict[tuple[str, frozenset[str]], set[str]] = {}
    for finding in before:
        key = (finding.kind, frozenset(finding.grids))
        known[key] = max(known.get(key, 0.0), finding.area_m2 or 0.0)
        buildings.setdefault(key, set()).update(finding.buildings)
    return [
        f
        for f in after
        if (f.kind, frozenset(f.grids)) not in known
        or (f.area_m2 or 0.0) > known[f.kind, frozenset(f.grids)] + rules.gap_tolerance_m2
        or not set(f.buildings) <= buildings[f.kind, frozenset(f.grids)]
    ]


class LayoutGuard:
    """Lock a community, note its errors, and refuse a change that adds any."""

    def __init__(self, session: Session, community_id: int, rules: LayoutRules):
        self.session, self.rules = session, rules
        self.community = lock_community(session, community_id)
        session.refresh(self.community)
        self.before = _errors(session, self.community, rules)

    def check(self) -> None:
        """Raise :class:`LayoutRefused` when the layout now has errors it did not have."""
        self.session.flush()
        fresh = new_errors(
            self.before, _errors(self.session, self.community, self.rules), self.rules
        )
        if fresh:
            raise LayoutRefused(fresh)


def update_grid(
    session: Session,
    grid_id: int,
    geom: shapely.Geometry | None,
    properties: Mapping[str, Any],
    author: str,
    reason: str | None = None,
    expected_version: int | None = None,
    adjust_neighbours: bool = False,
    rules: LayoutRules | None = None,
) -> dict:
    """Change a grid; a new boundary snaps to its neighbours and must keep the layout valid.

    Parameters
    ----------
    geom
        The new boundary (lon/lat), or ``None`` to keep it.
    adjust_neighbours
        Take the area the grid gains from its siblings and give the area it loses
        to the sibling sharing the longest boundary with it, so the layout stays a
        tiling. Without it, an edit that opens a gap or an overlap is refused.

    Raises
    ------
    NotFound, VersionMismatch, ImportRejected
    LayoutRefused
        With the findings the edit would have added.
    """
    rules = rules or LayoutRules()
    grid = _grid(session, grid_id)
    if properties.get("code") and "name" not in properties and "community" not in properties:
        community = session.get(Area, grid.community_id)
        kind = properties.get("kind") or grid.kind
        name = name_for(community.name, kind, properties["code"], grid.name)
        properties = {**properties, "name": name}
    if not (geom is not None or LAYOUT_FIELDS & set(properties)):
        return features.update_feature(
            session, GRIDS, grid_id, None, properties, author, reason, expected_version
        )
    guard = LayoutGuard(session, grid.community_id, rules)
    if geom is not None:
        siblings = _siblings(session, grid)
        shapes = {s.id: to_shape(s.geom) for s in siblings}
        geom = snap_to_neighbours(geom, list(shapes.values()), rules.snap_tolerance_m)
        if adjust_neighbours:
            frame = MetricFrame(to_shape(guard.community.geom))
            for sibling_id, shape in hand_over(to_shape(grid.geom), geom, shapes, frame).items():
                features.update_feature(
                    session,
                    GRIDS,
                    sibling_id,
                    as_multipolygon(shape),
                    {},
                    author,
                    reason or f"adjusted by a change of {grid.code}",
                )
    record = features.update_feature(
        session, GRIDS, grid_id, geom, properties, author, reason, expected_version
    )
    guard.check()
    return record


def _households_in(session: Session, geom: shapely.Geometry) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Building.households), 0)).where(
                func.ST_Intersects(func.ST_GeomFromWKB(shapely.to_wkb(geom), 4326), Building.point)
            )
        )
    )


def _next_code(session: Session, prefix: str) -> str:
    """The next free three-digit code under ``prefix`` among active grids."""
    codes = session.scalars(select(Grid.code).where(Grid.active, Grid.code.like(f"{prefix}___")))
    used = [int(c[-3:]) for c in codes if c[-3:].isdigit()]
    return f"{prefix}{max(used, default=0) + 1:03d}"


def _move_children(
    session: Session, children: list[Grid], new_ids: list[int], author: str, reason: str | None
) -> None:
    """Give each child grid to the new grid that holds most of it."""
    targets = {i: to_shape(session.get(Grid, i).geom) for i in new_ids}
    for child in children:
        shape = to_shape(child.geom)
        best = max(targets, key=lambda i: shapely.area(shapely.intersection(shape, targets[i])))
        code = session.get(Grid, best).code
        features.update_feature(session, GRIDS, child.id, None, {"parent": code}, author, reason)


def _children(session: Session, grid_ids: list[int]) -> list[Grid]:
    return list(
        session.scalars(
            select(Grid).where(Grid.active, Grid.parent_id.in_(grid_ids)).order_by(Grid.id)
        )
    )


def split_grid(
    session: Session,
    grid_id: int,
    line: shapely.Geometry,
    author: str,
    reason: str | None = None,
    expected_version: int | None = None,
    names: list[str] | None = None,
    rules: LayoutRules | None = None,
) -> list[int]:
    """Split a grid in two along a line; return the two new grids' ids.

    The old grid is retired. The piece with more households keeps the old code,
    the name and the worker; the other takes the next free code and its generated
    name (:func:`name_for`; ``names``, in the order of the pieces, set them instead).
    Micro grids go to the piece that holds most of them; buildings follow by where
    they stand.

    Raises
    ------
    NotFound, VersionMismatch, EditProblem, LayoutRefused
    """
    rules = rules or LayoutRules()
    grid = _grid(session, grid_id)
    guard = LayoutGuard(session, grid.community_id, rules)
    if expected_version is not None and grid.version != expected_version:
        raise VersionMismatch(grid.version)
    pieces = split_by_line(to_shape(grid.geom), line)
    record = features.retire_grid(session, grid.id, author, reason)
    households = [_households_in(session, p) for p in pieces]
    order = sorted(range(2), key=lambda k: -households[k])
    prefix = grid.code[:-3]
    new_ids: list[int] = [0, 0]
    for rank, k in enumerate(order):
        properties = {name: record[name] for name in GRIDS.field_by_name}
        properties["code"] = grid.code if rank == 0 else _next_code(session, prefix)
        properties["worker"] = record["worker"] if rank == 0 else None
        given = names[k] if names else (record["name"] if rank == 0 else None)
        properties["name"] = name_for(guard.community.name, grid.kind, properties["code"], given)
        new_ids[k] = features.create_feature(session, GRIDS, pieces[k], properties, author, reason)
    _move_children(session, _children(session, [grid.id]), new_ids, author, reason)
    guard.check()
    return new_ids


def merge_grids(
    session: Session,
    versions: Mapping[int, int],
    author: str,
    reason: str | None = None,
    name: str | None = None,
    rules: LayoutRules | None = None,
) -> int:
    """Merge sibling grids that share boundaries into one; return its id.

    Parameters
    ----------
    versions
        Grid id → the version the planner saw (each must still be current).

    The merged grid takes the code and the name of the lowest-coded grid (or
    ``name``; a generated name follows the code, :func:`name_for`) and the worker of
    the one with most households; micro grids move to it; the others are retired.

    Raises
    ------
    NotFound, VersionMismatch, EditProblem, LayoutRefused
    Conflict
        The grids are not siblings (same kind, community and parent).
    """
    rules = rules or LayoutRules()
    if len(versions) < 2:
        raise Conflict("merging needs at least two grids")
    grids = [_grid(session, i) for i in sorted(versions)]
    if len({(g.kind, g.community_id, g.parent_id) for g in grids}) != 1:
        raise Conflict("only grids of the same kind, community and parent can be merged")
    guard = LayoutGuard(session, grids[0].community_id, rules)
    for grid in grids:
        session.refresh(grid)
        if grid.version != versions[grid.id]:
            raise VersionMismatch(grid.version)
    shapes = [to_shape(g.geom) for g in grids]
    union = merged(shapes)
    households = [_households_in(session, s) for s in shapes]
    first = min(grids, key=lambda g: g.code)
    busiest = grids[int(np.argmax(households))]
    records = {g.id: features.retire_grid(session, g.id, author, reason) for g in grids}
    properties = {n: records[first.id][n] for n in GRIDS.field_by_name}
    properties["worker"] = records[busiest.id]["worker"]
    properties["name"] = name_for(
        guard.community.name, first.kind, first.code, name or records[first.id]["name"]
    )
    new_id = features.create_feature(session, GRIDS, union, properties, author, reason)
    _move_children(session, _children(session, list(versions)), [new_id], author, reason)
    guard.check()
    return new_id


def reading_order(points: list[shapely.Point], row_height: float) -> list[int]:
    """Indices of points north to south in rows of ``row_height``, west to east in a row."""
    if not points:
        return []
    top = max(p.y for p in points)
    keys = [(int((top - p.y) // row_height) if row_height > 0 else 0, p.x) for p in points]
    return sorted(range(len(points)), key=lambda i: keys[i])


def recode_community(
    session: Session, code: str, author: str, reason: str | None = "recode"
) -> dict[str, str]:
    """Renumber a community's grids: master ``000``, then general and dedicated grids,
    then each general grid's micro grids, north to south and west to east.

    Codes are the community's code plus three digits (micro grids: their general
    grid's code plus three). Generated names are made again from the new codes
    (a planner's own names are kept; :func:`name_for`), which also mends generated
    names whose number had drifted from the code. Returns old code → new code for
    the grids whose code changed.
    """
    community = session.scalar(select(Area).where(Area.code == code, Area.level == "community"))
    if community is None:
        raise NotFound(f"no community with code {code!r}")
    lock_community(session, community.id)
    frame = MetricFrame(to_shape(community.geom))
    grids = list(
        session.scalars(
            select(Grid).where(Grid.community_id == community.id, Grid.active).order_by(Grid.id)
        )
    )
    wanted: dict[int, str] = {}

    def number(group: list[Grid], prefix: str) -> None:
        shapes = [frame.to_metric(to_shape(g.geom)) for g in group]
        row = float(np.sqrt(np.median([s.area for s in shapes]))) if shapes else 0.0
        order = reading_order([s.representative_point() for s in shapes], row)
        for seq, k in enumerate(order, start=1):
            wanted[group[k].id] = f"{prefix}{seq:03d}"

    for master in (g for g in grids if g.kind == "master"):
        wanted[master.id] = f"{code}000"
    number([g for g in grids if g.kind in COMMUNITY_TILES], code)
    for parent in [g for g in grids if g.kind == "general"]:
        number(
            [g for g in grids if g.kind == "micro" and g.parent_id == parent.id], wanted[parent.id]
        )
    named = {
        g.id: name_for(community.name, g.kind, wanted[g.id], g.name)
        for g in grids
        if g.id in wanted
    }
    changed = {
        g.id: (g.code, wanted[g.id])
        for g in grids
        if g.id in wanted and (g.code != wanted[g.id] or g.name != named[g.id])
    }
    if not changed:
        return {}
    before = {i: features.get_feature(session, GRIDS, i) for i in changed}
    # Two steps, so that swapping two codes never collides on the unique index.
    for grid_id in changed:
        session.execute(update(Grid).where(Grid.id == grid_id).values(code=f"~{grid_id}"))
    for grid_id, (_, new) in changed.items():
        session.execute(
            update(Grid)
            .where(Grid.id == grid_id)
            .values(code=new, name=named[grid_id], version=Grid.version + 1, updated_at=func.now())
        )
    for grid_id, (record, geom) in before.items():
        after, _ = features.get_feature(session, GRIDS, grid_id)
        features.record_grid_change(
            session, grid_id, record, geom, after, geom, "update", author, reason
        )
    return {old: new for old, new in changed.values() if old != new}


def workload(session: Session, code: str) -> dict[str, Any]:
    """Per worker of an area's general grids: their grids, buildings and households;
    and the general grids without a worker."""
    page = features.select_features(
        session, GRIDS, features.Query(area=code, equals={"kind": "general"})
    )
    stats = features.grid_statistics(session, [r["id"] for r in page.records])
    workers: dict[int, dict[str, Any]] = {}
    unserved = []
    for record in page.records:
        s = stats[record["id"]]
        if record["worker_id"] is None:
            unserved.append({"code": record["code"], "households": s["households"]})
            continue
        entry = workers.setdefault(
            record["worker_id"],
            {"worker": record["worker"], "grids": [], "buildings": 0, "households": 0},
        )
        entry["grids"].append(record["code"])
        entry["buildings"] += s["buildings"]
        entry["households"] += s["households"]
    names = (
        dict(
            session.execute(
                select(Worker.id, Worker.name).where(Worker.id.in_(list(workers)))
            ).all()
        )
        if workers
        else {}
    )
    rows = [{**entry, "name": names.get(worker_id)} for worker_id, entry in workers.items()]
    return {
        "area": code,
        "workers": sorted(rows, key=lambda r: r["worker"] or ""),
        "grids_without_worker": unserved,
    }


def revert_grid(
    session: Session,
    grid_id: int,
    revision_id: int,
    author: str,
    reason: str | None = None,
    expected_version: int | None = None,
    rules: LayoutRules | None = None,
) -> dict:
    """Restore a revision's state as a new revision, if the layout stays valid.

    Raises
    ------
    NotFound, VersionMismatch, ImportRejected, LayoutRefused
    """
    grid = session.get(Grid, grid_id)
    if grid is None:
        raise NotFound(f"no grid with id {grid_id}")
    guard = LayoutGuard(session, grid.community_id, rules or LayoutRules())
    record = features.revert_grid(session, grid_id, revision_id, author, reason, expected_version)
    guard.check()
    return record
