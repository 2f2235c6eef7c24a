"""``/api/v1/coverage``: the 10-minute service circle of a station kind over an area."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import numpy as np
from flask_smorest import Blueprint
from shapely.geometry import mapping
from sqlalchemy.orm import Session

from api.auth import require
from api.database import db_session
from api.errors import problems
from api.geojson import GEOJSON, FeatureCollectionSchema, geojson_response
from api.jobs import JobSchema, accepted, wants_job
from api.reports import file_response, file_responses, format_field, made_note, wanted_format
from api.resources import DEFAULT_LIMIT, MAX_LIMIT, Text, next_links
from gridmap import report_store, reports
from gridmap.coverage import JUNCTION_RULES, METHODS, Coverage, analyse
from gridmap.jobs import JobContext, area_buildings, handler
from gridmap.models import STATION_KINDS

bp = Blueprint(
    "coverage",
    __name__,
    url_prefix="/api/v1/coverage",
    description="Who reaches a station of a kind within a walk of some minutes "
    "(GB 50180-2018: 10 minutes = 500 m), per building, grid, community and "
    "station; gap areas and service areas for the map.",
)


class CoverageArgs(ma.Schema):
    """The question: which area, which kind of station, how far, measured how."""

    area = Text(
        required=True,
        metadata={"description": "Area code of any level: community, street, district or city"},
    )
    kind = Text(required=True, validate=ma.validate.OneOf(STATION_KINDS))
    minutes = ma.fields.Float(load_default=10, validate=ma.validate.Range(1, 60))
    method = Text(
        load_default="auto",
        validate=ma.validate.OneOf(METHODS),
        metadata={
            "description": "network (walking distance on the roads), euclidean (straight line "
            "times the detour factor), auto (the network where the area has roads and it "
            "is not broken into pieces; otherwise straight line, with a warning)"
        },
    )
    junctions = Text(
        load_default=None,
        validate=ma.validate.OneOf(JUNCTION_RULES),
        metadata={
            "description": "Where roads join: vertices (where they share a vertex, as "
            "OpenStreetMap ways do; the default setting) or crossings (also where lines "
            "cross without a shared vertex, unless bridge, tunnel or layer differ)"
        },
    )


class CoverageReportArgs(CoverageArgs):
    """The question, and the answer's format (JSON, or a report file)."""

    format = format_field()


class PagedCoverageArgs(CoverageArgs):
    """The question and a page of buildings."""

    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(1, MAX_LIMIT))
    offset = ma.fields.Integer(load_default=0, validate=ma.validate.Range(0, 10**9))


class TotalsSchema(ma.Schema):
    """Buildings, households and residents inside the circle, and the share of households."""

    code = ma.fields.String()
    buildings = ma.fields.Integer()
    buildings_covered = ma.fields.Integer()
    households = ma.fields.Integer()
    households_covered = ma.fields.Integer()
    population = ma.fields.Integer()
    population_covered = ma.fields.Integer()
    share = ma.fields.Float(allow_none=True)


class StationLoadSchema(ma.Schema):
    """Households whose nearest station this is, against its capacity."""

    id = ma.fields.Integer()
    name = ma.fields.String()
    capacity = ma.fields.Integer(allow_none=True)
    load = ma.fields.Integer()
    overloaded = ma.fields.Boolean()


class NetworkSchema(ma.Schema):
    """How whole the walking network is, and who could not join it."""

    junctions = ma.fields.String(metadata={"description": "The junction rule used"})
    pieces = ma.fields.Integer(metadata={"description": "Connected pieces of the road network"})
    main_piece_buildings = ma.fields.Integer(
        metadata={"description": "Joined buildings on the piece holding most of them"}
    )
    buildings_not_joined = ma.fields.Integer(
        metadata={"description": "Buildings too far from every walkable road (uncovered)"}
    )
    stations_not_joined = ma.fields.Integer(
        metadata={"description": "Stations too far from every walkable road"}
    )
    buildings_without_station = ma.fields.Integer(
        metadata={"description": "Joined buildings on a piece with no station"}
    )
    off_main_share = ma.fields.Float(
        metadata={"description": "Share of joined buildings off the main piece"}
    )


class CoverageQuestionSchema(ma.Schema):
    """The question a coverage answer answers, and what to know of its network."""

    area = ma.fields.String()
    kind = ma.fields.String()
    minutes = ma.fields.Float()
    distance_m = ma.fields.Float()
    method = ma.fields.String()
    network = ma.fields.Nested(
        NetworkSchema, allow_none=True, metadata={"description": "None: no network was built"}
    )
    warnings = ma.fields.List(ma.fields.String())


class CoverageCollectionSchema(FeatureCollectionSchema, CoverageQuestionSchema):
    """Features of a coverage answer, with the question they answer."""


class CoverageSchema(CoverageQuestionSchema):
    """Coverage of an area."""

    summary = ma.fields.Nested(TotalsSchema)
    communities = ma.fields.List(ma.fields.Nested(TotalsSchema))
    grids = ma.fields.List(ma.fields.Nested(TotalsSchema))
    stations = ma.fields.List(ma.fields.Nested(StationLoadSchema))


def _analyse(args: dict[str, Any], session: Session | None = None, shapes: bool = True) -> Coverage:
    if session is None:  # a request's own transaction; a background job brings its own
        with db_session() as session:
            return _analyse(args, session, shapes)
    return analyse(
        session,
        args["area"],
        args["kind"],
        args["minutes"],
        args["method"],
        junctions=args["junctions"],
        shapes=shapes,  # totals need no footprints (a city's take a second to fetch)
    )


def _header(result: Coverage) -> dict[str, Any]:
    return {
        "area": result.area,
        "kind": result.kind,
        "minutes": result.minutes,
        "distance_m": result.distance_m,
        "method": result.method,
        "network": result.network.as_dict() if result.network else None,
        "warnings": result.warnings,
    }


@bp.route("", methods=["GET"])
@bp.arguments(CoverageReportArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, CoverageSchema)
@file_responses(bp)
@bp.alt_response(202, schema=JobSchema, description="Large area: queued as a background job")
@problems(bp, 400, 404, 503)
def coverage(args: dict[str, Any]):
    """Coverage summary, per community, per grid and per station; or a report file

    An area with more buildings than ``JOB_COVERAGE_BUILDINGS`` (or a request with
    ``Prefer: respond-async``) is answered 202 with the job computing it.

    With ``format=csv`` or ``xlsx`` (or ``Accept: text/csv`` or the Excel media
    type) the answer is a file to download, computed while the request waits: per
    grid with its name and its community's (and its worker's, for staff), buildings
    in no grid, community subtotals and the area's total."""
    principal = require("viewer")
    fmt = wanted_format(args.pop("format"))
    if fmt != "json":
        return _report(_analyse(args), fmt, principal.may("staff"))
    with db_session() as session:
        buildings = area_buildings(session, args["area"])
    if wants_job(buildings, "JOB_COVERAGE_BUILDINGS"):
        return accepted("coverage", args, dedupe=True)
    return _summary(_analyse(args, shapes=False))


def _report(result: Coverage, fmt: str, workers: bool):
    """A coverage as a report file (csv or xlsx)."""
    with db_session() as session:
        names = report_store.area_names(session, result.area)
    notes = reports.coverage_notes(
        names, result.kind, result.minutes, result.distance_m, result.method, result.warnings
    )
    table = reports.coverage_table(
        **report_store.coverage_rows(result),
        names=names,
        workers=workers,
        notes=[*notes, made_note()],
    )
    name = reports.file_name("coverage", names.code, fmt, f"{result.kind}-{result.minutes:g}min")
    return file_response(table, fmt, name)


@handler("coverage")
def _coverage_job(session: Session, job: JobContext) -> dict[str, Any]:
    """A coverage as a background job: the answer of ``GET /coverage``."""
    job.progress("analysing", 0, 1)
    return CoverageSchema().dump(_summary(_analyse(job.params, session, shapes=False)))


def _summary(result: Coverage) -> dict[str, Any]:
    b = result.data.buildings
    return {
        **_header(result),
        "summary": result.summary(),
        "communities": result.by(b.community),
        "grids": result.by(b.grid),
        "stations": result.station_loads(),
    }


@bp.route("/buildings", methods=["GET"])
@bp.arguments(PagedCoverageArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, CoverageCollectionSchema, content_type=GEOJSON)
@problems(bp, 400, 404)
def buildings(args: dict[str, Any]):
    """Each building's nearest station, walking distance and minutes (paged GeoJSON)"""
    principal = require("viewer")
    result = _analyse(args)
    b, stations = result.data.buildings, result.data.stations
    page = slice(args["offset"], args["offset"] + args["limit"])
    covered, minutes = result.covered, result.minutes_to
    reached = np.isfinite(result.distance)
    frame = result.data.frame
    features = []
    for k in range(len(b.ids))[page]:
        nearest = int(result.station[k])
        properties = {
            "code": b.codes[k],
            "grid": b.grid[k],
            "community": b.community[k],
            "station": int(stations.ids[nearest]) if nearest >= 0 else None,
            "station_name": stations.names[nearest] if nearest >= 0 else None,
            "distance_m": round(float(result.distance[k]), 1) if reached[k] else None,
            "minutes": round(float(minutes[k]), 1) if reached[k] else None,
            "covered": bool(covered[k]),
        }
        if principal.may("staff"):  # household figures per building are personal data
            properties.update(households=int(b.households[k]), population=int(b.population[k]))
        features.append(
            {
                "type": "Feature",
                "id": int(b.ids[k]),
                "properties": properties,
                "geometry": mapping(frame.to_lonlat(b.shapes_m[k])),
            }
        )
    body = {
        "type": "FeatureCollection",
        "features": features,
        **_header(result),
        "numberMatched": len(b.ids),
        "numberReturned": len(features),
        "links": next_links(args["offset"], args["limit"], len(b.ids)),
    }
    return geojson_response(body)


@bp.route("/gaps", methods=["GET"])
@bp.arguments(CoverageArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, CoverageCollectionSchema, content_type=GEOJSON)
@problems(bp, 400, 404)
def gaps(args: dict[str, Any]):
    """Gap areas: residential land outside the circle (GeoJSON)"""
    require("viewer")
    result = _analyse(args)
    features = [
        {
            "type": "Feature",
            "id": n + 1,
            "geometry": mapping(polygon),
            "properties": {"area_m2": round(float(result.data.frame.to_metric(polygon).area), 1)},
        }
        for n, polygon in enumerate(result.gaps())
    ]
    return geojson_response({"type": "FeatureCollection", "features": features, **_header(result)})


@bp.route("/service-areas", methods=["GET"])
@bp.arguments(CoverageArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, CoverageCollectionSchema, content_type=GEOJSON)
@problems(bp, 400, 404)
def service_areas(args: dict[str, Any]):
    """Each station's service area: a network isochrone, or a circle (GeoJSON)"""
    require("viewer")
    result = _analyse(args)
    stations = result.data.stations
    loads = result.station_loads()
    features = [
        {
            "type": "Feature",
            "id": int(stations.ids[s]),
            "geometry": mapping(polygon) if polygon is not None else None,
            "properties": loads[s],
        }
        for s, polygon in enumerate(result.service_areas())
    ]
    return geojson_response({"type": "FeatureCollection", "features": features, **_header(result)})
