"""Storing checked rows in PostGIS and reading layers back for export.

Everything one import writes happens in the caller's transaction; a problem found
here (an unknown community code, a code that already exists) raises
:class:`ImportRejected` before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geoalchemy2.shape import from_shape
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridmap.history import record_revisions, snapshot
from gridmap.io.layers import LAYERS, LayerSpec
from gridmap.models import Grid
from gridmap.settings import STORAGE_SRID


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
                raise ImportRejected(
                    [
                        {
                            "index": i,
                            "field": spec.self_reference,
                            "reason": "parent references form a cycle",
                        }
                    ]
                )
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


def resolve_references(
    session: Session, spec: LayerSpec, rows: list[dict], local_codes: set[str] | None = None
) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Look up the ids of the codes the rows refer to.

    Parameters
    ----------
    local_codes
        Codes of rows being written together, which a self reference may name.

    Returns
    -------
    ids, problems
        Field name → code → id, and one problem per code that names nothing.
    """
    local_codes = local_codes or set()
    ids: dict[str, dict[str, int]] = {}
    problems: list[dict[str, Any]] = []
    for fld in spec.fields:
        if not fld.reference:
            continue
        local = local_codes if fld.reference == spec.name else set()
        wanted = {row[fld.name] for row in rows if row.get(fld.name)} - local
        ids[fld.name] = code_to_id(session, fld.reference, wanted)
        for index, row in enumerate(rows):
            code = row.get(fld.name)
            if code and code not in local and code not in ids[fld.name]:
                problems.append(
                    {
                        "index": index,
                        "field": fld.name,
                        "reason": f"no {fld.reference} with code {code!r}",
                    }
                )
    return ids, problems


def check_rows(
    session: Session, spec: LayerSpec, rows: list[dict]
) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Problems the database finds with prepared rows, before anything is written.

    Codes that already exist and references that name nothing, each with the row's
    index; one query per kind of lookup and dictionaries after it, so the time
    grows with the number of rows, not with its square.

    Returns
    -------
    ids, problems
        As :func:`resolve_references`, with the existing codes among the problems.
    """
    problems: list[dict[str, Any]] = []
    file_codes: set[str] = set()
    if spec.key:
        first_index: dict[str, int] = {}
        for index, row in enumerate(rows):
            first_index.setdefault(row[spec.key], index)
        file_codes = set(first_index)
        existing = code_to_id(session, spec.name, file_codes)
        problems.extend(
            {
                "index": first_index[code],
                "field": spec.key,
                "reason": f"{spec.key} {code!r} already exists",
            }
            for code in sorted(existing, key=first_index.__getitem__)
        )
    ids, reference_problems = resolve_references(session, spec, rows, file_codes)
    problems.extend(reference_problems)
    return ids, problems


#: The problem of an import with nothing in it.
NOTHING_TO_IMPORT = {"index": None, "field": None, "reason": "there are no features to import"}


def import_rows(
    session: Session, spec: LayerSpec, rows: list[dict], author: str, reason: str | None = None
) -> list[int]:
    """Insert prepared rows of one layer; return their new ids in row order.

    References by code are resolved against the database and the rows
    themselves; grids get an ``insert`` revision each.

    Raises
    ------
    ImportRejected
        With every unresolved reference, existing code or refused row, or when
        there are no rows at all.
    """
    if not rows:
        raise ImportRejected([dict(NOTHING_TO_IMPORT)])
    ids, problems = check_rows(session, spec, rows)
    if problems:
        raise ImportRejected(problems)

    model = spec.model
    written: dict[str, int] = {}
    new_ids: dict[int, int] = {}
    revisions = []
    try:
        for wave in _insertion_waves(spec, rows):
            values = [column_values(spec, rows[i], ids, written) for i in wave]
            returning = [model.id] + ([_code_column(spec.name)] if spec.key else [])
            result = session.execute(insert(model).returning(*returning), values)
            for i, value, (id_, *code) in zip(wave, values, result.all(), strict=True):
                new_ids[i] = id_
                if code:
                    written[code[0]] = id_
                if model is Grid:
                    attrs = {**value, "version": 1, "active": True}
                    revisions.append(
                        {
                            "grid_id": id_,
                            "version": 1,
                            "action": "insert",
                            "before": None,
                            "after": snapshot(attrs, rows[i]["geom"]),
                            "author": author,
                            "reason": reason,
                        }
                    )
        record_revisions(session, revisions)
    except IntegrityError as exc:
        raise ImportRejected(
            [{"index": None, "field": None, "reason": integrity_reason(exc)}]
        ) from exc
    return [new_ids[i] for i in range(len(rows))]


def integrity_reason(exc: IntegrityError) -> str:
    """The first line of the database's own words for a refused row."""
    return str(exc.orig).strip().splitlines()[0]


def column_values(
    spec: LayerSpec, row: dict, ids: dict[str, dict[str, int]], written: dict[str, int]
) -> dict[str, Any]:
    """Model column values of one prepared row, references turned into ids."""
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
