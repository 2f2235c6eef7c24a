"""CQL2 text filters turned into SQLAlchemy conditions over named columns only.

The text is parsed by pygeofilter (the OGC filter parser of the pygeoapi project);
this module walks its syntax tree and builds a condition from a whitelist: every
property a filter names must be one of the ``queryables`` given, every value must be
a literal of that property's type, and values are bound parameters, never SQL text.
What it takes is Basic CQL2 (comparisons, ``AND``/``OR``/``NOT``, ``IS NULL``), the
advanced comparison operators (``LIKE``, ``IN``, ``BETWEEN``), ``CASEI`` and the basic
spatial functions (``S_INTERSECTS`` and its siblings with a WKT geometry or ``BBOX``).

Examples
--------
>>> from sqlalchemy import column
>>> cond = to_condition("kind = 'general' AND code LIKE '51%'",
...                     {"kind": Queryable(column("kind")), "code": Queryable(column("code"))})
>>> str(cond)
'kind = :kind_1 AND code LIKE :code_1'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shapely
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_text import parse
from sqlalchemy import and_, func, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from gridmap.settings import STORAGE_SRID

#: Longest filter text read (characters); a filter is a question, not a dataset.
MAX_FILTER_LENGTH = 4000
#: Most values an ``IN`` list may hold.
MAX_IN_VALUES = 1000

_COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Equal: lambda a, b: a == b,
    ast.NotEqual: lambda a, b: a != b,
    ast.LessThan: lambda a, b: a < b,
    ast.LessEqual: lambda a, b: a <= b,
    ast.GreaterThan: lambda a, b: a > b,
    ast.GreaterEqual: lambda a, b: a >= b,
}
_SPATIAL: dict[type, Any] = {
    ast.GeometryIntersects: func.ST_Intersects,
    ast.GeometryDisjoint: lambda a, b: not_(func.ST_Intersects(a, b)),
    ast.GeometryWithin: func.ST_Within,
    ast.GeometryContains: func.ST_Contains,
    ast.GeometryTouches: func.ST_Touches,
    ast.GeometryCrosses: func.ST_Crosses,
    ast.GeometryOverlaps: func.ST_Overlaps,
    ast.GeometryEquals: func.ST_Equals,
}
#: The Python types a literal of each field type may have.
_LITERAL_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int, float),
    "bool": (bool,),
    "geometry": (),
}


class FilterProblem(ValueError):
    """A filter that cannot be read or names what may not be filtered on."""


@dataclass(frozen=True)
class Queryable:
    """A property a filter may name: its SQL expression and its type.

    ``type`` is a field type of :mod:`gridmap.io.layers` (``str``, ``int``,
    ``bool``) or ``geometry``.
    """

    column: Any
    type: str = "str"


def _literal(value: Any, queryable: Queryable, name: str) -> Any:
    """A literal checked against the type of the property it is compared with."""
    if isinstance(value, ast.Attribute):
        raise FilterProblem(
            f"'{name}' is compared with property '{value.name}': compare properties with values"
        )
    if isinstance(value, ast.Function) and value.name == "lower" and len(value.arguments) == 1:
        inner = _literal(value.arguments[0], queryable, name)
        return inner.lower() if isinstance(inner, str) else inner
    allowed = _LITERAL_TYPES[queryable.type]
    if isinstance(value, bool) and bool not in allowed:
        raise FilterProblem(f"'{name}' is not true or false; compare it with a {queryable.type}")
    if not isinstance(value, allowed):
        wanted = {"str": "text in single quotes", "int": "a number", "bool": "true or false"}
        raise FilterProblem(f"'{name}' takes {wanted.get(queryable.type, 'a geometry')}")
    return value


def _property(node: Any, queryables: dict[str, Queryable]) -> tuple[str, Queryable, Any]:
    """The queryable a node names (``CASEI(name)`` included) and its SQL expression."""
    lower = False
    if isinstance(node, ast.Function) and node.name == "lower" and len(node.arguments) == 1:
        node, lower = node.arguments[0], True
    if not isinstance(node, ast.Attribute):
        raise FilterProblem("the left side of a comparison must be a queryable property")
    queryable = queryables.get(node.name)
    if queryable is None:
        raise FilterProblem(
            f"'{node.name}' is not a queryable of this collection; it has "
            f"{', '.join(sorted(queryables))}"
        )
    if lower and queryable.type != "str":
        raise FilterProblem(f"CASEI takes text; '{node.name}' is a {queryable.type}")
    column = func.lower(queryable.column) if lower else queryable.column
    return node.name, queryable, column


def _geometry(node: Any, to_storage: Callable[[shapely.Geometry], shapely.Geometry]) -> Any:
    """A WKT geometry or ``BBOX(...)`` of a filter as an EPSG:4326 value for PostGIS."""
    if isinstance(node, values.Geometry):
        try:
            geom = shapely.geometry.shape(node.geometry)
        except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
            raise FilterProblem(f"unreadable geometry in the filter: {exc}") from exc
    elif isinstance(node, values.Envelope):
        geom = shapely.box(node.x1, node.y1, node.x2, node.y2)
    elif isinstance(node, ast.Function) and node.name.lower() == "bbox":
        numbers = node.arguments
        if len(numbers) not in (4, 6) or not all(
            isinstance(n, int | float) and not isinstance(n, bool) for n in numbers
        ):
            raise FilterProblem("BBOX takes four numbers: BBOX(minx, miny, maxx, maxy)")
        half = len(numbers) // 2
        geom = shapely.box(numbers[0], numbers[1], numbers[half], numbers[half + 1])
    else:
        raise FilterProblem("a spatial function compares the geometry with a WKT geometry or BBOX")
    try:
        geom = to_storage(geom)
    except ValueError as exc:
        raise FilterProblem(str(exc)) from exc
    if geom.is_empty or not shapely.is_valid(geom):
        raise FilterProblem("the filter's geometry is empty or invalid")
    return func.ST_GeomFromWKB(shapely.to_wkb(geom), STORAGE_SRID)


def _walk(
    node: Any,
    queryables: dict[str, Queryable],
    to_storage: Callable[[shapely.Geometry], shapely.Geometry],
) -> ColumnElement:
    def walk(child: Any) -> ColumnElement:
        return _walk(child, queryables, to_storage)

    if isinstance(node, ast.And):
        return and_(walk(node.lhs), walk(node.rhs))
    if isinstance(node, ast.Or):
        return or_(walk(node.lhs), walk(node.rhs))
    if isinstance(node, ast.Not):
        return not_(walk(node.sub_node))
    if type(node) in _COMPARISONS:
        name, queryable, column = _property(node.lhs, queryables)
        if queryable.type == "geometry":
            raise FilterProblem(f"'{name}' is a geometry: use S_INTERSECTS and its siblings")
        return _COMPARISONS[type(node)](column, _literal(node.rhs, queryable, name))
    if isinstance(node, ast.IsNull):
        _, _, column = _property(node.lhs, queryables)
        return column.is_not(None) if node.not_ else column.is_(None)
    if isinstance(node, ast.Like):
        name, queryable, column = _property(node.lhs, queryables)
        if queryable.type != "str" or not isinstance(node.pattern, str):
            raise FilterProblem(f"LIKE compares text with a pattern in single quotes ('{name}')")
        pattern = node.pattern.lower() if node.nocase else node.pattern
        if node.nocase:
            column = func.lower(column)
        condition = column.like(pattern, escape="\\")
        return not_(condition) if node.not_ else condition
    if isinstance(node, ast.In):
        name, queryable, column = _property(node.lhs, queryables)
        if not node.sub_nodes or len(node.sub_nodes) > MAX_IN_VALUES:
            raise FilterProblem(f"IN takes 1 to {MAX_IN_VALUES} values")
        listed = [_literal(v, queryable, name) for v in node.sub_nodes]
        return column.not_in(listed) if node.not_ else column.in_(listed)
    if isinstance(node, ast.Between):
        name, queryable, column = _property(node.lhs, queryables)
        if queryable.type != "int":
            raise FilterProblem(f"BETWEEN takes numbers; '{name}' is a {queryable.type}")
        condition = column.between(
            _literal(node.low, queryable, name), _literal(node.high, queryable, name)
        )
        return not_(condition) if node.not_ else condition
    if type(node) in _SPATIAL:
        name, queryable, column = _property(node.lhs, queryables)
        if queryable.type != "geometry":
            raise FilterProblem(f"'{name}' is not a geometry")
        return _SPATIAL[type(node)](column, _geometry(node.rhs, to_storage))
    raise FilterProblem(
        f"{type(node).__name__} is not supported: use comparisons, AND, OR, NOT, LIKE, IN, "
        "BETWEEN, IS NULL, CASEI and S_INTERSECTS (and the other S_ functions)"
    )


def to_condition(
    text: str,
    queryables: dict[str, Queryable],
    to_storage: Callable[[shapely.Geometry], shapely.Geometry] = lambda g: g,
) -> ColumnElement:
    """A CQL2 text filter as a SQLAlchemy condition.

    Parameters
    ----------
    text
        The filter, e.g. ``kind = 'general' AND S_INTERSECTS(geometry, BBOX(104, 30, 105, 31))``.
    queryables
        Property name → column and type: the only names a filter may use.
    to_storage
        Turns a geometry of the filter (in the filter's CRS, as written) into
        EPSG:4326 longitude/latitude; identity by default (CRS84).

    Raises
    ------
    FilterProblem
        Unreadable text, an unknown property, a value of the wrong type or an
        operator not taken, with the reason.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterProblem(f"the filter has {len(text)} characters; at most {MAX_FILTER_LENGTH}")
    try:
        tree = parse(text)
    except Exception as exc:  # lark's errors carry the position; their type is lark's own
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FilterProblem(f"the filter is not CQL2 text: {first}") from exc
    return _walk(tree, queryables, to_storage)
