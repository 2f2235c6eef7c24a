"""What OGC API - Features asks of the layers: pages by key, counts, extents and CRSs.

The API (``api/ogc.py``) parses and serialises; this module queries. Pages are read
by key (``id > after`` in id order, or ``id < before`` backwards), never by offset, so
the millionth row costs what the first does. ``numberMatched`` is exact unless the
planner expects more than :data:`EXACT_COUNT_LIMIT` rows, and then it is the
planner's estimate (``pg_class.reltuples`` for a whole table, ``EXPLAIN`` for a
filter), and the answer says so. Coordinates leave in the CRS asked for, in that
CRS's own axis order (EPSG:4326 and EPSG:4490 are latitude first), by pyproj.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gridmap import features
from gridmap.cql import Queryable
from gridmap.geometry import MetricFrame
from gridmap.io.layers import LAYERS, LayerSpec
from gridmap.settings import CGCS2000_SRID, STORAGE_SRID

#: The CRS of GeoJSON and of storage: WGS 84 longitude, latitude.
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
#: Above this many rows expected, numberMatched is the planner's estimate, not a count.
EXACT_COUNT_LIMIT = 200_000


class CRSNotOffered(ValueError):
    """A CRS this service does not offer (or cannot read)."""


def epsg_uri(code: int) -> str:
    """The OGC URI of an EPSG code."""
    return f"{_EPSG_URI}{code}"


def crs_uri(value: str) -> str:
    """A CRS as its OGC URI: a URI as given, ``EPSG:4490`` or ``[EPSG:4490]`` (a safe
    CURIE) turned into one, ``OGC:CRS84`` into :data:`CRS84`."""
    text_ = value.strip().removeprefix("[").removesuffix("]")
    upper = text_.upper()
    if upper in ("OGC:CRS84", "CRS84"):
        return CRS84
    if upper.startswith("EPSG:") and re.fullmatch("[0-9]{1,9}", text_[5:]):
        return epsg_uri(int(text_[5:]))
    return text_


def _pyproj_crs(uri: str) -> CRS:
    if uri == CRS84:
        return CRS.from_user_input("OGC:CRS84")
    if uri.startswith(_EPSG_URI) and re.fullmatch("[0-9]{1,9}", uri[len(_EPSG_URI) :]):
        return CRS.from_epsg(int(uri[len(_EPSG_URI) :]))
    raise CRSNotOffered(f"cannot read the CRS {uri!r}")


@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> Transformer:
    # always_xy=False: each CRS in its authority's axis order, as OGC API asks.
    return Transformer.from_crs(_pyproj_crs(source), _pyproj_crs(target), always_xy=False)


def transform(geom: shapely.Geometry, source: str, target: str) -> shapely.Geometry:
    """A geometry from one offered CRS to another (OGC URIs), axes in each one's order."""
    if source == target or geom is None:
        return geom
    transformer = _transformer(source, target)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, project)


def to_storage(source: str) -> Callable[[shapely.Geometry], shapely.Geometry]:
    """A function taking geometries in ``source`` to storage (CRS84), densified every
    1/64 of their extent first so straight edges stay near where they were drawn; it
    raises ``ValueError`` for a geometry that cannot be densified (absurd coordinates)."""

    def convert(geom: shapely.Geometry) -> shapely.Geometry:
        if source == CRS84:
            return geom
        minx, miny, maxx, maxy = geom.bounds
        step = max(maxx - minx, maxy - miny) / 64
        try:
            dense = shapely.segmentize(geom, step) if step > 0 else geom
        except shapely.errors.GEOSException as exc:  # coordinates like 1e300
            raise ValueError(f"the geometry cannot be taken from {source}: {exc}") from exc
        return transform(dense, source, CRS84)

    return convert


def offered_crs(session: Session) -> list[str]:
    """The CRSs answers can be asked in: CRS84, EPSG:4326, EPSG:4490 (CGCS2000) and the
    UTM zone of every stored area (of its centroid, as the validator measures it)."""
    zones = session.execute(
        text(
            "SELECT min(ST_X(c)), min(ST_Y(c)) FROM "
            "(SELECT ST_Centroid(geom) AS c FROM areas) AS centres "
            "GROUP BY floor((ST_X(c) + 180) / 6), ST_Y(c) >= 0"
        )
    ).all()
    utm = sorted({MetricFrame(shapely.Point(x, y)).epsg for x, y in zones})
    return [CRS84, epsg_uri(STORAGE_SRID), epsg_uri(CGCS2000_SRID)] + [epsg_uri(c) for c in utm]


def check_crs(value: str | None, offered: list[str]) -> str:
    """The URI of a CRS asked for (CRS84 when none), or :class:`CRSNotOffered`."""
    if value is None:
        return CRS84
    uri = crs_uri(value)
    if uri not in offered:
        raise CRSNotOffered(
            f"the CRS {value!r} is not offered; ask for one of {', '.join(offered)}"
        )
    return uri


def extent(session: Session, spec: LayerSpec) -> list[float] | None:
    """A layer's bounding box in CRS84 (the planner's estimate where it has statistics,
    else measured), or ``None`` when the layer is empty."""
    column = features._filter_column(spec)
    table = spec.model.__tablename__
    box = session.scalar(
        text("SELECT ST_EstimatedExtent(:table, :column)::text"),
        {"table": table, "column": column.key if hasattr(column, "key") else "geom"},
    )
    if box is None:
        found = session.execute(
            select(
                func.ST_XMin(func.ST_Extent(column)),
                func.ST_YMin(func.ST_Extent(column)),
                func.ST_XMax(func.ST_Extent(column)),
                func.ST_YMax(func.ST_Extent(column)),
            )
        ).one()
        return None if found[0] is None else [float(v) for v in found]
    numbers = box.removeprefix("BOX(").removesuffix(")").replace(",", " ").split()
    return [float(v) for v in numbers]


def queryables(spec: LayerSpec, visible: list[str]) -> dict[str, Queryable]:
    """The properties of a layer a filter may name: its visible fields (a reference
    by the code of the row it names) and ``geometry``."""
    model = spec.model
    found: dict[str, Queryable] = {}
    for name in visible:
        fld = spec.field_by_name[name]
        if fld.type == "ranges":
            continue
        if fld.reference:
            target = LAYERS[fld.reference].model
            column = (
                select(target.code).where(target.id == getattr(model, fld.target)).scalar_subquery()
            )
            found[name] = Queryable(column, "str")
        else:
            found[name] = Queryable(getattr(model, fld.target), fld.type)
    if spec.geometry:
        found["geometry"] = Queryable(features._filter_column(spec), "geometry")
    return found


@dataclass
class KeysetPage:
    """A page of features in id order, and whether rows lie before and after it."""

    page: features.Page
    more_after: bool
    more_before: bool


def _filtered(spec: LayerSpec, query: Select, conditions: list[ColumnElement], area: str | None):
    query = features._apply_filters(spec, query, features.Query(area=area))
    for condition in conditions:
        query = query.where(condition)
    return query


def select_keyset(
    session: Session,
    spec: LayerSpec,
    conditions: list[ColumnElement],
    limit: int,
    after: int | None = None,
    before: int | None = None,
    area: str | None = None,
) -> KeysetPage:
    """One page of a layer's features after (or before) an id.

    Parameters
    ----------
    conditions
        SQL conditions every feature meets (bbox, property filters, CQL2).
    limit
        Features per page.
    after, before
        The page starts after this id, or ends before it (at most one).
    area
        A street or community code (a street includes its communities).
    """
    model = spec.model
    query, names = features._base_query(spec)
    query = _filtered(spec, query, conditions, area)
    if before is not None:
        query = query.where(model.id < before).order_by(model.id.desc())
    else:
        if after is not None:
            query = query.where(model.id > after)
        query = query.order_by(model.id)
    rows = session.execute(query.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if before is not None:
        rows.reverse()
    page = features._page(spec, names, rows, len(rows))
    if before is not None:
        return KeysetPage(page, more_after=True, more_before=more)
    return KeysetPage(page, more_after=more, more_before=after is not None)


def count_matched(
    session: Session, spec: LayerSpec, conditions: list[ColumnElement], area: str | None = None
) -> tuple[int, bool]:
    """How many features match: ``(number, estimated)``.

    Exact (``count(*)``) unless the planner expects more than :data:`EXACT_COUNT_LIMIT`;
    then its estimate: ``pg_class.reltuples`` for a whole table, the row estimate of
    ``EXPLAIN`` for a filter.
    """
    model = spec.model
    whole_table = not conditions and area is None and spec.name != "grids"
    if whole_table:
        estimate = session.scalar(
            text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:table)"),
            {"table": model.__tablename__},
        )
    else:
        ids = _filtered(spec, select(model.id).select_from(model), conditions, area)
        compiled = ids.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
        )
        plan = (
            session.connection()
            .exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params)
            .scalar()
        )
        plan = json.loads(plan) if isinstance(plan, str) else plan
        estimate = int(plan[0]["Plan"]["Plan Rows"])
    if estimate is not None and estimate > EXACT_COUNT_LIMIT:
        return estimate, True
    counted = _filtered(spec, select(func.count()).select_from(model), conditions, area)
    return int(session.scalar(counted)), False


def intersecting(spec: LayerSpec, geom: shapely.Geometry) -> ColumnElement:
    """The condition that a feature meets a lon/lat geometry (a building by its point,
    as the REST API's bbox filter does)."""
    value = func.ST_GeomFromWKB(shapely.to_wkb(geom), STORAGE_SRID)
    return func.ST_Intersects(features._filter_column(spec), value)
