"""Reading and changing the features of a layer: the service behind the API.

Every function works in the caller's session (one transaction per request) and
speaks in field names and codes, as files and the API do; ids are the rows' own.
Writes check their input with :func:`gridmap.io.layers.prepare`, the same check
that import uses, and grid changes write revisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import shapely
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from gridmap.history import record_revisions, snapshot
from gridmap.io.layers import LAYERS, LayerSpec, prepare
from gridmap.io.store import (
    ImportRejected,
    column_values,
    import_rows,
    integrity_reason,
    resolve_references,
)
from gridmap.models import Area, Building, Grid, GridRevision, Worker
from gridmap.settings import STORAGE_SRID

#: Fields that are personal data: shown to staff and above, never to viewers.
PERSONAL_FIELDS: dict[str, frozenset[str]] = {
    "buildings": frozenset({"households", "population"}),
    "workers": frozenset({"phone"}),
}


#: Geometry columns of a layer, the one shown first (a building's footprint, else its point).
GEOMETRY_COLUMNS: dict[str, tuple[str, ...]] = {"buildings": ("footprint", "point")}


class NotFound(LookupError):
    """No row with that id (or code)."""


class Conflict(ValueError):
    """The change cannot be made as the data stands (a stale version, a row in use)."""


class VersionMismatch(Conflict):
    """The grid changed since the client read it."""

    def __init__(self, current: int):
        self.current = current
        super().__init__(f"the grid is at version {current}")


@dataclass
class Query:
    """Filters of a list: area code, bbox (lon/lat), field equalities and a page."""

    area: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    equals: dict[str, Any] = field(default_factory=dict)
    include_retired: bool = False
    limit: int | None = None
    offset: int = 0


@dataclass
class Page:
    """One page of features: records (``id`` and fields), geometries, and the total."""

    records: list[dict[str, Any]]
    geoms: list[shapely.Geometry | None]
    total: int


def _geometry_column(spec: LayerSpec):
    columns = GEOMETRY_COLUMNS.get(spec.name, ("geom",) if spec.geometry else ())
    if not columns:
        return None
    model = spec.model
    return (
        func.coalesce(*[getattr(model, c) for c in columns])
        if len(columns) > 1
        else getattr(model, columns[0])
    )


def _filter_column(spec: LayerSpec):
    """The column spatial filters apply to (a building's point, else the geometry)."""
    return Building.point if spec.name == "buildings" else _geometry_column(spec)


def area_exists(session: Session, code: str) -> bool:
    """Whether an area (city, district, street or community) has this code."""
    return session.scalar(select(Area.id).where(Area.code == code)) is not None


def area_and_descendants(code: str) -> Select:
    """SELECT of the ids of the area with this code and of every area below it
    (a city's districts, their streets and their communities)."""
    tree = select(Area.id).where(Area.code == code).cte("area_tree", recursive=True)
    below = aliased(Area)
    tree = tree.union_all(select(below.id).where(below.parent_id == tree.c.id))
    return select(tree.c.id)


def _lon_lat_bounds(geom: shapely.Geometry) -> bool:
    """Whether a geometry's bounds are finite longitudes and latitudes (else the
    geometry check reports it, and no distance is measured)."""
    minx, miny, maxx, maxy = geom.bounds
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def far_from_areas(
    session: Session, geoms: list[shapely.Geometry | None], distance_m: float
) -> list[int]:
    """Indices of the geometries whose centre lies farther than ``distance_m`` from
    every stored area (none when no area is stored yet).

    The centre is that of the bounding box; distances are on the spheroid.
    """
    centres = [
        (i, g.envelope.centroid)
        for i, g in enumerate(geoms)
        if g is not None and not g.is_empty and _lon_lat_bounds(g)
    ]
    if not centres or session.scalar(select(Area.id).limit(1)) is None:
        return []
    degrees = distance_m / 111_320 * 3  # a generous box for the index, then metres
    far = []
    for index, centre in centres:
        point = func.ST_SetSRID(func.ST_MakePoint(centre.x, centre.y), STORAGE_SRID)
        near = session.scalar(
            select(Area.id)
            .where(
                func.ST_DWithin(Area.geom, point, degrees),
                func.ST_DWithin(func.Geography(Area.geom), func.Geography(point), distance_m),
            )
            .limit(1)
        )
        if near is None:
            far.append(index)
    return far


def _base_query(spec: LayerSpec) -> tuple[Select, list[str]]:
    """SELECT of id, every field (references as their codes) and the geometry as WKB."""
    model = spec.model
    columns: list[Any] = [model.id]
    names = ["id"]
    joins = []
    for fld in spec.fields:
        if fld.reference:
            target = aliased(LAYERS[fld.reference].model)
            joins.append((target, getattr(model, fld.target) == target.id))
            columns.append(target.code)
        else:
            columns.append(getattr(model, fld.target))
        names.append(fld.name)
    if spec.name == "grids":
        columns += [Grid.version, Grid.active, Grid.community_id, Grid.parent_id, Grid.worker_id]
        names += ["version", "active", "community_id", "parent_id", "worker_id"]
    geometry = _geometry_column(spec)
    if geometry is not None:
        columns.append(func.ST_AsBinary(geometry))
    query = select(*columns)
    for target, condition in joins:
        query = query.outerjoin(target, condition)
    return query, names


def _apply_filters(spec: LayerSpec, query: Select, filters: Query) -> Select:
    model = spec.model
    if spec.name == "grids" and not filters.include_retired:
        query = query.where(Grid.active)
    for name, value in filters.equals.items():
        query = query.where(getattr(model, spec.field_by_name[name].target) == value)
    if filters.bbox is not None and spec.geometry:
        envelope = func.ST_MakeEnvelope(*filters.bbox, STORAGE_SRID)
        query = query.where(func.ST_Intersects(_filter_column(spec), envelope))
    if filters.area is not None:
        area = select(Area.id, Area.geom).where(Area.code == filters.area).subquery()
        if spec.name == "grids":
            query = query.where(Grid.community_id.in_(area_and_descendants(filters.area)))
        elif spec.name == "areas":
            query = query.where(Area.id.in_(area_and_descendants(filters.area)))
        elif spec.geometry:
            query = query.where(
                func.ST_Intersects(_filter_column(spec), select(area.c.geom).scalar_subquery())
            )
    return query


def select_features(session: Session, spec: LayerSpec, filters: Query | None = None) -> Page:
    """List features of a layer, filtered and paged, in id order.

    Parameters
    ----------
    filters
        Area (an area includes every area below it), bbox in lon/lat, equality
        filters by field name, retired grids, and ``limit``/``offset``.
    """
    filters = filters or Query()
    query, names = _base_query(spec)
    query = _apply_filters(spec, query, filters).order_by(spec.model.id)
    total_query = _apply_filters(spec, select(func.count()).select_from(spec.model), filters)
    if filters.limit is not None:
        query = query.limit(filters.limit)
    query = query.offset(filters.offset)
    rows = session.execute(query).all()
    total = session.scalar(total_query) if filters.limit is not None else len(rows)
    return _page(spec, names, rows, total)


def _page(spec: LayerSpec, names: list[str], rows: list, total: int) -> Page:
    with_geometry = spec.geometry is not None
    records = [dict(zip(names, row[: len(names)], strict=True)) for row in rows]
    geoms = (
        [shapely.from_wkb(bytes(row[-1])) for row in rows] if with_geometry else [None] * len(rows)
    )
    return Page(records, geoms, total)


def get_feature(session: Session, spec: LayerSpec, id_: int) -> tuple[dict, shapely.Geometry]:
    """One feature's record and geometry (retired grids included).

    Raises
    ------
    NotFound
    """
    query, names = _base_query(spec)
    row = session.execute(query.where(spec.model.id == id_)).first()
    if row is None:
        raise NotFound(f"no {spec.name[:-1]} with id {id_}")
    page = _page(spec, names, [row], 1)
    return page.records[0], page.geoms[0]


def _check_known_fields(spec: LayerSpec, properties: Mapping[str, Any]) -> None:
    """Refuse property names the layer does not have (a typo would be lost silently)."""
    unknown = sorted(set(properties) - set(spec.field_by_name))
    if unknown:
        raise ImportRejected(
            [
                {
                    "index": 0,
                    "field": name,
                    "reason": f"unknown field '{name}'; {spec.name} have "
                    f"{', '.join(spec.field_by_name)}",
                }
                for name in unknown
            ]
        )


def create_feature(
    session: Session,
    spec: LayerSpec,
    geom: shapely.Geometry | None,
    properties: Mapping[str, Any],
    author: str,
    reason: str | None = None,
) -> int:
    """Check and insert one feature; return its id.

    Raises
    ------
    ImportRejected
        With every problem of the feature (index 0).
    """
    _check_known_fields(spec, properties)
    prepared = prepare(spec, [geom], [properties])
    if prepared.problems:
        raise ImportRejected(prepared.problems)
    return import_rows(session, spec, prepared.rows, author=author, reason=reason)[0]


def update_feature(
    session: Session,
    spec: LayerSpec,
    id_: int,
    geom: shapely.Geometry | None,
    properties: Mapping[str, Any],
    author: str,
    reason: str | None = None,
    expected_version: int | None = None,
    action: str = "update",
    activate: bool = False,
) -> dict:
    """Change some fields and/or the geometry of one feature; return the new record.

    Fields not given keep their values (a JSON merge patch: ``null`` clears).
    A grid must be at ``expected_version``; it gets version + 1 and a revision
    (``action``), and ``activate`` brings a retired grid back.

    Raises
    ------
    NotFound, VersionMismatch, ImportRejected
    """
    model = spec.model
    if spec.name == "grids":
        current_version = session.scalar(
            select(Grid.version).where(Grid.id == id_).with_for_update()
        )
        if current_version is None:
            raise NotFound(f"no grid with id {id_}")
        if expected_version is not None and expected_version != current_version:
            raise VersionMismatch(current_version)
    record, old_geom = get_feature(session, spec, id_)
    _check_known_fields(spec, properties)
    merged = {name: record[name] for name in spec.field_by_name}
    merged.update(properties)
    if "households" in properties and "households_estimated" not in properties:
        # A figure given by hand is no longer an estimate.
        merged["households_estimated"] = False
    prepared = prepare(spec, [geom if geom is not None else old_geom], [merged])
    if prepared.problems:
        raise ImportRejected(prepared.problems)
    row = prepared.rows[0]
    ids, problems = resolve_references(session, spec, [row])
    parent = row.get(spec.self_reference) if spec.self_reference else None
    if parent is not None and parent == row.get(spec.key):
        problems.append(
            {
                "index": 0,
                "field": spec.self_reference,
                "reason": "a feature cannot be its own parent",
            }
        )
    if problems:
        raise ImportRejected(problems)
    if _unchanged(spec, record, old_geom, row) and not (activate and not record.get("active")):
        return record  # a change to what is already there: no new version, no revision
    values = column_values(spec, row, ids, {})
    if spec.name == "grids":
        values["version"] = Grid.version + 1
        values["updated_at"] = func.now()
        if activate:
            values["active"] = True
    try:
        session.execute(update(model).where(model.id == id_).values(**values))
        session.flush()
    except IntegrityError as exc:
        raise ImportRejected(
            [{"index": 0, "field": None, "reason": integrity_reason(exc)}]
        ) from exc
    new_record, new_geom = get_feature(session, spec, id_)
    if spec.name == "grids":
        record_grid_change(
            session, id_, record, old_geom, new_record, new_geom, action, author, reason
        )
    return new_record


def _unchanged(spec: LayerSpec, record: dict, old_geom: shapely.Geometry | None, row: dict) -> bool:
    """Whether a checked row says exactly what the stored record and geometry say."""
    if any(row.get(f.name) != record[f.name] for f in spec.fields):
        return False
    if spec.geometry is None:
        return True
    stored = [row.get(column) for column in ("footprint", "point", "geom")]
    new_geom = next((g for g in stored if g is not None), None)
    return bool(shapely.equals_exact(new_geom, old_geom, tolerance=0))


def record_grid_change(
    session: Session,
    id_: int,
    before: dict | None,
    old_geom: shapely.Geometry | None,
    after: dict,
    new_geom: shapely.Geometry,
    action: str,
    author: str,
    reason: str | None,
) -> None:
    """Write the revision of one grid change (records as :func:`get_feature` gives them)."""
    record_revisions(
        session,
        [
            {
                "grid_id": id_,
                "version": after["version"],
                "action": action,
                "before": None if before is None else snapshot(before, old_geom),
                "after": snapshot(after, new_geom),
                "author": author,
                "reason": reason,
            }
        ],
    )


def delete_feature(
    session: Session,
    spec: LayerSpec,
    id_: int,
    author: str,
    reason: str | None = None,
    expected_version: int | None = None,
) -> None:
    """Delete one feature; a grid is retired instead and keeps its history.

    Raises
    ------
    NotFound, VersionMismatch
    Conflict
        The row is still referred to (a community with grids, a grid with micro grids).
    """
    model = spec.model
    if spec.name == "grids":
        grid = session.get(Grid, id_, with_for_update=True)
        if grid is None or not grid.active:
            raise NotFound(f"no active grid with id {id_}")
        if expected_version is not None and expected_version != grid.version:
            raise VersionMismatch(grid.version)
        children = session.scalar(select(func.count()).where(Grid.parent_id == id_, Grid.active))
        if children:
            raise Conflict(
                f"the grid still has {children} active child grid(s): retire or move them first"
            )
        retire_grid(session, id_, author, reason)
        return
    row = session.get(model, id_)
    if row is None:
        raise NotFound(f"no {spec.name[:-1]} with id {id_}")
    try:
        with session.begin_nested():
            session.delete(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"the {spec.name[:-1]} is still referred to: {integrity_reason(exc)}"
        ) from exc


def retire_grid(session: Session, grid_id: int, author: str, reason: str | None) -> dict:
    """Retire a grid (it keeps its history and frees its code); return its last record."""
    before, geom = get_feature(session, LAYERS["grids"], grid_id)
    session.execute(
        update(Grid)
        .where(Grid.id == grid_id)
        .values(active=False, version=Grid.version + 1, updated_at=func.now())
    )
    after, _ = get_feature(session, LAYERS["grids"], grid_id)
    record_grid_change(session, grid_id, before, geom, after, geom, "retire", author, reason)
    return before


# -- grids ------------------------------------------------------------------------


def grid_statistics(session: Session, grid_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Buildings, households and population inside each grid, its area, and the
    households its worker serves in all of their active grids.

    A building belongs to every grid that holds its point (its footprint's point
    on surface). Areas are in square metres on the spheroid.
    """
    if not grid_ids:
        return {}
    inside = (
        select(
            Grid.id.label("grid_id"),
            func.count(Building.id).label("buildings"),
            func.coalesce(func.sum(Building.households), 0).label("households"),
            func.coalesce(func.sum(Building.population), 0).label("population"),
        )
        .select_from(Grid)
        .outerjoin(Building, func.ST_Intersects(Grid.geom, Building.point))
        .where(Grid.id.in_(grid_ids))
        .group_by(Grid.id)
    ).subquery()
    rows = session.execute(
        select(
            Grid.id,
            Grid.worker_id,
            inside.c.buildings,
            inside.c.households,
            inside.c.population,
            func.ST_Area(func.Geography(Grid.geom)),
        ).join(inside, inside.c.grid_id == Grid.id)
    ).all()
    workers = {r.worker_id for r in rows if r.worker_id is not None}
    per_worker = (
        dict(
            session.execute(
                select(Grid.worker_id, func.coalesce(func.sum(Building.households), 0))
                .select_from(Grid)
                .outerjoin(Building, func.ST_Intersects(Grid.geom, Building.point))
                .where(Grid.worker_id.in_(workers), Grid.active, Grid.kind != "master")
                .group_by(Grid.worker_id)
            ).all()
        )
        if workers
        else {}
    )
    return {
        grid_id: {
            "buildings": buildings,
            "households": int(households),
            "population": int(population),
            "area_m2": round(float(area), 1),
            "households_per_worker": (
                int(per_worker[worker_id]) if worker_id in per_worker else None
            ),
        }
        for grid_id, worker_id, buildings, households, population, area in rows
    }


def grid_history(session: Session, grid_id: int) -> list[GridRevision]:
    """Every revision of a grid, oldest first.

    Raises
    ------
    NotFound
    """
    if session.get(Grid, grid_id) is None:
        raise NotFound(f"no grid with id {grid_id}")
    return list(
        session.scalars(
            select(GridRevision).where(GridRevision.grid_id == grid_id).order_by(GridRevision.id)
        )
    )


def revert_grid(
    session: Session,
    grid_id: int,
    revision_id: int,
    author: str,
    reason: str | None = None,
    expected_version: int | None = None,
) -> dict:
    """Make a grid as it was after one of its revisions, as a new revision.

    A retired grid comes back active: reverting is how a retirement is undone.

    Raises
    ------
    NotFound
        No such grid, or the revision is not one of its own.
    VersionMismatch, ImportRejected
    """
    revision = session.get(GridRevision, revision_id)
    if revision is None or revision.grid_id != grid_id or revision.after is None:
        raise NotFound(f"grid {grid_id} has no revision {revision_id}")
    picture = revision.after
    codes = {}
    for name, model in (("community", Area), ("parent", Grid), ("worker", Worker)):
        ref = picture.get(f"{name}_id")
        codes[name] = (
            None if ref is None else session.scalar(select(model.code).where(model.id == ref))
        )
    properties = {
        name: picture.get(name)
        for name in ("code", "name", "kind", "place_type", "dedicated_category")
    }
    properties.update(codes)
    geom = shapely.geometry.shape(picture["geometry"])
    return update_feature(
        session,
        LAYERS["grids"],
        grid_id,
        geom,
        properties,
        author,
        reason,
        expected_version,
        action="revert",
        activate=True,
    )
