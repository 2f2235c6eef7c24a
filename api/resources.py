"""The shape every layer's resource shares: list, create, read, change, delete, import.

Each resource module (``api/areas.py``, ``api/grids.py``, ...) makes its blueprint
with :func:`feature_blueprint`, naming its own filters; the views parse and check
the request, call :mod:`gridmap.features`, and serialise the answer.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
from flask import request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from api.auth import require
from api.database import db_session
from api.errors import problems
from api.geojson import (
    GEOJSON,
    FeatureCollectionInSchema,
    Text,
    _crs_name,
    feature_in_schema,
    feature_out_schemas,
    geojson_response,
    read_geometries,
    to_feature,
)
from api.jobs import JobSchema, import_job, wants_job
from gridmap import features
from gridmap.features import Query
from gridmap.geometry import MAX_DISTANCE_FROM_AREAS_M, geometry_from_geojson
from gridmap.io.files import DRIVERS, FileProblem, SourceData, source_crs
from gridmap.io.importer import (
    Checked,
    ImportOptions,
    check_source,
    options_for,
    read_source,
    store_checked,
)
from gridmap.io.layers import LAYERS, ON_INVALID, LayerSpec
from gridmap.io.mapping import MappingProblem, build_mapping, parse_mapping
from gridmap.io.osm import OSM_SUFFIXES
from gridmap.io.store import ImportRejected
from gridmap.models import PLACE_TYPES

#: A PATCH's change: (session, id, geometry, properties, author, query args, version).
Updater = Callable[..., dict]
#: Largest page a list returns.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class WriteArgs(ma.Schema):
    """Query parameters of a write."""

    reason = Text(
        load_default=None,
        validate=ma.validate.Length(max=500),
        metadata={"description": "Why (kept in grid revisions)"},
    )
    crs = Text(
        load_default=None,
        validate=ma.validate.Length(max=100),
        metadata={"description": "CRS of the sent geometry when not WGS 84, e.g. EPSG:4490"},
    )


class ImportArgs(WriteArgs):
    """Query parameters of a bulk import (the options of ``gridmap import``)."""

    crs = Text(
        load_default=None,
        metadata={
            "description": "CRS of the features when not WGS 84: EPSG:4490, or GCJ-02 "
            "(Amap, Tencent) or BD-09 (Baidu)"
        },
    )
    on_invalid = Text(
        load_default="refuse",
        validate=ma.validate.OneOf(ON_INVALID),
        metadata={
            "description": "refuse: nothing is written if any feature is bad; skip: bad "
            "features are left out and listed; repair: invalid geometries are mended "
            "(make_valid's polygonal part), what cannot be is left out and listed"
        },
    )
    osm = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Map OpenStreetMap tags (building, highway, amenity, "
            "building:levels) to the layer's fields; always on for .osm.pbf/.osm files"
        },
    )
    place_type = Text(
        load_default=None,
        validate=ma.validate.OneOf(PLACE_TYPES),
        metadata={"description": "Place type whose figures estimate missing households"},
    )


class ImportMappingFields(ma.Schema):
    """Field mapping of a bulk import (the options --map, --set and --values)."""

    map = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        load_default=None,
        metadata={"description": 'Field → source property: {"households": "HH"}'},
    )
    set = ma.fields.Dict(
        keys=ma.fields.String(),
        load_default=None,
        metadata={"description": 'Field → value for every feature: {"use": "residential"}'},
    )
    values = ma.fields.Dict(
        load_default=None,
        metadata={
            "description": 'A mapping: {"use": {"source": "building", "values": {"yes": '
            '"residential"}, "default": "other"}, "kind": {"value": "canteen"}}'
        },
    )


class ImportBodySchema(FeatureCollectionInSchema, ImportMappingFields):
    """A FeatureCollection to import, with its field mapping beside the features."""


#: The multipart form of an import: the file, and the mapping as JSON texts.
IMPORT_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "GeoJSON, GeoPackage, zipped Shapefile, CSV or OSM (.osm.pbf, .osm)",
        },
        "map": {"type": "string", "description": 'JSON: {"households": "HH"}'},
        "set": {"type": "string", "description": 'JSON: {"use": "residential"}'},
        "values": {"type": "string", "description": "JSON: a mapping (see the body's values)"},
    },
}


_LON = r"-?(?:180(?:\.0{1,15})?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]{1,15})?)"
_LAT = r"-?(?:90(?:\.0{1,15})?|[1-8]?[0-9](?:\.[0-9]{1,15})?)"
#: lon,lat,lon,lat as decimal numbers in range (no exponent, no spaces): what is read.
BBOX_PATTERN = rf"^{_LON},{_LAT},{_LON},{_LAT}$"


class BBox(Text):
    """``lon,lat,lon,lat`` of two opposite corners in WGS 84 (either two, in any order)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "description": "Two opposite corners lon,lat,lon,lat (WGS 84), e.g. "
            "104.0,30.6,104.1,30.7; longitudes within -180..180, latitudes -90..90",
            "pattern": BBOX_PATTERN,
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(BBOX_PATTERN, text):
            raise ma.ValidationError(
                "bbox must be four decimal numbers: lon,lat,lon,lat (e.g. 104.0,30.6,104.1,30.7)"
            )
        x1, y1, x2, y2 = (float(part) for part in text.split(","))
        if not (abs(x1) <= 180 and abs(x2) <= 180 and abs(y1) <= 90 and abs(y2) <= 90):
            raise ma.ValidationError("bbox must lie in longitude -180..180, latitude -90..90")
        return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def list_args_schema(layer: str, filters: dict[str, ma.fields.Field]) -> type[ma.Schema]:
    """The query parameters of a layer's list: paging, bbox, area and its own filters."""
    fields: dict[str, ma.fields.Field] = {
        "limit": ma.fields.Integer(
            load_default=DEFAULT_LIMIT, validate=ma.validate.Range(1, MAX_LIMIT)
        ),
        "offset": ma.fields.Integer(load_default=0, validate=ma.validate.Range(0, 10**9)),
    }
    if LAYERS[layer].geometry:
        fields["bbox"] = BBox(load_default=None)
        fields["area"] = Text(
            load_default=None,
            metadata={
                "description": "Area code of any level: city, district, street or community "
                "(an area includes every area below it)"
            },
        )
    fields.update(filters)
    return ma.Schema.from_dict(fields, name=f"{layer.title()}ListArgs")


def choice(values: tuple[str, ...]) -> Text:
    """An optional query filter taking one of ``values``."""
    return Text(load_default=None, validate=ma.validate.OneOf(values))


def next_links(offset: int, limit: int, matched: int) -> list[dict[str, str]]:
    """``self`` and, when there is more, ``next`` links of a page."""
    links = [{"rel": "self", "type": GEOJSON, "href": request.url}]
    if offset + limit < matched:
        query = request.args.to_dict()
        query.update(offset=str(offset + limit), limit=str(limit))
        links.append(
            {"rel": "next", "type": GEOJSON, "href": f"{request.base_url}?{urlencode(query)}"}
        )
    return links


def feature_blueprint(
    layer: str,
    description: str,
    filters: dict[str, ma.fields.Field],
    read_role: str = "viewer",
    versioned: bool = False,
    patch_args: type[ma.Schema] | None = None,
    update: Updater | None = None,
) -> Blueprint:
    """A blueprint serving one layer under ``/api/v1/<layer>``.

    Parameters
    ----------
    layer
        A layer of :data:`gridmap.io.layers.LAYERS`.
    filters
        Extra list filters: query parameter → field (an equality on that field,
        unless the resource handles it itself).
    read_role
        The role needed to read.
    versioned
        Whether changes need ``If-Match`` with the item's ETag (its version).
    patch_args, update
        A PATCH's query parameters and the function that makes the change, for a
        layer whose changes do more than :func:`gridmap.features.update_feature`.
    """
    spec = LAYERS[layer]
    patch_args = patch_args or WriteArgs

    def change(session, item_id, geom, properties, author, args, expected):
        if update is not None:
            return update(session, item_id, geom, properties, author, args, expected)
        return features.update_feature(
            session, spec, item_id, geom, properties, author, args["reason"], expected
        )

    bp = Blueprint(layer, __name__, url_prefix=f"/api/v1/{layer}", description=description)
    list_args = list_args_schema(layer, filters)
    feature_out, collection_out = feature_out_schemas(layer)
    feature_in = feature_in_schema(spec)
    feature_patch = feature_in_schema(spec, patch=True)

    @bp.route("")
    class Collection(MethodView):
        @bp.arguments(list_args, location="query", unknown=ma.RAISE, error_status_code=400)
        @bp.response(200, collection_out, content_type=GEOJSON)
        @problems(bp, 400, 401, 403, 404, 414)
        def get(self, args: dict[str, Any]):
            """List features, filtered and paged"""
            principal = require(read_role)
            query = Query(
                area=args.get("area"),
                bbox=args.get("bbox"),
                include_retired=bool(args.get("include_retired")),
                limit=args["limit"],
                offset=args["offset"],
                equals={
                    name: value
                    for name, value in args.items()
                    if name in spec.field_by_name and value is not None
                },
            )
            with db_session() as session:
                if query.area is not None and not features.area_exists(session, query.area):
                    abort(404, message=f"no area with code {query.area!r}")
                page = features.select_features(session, spec, query)
                extra = _extra_properties(session, spec, page.records)
            body = {
                "type": "FeatureCollection",
                "features": [
                    to_feature(spec, r, g, principal, extra.get(r["id"]))
                    for r, g in zip(page.records, page.geoms, strict=True)
                ],
                "numberMatched": page.total,
                "numberReturned": len(page.records),
                "links": next_links(query.offset, query.limit, page.total),
            }
            return geojson_response(body)

        @bp.arguments(WriteArgs, location="query", unknown=ma.RAISE, error_status_code=400)
        @bp.arguments(feature_in, location="json", error_status_code=422)
        @bp.response(201, feature_out, content_type=GEOJSON)
        @problems(bp, 400, 401, 403, 413, 415, 422)
        def post(self, args: dict[str, Any], feature: dict[str, Any]):
            """Create a feature"""
            principal = require("planner")
            geom = read_geometries(spec, [feature["geometry"]], args["crs"], feature["crs"])[0]
            with db_session() as session:
                refuse_far_from_areas(session, [geom])
                id_ = features.create_feature(
                    session, spec, geom, feature["properties"], principal.name, args["reason"]
                )
                body, headers = item_response(session, spec, id_, principal, versioned)
            headers["Location"] = url_for(f"{layer}.Item", item_id=id_)
            return geojson_response(body, 201, headers)

    @bp.route("/<int:item_id>")
    class Item(MethodView):
        @bp.response(200, feature_out, content_type=GEOJSON)
        @problems(bp, 401, 403, 404)
        def get(self, item_id: int):
            """Read one feature"""
            principal = require(read_role)
            with db_session() as session:
                body, headers = item_response(session, spec, item_id, principal, versioned)
            return geojson_response(body, headers=headers)

        @bp.arguments(patch_args, location="query", unknown=ma.RAISE, error_status_code=400)
        @bp.arguments(feature_patch, location="json", error_status_code=422)
        @bp.response(200, feature_out, content_type=GEOJSON)
        @problems(bp, 400, 401, 403, 404, 409, 412, 413, 415, 422, 428)
        @needs_if_match(bp, versioned)
        def patch(self, args: dict[str, Any], feature: dict[str, Any], item_id: int):
            """Change some properties and/or the geometry (merge patch)"""
            principal = require("planner")
            expected = expected_version() if versioned else None
            if feature.get("geometry") is None and not feature["properties"]:
                abort(
                    400,
                    message="nothing to change: send the properties to change and/or a geometry",
                )
            geom = None
            if feature.get("geometry") is not None:
                geom = read_geometries(
                    spec, [feature["geometry"]], args["crs"], feature["crs"], check=True
                )[0]
            with db_session() as session:
                refuse_far_from_areas(session, [geom])
                change(
                    session, item_id, geom, feature["properties"], principal.name, args, expected
                )
                body, headers = item_response(session, spec, item_id, principal, versioned)
            return geojson_response(body, headers=headers)

        @bp.arguments(WriteArgs, location="query", unknown=ma.RAISE, error_status_code=400)
        @bp.response(204)
        @problems(bp, 401, 403, 404, 409, 412, 428)
        @needs_if_match(bp, versioned)
        def delete(self, args: dict[str, Any], item_id: int):
            """Delete a feature (a grid is retired and keeps its history)"""
            principal = require("planner")
            expected = expected_version() if versioned else None
            with db_session() as session:
                features.delete_feature(
                    session, spec, item_id, principal.name, args["reason"], expected
                )
            return "", 204

    @bp.route("/import", methods=["POST"])
    @bp.arguments(ImportArgs, location="query", unknown=ma.RAISE, error_status_code=400)
    @bp.response(201, ImportResultSchema)
    @bp.alt_response(202, schema=JobSchema, description="Large: queued as a background job")
    @problems(bp, 400, 401, 403, 413, 415, 422)
    @bp.doc(
        requestBody={
            "required": True,
            "content": {
                GEOJSON: {"schema": ImportBodySchema},
                "application/json": {"schema": ImportBodySchema},
                "multipart/form-data": {"schema": IMPORT_FORM},
            },
        }
    )
    def bulk_import(args: dict[str, Any]):
        """Import many features at once: all or nothing, or skipping or repairing bad ones

        Every skipped or repaired feature is listed by index with its reason, and
        warnings (overlapping footprints, households estimated) come with the answer.
        """
        principal = require("planner")
        if wants_job(request.content_length or 0, "JOB_IMPORT_BYTES"):
            return import_job(layer, args)  # 202: a background job replays this request
        options = _import_options(spec, args)
        checked = _checked_from_request(spec, options)
        with db_session() as session:
            report = store_checked(session, checked, options, principal.name, args["reason"])
        return report.to_dict(), 201

    return bp


def import_answer(session, spec: LayerSpec, args: dict[str, Any], author: str) -> dict:
    """A bulk import's answer, made in ``session``: what a background job replaying the
    import's request runs (``api/jobs.py``), the same steps as ``bulk_import``."""
    options = _import_options(spec, args)
    checked = _checked_from_request(spec, options)
    return store_checked(session, checked, options, author, args["reason"]).to_dict()


class ImportItemSchema(ma.Schema):
    """One skipped or repaired feature: its index in the source and the reason."""

    index = ma.fields.Integer(allow_none=True, metadata={"description": "Feature index"})
    field = ma.fields.String(allow_none=True)
    reason = ma.fields.String()
    location = ma.fields.List(
        ma.fields.Float(), allow_none=True, metadata={"description": "[lon, lat] of the fault"}
    )


class ImportPairSchema(ma.Schema):
    """Two footprints that overlap or lie one inside the other."""

    kind = ma.fields.String(metadata={"enum": ["nested", "overlap"]})
    indices = ma.fields.List(ma.fields.Integer())
    codes = ma.fields.List(ma.fields.String(allow_none=True))


class ImportWarningSchema(ma.Schema):
    """Something the import took but a planner should know."""

    kind = ma.fields.String(
        metadata={
            "enum": [
                "overlapping_footprints",
                "no_household_figures",
                "households_estimated",
                "floors_assumed",
            ]
        }
    )
    reason = ma.fields.String()
    pairs = ma.fields.List(ma.fields.Nested(ImportPairSchema))


class ImportResultSchema(ma.Schema):
    """What a bulk import wrote, left out, mended and warned of."""

    layer = ma.fields.String()
    read = ma.fields.Integer(metadata={"description": "Features read for the layer"})
    imported = ma.fields.Integer()
    ids = ma.fields.List(ma.fields.Integer())
    skipped = ma.fields.List(
        ma.fields.Nested(ImportItemSchema),
        metadata={"description": "Every problem of every feature left out"},
    )
    repaired = ma.fields.List(ma.fields.Nested(ImportItemSchema))
    warnings = ma.fields.List(ma.fields.Nested(ImportWarningSchema))
    estimated_households = ma.fields.Integer(
        metadata={"description": "Buildings whose households were estimated from the footprint"}
    )
    left_out = ma.fields.Integer(
        metadata={"description": "OSM features that are not of this layer"}
    )


#: An ETag as this API gives it ("3"), weak or not, as the server reads it.
ETAG_PATTERN = r'^\s*(?:W/)?"?([0-9]{1,9})"?\s*$'


class IfMatchHeader(ma.Schema):
    """The version a change is made to."""

    class Meta:
        unknown = ma.EXCLUDE

    if_match = Text(
        data_key="If-Match",
        required=True,
        error_messages={
            "required": "send If-Match with the ETag you read, so that no one else's "
            "change is overwritten"
        },
        metadata={
            "description": 'The ETag of the version you changed, e.g. "3"; without it the '
            "change is refused with 428, with an older one with 412",
            "pattern": ETAG_PATTERN,
        },
    )


def needs_if_match(bp: Blueprint, versioned: bool = True):
    """Document the If-Match header of a versioned change (read by :func:`expected_version`)."""

    def decorate(view):
        if not versioned:
            return view

        @functools.wraps(view)
        def without_header(*args: Any, if_match: str | None = None, **kwargs: Any):
            return view(*args, **kwargs)

        return bp.arguments(
            IfMatchHeader, location="headers", as_kwargs=True, error_status_code=428
        )(without_header)

    return decorate


def expected_version() -> int:
    """The version named by ``If-Match``: 428 when missing, 400 when unreadable."""
    header = request.headers.get("If-Match")
    if header is None:
        abort(
            428,
            message="send If-Match with the ETag you read, so that no one "
            "else's change is overwritten",
        )
    match = re.fullmatch(ETAG_PATTERN, header)
    if match is None:
        abort(400, message=f'If-Match {header!r} is not an ETag of this API, such as "3"')
    return int(match.group(1))


def refuse_far_from_areas(session, geoms: list) -> None:
    """Refuse (422) geometries far from every stored street and community: their
    coordinates are almost surely in another CRS than the one named.

    Raises
    ------
    ImportRejected
        With each such geometry, by index.
    """
    far = features.far_from_areas(session, geoms, MAX_DISTANCE_FROM_AREAS_M)
    if far:
        raise ImportRejected(
            [
                {
                    "index": index,
                    "field": "geometry",
                    "reason": f"lies more than {MAX_DISTANCE_FROM_AREAS_M / 1000:g} km from "
                    "every street and community: are the coordinates and the CRS right?",
                }
                for index in far
            ]
        )


def _extra_properties(session, spec: LayerSpec, records: list[dict]) -> dict[int, dict]:
    """Computed properties shown with features (grid statistics)."""
    if spec.name != "grids":
        return {}
    return features.grid_statistics(session, [r["id"] for r in records])


def item_response(
    session, spec: LayerSpec, item_id: int, principal, versioned: bool
) -> tuple[dict, dict[str, str]]:
    record, geom = features.get_feature(session, spec, item_id)
    body = to_feature(
        spec, record, geom, principal, _extra_properties(session, spec, [record]).get(item_id)
    )
    headers = {"ETag": f'"{record["version"]}"'} if versioned else {}
    return body, headers


def _import_options(spec: LayerSpec, args: dict[str, Any]) -> ImportOptions:
    """The import's options from its query parameters and the body's mapping (422 for a
    bad mapping)."""
    if request.files.get("file") is not None:
        parts = {}
        for name in ("map", "set", "values"):
            text = request.form.get(name)
            try:
                parts[name] = None if text in (None, "") else json.loads(text)
            except ValueError:
                abort(422, message=f"form field {name} must be a JSON object")
        try:
            found = ImportMappingFields().load(parts)
        except ma.ValidationError as exc:
            abort(422, messages={"form": exc.messages})
    elif request.is_json:
        body = request.get_json(silent=True)
        members = (
            {k: body.get(k) for k in ("map", "set", "values") if body.get(k) is not None}
            if isinstance(body, dict)
            else {}
        )
        try:
            found = ImportMappingFields().load(members)
        except ma.ValidationError as exc:
            abort(422, messages={"json": exc.messages})
    else:
        found = {"map": None, "set": None, "values": None}
    try:
        mapping = build_mapping(parse_mapping(found["values"]), found["map"], found["set"])
    except MappingProblem as exc:
        abort(422, message=str(exc))
    return ImportOptions(
        layer=spec.name,
        crs=args["crs"],
        on_invalid=args["on_invalid"],
        mapping=mapping,
        osm=args["osm"],
        place_type=args["place_type"],
    )


def _checked_from_request(spec: LayerSpec, options: ImportOptions) -> Checked:
    """Checked features from a FeatureCollection body or an uploaded file."""
    upload = request.files.get("file")
    if upload is not None:
        name = (upload.filename or "").lower()
        suffix = next((s for s in OSM_SUFFIXES if name.endswith(s)), Path(name).suffix)
        if suffix not in DRIVERS and suffix != ".zip" and suffix not in OSM_SUFFIXES:
            abort(
                415,
                message=f"cannot read {suffix or 'a file without suffix'}: send "
                f"{', '.join(sorted(DRIVERS))}, .osm.pbf, .osm or a zipped Shapefile",
            )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"upload{suffix}"
            upload.save(path)
            file_options = options_for(path, options)
            try:
                source = read_source(path, file_options)
            except FileProblem as exc:
                raise ImportRejected(
                    [
                        {
                            "index": None,
                            "field": None,
                            "reason": str(exc).replace(str(path), "the file"),
                        }
                    ]
                ) from exc
            return check_source(source, file_options)
    if not request.is_json:
        abort(
            415,
            message="send a GeoJSON FeatureCollection (application/geo+json) "
            "or a file as multipart/form-data",
        )
    try:
        collection = FeatureCollectionInSchema().load(request.get_json())
    except ma.ValidationError as exc:
        abort(422, messages={"json": exc.messages})
    raw = collection["features"]
    problems = [
        {"index": i, "field": None, "reason": "each feature must be a GeoJSON Feature"}
        for i, f in enumerate(raw)
        if f.get("type") != "Feature" or not isinstance(f.get("properties") or {}, dict)
    ]
    if problems:
        raise ImportRejected(problems)
    try:
        crs, offset = source_crs(options.crs or _crs_name(collection["crs"]))
    except FileProblem as exc:
        abort(422, message=str(exc).replace("--crs", "crs="))
    geoms: list = []
    unreadable: dict[int, str] = {}
    for index, feature in enumerate(raw):
        geom, found = geometry_from_geojson(feature.get("geometry"))
        if found:
            unreadable[index] = "; ".join(p["reason"] for p in found)
        geoms.append(geom)
    source = SourceData(
        geoms if spec.geometry else None,
        [f.get("properties") or {} for f in raw],
        crs,
        unreadable if spec.geometry else {},
        offset=offset,
    )
    return check_source(source, options)
