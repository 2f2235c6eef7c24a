"""OGC API - Features at ``/ogc``: the layers for QGIS, GDAL and web maps.

Part 1 (core, GeoJSON, OpenAPI 3.0 at ``/ogc/api``), Part 2 (CRS: CRS84, EPSG:4326,
EPSG:4490 and the UTM zone of each stored area, ``crs``, ``bbox-crs``, ``Content-Crs``),
Part 3 (``/queryables`` and CQL2 text filters) and Part 4 (create, replace, update and
delete) for grids, with the REST API's ETags, roles and validator. The views parse and
check the request, call :mod:`gridmap.ogc`, :mod:`gridmap.features` and
:mod:`gridmap.grids`, and serialise; viewers see what they see in the REST API.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
import shapely
from flask import Blueprint, Response, json, request
from flask_smorest import abort

from api.auth import current_principal, require
from api.database import db_session
from api.errors import PROBLEM_JSON
from api.geojson import (
    GEOJSON,
    feature_in_schema,
    read_geometries,
    to_feature,
    visible_fields,
)
from api.resources import expected_version, refuse_far_from_areas
from gridmap import __version__, features, grids, ogc
from gridmap.cql import FilterProblem, Queryable, to_condition
from gridmap.geometry import geometry_from_geojson
from gridmap.io.layers import LAYERS, LayerSpec
from gridmap.io.store import ImportRejected
from gridmap.tokens import ANONYMOUS

JSON = "application/json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
#: Features per page when ``limit`` is not given, and the most a page holds.
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: Layers served as collections (those with a geometry) and the ones that take edits.
COLLECTIONS: tuple[str, ...] = tuple(name for name, spec in LAYERS.items() if spec.geometry)
EDITABLE = frozenset({"grids"})
TITLES = {
    "areas": "街道与社区 Streets and communities",
    "grids": "网格 Grids (active)",
    "buildings": "建筑 Buildings",
    "stations": "服务站点 Service stations",
    "roads": "道路 Roads",
}
_SPEC = "http://www.opengis.net/spec"
CONFORMANCE = [
    f"{_SPEC}/ogcapi-features-1/1.0/conf/core",
    f"{_SPEC}/ogcapi-features-1/1.0/conf/geojson",
    f"{_SPEC}/ogcapi-features-1/1.0/conf/oas30",
    f"{_SPEC}/ogcapi-features-2/1.0/conf/crs",
    f"{_SPEC}/ogcapi-features-3/1.0/conf/queryables",
    f"{_SPEC}/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    f"{_SPEC}/ogcapi-features-3/1.0/conf/filter",
    f"{_SPEC}/ogcapi-features-3/1.0/conf/features-filter",
    f"{_SPEC}/cql2/1.0/conf/cql2-text",
    f"{_SPEC}/cql2/1.0/conf/basic-cql2",
    f"{_SPEC}/cql2/1.0/conf/advanced-comparison-operators",
    f"{_SPEC}/cql2/1.0/conf/case-insensitive-comparison",
    f"{_SPEC}/cql2/1.0/conf/basic-spatial-functions",
    f"{_SPEC}/cql2/1.0/conf/spatial-functions",
    f"{_SPEC}/ogcapi-features-4/1.0/conf/create-replace-delete",
    f"{_SPEC}/ogcapi-features-4/1.0/conf/update",
    f"{_SPEC}/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    f"{_SPEC}/ogcapi-features-4/1.0/conf/features",
]
#: Query parameters of ``/items`` besides the queryables (property = value).
ITEMS_PARAMETERS = frozenset(
    {
        "f",
        "limit",
        "bbox",
        "bbox-crs",
        "crs",
        "datetime",
        "filter",
        "filter-lang",
        "filter-crs",
        "after",
        "before",
        "area",
    }
)
_REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"

bp = Blueprint("ogc", __name__, url_prefix="/ogc")


# -- helpers --------------------------------------------------------------------------


def _answer(
    body: Any, status: int = 200, mimetype: str = JSON, headers: dict[str, str] | None = None
) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=mimetype)
    response.headers.update(headers or {})
    return response


def _url(path: str) -> str:
    return f"{request.host_url.rstrip('/')}/ogc{path}"


def _spec(collection_id: str) -> LayerSpec:
    if collection_id not in COLLECTIONS:
        abort(404, message=f"no collection {collection_id!r}; there are {', '.join(COLLECTIONS)}")
    return LAYERS[collection_id]


def _only_parameters(allowed: frozenset[str] | set[str]) -> None:
    """Refuse (400) query parameters this resource does not take (OGC API asks for it)."""
    unknown = sorted(set(request.args) - set(allowed) - {"f"})
    if unknown:
        abort(
            400,
            message=f"unknown query parameter(s) {', '.join(unknown)}; this resource takes "
            f"{', '.join(sorted(allowed)) or 'none'}",
        )
    if request.args.get("f", "json") not in ("json", "geojson"):
        abort(400, message="f takes json (HTML pages of this API are the maps at /maps)")


def _whole(text: str, digits: int) -> bool:
    """Whether ``text`` is a whole number of ASCII digits (``str.isdigit`` takes "²")."""
    return re.fullmatch(f"[0-9]{{1,{digits}}}", text) is not None


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        abort(400, message=f"{name} must be numbers separated by commas, not {text!r}")
    if not math.isfinite(value):
        abort(400, message=f"{name} must be finite numbers")
    return value


def _positive_id(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not _whole(text, 18):
        abort(400, message=f"{name} must be a feature id from a next or prev link")
    return int(text)


def _check_crs(value: str | None, offered: list[str], name: str) -> str:
    try:
        return ogc.check_crs(value, offered)
    except ogc.CRSNotOffered as exc:
        abort(400, message=f"{name}: {exc}")


def _content_crs(uri: str) -> dict[str, str]:
    return {"Content-Crs": f"<{uri}>"}


def _bbox_condition(spec: LayerSpec, text: str, bbox_crs: str) -> Any:
    """``bbox`` (four numbers in ``bbox-crs``, in its axis order) as a condition."""
    numbers = [_number("bbox", part) for part in text.split(",")]
    if len(numbers) == 6:  # minimum and maximum heights are dropped: geometry is 2D
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        abort(400, message="bbox takes four numbers: minx,miny,maxx,maxy (in bbox-crs)")
    x1, y1, x2, y2 = numbers
    try:
        box = ogc.to_storage(bbox_crs)(
            shapely.box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        )
    except ValueError as exc:
        abort(400, message=f"bbox: {exc}")
    minx, miny, maxx, maxy = box.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):  # NaN fails too
        abort(400, message="bbox lies outside longitude -180..180, latitude -90..90 (in bbox-crs)")
    return ogc.intersecting(spec, box)


def _property_condition(name: str, queryable: Queryable, text: str) -> Any:
    """``?name=value``: an equality on a queryable, the value read as its type."""
    if queryable.type == "geometry":
        abort(400, message=f"{name} is a geometry: filter it with bbox or S_INTERSECTS")
    value: Any = text
    if queryable.type == "int":
        try:
            value = int(text)
        except ValueError:
            abort(400, message=f"{name} takes a whole number, not {text!r}")
        if abs(value) > 2**31 - 1:
            abort(400, message=f"{name} is out of range")
    elif queryable.type == "bool":
        if text not in ("true", "false"):
            abort(400, message=f"{name} takes true or false")
        value = text == "true"
    elif "\x00" in text:
        abort(400, message=f"{name} must not contain NUL characters")
    return queryable.column == value


def _features(session, spec: LayerSpec, page: features.Page, principal, crs: str) -> list[dict]:
    extra = (
        features.grid_statistics(session, [r["id"] for r in page.records])
        if spec.name == "grids"
        else {}
    )
    return [
        to_feature(
            spec, record, ogc.transform(geom, ogc.CRS84, crs), principal, extra.get(record["id"])
        )
        for record, geom in zip(page.records, page.geoms, strict=True)
    ]


def _etag(spec: LayerSpec, record: dict, body: dict) -> str:
    """A grid's ETag is its version (as in the REST API); other features' a digest."""
    if spec.name == "grids":
        return f'"{record["version"]}"'
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]
    return f'W/"{digest}"'


# -- landing, conformance, API definition ------------------------------------------------


@bp.get("")
@bp.get("/")
def landing() -> Response:
    """The landing page: links to the API definition, conformance and collections."""
    _only_parameters(set())
    return _answer(
        {
            "title": "gridmap OGC API - Features",
            "description": "Community grids, buildings, stations, roads and areas of gridmap "
            "(网格化服务管理). Anonymous callers read as viewers: no personal data.",
            "links": [
                {"rel": "self", "type": JSON, "href": _url(""), "title": "This document"},
                {
                    "rel": "service-desc",
                    "type": OPENAPI_JSON,
                    "href": _url("/api"),
                    "title": "The API definition",
                },
                {
                    "rel": "conformance",
                    "type": JSON,
                    "href": _url("/conformance"),
                    "title": "Conformance classes",
                },
                {
                    "rel": "data",
                    "type": JSON,
                    "href": _url("/collections"),
                    "title": "Collections",
                },
            ],
        }
    )


@bp.get("/conformance")
def conformance() -> Response:
    """The conformance classes this service implements."""
    _only_parameters(set())
    return _answer({"conformsTo": CONFORMANCE})


@bp.get("/api")
def api_definition() -> Response:
    """The OpenAPI 3.0 definition of ``/ogc``."""
    _only_parameters(set())
    return _answer(openapi_document(), mimetype=OPENAPI_JSON)


# -- collections ----------------------------------------------------------------------


def _collection(session, spec: LayerSpec, offered: list[str]) -> dict[str, Any]:
    name = spec.name
    base = f"/collections/{name}"
    box = ogc.extent(session, spec)
    body: dict[str, Any] = {
        "id": name,
        "title": TITLES.get(name, name),
        "itemType": "feature",
        "crs": offered,
        "storageCrs": ogc.CRS84,
        "links": [
            {"rel": "self", "type": JSON, "href": _url(base)},
            {"rel": "items", "type": GEOJSON, "href": _url(f"{base}/items")},
            {"rel": _REL_QUERYABLES, "type": SCHEMA_JSON, "href": _url(f"{base}/queryables")},
        ],
    }
    if name == "buildings":
        body["description"] = (
            "Household and population figures are personal data: staff tokens see them. "
            "Spatial filters use each building's point."
        )
    if box is not None:
        body["extent"] = {"spatial": {"bbox": [box], "crs": ogc.CRS84}}
    return body


@bp.get("/collections")
def collections() -> Response:
    """Every collection, with its extent and CRSs."""
    _only_parameters(set())
    with db_session() as session:
        offered = ogc.offered_crs(session)
        found = [_collection(session, LAYERS[name], offered) for name in COLLECTIONS]
    return _answer(
        {
            "links": [{"rel": "self", "type": JSON, "href": _url("/collections")}],
            "collections": found,
            "crs": offered,
        }
    )


@bp.get("/collections/<collection_id>")
def collection(collection_id: str) -> Response:
    """One collection."""
    spec = _spec(collection_id)
    _only_parameters(set())
    with db_session() as session:
        body = _collection(session, spec, ogc.offered_crs(session))
    return _answer(body)


_JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean"}
#: The JSON Schema format of each collection's geometry queryable (OGC API Part 3): what
#: filters compare with (a building's point, as the REST API's bbox does).
GEOMETRY_FORMATS = {
    "areas": "geometry-multipolygon",
    "grids": "geometry-multipolygon",
    "buildings": "geometry-point",
    "stations": "geometry-point",
    "roads": "geometry-linestring",
}


@bp.get("/collections/<collection_id>/queryables")
def queryables(collection_id: str) -> Response:
    """The properties a filter may name, as JSON Schema (the caller's visible fields)."""
    spec = _spec(collection_id)
    _only_parameters(set())
    properties: dict[str, Any] = {}
    for name in ogc.queryables(spec, visible_fields(spec, current_principal())):
        if name == "geometry":
            kinds = spec.geometry or ()
            properties[name] = {
                "title": "geometry",
                "format": GEOMETRY_FORMATS[spec.name],
                "description": "Geometry types: "
                + ", ".join(kinds)
                + (" (filters use each building's point)" if spec.name == "buildings" else ""),
            }
            continue
        fld = spec.field_by_name[name]
        schema: dict[str, Any] = {"title": name, "type": _JSON_TYPES[fld.type]}
        if fld.choices:
            schema["enum"] = list(fld.choices)
        if fld.max_length:
            schema["maxLength"] = fld.max_length
        if fld.reference:
            schema["description"] = f"Code of a row of {fld.reference}"
        properties[name] = schema
    return _answer(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": _url(f"/collections/{spec.name}/queryables"),
            "type": "object",
            "title": TITLES.get(spec.name, spec.name),
            "properties": properties,
            "additionalProperties": False,
        },
        mimetype=SCHEMA_JSON,
    )


# -- items ----------------------------------------------------------------------------


def _allow(spec: LayerSpec, item: bool) -> tuple[str, ...]:
    """The methods a collection's items (or one item) take: edits for grids only."""
    if spec.name in EDITABLE:
        edits = ("PUT", "PATCH", "DELETE") if item else ("POST",)
        return ("GET", "HEAD", *edits, "OPTIONS")
    return ("GET", "HEAD", "OPTIONS")


def _refuse_method(spec: LayerSpec, item: bool) -> None:
    if request.method not in _allow(spec, item):
        abort(
            405,
            message=f"{spec.name} are read-only here; only grids take edits",
            headers={"Allow": ", ".join(_allow(spec, item))},
        )


def _filters(session, spec: LayerSpec, principal, offered: list[str]) -> tuple[list, str | None]:
    """SQL conditions from bbox, property parameters and a CQL2 filter; and the area."""
    visible = visible_fields(spec, principal)
    allowed_names = ogc.queryables(spec, visible)
    hidden = set(spec.field_by_name) - set(visible)
    _only_parameters(ITEMS_PARAMETERS | (set(allowed_names) - {"geometry"}) | hidden)
    for name in sorted(hidden & set(request.args)):
        abort(403, message=f"{name} is personal data: filtering on it needs a staff token")
    args = request.args
    if "datetime" in args:
        abort(400, message="gridmap's collections have no time: datetime cannot be used")
    conditions = []
    if "bbox" in args:
        bbox_crs = _check_crs(args.get("bbox-crs"), offered, "bbox-crs")
        conditions.append(_bbox_condition(spec, args["bbox"], bbox_crs))
    elif "bbox-crs" in args:
        abort(400, message="bbox-crs is the CRS of bbox: send bbox too")
    for name, queryable in allowed_names.items():
        if name in args:
            conditions.append(_property_condition(name, queryable, args[name]))
    language = args.get("filter-lang", "cql2-text")
    if language != "cql2-text":
        abort(400, message=f"filter-lang {language!r} is not taken; send cql2-text")
    if "filter" in args:
        filter_crs = _check_crs(args.get("filter-crs"), offered, "filter-crs")
        try:
            conditions.append(
                to_condition(args["filter"], allowed_names, ogc.to_storage(filter_crs))
            )
        except FilterProblem as exc:
            abort(400, message=f"filter: {exc}")
    area = args.get("area")
    if area is not None and not features.area_exists(session, area):
        abort(404, message=f"no area with code {area!r}")
    return conditions, area


def _link(rel: str, query: dict[str, str], title: str) -> dict[str, str]:
    href = request.base_url + (f"?{urlencode(query)}" if query else "")
    return {"rel": rel, "type": GEOJSON, "href": href, "title": title}


@bp.route(
    "/collections/<collection_id>/items",
    methods=["GET", "POST", "OPTIONS"],
    provide_automatic_options=False,
)
def items(collection_id: str) -> Response:
    """Features of a collection, a page at a time (GET); a new grid (POST)."""
    spec = _spec(collection_id)
    if request.method == "OPTIONS":
        return Response(status=204, headers={"Allow": ", ".join(_allow(spec, item=False))})
    _refuse_method(spec, item=False)
    if request.method == "POST":
        return _create(spec)
    principal = require("viewer")
    limit_text = request.args.get("limit", str(DEFAULT_LIMIT))
    if not _whole(limit_text, 12) or int(limit_text) < 1:
        abort(400, message=f"limit must be a whole number from 1 (at most {MAX_LIMIT} are sent)")
    limit = min(int(limit_text), MAX_LIMIT)  # OGC API: a larger limit gets the largest page
    after = _positive_id("after", request.args.get("after"))
    before = _positive_id("before", request.args.get("before"))
    if after is not None and before is not None:
        abort(400, message="send after or before, not both")
    with db_session() as session:
        offered = ogc.offered_crs(session)
        crs = _check_crs(request.args.get("crs"), offered, "crs")
        conditions, area = _filters(session, spec, principal, offered)
        found = ogc.select_keyset(session, spec, conditions, limit, after, before, area)
        matched, estimated = ogc.count_matched(session, spec, conditions, area)
        listed = _features(session, spec, found.page, principal, crs)
    query = {k: v for k, v in request.args.items() if k not in ("after", "before")}
    links = [
        {"rel": "self", "type": GEOJSON, "href": request.url, "title": "This page"},
        {
            "rel": "collection",
            "type": JSON,
            "href": _url(f"/collections/{spec.name}"),
            "title": "The collection",
        },
    ]
    ids = [record["id"] for record in found.page.records]
    if ids and found.more_after:
        links.append(_link("next", {**query, "after": str(ids[-1])}, "Next page"))
    if ids and found.more_before:
        links.append(_link("prev", {**query, "before": str(ids[0])}, "Previous page"))
    body: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": listed,
        "numberMatched": matched,
        "numberReturned": len(listed),
        "links": links,
    }
    if estimated:
        body["numberMatchedEstimated"] = True
        body["description"] = (
            "numberMatched is the database planner's estimate: counting this many rows "
            "exactly would be slow"
        )
    return _answer(body, mimetype=GEOJSON, headers=_content_crs(crs))


def _item_id(text: str) -> int:
    if not _whole(text, 18):
        abort(404, message=f"no feature with id {text!r}")
    return int(text)


def _item_answer(session, spec: LayerSpec, item_id: int, principal, crs: str, status: int = 200):
    record, geom = features.get_feature(session, spec, item_id)
    if spec.name == "grids" and not record["active"]:
        raise features.NotFound(f"no active grid with id {item_id}")
    body = _features(session, spec, features.Page([record], [geom], 1), principal, crs)[0]
    body["links"] = [
        {"rel": "self", "type": GEOJSON, "href": _url(f"/collections/{spec.name}/items/{item_id}")},
        {"rel": "collection", "type": JSON, "href": _url(f"/collections/{spec.name}")},
    ]
    headers = {"ETag": _etag(spec, record, body), **_content_crs(crs)}
    return _answer(body, status, GEOJSON, headers)


@bp.route(
    "/collections/<collection_id>/items/<feature_id>",
    methods=["GET", "PUT", "PATCH", "DELETE", "OPTIONS"],
    provide_automatic_options=False,
)
def item(collection_id: str, feature_id: str) -> Response:
    """One feature with its ETag (GET); replace, update or delete a grid."""
    spec = _spec(collection_id)
    if request.method == "OPTIONS":
        return Response(status=204, headers={"Allow": ", ".join(_allow(spec, item=True))})
    _refuse_method(spec, item=True)
    item_id = _item_id(feature_id)
    if request.method != "GET":
        return _change(spec, item_id)
    principal = require("viewer")
    _only_parameters({"crs"})
    with db_session() as session:
        crs = _check_crs(request.args.get("crs"), ogc.offered_crs(session), "crs")
        response = _item_answer(session, spec, item_id, principal, crs)
    return response.make_conditional(request)


# -- Part 4: grids --------------------------------------------------------------------


def _body(spec: LayerSpec, patch: bool) -> dict[str, Any]:
    """The request's Feature, checked by the REST API's own schema (422 with every problem)."""
    try:
        return feature_in_schema(spec, patch=patch)().load(request.get_json())
    except ma.ValidationError as exc:
        abort(422, messages={"json": exc.messages})


def _geometry(spec: LayerSpec, session, obj: dict | None, check: bool) -> shapely.Geometry | None:
    """A sent geometry, from the request's ``Content-Crs`` (CRS84 when absent) to storage,
    checked as the REST API checks it."""
    if obj is None:
        return None
    header = request.headers.get("Content-Crs")
    source = _check_crs(
        header.strip().removeprefix("<").removesuffix(">") if header else None,
        ogc.offered_crs(session),
        "Content-Crs",
    )
    geom, problems = geometry_from_geojson(obj)
    if problems:
        raise ImportRejected([{"index": 0, "field": "geometry", **p} for p in problems])
    lonlat = json.loads(shapely.to_geojson(ogc.transform(geom, source, ogc.CRS84)))
    stored = read_geometries(spec, [lonlat], None, check=check)[0]
    refuse_far_from_areas(session, [stored])
    return stored


def _create(spec: LayerSpec) -> Response:
    principal = require("planner")
    _only_parameters({"reason"})
    feature = _body(spec, patch=False)
    with db_session() as session:
        geom = _geometry(spec, session, feature["geometry"], check=False)
        new_id = features.create_feature(
            session, spec, geom, feature["properties"], principal.name, request.args.get("reason")
        )
        response = _item_answer(session, spec, new_id, principal, ogc.CRS84, status=201)
    response.headers["Location"] = _url(f"/collections/{spec.name}/items/{new_id}")
    return response


def _change(spec: LayerSpec, item_id: int) -> Response:
    principal = require("planner")
    _only_parameters({"reason"})
    expected = expected_version()
    reason = request.args.get("reason")
    if request.method == "DELETE":
        with db_session() as session:
            features.delete_feature(session, spec, item_id, principal.name, reason, expected)
        return Response(status=204)
    replace = request.method == "PUT"
    feature = _body(spec, patch=not replace)
    properties = feature["properties"]
    if replace:  # a replacement: every field it leaves out is cleared
        properties = {f.name: properties.get(f.name) for f in spec.fields}
    elif feature.get("geometry") is None and not properties:
        abort(400, message="nothing to change: send the properties to change and/or a geometry")
    with db_session() as session:
        geom = _geometry(spec, session, feature.get("geometry"), check=True)
        grids.update_grid(session, item_id, geom, properties, principal.name, reason, expected)
        return _item_answer(session, spec, item_id, principal, ogc.CRS84)


# -- the API definition -----------------------------------------------------------------


#: A feature id as the API reads it (ids of every layer are whole numbers).
FEATURE_ID = {"type": "string", "pattern": "^[0-9]{1,18}$"}


def _response(description: str, media_type: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "object"}}}}


def _parameter(name: str, description: str, schema: dict, where: str = "query") -> dict:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
        **({"style": "form", "explode": False} if where == "query" else {}),
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``/ogc``."""
    collection_id = _parameter(
        "collectionId", "A collection", {"type": "string", "enum": list(COLLECTIONS)}, "path"
    )
    feature_id = _parameter("featureId", "A feature id", FEATURE_ID, "path")
    crs = _parameter("crs", "CRS of the answer (see the collection's crs)", {"type": "string"})
    geojson = _response("GeoJSON", GEOJSON)
    plain = _response("JSON", JSON)
    problem = _response("A problem (RFC 9457)", PROBLEM_JSON)
    items_parameters = [
        collection_id,
        _parameter(
            "limit",
            f"Features per page; at most {MAX_LIMIT} are sent, whatever is asked",
            {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT},
        ),
        _parameter(
            "bbox",
            "minx,miny,maxx,maxy in bbox-crs (CRS84 by default)",
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
        ),
        _parameter("bbox-crs", "CRS of bbox", {"type": "string"}),
        crs,
        _parameter("filter", "A CQL2 text filter", {"type": "string"}),
        _parameter("filter-lang", "cql2-text", {"type": "string", "enum": ["cql2-text"]}),
        _parameter("filter-crs", "CRS of the filter's geometries", {"type": "string"}),
        _parameter("after", "From a next link: the page after this id", FEATURE_ID),
        _parameter("before", "From a prev link: the page before this id", FEATURE_ID),
        _parameter("area", "Area code: features of it and the areas below", {"type": "string"}),
    ]
    write = {"security": [{"bearer": []}]}
    if_match = _parameter("If-Match", "The ETag read", {"type": "string"}, "header")
    if_match["required"] = True
    edit_errors = {
        code: problem
        for code in ("400", "401", "403", "404", "409", "412", "413", "414", "415", "422", "428")
    }
    reads = {code: problem for code in ("400", "403", "404", "414")}
    # A path per collection with its properties as parameters: GDAL's OAPIF driver
    # reads them there and sends attribute filters to the server (``?kind=general``).
    per_collection: dict[str, Any] = {}
    for name in COLLECTIONS:
        spec = LAYERS[name]
        properties = [
            _parameter(field, f"Features whose {field} is this value", {"type": kind})
            for field, queryable in ogc.queryables(spec, visible_fields(spec, ANONYMOUS)).items()
            if (kind := _JSON_TYPES.get(queryable.type))
        ]
        per_collection[f"/collections/{name}/items"] = {
            "get": {
                "summary": f"{TITLES[name]}, a page at a time",
                "parameters": items_parameters[1:] + properties,
                "responses": {"200": geojson, **reads},
            }
        }
    per_collection["/collections/grids/items"]["post"] = {
        "summary": "Create a grid",
        "requestBody": {"required": True, **geojson},
        "responses": {"201": geojson, **edit_errors},
        **write,
    }
    one_grid = [feature_id, if_match]
    per_collection["/collections/grids/items/{featureId}"] = {
        "get": {
            "summary": "One grid; its ETag is its version",
            "parameters": [feature_id, crs],
            "responses": {"200": geojson, **reads},
        },
        "put": {
            "summary": "Replace a grid (fields left out are cleared)",
            "parameters": one_grid,
            "requestBody": {"required": True, **geojson},
            "responses": {"200": geojson, **edit_errors},
            **write,
        },
        "patch": {
            "summary": "Change some of a grid (merge patch)",
            "parameters": one_grid,
            "requestBody": {
                "required": True,
                "content": {"application/merge-patch+json": {"schema": {"type": "object"}}},
            },
            "responses": {"200": geojson, **edit_errors},
            **write,
        },
        "delete": {
            "summary": "Retire a grid (it keeps its history)",
            "parameters": one_grid,
            "responses": {"204": {"description": "Retired"}, **edit_errors},
            **write,
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gridmap OGC API - Features",
            "version": __version__,
            "description": "Grids, buildings, stations, roads and areas. Edits (grids only) "
            "need a planner's bearer token and If-Match.",
        },
        "servers": [{"url": _url("")}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/": {"get": {"summary": "Landing page", "responses": {"200": plain}}},
            "/conformance": {"get": {"summary": "Conformance", "responses": {"200": plain}}},
            "/api": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _response("OpenAPI 3.0", OPENAPI_JSON)},
                }
            },
            "/collections": {"get": {"summary": "Collections", "responses": {"200": plain}}},
            "/collections/{collectionId}": {
                "get": {
                    "summary": "A collection",
                    "parameters": [collection_id],
                    "responses": {"200": plain, "404": problem},
                }
            },
            "/collections/{collectionId}/queryables": {
                "get": {
                    "summary": "Queryables",
                    "parameters": [collection_id],
                    "responses": {"200": _response("JSON Schema", SCHEMA_JSON), "404": problem},
                }
            },
            "/collections/{collectionId}/items": {
                "get": {
                    "summary": "Features, a page at a time",
                    "parameters": items_parameters,
                    "responses": {"200": geojson, **reads},
                }
            },
            "/collections/{collectionId}/items/{featureId}": {
                "get": {
                    "summary": "One feature, with its ETag",
                    "parameters": [collection_id, feature_id, crs],
                    "responses": {"200": geojson, **reads},
                }
            },
            **per_collection,
        },
    }
