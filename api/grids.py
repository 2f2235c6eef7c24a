"""``/api/v1/grids``: grids with statistics, versions, history and revert."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import abort

from api.auth import require
from api.database import db_session
from api.errors import problems
from api.geojson import GEOJSON, feature_out_schemas, geojson_response, read_geometries
from api.resources import (
    Text,
    WriteArgs,
    choice,
    expected_version,
    feature_blueprint,
    item_response,
    needs_if_match,
)
from gridmap import features, grids
from gridmap.io.layers import INT4_MAX, LAYERS
from gridmap.models import DEDICATED_CATEGORIES, GRID_KINDS, PLACE_TYPES


class GridPatchArgs(WriteArgs):
    """Query parameters of a grid change."""

    adjust_neighbours = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Take the area the grid gains from its neighbours and give what it "
            "loses to the neighbour sharing the longest boundary, so the layout stays a tiling; "
            "without it an edit that opens a gap or an overlap is refused with 409"
        },
    )


def _update(session, item_id, geom, properties, author, args, expected) -> dict:
    return grids.update_grid(
        session,
        item_id,
        geom,
        properties,
        author,
        args["reason"],
        expected,
        adjust_neighbours=args["adjust_neighbours"],
    )


bp = feature_blueprint(
    "grids",
    "Grids of every kind. Each carries its statistics (buildings, households and population "
    "inside it, area in m², households its worker serves); changes need If-Match with the "
    "grid's ETag, and every change is kept as a revision.",
    {
        "kind": choice(GRID_KINDS),
        "place_type": choice(PLACE_TYPES),
        "dedicated_category": choice(DEDICATED_CATEGORIES),
        "include_retired": ma.fields.Boolean(load_default=False),
    },
    versioned=True,
    patch_args=GridPatchArgs,
    update=_update,
)


class RevisionSchema(ma.Schema):
    """One change of a grid."""

    id = ma.fields.Integer()
    version = ma.fields.Integer()
    action = ma.fields.String()
    author = ma.fields.String()
    reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    before = ma.fields.Dict(allow_none=True)
    after = ma.fields.Dict(allow_none=True)


class RevertArgs(WriteArgs):
    """Which revision to go back to."""

    revision = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(1, INT4_MAX),
        metadata={"description": "Id of the revision whose state the grid takes again"},
    )


@bp.route("/<int:item_id>/history")
@bp.response(200, RevisionSchema(many=True))
@problems(bp, 404)
def history(item_id: int):
    """Every revision of a grid, oldest first"""
    require("viewer")
    with db_session() as session:
        return features.grid_history(session, item_id)


@bp.route("/<int:item_id>/revert", methods=["POST"])
@bp.arguments(RevertArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, feature_out_schemas("grids")[0], content_type=GEOJSON)
@problems(bp, 401, 403, 404, 409, 412, 422, 428)
@needs_if_match(bp)
def revert(args: dict[str, Any], item_id: int):
    """Give a grid the state it had after a revision, as a new revision"""
    principal = require("planner")
    expected = expected_version()
    with db_session() as session:
        grids.revert_grid(
            session, item_id, args["revision"], principal.name, args["reason"], expected
        )
        body, headers = item_response(session, LAYERS["grids"], item_id, principal, True)
    return geojson_response(body, headers=headers)


class SplitSchema(ma.Schema):
    """Where to cut a grid."""

    line = ma.fields.Dict(
        required=True,
        metadata={
            "description": "GeoJSON LineString (EPSG:4326) crossing the grid from edge to edge"
        },
    )
    names = ma.fields.List(
        Text(validate=ma.validate.Length(1, 200)),
        validate=ma.validate.Length(2, 2),
        load_default=None,
        metadata={"description": "Names of the northern and southern piece"},
    )


class MergeItemSchema(ma.Schema):
    """A grid to merge, at the version the planner saw."""

    id = ma.fields.Integer(required=True)
    version = ma.fields.Integer(required=True)


class MergeSchema(ma.Schema):
    """Grids to merge into one."""

    grids = ma.fields.List(
        ma.fields.Nested(MergeItemSchema), required=True, validate=ma.validate.Length(2, 50)
    )
    name = Text(load_default=None, validate=ma.validate.Length(1, 200))


class CreatedGridsSchema(ma.Schema):
    """Grids an edit made."""

    ids = ma.fields.List(ma.fields.Integer())


class AreaArgs(WriteArgs):
    """The community an operation applies to."""

    area = Text(required=True, metadata={"description": "Community code"})


class RecodeSchema(ma.Schema):
    """Codes that changed."""

    changed = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


class WorkerLoadSchema(ma.Schema):
    """One worker's general grids and what they hold."""

    worker = ma.fields.String(allow_none=True)
    name = ma.fields.String(allow_none=True)
    grids = ma.fields.List(ma.fields.String())
    buildings = ma.fields.Integer()
    households = ma.fields.Integer()


class UnservedSchema(ma.Schema):
    """A general grid with no worker."""

    code = ma.fields.String()
    households = ma.fields.Integer()


class WorkloadSchema(ma.Schema):
    """Workers' loads in an area."""

    area = ma.fields.String()
    workers = ma.fields.List(ma.fields.Nested(WorkerLoadSchema))
    grids_without_worker = ma.fields.List(ma.fields.Nested(UnservedSchema))


class WorkloadArgs(ma.Schema):
    """The area to look at."""

    area = Text(required=True, metadata={"description": "Street or community code"})


@bp.route("/<int:item_id>/split", methods=["POST"])
@bp.arguments(WriteArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.arguments(SplitSchema, location="json", error_status_code=422)
@bp.response(201, CreatedGridsSchema)
@problems(bp, 400, 401, 403, 404, 409, 412, 422, 428)
@needs_if_match(bp)
def split(args: dict[str, Any], body: dict[str, Any], item_id: int):
    """Split a grid in two along a line (the old grid is retired)"""
    principal = require("planner")
    expected = expected_version()
    line = read_geometries(LAYERS["grids"], [body["line"]], args["crs"])[0]
    with db_session() as session:
        ids = grids.split_grid(
            session, item_id, line, principal.name, args["reason"], expected, body["names"]
        )
    return {"ids": ids}, 201


@bp.route("/merge", methods=["POST"])
@bp.arguments(WriteArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.arguments(MergeSchema, location="json", error_status_code=422)
@bp.response(201, CreatedGridsSchema)
@problems(bp, 400, 401, 403, 404, 409, 412, 422)
def merge(args: dict[str, Any], body: dict[str, Any]):
    """Merge neighbouring sibling grids into one (the old grids are retired)"""
    principal = require("planner")
    versions = {item["id"]: item["version"] for item in body["grids"]}
    with db_session() as session:
        new_id = grids.merge_grids(session, versions, principal.name, args["reason"], body["name"])
    return {"ids": [new_id]}, 201


@bp.route("/recode", methods=["POST"])
@bp.arguments(AreaArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, RecodeSchema)
@problems(bp, 400, 401, 403, 404)
def recode(args: dict[str, Any]):
    """Renumber a community's grids north to south, west to east"""
    principal = require("planner")
    with db_session() as session:
        changed = grids.recode_community(
            session, args["area"], principal.name, args["reason"] or "recode"
        )
    return {"changed": changed}


@bp.route("/workload", methods=["GET"])
@bp.arguments(WorkloadArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, WorkloadSchema)
@problems(bp, 400, 401, 403, 404)
def workload(args: dict[str, Any]):
    """Households and buildings per grid worker, and grids without one (staff)"""
    require("staff")
    with db_session() as session:
        if not features.area_exists(session, args["area"]):
            abort(404, message=f"no area with code {args['area']!r}")
        return grids.workload(session, args["area"])
