"""``/api/v1/plans``: redraw drafts of a community's grids, their diff, apply and discard."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import url_for
from flask_smorest import Blueprint, abort
from shapely.geometry import mapping
from sqlalchemy.orm import Session

from api.auth import current_principal, require
from api.database import db_session
from api.errors import problems
from api.geojson import (
    GEOJSON,
    FeatureCollectionSchema,
    FeaturePatchSchema,
    geojson_response,
    read_geometries,
)
from api.jobs import JobSchema, accepted, wants_job
from api.resources import Text, WriteArgs
from gridmap.io.layers import LAYERS
from gridmap.jobs import JobContext, area_buildings, handler
from gridmap.models import BUILDING_USES, DEDICATED_CATEGORIES
from gridmap.redraw import plans
from gridmap.redraw.engine import DEDICATED_USES, RedrawRules

bp = Blueprint(
    "plans",
    __name__,
    url_prefix="/api/v1/plans",
    description="Redraw a community into dedicated, general and micro grids as a draft, "
    "compare it with today's grids, then apply it (one transaction, with revisions and "
    "new codes) or discard it.",
)


def _range(description: str) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Integer(validate=ma.validate.Range(0, 100_000)),
        validate=ma.validate.Length(2, 2),
        metadata={"description": description},
    )


class PlanRequestSchema(ma.Schema):
    """What to redraw and the rules of the plan."""

    area = Text(required=True, metadata={"description": "Community code"})
    general = _range("Households per general grid, [min, max] (default [300, 500])")
    micro = _range("Households per micro grid, [min, max] (default [30, 100])")
    dedicated_uses = ma.fields.Dict(
        keys=Text(validate=ma.validate.OneOf(BUILDING_USES)),
        values=Text(validate=ma.validate.OneOf(DEDICATED_CATEGORIES)),
        metadata={
            "description": "Building use → dedicated category; a compound whose buildings all "
            "have such uses and no households becomes a dedicated grid. Default: "
            + ", ".join(f"{u} → {c}" for u, c in DEDICATED_USES)
        },
    )
    keep_compounds = ma.fields.Boolean(load_default=True)
    stability = ma.fields.Boolean(
        load_default=False, metadata={"description": "Prefer today's grid boundaries"}
    )
    seed = ma.fields.Integer(load_default=0, validate=ma.validate.Range(0, 2**31 - 1))

    @ma.validates_schema
    def _ranges(self, data: dict[str, Any], **kwargs: Any) -> None:
        for name in ("general", "micro"):
            if name in data and data[name][0] > data[name][1]:
                raise ma.ValidationError("the minimum is above the maximum", name)

    def rules(self, data: dict[str, Any]) -> RedrawRules:
        """The engine's rules from a loaded request."""
        fields = {k: data[k] for k in ("keep_compounds", "stability", "seed")}
        for name in ("general", "micro"):
            if name in data:
                fields[name] = tuple(data[name])
        if "dedicated_uses" in data:
            fields["dedicated_uses"] = tuple(sorted(data["dedicated_uses"].items()))
        return RedrawRules(**fields)


class PlanListArgs(ma.Schema):
    """Filter of the plan list."""

    area = Text(metadata={"description": "Community code"})


class PlanSchema(ma.Schema):
    """A plan's summary: its rules, measures and notes."""

    id = ma.fields.Integer()
    area = ma.fields.String()
    status = ma.fields.String(metadata={"enum": ["draft", "applied"]})
    author = ma.fields.String()
    created_at = ma.fields.String()
    applied_at = ma.fields.String(allow_none=True)
    settings = ma.fields.Dict()
    metrics = ma.fields.Dict()
    notes = ma.fields.List(ma.fields.String())


class PlanCollectionSchema(FeatureCollectionSchema):
    """A plan's grids (GeoJSON) with its summary."""

    plan = ma.fields.Nested(PlanSchema)


class DiffSchema(ma.Schema):
    """Today's grids against the plan's."""

    plan = ma.fields.Integer()
    area = ma.fields.String()
    grids = ma.fields.List(ma.fields.Dict())
    buildings_moved = ma.fields.Integer()
    households_moved = ma.fields.Integer()
    moves = ma.fields.List(ma.fields.Dict())


class AppliedSchema(ma.Schema):
    """What applying a plan changed."""

    plan = ma.fields.Integer()
    area = ma.fields.String()
    retired = ma.fields.List(ma.fields.String())
    created = ma.fields.List(ma.fields.String())
    household_ranges = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.Integer()),
        metadata={
            "description": "The community's household ranges by kind from now on: the plan's"
        },
    )


@bp.route("", methods=["POST"])
@bp.arguments(PlanRequestSchema, location="json", error_status_code=422)
@bp.response(201, PlanSchema)
@bp.alt_response(202, schema=JobSchema, description="Large community: queued as a job")
@problems(bp, 401, 403, 404, 422, 503)
def create(body: dict[str, Any]):
    """Draw a draft plan for a community

    A community with more buildings than ``JOB_REDRAW_BUILDINGS`` (or a request with
    ``Prefer: respond-async``) is answered 202 with the job drawing it; the job's
    result is the plan's summary and its link."""
    principal = require("planner")
    with db_session() as session:
        buildings = area_buildings(session, body["area"])
    if wants_job(buildings, "JOB_REDRAW_BUILDINGS"):
        return accepted("redraw", body, read_role="planner")
    with db_session() as session:
        plan = plans.create_plan(
            session, body["area"], PlanRequestSchema().rules(body), principal.name
        )
        answer = plans.summary(plan)
    return answer, 201, {"Location": url_for("plans.read", plan_id=answer["id"])}


@handler("redraw")
def _redraw_job(session: Session, job: JobContext) -> dict[str, Any]:
    """A redraw as a background job: the plan's summary and its address."""
    plan = plans.create_plan(
        session, job.params["area"], PlanRequestSchema().rules(job.params), job.author, job.progress
    )
    session.flush()
    return {**PlanSchema().dump(plans.summary(plan)), "href": f"{bp.url_prefix}/{plan.id}"}


@bp.route("", methods=["GET"])
@bp.arguments(PlanListArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, PlanSchema(many=True))
@problems(bp, 400, 404)
def index(args: dict[str, Any]):
    """List plans, newest first"""
    with db_session() as session:
        return [plans.summary(p) for p in plans.list_plans(session, args.get("area"))]


@bp.route("/<int:plan_id>", methods=["GET"])
@bp.response(200, PlanCollectionSchema, content_type=GEOJSON)
@problems(bp, 404)
def read(plan_id: int):
    """A plan's grids (GeoJSON) with its summary as the member ``plan``"""
    with db_session() as session:
        body = _plan_collection(plans.get_plan(session, plan_id))
    return geojson_response(body)


class PlanGridPatchArgs(WriteArgs):
    """Query parameters of a draft grid's change."""

    adjust_neighbours = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Take the area the grid gains from its neighbours and give what it "
            "loses to the neighbour sharing the longest boundary; without it a change that "
            "opens a gap or an overlap is refused with 409"
        },
    )


def _plan_collection(plan) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "plan": plans.summary(plan),
        "features": [
            {"type": "Feature", "id": p["id"], "geometry": mapping(geom), "properties": p}
            for p, geom in plans.plan_features(plan)
        ],
    }


@bp.route("/<int:plan_id>/grids/<key>", methods=["PATCH"])
@bp.arguments(PlanGridPatchArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.arguments(FeaturePatchSchema, location="json", error_status_code=422)
@bp.response(200, PlanCollectionSchema, content_type=GEOJSON)
@problems(bp, 400, 401, 403, 404, 409, 422)
def reshape(args: dict[str, Any], feature: dict[str, Any], plan_id: int, key: str):
    """Give a draft's grid a new boundary; the answer is the whole draft

    The boundary snaps to its neighbours; micro grids of the general grids it changes
    are drawn again. A change that would leave the draft invalid is refused (409)."""
    require("planner")
    if feature["geometry"] is None:
        abort(422, description="a new geometry is needed")
    geom = read_geometries(LAYERS["grids"], [feature["geometry"]], args["crs"], feature["crs"])[0]
    with db_session() as session:
        plan = plans.reshape_plan_grid(session, plan_id, key, geom, args["adjust_neighbours"])
        body = _plan_collection(plan)
    return geojson_response(body)


class PlanSplitSchema(ma.Schema):
    """Where to cut a draft's grid."""

    line = ma.fields.Dict(
        required=True,
        metadata={
            "description": "GeoJSON LineString (EPSG:4326) crossing the grid from edge to edge"
        },
    )


class PlanMergeSchema(ma.Schema):
    """Draft grids to merge into the first of them by key."""

    keys = ma.fields.List(Text(), required=True, validate=ma.validate.Length(2, 50))


@bp.route("/<int:plan_id>/grids/<key>/split", methods=["POST"])
@bp.arguments(PlanSplitSchema, location="json", error_status_code=422)
@bp.response(200, PlanCollectionSchema, content_type=GEOJSON)
@problems(bp, 401, 403, 404, 409, 422)
def split(body: dict[str, Any], plan_id: int, key: str):
    """Cut a draft's grid in two along a line; the answer is the whole draft"""
    require("planner")
    line = read_geometries(LAYERS["grids"], [body["line"]], None)[0]
    with db_session() as session:
        answer = _plan_collection(plans.split_plan_grid(session, plan_id, key, line))
    return geojson_response(answer)


@bp.route("/<int:plan_id>/merge", methods=["POST"])
@bp.arguments(PlanMergeSchema, location="json", error_status_code=422)
@bp.response(200, PlanCollectionSchema, content_type=GEOJSON)
@problems(bp, 401, 403, 404, 409, 422)
def merge(body: dict[str, Any], plan_id: int):
    """Merge touching sibling grids of a draft; the answer is the whole draft"""
    require("planner")
    with db_session() as session:
        answer = _plan_collection(plans.merge_plan_grids(session, plan_id, body["keys"]))
    return geojson_response(answer)


@bp.route("/<int:plan_id>/diff", methods=["GET"])
@bp.response(200, DiffSchema)
@problems(bp, 404)
def diff(plan_id: int):
    """Where each planned grid's households come from and which buildings move

    Households per building are shown to staff and above only."""
    personal = current_principal().may("staff")
    with db_session() as session:
        answer = plans.diff(session, plans.get_plan(session, plan_id))
    if not personal:
        for move in answer["moves"]:
            move.pop("households")
    return answer


@bp.route("/<int:plan_id>/apply", methods=["POST"])
@bp.response(200, AppliedSchema)
@problems(bp, 401, 403, 404, 409)
def apply(plan_id: int):
    """Replace the community's grids with the plan's"""
    principal = require("planner")
    with db_session() as session:
        return plans.apply_plan(session, plan_id, principal.name)


@bp.route("/<int:plan_id>", methods=["DELETE"])
@bp.response(204)
@problems(bp, 401, 403, 404, 409)
def delete(plan_id: int):
    """Discard a draft plan"""
    require("planner")
    with db_session() as session:
        plans.delete_plan(session, plan_id)
