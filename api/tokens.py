"""``/api/v1/tokens``: API tokens (admin only)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint, abort

from api.auth import require
from api.database import db_session
from api.errors import problems
from api.resources import Text
from gridmap import tokens
from gridmap.models import ROLES

bp = Blueprint(
    "tokens",
    __name__,
    url_prefix="/api/v1/tokens",
    description="API tokens. Admin only; a token is shown once, when made.",
)


class TokenSchema(ma.Schema):
    """A token's record (never the token itself)."""

    name = ma.fields.String()
    role = ma.fields.String()
    created_at = ma.fields.DateTime()
    revoked_at = ma.fields.DateTime(allow_none=True)


class NewTokenSchema(ma.Schema):
    """A token to make."""

    name = Text(required=True, validate=ma.validate.Length(1, 200))
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))


class MadeTokenSchema(NewTokenSchema):
    """A new token: keep it, it is not shown again."""

    token = ma.fields.String()


@bp.route("", methods=["GET"])
@bp.response(200, TokenSchema(many=True))
@problems(bp, 401, 403)
def list_tokens():
    """Every token, newest first"""
    require("admin")
    with db_session() as session:
        return tokens.list_tokens(session)


@bp.route("", methods=["POST"])
@bp.arguments(NewTokenSchema, error_status_code=422)
@bp.response(201, MadeTokenSchema)
@problems(bp, 401, 403, 409)
def create_token(new: dict[str, Any]):
    """Make a token"""
    require("admin")
    with db_session() as session:
        try:
            token = tokens.create_token(session, new["name"], new["role"])
        except ValueError as exc:
            abort(409, message=str(exc))
    return {**new, "token": token}


@bp.route("/<name>", methods=["DELETE"])
@bp.response(204)
@problems(bp, 401, 403, 404)
def revoke(name: str):
    """Revoke a token"""
    require("admin")
    with db_session() as session:
        if not tokens.revoke_token(session, name):
            abort(404, message=f"no live token named {name!r}")
    return "", 204
