"""GeoJSON in and out: features of a layer as the API shows and takes them."""

from __future__ import annotations

import functools
from typing import Any

import marshmallow as ma
import shapely
from flask import Response, json
from shapely.geometry import mapping

from gridmap.features import PERSONAL_FIELDS
from gridmap.geometry import (
    MAX_VERTICES,
    crs_area_problems,
    geometry_from_geojson,
    geometry_problems,
    parse_crs,
    to_storage_crs,
    vertex_problem,
)
from gridmap.io.layers import INT4_MAX, LAYERS, LayerSpec
from gridmap.io.store import ImportRejected
from gridmap.tokens import Principal

GEOJSON = "application/geo+json"
#: Record keys shown beside the fields (grids' version and state, reference ids).
EXTRA_PROPERTIES = ("version", "active", "community_id", "parent_id", "worker_id")


#: A string without NUL characters (no text column takes one), as a JSON Schema pattern.
NO_NUL_PATTERN = r"^[^\x00]*$"
#: Longest free text (a name, opening hours, a compound) the API takes.
TEXT_MAX = 2000


class Text(ma.fields.String):
    """A string; NUL characters, which no text column takes, are refused (and the
    OpenAPI document says so with a pattern)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        metadata = dict(kwargs.pop("metadata", None) or {})
        metadata.setdefault("pattern", NO_NUL_PATTERN)
        super().__init__(*args, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("must not contain NUL characters")
        return text


class WholeNumber(ma.fields.Integer):
    """A JSON number without fraction: not a string of digits, a fraction or a boolean."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1e20 and 3.0 are whole numbers in JSON
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class TrueOrFalse(ma.fields.Boolean):
    """A JSON boolean: ``true`` or ``false``, not ``1`` or ``"yes"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class GeometryField(ma.fields.Dict):
    """A GeoJSON geometry of one of a layer's types (read in full by
    :func:`read_geometries`, which says where a geometry is wrong)."""

    def __init__(self, types: tuple[str, ...], **kwargs: Any) -> None:
        self.types = types
        metadata = {
            "description": "GeoJSON geometry: " + ", ".join(types),
            "properties": {
                "type": {"type": "string", "enum": list(types)},
                "coordinates": {"type": "array"},
            },
            "required": ["type", "coordinates"],
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        geometry = super()._deserialize(value, attr, data, **kwargs)
        kind = geometry.get("type")
        if kind not in self.types:
            raise ma.ValidationError(
                f"geometry type {kind} is not one of {', '.join(self.types)}"
                if isinstance(kind, str)
                else f"geometry must be a GeoJSON geometry object with a type of "
                f"{', '.join(self.types)}"
            )
        return geometry


class NoGeometry(ma.fields.Field):
    """The geometry member of a layer without geometry: ``null`` only."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> None:
        raise ma.ValidationError("this layer has no geometry: send null")


class NamedCRS(ma.Schema):
    """A GeoJSON 2008 named CRS."""

    class Meta:
        unknown = ma.RAISE

    type = ma.fields.String(required=True, validate=ma.validate.Equal("name"))
    properties = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Equal("name")),
        values=Text(validate=ma.validate.Length(1, 500)),
        required=True,
        metadata={"description": "{'name': 'urn:ogc:def:crs:EPSG::4490'}"},
    )


def _property_field(spec: LayerSpec, name: str, patch: bool) -> ma.fields.Field:
    """The API field of one property of a layer, as strict as the column behind it.

    A required field must be given on create and may not be cleared (``null``) by
    a change; any other may be left out or cleared.
    """
    fld = spec.field_by_name[name]
    options: dict[str, Any] = {
        "required": fld.required and not patch,
        "allow_none": not fld.required,
        "error_messages": {
            "required": f"'{name}' is required",
            "null": f"'{name}' is required",
            "invalid": f"'{name}' must be "
            + {"int": "a whole number", "bool": "true or false", "ranges": "an object"}.get(
                fld.type, "text"
            ),
        },
    }
    if fld.type == "int":
        return WholeNumber(
            validate=ma.validate.Range(
                fld.minimum,
                INT4_MAX,
                error=f"'{name}' must be at least {{min}} and at most {{max}}",
            ),
            **options,
        )
    if fld.type == "bool":
        return TrueOrFalse(**options)
    if fld.type == "ranges":
        return ma.fields.Dict(
            keys=ma.fields.String(validate=ma.validate.OneOf(("general", "micro", "dedicated"))),
            values=ma.fields.List(
                WholeNumber(validate=ma.validate.Range(0, INT4_MAX)),
                validate=ma.validate.Length(2, 2),
            ),
            metadata={"description": "Households [min, max] per grid kind, min <= max"},
            **options,
        )
    if fld.reference:
        longest = LAYERS[fld.reference].field_by_name["code"].max_length
    else:
        longest = fld.max_length
    validators: list[Any] = [
        ma.validate.Length(
            max=longest or TEXT_MAX,
            error=f"'{name}' must be at most {{max}} characters",
        ),
    ]
    if fld.choices:
        validators.append(
            ma.validate.OneOf(fld.choices, error=f"'{name}' must be one of {{choices}}")
        )
    metadata = {}
    if fld.reference:
        metadata["description"] = f"Code of a row of {fld.reference}"
    if fld.required:
        validators.append(ma.validate.Length(min=1, error=f"'{name}' is required"))
        metadata["pattern"] = r"^[^\x00]*[^\x00\s][^\x00]*$"
    return Text(validate=validators, metadata=metadata, **options)


def _strict_schema(
    name: str,
    fields: dict[str, ma.fields.Field],
    unknown_message: str = "unknown member",
    extra: dict[str, Any] | None = None,
) -> type[ma.Schema]:
    """A schema class that refuses members it does not declare; ``extra`` goes into
    its OpenAPI component as it is (``anyOf``, ``minProperties``)."""
    meta = type("Meta", (), {"unknown": ma.RAISE})
    return type(
        f"{name}Schema",
        (ma.Schema,),
        {
            **fields,
            "Meta": meta,
            "error_messages": {"unknown": unknown_message},
            "OPENAPI_EXTRA": extra or {},
        },
    )


def _unknown_message(spec: LayerSpec) -> str:
    return f"unknown field; {spec.name} have {', '.join(spec.field_by_name)}"


def feature_in_schema(spec: LayerSpec, patch: bool = False) -> type[ma.Schema]:
    """The body a layer's create (or, with ``patch``, change) takes: a GeoJSON Feature
    whose properties are exactly the layer's fields.

    Unknown members and properties are refused (``additionalProperties: false``),
    so a misspelt field is never dropped silently.
    """
    title = spec.name.title()
    properties = _strict_schema(
        f"{title}{'Patch' if patch else 'In'}Properties",
        {fld.name: _property_field(spec, fld.name, patch) for fld in spec.fields},
        unknown_message=_unknown_message(spec),
        extra={"minProperties": 1} if patch else None,
    )
    if spec.geometry:
        geometry: ma.fields.Field = GeometryField(
            spec.geometry,
            required=not patch,
            error_messages={
                "required": "missing geometry",
                "null": "a geometry cannot be removed; leave it out to keep it"
                if patch
                else "missing geometry",
            },
        )
    else:
        geometry = NoGeometry(
            allow_none=True,
            load_default=None,
            metadata={
                "description": f"{spec.name} have no geometry",
                "nullable": True,
                "enum": [None],
            },
        )
    fields: dict[str, ma.fields.Field] = {
        "type": ma.fields.String(
            required=not patch,
            validate=ma.validate.Equal("Feature"),
            metadata={"enum": ["Feature"]},
            **({"load_default": "Feature"} if patch else {}),
        ),
        "geometry": geometry,
        "properties": ma.fields.Nested(
            properties, required=not patch, **({"load_default": dict} if patch else {})
        ),
        "crs": ma.fields.Nested(
            NamedCRS,
            load_default=None,
            metadata={"description": "GeoJSON 2008 named CRS, e.g. urn:ogc:def:crs:EPSG::4490"},
        ),
        "id": ma.fields.Raw(load_default=None, metadata={"description": "Ignored"}),
        "bbox": ma.fields.List(
            ma.fields.Float(), load_default=None, metadata={"description": "Ignored"}
        ),
    }
    changes = [{"required": ["properties"]}] + (
        [{"required": ["geometry"]}] if spec.geometry else []
    )
    return _strict_schema(
        f"{title}{'Patch' if patch else 'FeatureIn'}",
        fields,
        extra={"anyOf": changes} if patch else None,
    )


def _property_out(spec: LayerSpec, name: str) -> ma.fields.Field:
    fld = spec.field_by_name[name]
    kinds = {"int": ma.fields.Integer, "bool": ma.fields.Boolean, "ranges": ma.fields.Dict}
    return kinds.get(fld.type, ma.fields.String)(allow_none=True)


#: Computed members of a grid's properties (:func:`gridmap.features.grid_statistics`).
GRID_STATISTICS: dict[str, ma.fields.Field] = {
    "buildings": ma.fields.Integer(metadata={"description": "Buildings inside"}),
    "households": ma.fields.Integer(),
    "population": ma.fields.Integer(),
    "area_m2": ma.fields.Float(metadata={"description": "Area in square metres"}),
    "households_per_worker": ma.fields.Integer(
        allow_none=True, metadata={"description": "Households of the grid worker's grids"}
    ),
}


@functools.cache
def feature_out_schemas(layer: str) -> tuple[type[ma.Schema], type[ma.Schema]]:
    """The Feature and FeatureCollection a layer answers with, every member declared.

    Personal fields (:data:`gridmap.features.PERSONAL_FIELDS`) are left out for
    viewers, so no property is required. Made once per layer, so the OpenAPI
    document names each once.
    """
    spec = LAYERS[layer]
    title = spec.name.title()
    members: dict[str, ma.fields.Field] = {f.name: _property_out(spec, f.name) for f in spec.fields}
    if spec.name == "grids":
        members.update(
            version=ma.fields.Integer(),
            active=ma.fields.Boolean(),
            community_id=ma.fields.Integer(),
            parent_id=ma.fields.Integer(allow_none=True),
            worker_id=ma.fields.Integer(allow_none=True),
            **GRID_STATISTICS,
        )
    properties = ma.Schema.from_dict(members, name=f"{title}Properties")
    feature = ma.Schema.from_dict(
        {
            "type": ma.fields.String(metadata={"enum": ["Feature"]}),
            "id": ma.fields.Integer(),
            "geometry": ma.fields.Dict(allow_none=True),
            "properties": ma.fields.Nested(properties),
        },
        name=f"{title}Feature",
    )
    collection = ma.Schema.from_dict(
        {
            "type": ma.fields.String(metadata={"enum": ["FeatureCollection"]}),
            "features": ma.fields.List(ma.fields.Nested(feature)),
            "numberMatched": ma.fields.Integer(),
            "numberReturned": ma.fields.Integer(),
            "links": ma.fields.List(ma.fields.Nested(LinkSchema)),
        },
        name=f"{title}Collection",
    )
    return feature, collection


class LinkSchema(ma.Schema):
    """A link to this page or the next."""

    rel = ma.fields.String()
    type = ma.fields.String()
    href = ma.fields.String()


class FeatureSchema(ma.Schema):
    """A GeoJSON Feature as gridmap returns it."""

    type = ma.fields.String(metadata={"enum": ["Feature"]})
    id = ma.fields.Integer()
    geometry = ma.fields.Dict(allow_none=True)
    properties = ma.fields.Dict()


class FeatureCollectionSchema(ma.Schema):
    """A page of features."""

    type = ma.fields.String(metadata={"enum": ["FeatureCollection"]})
    features = ma.fields.List(ma.fields.Nested(FeatureSchema))
    numberMatched = ma.fields.Integer()
    numberReturned = ma.fields.Integer()
    links = ma.fields.List(ma.fields.Nested(LinkSchema))


class FeaturePatchSchema(ma.Schema):
    """A new geometry for a feature (its properties are not changed here)."""

    class Meta:
        unknown = ma.RAISE

    type = ma.fields.String(load_default="Feature", validate=ma.validate.Equal("Feature"))
    geometry = ma.fields.Dict(allow_none=True, load_default=None)
    properties = ma.fields.Dict(load_default=dict)
    crs = ma.fields.Nested(NamedCRS, load_default=None)


class FeatureCollectionInSchema(ma.Schema):
    """A GeoJSON FeatureCollection sent to gridmap."""

    class Meta:
        unknown = ma.EXCLUDE

    type = ma.fields.String(required=True, validate=ma.validate.Equal("FeatureCollection"))
    features = ma.fields.List(ma.fields.Dict(), required=True)
    crs = ma.fields.Dict(load_default=None)


def visible_fields(spec: LayerSpec, principal: Principal) -> list[str]:
    """Field names this principal may see (viewers see no personal data)."""
    hidden = set() if principal.may("staff") else PERSONAL_FIELDS.get(spec.name, frozenset())
    return [f.name for f in spec.fields if f.name not in hidden]


def to_feature(
    spec: LayerSpec,
    record: dict[str, Any],
    geom: shapely.Geometry | None,
    principal: Principal,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One record as a GeoJSON Feature."""
    properties = {name: record[name] for name in visible_fields(spec, principal)}
    properties.update({k: record[k] for k in EXTRA_PROPERTIES if k in record})
    properties.update(extra or {})
    return {
        "type": "Feature",
        "id": record["id"],
        "geometry": mapping(geom) if geom is not None else None,
        "properties": properties,
    }


def geojson_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A response with the GeoJSON media type."""
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=GEOJSON)
    response.headers.update(headers or {})
    return response


def _crs_name(crs_member: dict | None) -> str | None:
    if not crs_member:
        return None
    name = (
        (crs_member.get("properties") or {}).get("name") if isinstance(crs_member, dict) else None
    )
    if not isinstance(name, str):
        raise ImportRejected(
            [
                {
                    "index": None,
                    "field": "crs",
                    "reason": "crs must be {'type': 'name', 'properties': {'name': 'EPSG:4490'}}",
                }
            ]
        )
    return name


def read_geometries(
    spec: LayerSpec,
    geometries: list[Any],
    crs: str | None,
    crs_member: dict | None = None,
    check: bool = False,
) -> list[shapely.Geometry | None]:
    """Parse GeoJSON geometries into shapely in EPSG:4326, or reject them all.

    Parameters
    ----------
    check
        Also refuse what :func:`gridmap.geometry.geometry_problems` finds (empty,
        invalid, wrong type), for callers that work with the geometry before
        :func:`gridmap.io.layers.prepare` checks it (a grid's new boundary snaps
        to its neighbours first).

    Raises
    ------
    ImportRejected
        With each geometry that cannot be read, has more vertices than the layer
        takes (:data:`gridmap.geometry.MAX_VERTICES`) or lies outside the area of
        use of its CRS, by index.
    CRSProblem
        The CRS is unknown.
    """
    source_crs = parse_crs(crs or _crs_name(crs_member))
    limit = MAX_VERTICES.get(spec.name)
    parsed, problems = [], []
    for index, obj in enumerate(geometries):
        geom, found = geometry_from_geojson(obj)
        too_many = None if found else vertex_problem(geom, limit)
        found = found or ([too_many] if too_many else [])
        problems.extend({"index": index, "field": "geometry", **p} for p in found)
        parsed.append(geom)
    if problems:
        raise ImportRejected(problems)
    if not spec.geometry:
        return parsed
    stored = to_storage_crs(parsed, source_crs)
    problems = [{"field": "geometry", **p} for p in crs_area_problems(stored, source_crs)]
    if check and not problems:
        problems = [
            {"index": index, "field": "geometry", **p}
            for index, geom in enumerate(stored)
            for p in geometry_problems(geom, spec.geometry, limit)
        ]
    if problems:
        raise ImportRejected(problems)
    return stored
