"""Draft plans in PostGIS: make one, read it, compare it with today, apply or discard it.

A plan is drawn by :func:`~gridmap.redraw.engine.redraw` from the community as it
stands, validated with the same validator as live grids, and stored in ``plans``
and ``plan_grids`` apart from the live grids. Applying it replaces the
community's general, dedicated and micro grids in one transaction (master grids
stay), with revisions and new codes, and makes the plan's household ranges the
community's; a plan whose community changed since it was drawn is stale and refused.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap import features
from gridmap.features import Conflict, NotFound
from gridmap.geometry import MetricFrame, as_multipolygon, geometry_problems
from gridmap.grids import (
    GRIDS,
    LayoutGuard,
    LayoutRefused,
    is_generated_name,
    new_errors,
    recode_community,
)
from gridmap.io.store import ImportRejected
from gridmap.models import Building, Grid, Plan, PlanGrid
from gridmap.redraw.engine import Plan as Drawn
from gridmap.redraw.engine import PlannedGrid, RedrawRules, micro_grids, redraw
from gridmap.redraw.inputs import Inputs, community_by_code, load_inputs
from gridmap.redraw.metrics import TOP_KINDS, plan_metrics, polsby_popper
from gridmap.settings import LayoutRules
from gridmap.topology import validate_community
from gridmap.topology.checks import Finding, GridShape
from gridmap.topology.edits import (
    EditProblem,
    hand_over,
    merged,
    snap_to_neighbours,
    split_by_line,
)
from gridmap.topology.precision import metric

KIND_NAMES = {"general": "一般网格", "micro": "微网格", "dedicated": "专属网格"}


def _live_versions(session: Session, community_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Grid.id, Grid.version).where(Grid.community_id == community_id, Grid.active)
    )
    return {str(i): v for i, v in rows}


def _redraw_rules(plan: Plan) -> RedrawRules:
    """The plan's ranges and seed as the engine's rules."""
    return RedrawRules(
        general=tuple(plan.settings["general"]),
        micro=tuple(plan.settings["micro"]),
        seed=plan.settings.get("seed", 0),
    )


def _lonlat(geom: shapely.Geometry, frame: MetricFrame) -> shapely.Geometry:
    """A metric polygon in lon/lat, valid there too (a vertex pair a few nanometres
    apart may not survive the change of frame as it was)."""
    out = frame.to_lonlat(geom)
    if not out.is_valid:
        parts = shapely.get_parts(shapely.make_valid(out))
        out = shapely.union_all(parts[np.isin(shapely.get_type_id(parts), (3, 6))])
    return out


def _stored(grid: PlannedGrid, frame: MetricFrame) -> PlanGrid:
    """A planned grid (metric) as a row of ``plan_grids`` (lon/lat)."""
    return PlanGrid(
        key=grid.key,
        kind=grid.kind,
        parent_key=grid.parent,
        dedicated_category=grid.category,
        households=grid.households,
        buildings=len(grid.buildings),
        polsby_popper=round(polsby_popper(grid.geometry), 4),
        note=grid.note,
        geom=from_shape(as_multipolygon(_lonlat(grid.geometry, frame)), 4326),
    )


def _ranges(plan: Plan) -> dict[str, list[int]]:
    """The plan's household ranges by kind, as ``areas.household_ranges`` holds them."""
    return {k: [int(v) for v in plan.settings[k]] for k in ("general", "micro")}


def _layout_rules(plan: Plan) -> LayoutRules:
    return LayoutRules().with_ranges(_ranges(plan))


def _findings(session: Session, plan: Plan) -> list[Finding]:
    """The validator's findings on the plan's grids."""
    ids = {g.key: n for n, g in enumerate(plan.grids, start=1)}
    shapes = [
        GridShape(ids[g.key], g.key, g.kind, to_shape(g.geom), ids.get(g.parent_key), None)
        for g in plan.grids
    ]
    return validate_community(
        session, plan.community, _layout_rules(plan), grids=shapes, ranges=_ranges(plan)
    )


def _validation(findings: list[Finding]) -> dict[str, Any]:
    errors = [f for f in findings if f.severity == "error"]
    kinds: dict[str, int] = defaultdict(int)
    for f in findings:
        kinds[f.kind] += 1
    return {
        "valid": not errors,
        "errors": len(errors),
        "warnings": len(findings) - len(errors),
        "findings": dict(sorted(kinds.items())),
        "error_details": [f.detail for f in errors[:20]],
    }


def create_plan(
    session: Session, code: str, rules: RedrawRules, author: str, progress=None
) -> Plan:
    """Draw and store a draft plan for a community.

    Parameters
    ----------
    progress
        Called with (step, done, total) as the work goes on, or ``None``.

    Raises
    ------
    NotFound
        No community has that code.
    """
    report = progress or (lambda *args: None)
    community = community_by_code(session, code)
    report("loading", 0, 4)
    inputs = load_inputs(session, community)
    report("redrawing", 1, 4)
    drawn = redraw(inputs.boundary, inputs.sites, inputs.barriers, rules)
    plan = Plan(
        community_id=community.id,
        status="draft",
        settings={**asdict(rules), "dedicated_uses": dict(rules.dedicated_uses)},
        metrics={},
        notes=drawn.notes,
        based_on=_live_versions(session, community.id),
        author=author,
    )
    plan.grids.extend(_stored(g, inputs.frame) for g in drawn.grids)
    session.add(plan)
    session.flush()
    report("measuring", 2, 4)
    _measure(session, plan, inputs)
    report("validating", 3, 4)
    plan.metrics = {**plan.metrics, "validation": _validation(_findings(session, plan))}
    session.flush()
    report("stored", 4, 4)
    return plan


def _measure(session: Session, plan: Plan, inputs: Inputs | None = None) -> None:
    """Recount each planned grid's buildings and households and the plan's metrics
    from the stored polygons (after the plan is drawn or edited)."""
    inputs = inputs or load_inputs(session, plan.community)
    rules = _redraw_rules(plan)
    shapes = metric(inputs.frame, np.array([to_shape(g.geom) for g in plan.grids]), None)
    points = inputs.sites.points
    index, hit = shapely.STRtree(shapes).query(points, predicate="within")
    planned = []
    for n, g in enumerate(plan.grids):
        buildings = np.sort(index[hit == n])
        g.buildings = len(buildings)
        g.households = int(inputs.sites.households[buildings].sum())
        g.polsby_popper = round(polsby_popper(shapes[n]), 4)
        planned.append(
            PlannedGrid(
                g.key, g.kind, shapes[n], buildings, g.households, g.parent_key, note=g.note
            )
        )
    metrics = plan_metrics(
        Drawn(planned),
        inputs.boundary,
        inputs.sites.households,
        inputs.sites.current,
        inputs.roads,
        rules,
    )
    plan.metrics = {**metrics, "validation": plan.metrics.get("validation")}


def _redraw_micro(session: Session, plan: Plan, generals: list[PlanGrid]) -> None:
    """Draw the micro grids of these general grids again, inside their new boundaries."""
    inputs = load_inputs(session, plan.community)
    rules = _redraw_rules(plan)
    keys = {g.key for g in generals}
    for old in [g for g in plan.grids if g.kind == "micro" and g.parent_key in keys]:
        plan.grids.remove(old)
    session.flush()
    for general in generals:
        shape = metric(inputs.frame, to_shape(general.geom), None)
        inside = np.flatnonzero(shapely.within(inputs.sites.points, shape))
        barriers = [b for b in inputs.barriers if b.intersects(shape)]
        for g in micro_grids(shape, inputs.sites.subset(inside), barriers, rules, general.key):
            plan.grids.append(_stored(g, inputs.frame))
    session.flush()


def reshape_plan_grid(
    session: Session,
    plan_id: int,
    key: str,
    geom: shapely.Geometry,
    adjust_neighbours: bool = False,
) -> Plan:
    """Give a draft's grid a new boundary, as :func:`gridmap.grids.update_grid` does
    for a live grid: it snaps to its neighbours, optionally hands area over to and
    from them, and is refused when it would add an error to the draft's layout. The
    micro grids of every general grid it changes are drawn again inside it.

    Raises
    ------
    ImportRejected
        The geometry is not a valid polygon in lon/lat.
    NotFound
        No such plan or no grid ``key`` in it.
    Conflict
        The plan was applied already.
    LayoutRefused
        With the findings the edit would have added; nothing is changed.
    """
    problems = geometry_problems(geom, ("Polygon", "MultiPolygon"))
    if problems:
        raise ImportRejected([{"index": 0, "field": "geometry", **p} for p in problems])
    plan = _draft(session, plan_id)
    grid = _plan_grid(plan, key)
    rules = _layout_rules(plan)
    before = [f for f in _findings(session, plan) if f.severity == "error"]
    siblings = {
        n: g
        for n, g in enumerate(plan.grids)
        if g is not grid
        and (
            g.kind == "micro" and g.parent_key == grid.parent_key
            if grid.kind == "micro"
            else g.kind in TOP_KINDS
        )
    }
    shapes = {n: to_shape(g.geom) for n, g in siblings.items()}
    geom = snap_to_neighbours(geom, list(shapes.values()), rules.snap_tolerance_m)
    touched = [grid]
    if adjust_neighbours:
        frame = MetricFrame(to_shape(plan.community.geom))
        for n, shape in hand_over(to_shape(grid.geom), geom, shapes, frame).items():
            siblings[n].geom = from_shape(as_multipolygon(shape), 4326)
            touched.append(siblings[n])
    grid.geom = from_shape(as_multipolygon(geom), 4326)
    if grid.kind != "micro":
        _redraw_micro(session, plan, [g for g in touched if g.kind == "general"])
    return _finish_edit(session, plan, before)


def _finish_edit(session: Session, plan: Plan, before: list[Finding]) -> Plan:
    """Refuse the edit if the draft gained errors; else recount and remeasure it."""
    findings = _findings(session, plan)
    after = [f for f in findings if f.severity == "error"]
    fresh = new_errors(before, after, _layout_rules(plan))
    if fresh:
        raise LayoutRefused(fresh)
    _measure(session, plan)  # counts and measures only; the findings still hold
    plan.metrics = {**plan.metrics, "validation": _validation(findings), "edited": True}
    session.flush()
    return plan


def _plan_grid(plan: Plan, key: str) -> PlanGrid:
    grid = next((g for g in plan.grids if g.key == key), None)
    if grid is None:
        raise NotFound(f"plan {plan.id} has no grid {key!r}")
    return grid


def _next_key(plan: Plan, grid: PlanGrid) -> str:
    """A free key beside ``grid``'s: the next G/D number, or the next micro number."""
    if grid.kind == "micro":
        prefix = f"{grid.parent_key}-M"
    else:
        prefix = grid.key[0]
    used = [
        int(g.key[len(prefix) :])
        for g in plan.grids
        if g.key.startswith(prefix) and g.key[len(prefix) :].isdigit()
    ]
    return f"{prefix}{max(used, default=0) + 1:02d}"


def split_plan_grid(session: Session, plan_id: int, key: str, line: shapely.Geometry) -> Plan:
    """Cut a draft's grid in two along a line, as a live grid is split; micro grids of
    a split general grid are drawn again in each piece.

    Raises
    ------
    NotFound, Conflict, LayoutRefused
    EditProblem
        The line does not cut the grid in two.
    """
    plan = _draft(session, plan_id)
    grid = _plan_grid(plan, key)
    before = [f for f in _findings(session, plan) if f.severity == "error"]
    north, south = split_by_line(to_shape(grid.geom), line)
    grid.geom = from_shape(as_multipolygon(north), 4326)
    twin = PlanGrid(
        key=_next_key(plan, grid),
        kind=grid.kind,
        parent_key=grid.parent_key,
        dedicated_category=grid.dedicated_category,
        households=0,
        buildings=0,
        polsby_popper=0.0,
        geom=from_shape(as_multipolygon(south), 4326),
    )
    plan.grids.append(twin)
    session.flush()
    if grid.kind == "general":
        _redraw_micro(session, plan, [grid, twin])
    return _finish_edit(session, plan, before)


def merge_plan_grids(session: Session, plan_id: int, keys: list[str]) -> Plan:
    """Merge touching sibling grids of a draft into the first of them (by key).

    Raises
    ------
    NotFound, Conflict, LayoutRefused
    EditProblem
        The grids do not touch, or are not siblings.
    """
    plan = _draft(session, plan_id)
    grids = sorted((_plan_grid(plan, k) for k in set(keys)), key=lambda g: g.key)
    if len(grids) < 2:
        raise EditProblem("merging needs at least two grids")
    if len({(g.kind, g.parent_key) for g in grids}) != 1:
        raise EditProblem("only grids of the same kind and parent can be merged")
    before = [f for f in _findings(session, plan) if f.severity == "error"]
    keep, *gone = grids
    keep.geom = from_shape(as_multipolygon(merged([to_shape(g.geom) for g in grids])), 4326)
    gone_keys = {g.key for g in gone}
    for g in [g for g in plan.grids if g.key in gone_keys or g.parent_key in gone_keys]:
        plan.grids.remove(g)
    session.flush()
    if keep.kind == "general":
        _redraw_micro(session, plan, [keep])
    return _finish_edit(session, plan, before)


def get_plan(session: Session, plan_id: int) -> Plan:
    """The plan with that id.

    Raises
    ------
    NotFound
    """
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFound(f"no plan with id {plan_id}")
    return plan


def summary(plan: Plan) -> dict[str, Any]:
    """The plan without its geometries, JSON-ready."""
    return {
        "id": plan.id,
        "area": plan.community.code,
        "status": plan.status,
        "author": plan.author,
        "created_at": plan.created_at.isoformat() if plan.created_at else None,
        "applied_at": plan.applied_at.isoformat() if plan.applied_at else None,
        "settings": plan.settings,
        "metrics": plan.metrics,
        "notes": plan.notes,
    }


def list_plans(session: Session, area: str | None = None) -> list[Plan]:
    """Plans, newest first, of one community or of all."""
    query = select(Plan).order_by(Plan.id.desc())
    if area is not None:
        query = query.where(Plan.community_id == community_by_code(session, area).id)
    return list(session.scalars(query))


def plan_features(plan: Plan) -> list[tuple[dict[str, Any], shapely.Geometry]]:
    """Each planned grid's properties and lon/lat geometry."""
    return [
        (
            {
                "id": g.id,
                "key": g.key,
                "kind": g.kind,
                "parent": g.parent_key,
                "dedicated_category": g.dedicated_category,
                "households": g.households,
                "buildings": g.buildings,
                "polsby_popper": g.polsby_popper,
                "note": g.note,
            },
            to_shape(g.geom),
        )
        for g in plan.grids
    ]


def diff(session: Session, plan: Plan) -> dict[str, Any]:
    """Today's grids against the plan's: where each planned grid's households come
    from, and the buildings that change grid.

    Each planned general or dedicated grid continues the grid of today that holds
    most of its households; a building moves when its grid today is another one.
    """
    live = (
        select(Grid.code)
        .where(
            Grid.active,
            Grid.community_id == plan.community_id,
            Grid.kind.in_(TOP_KINDS),
            func.ST_Intersects(Grid.geom, Building.point),
        )
        .order_by(Grid.code)
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(PlanGrid.key, Building.code, Building.households, live)
        .join(Building, func.ST_Intersects(PlanGrid.geom, Building.point))
        .where(PlanGrid.plan_id == plan.id, PlanGrid.kind.in_(TOP_KINDS))
        .order_by(PlanGrid.key, Building.code)
    ).all()
    sources: dict[str, dict[str | None, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for key, _, households, today in rows:
        sources[key][today][0] += households
        sources[key][today][1] += 1
    heirs = {
        key: max(found, key=lambda c: (found[c][0], found[c][1], c is not None, str(c)))
        for key, found in sources.items()
    }
    moves = [
        {"building": code, "households": households, "from": today, "to": key}
        for key, code, households, today in rows
        if today != heirs[key]
    ]
    return {
        "plan": plan.id,
        "area": plan.community.code,
        "grids": [
            {
                "key": key,
                "continues": heirs[key],
                "from": [
                    {"grid": today, "households": h, "buildings": b}
                    for today, (h, b) in sorted(found.items(), key=lambda kv: str(kv[0]))
                ],
            }
            for key, found in sorted(sources.items())
        ],
        "buildings_moved": len(moves),
        "households_moved": sum(m["households"] for m in moves if m["from"] is not None),
        "moves": moves,
    }


def _draft(session: Session, plan_id: int) -> Plan:
    plan = get_plan(session, plan_id)
    session.refresh(plan, with_for_update=True)
    if plan.status != "draft":
        raise Conflict(f"plan {plan_id} was applied already")
    return plan


def delete_plan(session: Session, plan_id: int) -> None:
    """Discard a draft.

    Raises
    ------
    NotFound
    Conflict
        The plan was applied (it stays as the record of that change).
    """
    session.delete(_draft(session, plan_id))


def _heirs(session: Session, news: dict[str, int], olds: list[Grid]) -> dict[int, Grid]:
    """For each new general grid, the old general grid it takes over (most shared
    households first, each old grid once)."""
    pairs = []
    for key, new_id in news.items():
        for old in olds:
            households = session.scalar(
                select(func.coalesce(func.sum(Building.households), 0)).where(
                    func.ST_Intersects(Building.point, old.geom),
                    func.ST_Intersects(
                        Building.point, select(Grid.geom).where(Grid.id == new_id).scalar_subquery()
                    ),
                )
            )
            if households:
                pairs.append((int(households), key, new_id, old))
    taken_new: dict[int, Grid] = {}
    taken_old: set[int] = set()
    for _, _, new_id, old in sorted(pairs, key=lambda p: (-p[0], p[1])):
        if new_id not in taken_new and old.id not in taken_old:
            taken_new[new_id] = old
            taken_old.add(old.id)
    return taken_new


def apply_plan(
    session: Session, plan_id: int, author: str, rules: LayoutRules | None = None
) -> dict[str, Any]:
    """Replace the community's live grids with the plan's, in the caller's transaction.

    Old general, dedicated and micro grids are retired with revisions; the new
    ones are created, take over the workers, place types and own names (a
    planner's, not generated ones) of the old general grids they continue, and are
    recoded, which gives every other grid its generated name from its new code.
    The plan's household ranges become the community's own
    (``areas.household_ranges``), so the layout is checked against the ranges it
    was drawn for.

    Raises
    ------
    NotFound
    Conflict
        The plan was applied already, or the community's grids changed since it
        was drawn (draw it again).
    LayoutRefused
        The plan would leave the layout with errors it does not have today.
    """
    plan = _draft(session, plan_id)
    guard = LayoutGuard(session, plan.community_id, rules or LayoutRules())
    if _live_versions(session, plan.community_id) != plan.based_on:
        raise Conflict(
            f"the grids of {plan.community.code} changed since plan {plan_id} was drawn; "
            "draw a new plan"
        )
    community = guard.community
    reason = f"plan {plan_id} applied"
    olds = list(
        session.scalars(
            select(Grid)
            .where(Grid.community_id == community.id, Grid.active, Grid.kind != "master")
            .order_by(Grid.id)
        )
    )
    old_generals = [g for g in olds if g.kind == "general"]
    old_records = {g.id: features.retire_grid(session, g.id, author, reason) for g in olds}
    temporary = {g.key: f"{community.code}P{g.key}" for g in plan.grids}
    created: dict[str, int] = {}
    for g in sorted(plan.grids, key=lambda g: (g.kind == "micro", g.key)):
        properties = {
            "code": temporary[g.key],
            "name": f"{community.name}{KIND_NAMES[g.kind]}{g.key}",
            "kind": g.kind,
            "community": community.code,
            "parent": temporary[g.parent_key] if g.parent_key else None,
            "dedicated_category": g.dedicated_category,
        }
        created[g.key] = features.create_feature(
            session, GRIDS, to_shape(g.geom), properties, author, reason
        )
    generals = {g.key: created[g.key] for g in plan.grids if g.kind == "general"}
    for new_id, old in _heirs(session, generals, old_generals).items():
        record = old_records[old.id]
        carried = {"worker": record["worker"], "place_type": record["place_type"]}
        if not is_generated_name(record["name"], community.name):
            carried["name"] = record["name"]  # a planner's own name goes with the grid
        features.update_feature(
            session, GRIDS, new_id, None, carried, author, f"{reason}: continues {record['code']}"
        )
    # The draft names above are generated names: recoding makes them follow the codes.
    codes = recode_community(session, community.code, author, reason)
    community.household_ranges = {**(community.household_ranges or {}), **_ranges(plan)}
    guard.check()
    plan.status = "applied"
    plan.applied_at = func.now()
    session.flush()
    return {
        "plan": plan.id,
        "area": community.code,
        "retired": sorted(g["code"] for g in old_records.values()),
        "created": sorted(codes.get(temporary[k], temporary[k]) for k in created),
        "household_ranges": community.household_ranges,
    }
