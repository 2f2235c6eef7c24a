"""GeoJSON in and out: features of a layer as the API shows and takes them."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import shapely
from flask import Response, json
from shapely.geometry import mapping

from gridmap.features import PERSONAL_FIELDS
from gridmap.geometry import geometry_from_geojson, parse_crs, to_storage_crs
from gridmap.io.layers import LayerSpec
from gridmap.io.store import ImportRejected
from gridmap.tokens import Principal

GEOJSON = "application/geo+json"
#: Record keys shown beside the fields (grids' version and state, reference ids).
EXTRA_PROPERTIES = ("version", "active", "community_id", "parent_id", "worker_id")


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
    links = ma.fields.List(ma.fields.Dict())


class FeatureInSchema(ma.Schema):
    """A GeoJSON Feature sent to gridmap (foreign members are ignored)."""

    class Meta:
        unknown = ma.EXCLUDE

    type = ma.fields.String(required=True, validate=ma.validate.Equal("Feature"))
    geometry = ma.fields.Dict(allow_none=True, load_default=None)
    properties = ma.fields.Dict(load_default=dict)
    crs = ma.fields.Dict(
        load_default=None,
        metadata={"description": "GeoJSON 2008 named CRS, e.g. urn:ogc:def:crs:EPSG::4490"},
    )


class FeaturePatchSchema(FeatureInSchema):
    """A change to a feature: the properties to change and/or a new geometry."""

    type = ma.fields.String(load_default="Feature", validate=ma.validate.Equal("Feature"))


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
    spec: LayerSpec, geometries: list[Any], crs: str | None, crs_member: dict | None = None
) -> list[shapely.Geometry | None]:
    """Parse GeoJSON geometries into shapely in EPSG:4326, or reject them all.

    Raises
    ------
    ImportRejected
        With each geometry that cannot be read, by index.
    CRSProblem
        The CRS is unknown.
    """
    source_crs = parse_crs(crs or _crs_name(crs_member))
    parsed, problems = [], []
    for index, obj in enumerate(geometries):
        geom, found = geometry_from_geojson(obj)
        problems.extend({"index": index, "field": "geometry", **p} for p in found)
        parsed.append(geom)
    if problems:
        raise ImportRejected(problems)
    return to_storage_crs(parsed, source_crs) if spec.geometry else parsed
