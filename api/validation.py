"""``/api/v1/validate``: the layout validator's report for a street or community."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from api.auth import require
from api.database import db_session
from api.errors import problems
from api.resources import Text
from gridmap.topology import validate_area

bp = Blueprint(
    "validate",
    __name__,
    url_prefix="/api/v1/validate",
    description="Check a layout: gaps, overlaps, parts outside the parent, "
    "buildings in no grid, household ranges, workers.",
)


class ValidateArgs(ma.Schema):
    """Which area to check."""

    area = Text(
        required=True,
        metadata={"description": "Area code of any level: community, street, district or city"},
    )


class FindingSchema(ma.Schema):
    """One thing wrong with the layout, with its place on the map."""

    community = ma.fields.String()
    kind = ma.fields.String()
    severity = ma.fields.String(metadata={"enum": ["error", "warning"]})
    grids = ma.fields.List(ma.fields.String())
    buildings = ma.fields.List(ma.fields.String())
    detail = ma.fields.String()
    area_m2 = ma.fields.Float(allow_none=True)
    geometry = ma.fields.Dict(allow_none=True)


class ReportSchema(ma.Schema):
    """The validator's answer."""

    area = ma.fields.String()
    valid = ma.fields.Boolean()
    errors = ma.fields.Integer()
    warnings = ma.fields.Integer()
    findings = ma.fields.List(ma.fields.Nested(FindingSchema))


@bp.route("", methods=["GET"])
@bp.arguments(ValidateArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, ReportSchema)
@problems(bp, 400, 404)
def validate(args: dict[str, Any]):
    """Validate the grid layout of a street or community"""
    require("viewer")
    with db_session() as session:
        return validate_area(session, args["area"]).as_dict()
