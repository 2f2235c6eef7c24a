"""``/api/v1/grids``: grids with statistics, versions, history and revert."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from api.auth import require
from api.database import db_session
from api.errors import problems
from api.geojson import GEOJSON, FeatureSchema, geojson_response
from api.resources import WriteArgs, choice, expected_version, feature_blueprint, item_response
from gridmap import features
from gridmap.io.layers import LAYERS
from gridmap.models import DEDICATED_CATEGORIES, GRID_KINDS, PLACE_TYPES

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
@bp.response(200, FeatureSchema, content_type=GEOJSON)
@problems(bp, 401, 403, 404, 412, 422, 428)
@bp.doc(
    parameters=[
        {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}
    ]
)
def revert(args: dict[str, Any], item_id: int):
    """Give a grid the state it had after a revision, as a new revision"""
    principal = require("planner")
    expected = expected_version()
    with db_session() as session:
        features.revert_grid(
            session, item_id, args["revision"], principal.name, args["reason"], expected
        )
        body, headers = item_response(session, LAYERS["grids"], item_id, principal, True)
    return geojson_response(body, headers=headers)
