"""Storing checked rows in PostGIS and reading layers back for export.

Everything one import writes happens in the caller's transaction; a problem found
here (an unknown community code, a code that already exists) raises
:class:`ImportRejected` before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridmap.history import record_revisions, snapshot
from gridmap.io.layers import LAYERS, LayerSpec
from gridmap.models import Area, Grid
from gridmap.settings import STORAGE_SRID

#: Geometry columns per model, in the order export prefers them.
GEOMETRY_COLUMNS = {"buildings": ("footprint", "point")}


class ImportRejected(ValueError):
    """An import that wrote nothing, with every problem found."""

    def __init__(self, problems: list[dict[str, Any]]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s); nothing was written")


def _code_column(layer: str):
    model = LAYERS[layer].model
    return model.code  # type: ignore[attr-defined]


def code_to_id(session: Session, layer: str, codes: Iterable[str]) -> dict[str, int]:
    """Ids of the rows of ``layer`` with these codes (active grids only)."""
    codes = list(set(codes))
    if not codes:
        return {}
    model = LAYERS[layer].model
    query = select(_code_column(layer), model.id).where(_code_column(layer).in_(codes))
    if model is Grid:
        query = query.where(Grid.active)
    return {code: id_ for code, id_ in session.execute(query)}


def _insertion_waves(spec: LayerSpec, rows: list[dict]) -> list[list[int]]:
    """Row indices in waves, so that a row referring to another row of the same
    file (a community to its street, a micro grid to its general grid) is
    inserted after it."""
    if not spec.self_reference:
        return [list(range(len(rows)))]
    index_of = {row[spec.key]: i for i, row in enumerate(rows)}
    depth: dict[int, int] = {}
    for start in range(len(rows)):
        path: list[int] = []
        on_path: set[int] = set()
        i: int | None = start
        while i is not None and i not in depth:
            if i in on_path:
                raise ImportRejected([{"index": i, "field": spec.self_reference,
                                       "reason": "parent references form a cycle"}])
            path.append(i)
            on_path.add(i)
            i = index_of.get(rows[i].get(spec.self_reference))
        level = depth[i] + 1 if i is not None else 0
        for j in reversed(path):
            depth[j] = level
            level += 1
    waves: dict[int, list[int]] = {}
    for i in sorted(depth):
        waves.setdefault(depth[i], []).append(i)
    return [waves[d] for d in sorted(waves)]


def import_rows(session: Session, spec: LayerSpec, rows: list[dict], author: str,
                reason: str | None = None) -> int:
    """Insert prepared rows of one layer; return how many were written.

    References by code are resolved against the database and the rows
    themselves; grids get an ``insert`` revision each.

    Raises
    ------
    ImportRejected
        With every unresolved reference, existing code or refused row.
    """
    problems: list[dict[str, Any]] = []
    file_codes = {row[spec.key] for row in rows} if spec.key else set()
    if spec.key:
        for code in code_to_id(session, spec.name, file_codes):
            index = next(i for i, row in enumerate(rows) if row[spec.key] == code)
            problems.append({"index": index, "field": spec.key,
                             "reason": f"{spec.key} {code!r} already exists"})
    ids: dict[str, dict[str, int]] = {}
    for fld in spec.fields:
        if not fld.reference:
            continue
        local = file_codes if fld.reference == spec.name else set()
        wanted = {row[fld.name] for row in rows if row.get(fld.name)} - local
        ids[fld.name] = code_to_id(session, fld.reference, wanted)
        for index, row in enumerate(rows):
            code = row.get(fld.name)
            if code and code not in local and code not in ids[fld.name]:
                problems.append({"index": index, "field": fld.name,
                                 "reason": f"no {fld.reference} with code {code!r}"})
    if problems:
        raise ImportRejected(problems)

    model = spec.model
    written: dict[str, int] = {}
    revisions = []
    try:
        for wave in _insertion_waves(spec, rows):
            values = [_column_values(spec, rows[i], ids, written) for i in wave]
            if not values:
                continue
            returning = [model.id] + ([_code_column(spec.name)] if spec.key else [])
            result = session.execute(insert(model).returning(*returning), values)
            for i, value, (id_, *code) in zip(wave, values, result.all(), strict=True):
                if code:
                    written[code[0]] = id_
                if model is Grid:
                    attrs = {**value, "version": 1, "active": True}
                    revisions.append({"grid_id": id_, "version": 1, "action": "insert",
                                      "before": None, "after": snapshot(attrs, rows[i]["geom"]),
                                      "author": author, "reason": reason})
        record_revisions(session, revisions)
    except IntegrityError as exc:
        raise ImportRejected([{"index": None, "field": None,
                               "reason": str(exc.orig).strip().splitlines()[0]}]) from exc
    return len(rows)


def _column_values(spec: LayerSpec, row: dict, ids: dict[str, dict[str, int]],
                   written: dict[str, int]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for fld in spec.fields:
        value = row.get(fld.name)
        if fld.reference and value is not None:
            value = ids[fld.name].get(value, written.get(value))
        values[fld.target] = value
    for column in ("geom", "footprint", "point"):
        if column in row:
            geom = row[column]
            values[column] = None if geom is None else from_shape(geom, srid=STORAGE_SRID)
    return values


def export_rows(session: Session, spec: LayerSpec, area_code: str | None = None
                ) -> tuple[list[shapely.Geometry] | None, dict[str, np.ndarray]]:
    """Read a layer back as geometries and typed columns (references as codes).

    Parameters
    ----------
    area_code
        Only features in this area (a street or community): polygons whose
        interior meets it, points and lines that meet it.
    """
    model = spec.model
    geom_columns = GEOMETRY_COLUMNS.get(spec.name, ("geom",) if spec.geometry else ())
    geom_expr = (func.ST_AsBinary(func.coalesce(*[getattr(model, c) for c in geom_columns]))
                 if geom_columns else None)
    columns = [getattr(model, f.target) for f in spec.fields]
    query = select(*columns, *([geom_expr] if geom_expr is not None else [])).order_by(model.id)
    if model is Grid:
        query = query.where(Grid.active)
    if area_code and geom_expr is not None:
        area_geom = select(Area.geom).where(Area.code == area_code).scalar_subquery()
        column = getattr(model, geom_columns[-1])
        if spec.geometry and "Polygon" in spec.geometry[0]:
            # Interiors must meet: a neighbouring community's grids only touch the area.
            query = query.where(func.ST_Relate(column, area_geom, "T********"))
        else:
            query = query.where(func.ST_Intersects(column, area_geom))
    result = session.execute(query).all()
    code_of = {
        fld.name: {id_: code for code, id_ in session.execute(
            select(_code_column(fld.reference), LAYERS[fld.reference].model.id))}
        for fld in spec.fields if fld.reference
    }
    out: dict[str, np.ndarray] = {}
    for k, fld in enumerate(spec.fields):
        values = [row[k] for row in result]
        if fld.reference:
            values = [code_of[fld.name].get(v) for v in values]
        out[fld.name] = _typed(fld.type, values)
    geoms = (list(shapely.from_wkb([bytes(row[-1]) for row in result]))
             if geom_expr is not None else None)
    return geoms, out


def _typed(kind: str, values: list) -> np.ndarray:
    if kind == "int":
        if any(v is None for v in values):
            return np.array([np.nan if v is None else v for v in values], dtype=float)
        return np.array(values, dtype=np.int64)
    if kind == "bool":
        return np.array(values, dtype=bool)
    return np.array(values, dtype=object)
