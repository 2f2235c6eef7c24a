"""``/api/v1/planning/sites``: where new stations would reach the most households."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from api.auth import require
from api.coverage import CoverageArgs, NetworkSchema
from api.database import db_session
from api.errors import problems
from api.resources import Text
from gridmap.models import BUILDING_USES
from gridmap.planning import plan_sites

bp = Blueprint(
    "planning",
    __name__,
    url_prefix="/api/v1/planning",
    description="Station siting: maximal covering (k new sites reaching the most "
    "uncovered households) or set covering (the fewest sites reaching a share).",
)


class SitesRequestSchema(CoverageArgs):
    """The siting question."""

    k = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(1, 200),
        metadata={"description": "Maximal covering: how many new sites"},
    )
    share = ma.fields.Float(
        load_default=None,
        validate=ma.validate.Range(0, 1),
        metadata={"description": "Set covering: target share of households (default 1 without k)"},
    )
    points = ma.fields.List(
        ma.fields.List(ma.fields.Float(), validate=ma.validate.Length(2, 2)),
        load_default=None,
        validate=ma.validate.Length(max=5000),
        metadata={"description": "Candidate sites as [lon, lat]"},
    )
    uses = ma.fields.List(
        Text(validate=ma.validate.OneOf(BUILDING_USES)),
        load_default=None,
        metadata={"description": "Candidate buildings of these uses"},
    )
    spacing_m = ma.fields.Float(
        load_default=None,
        validate=ma.validate.Range(20, 5000),
        metadata={"description": "Candidate road junctions, one per square of this side"},
    )
    time_limit_s = ma.fields.Float(load_default=30, validate=ma.validate.Range(1, 300))


class SiteSchema(ma.Schema):
    """One proposed site."""

    rank = ma.fields.Integer()
    source = ma.fields.String()
    gain_households = ma.fields.Integer()
    location = ma.fields.List(ma.fields.Float())


class SitesSchema(ma.Schema):
    """The proposal."""

    area = ma.fields.String()
    kind = ma.fields.String()
    minutes = ma.fields.Float()
    distance_m = ma.fields.Float()
    method = ma.fields.String()
    network = ma.fields.Nested(NetworkSchema, allow_none=True)
    warnings = ma.fields.List(ma.fields.String())
    objective = ma.fields.String()
    solver = ma.fields.String()
    optimal = ma.fields.Boolean()
    notes = ma.fields.List(ma.fields.String())
    candidates = ma.fields.Integer()
    households = ma.fields.Integer()
    households_covered_before = ma.fields.Integer()
    households_covered_after = ma.fields.Integer()
    share_before = ma.fields.Float(allow_none=True)
    share_after = ma.fields.Float(allow_none=True)
    sites = ma.fields.List(ma.fields.Nested(SiteSchema))


@bp.route("/sites", methods=["POST"])
@bp.arguments(SitesRequestSchema, location="json", error_status_code=422)
@bp.response(200, SitesSchema)
@problems(bp, 401, 403, 404, 422)
def sites(body: dict[str, Any]):
    """Propose new station sites"""
    require("planner")
    with db_session() as session:
        return plan_sites(
            session,
            body["area"],
            body["kind"],
            body["minutes"],
            body["method"],
            body["k"],
            body["share"],
            body["points"],
            body["uses"],
            body["spacing_m"],
            body["time_limit_s"],
            body["junctions"],
        )
