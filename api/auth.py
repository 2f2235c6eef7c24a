"""Who is asking: bearer tokens and roles."""

from __future__ import annotations

from flask import abort, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from api.database import db_session
from gridmap.tokens import ANONYMOUS, Principal, principal_for


def _unauthorized(detail: str) -> None:
    raise Unauthorized(description=detail, www_authenticate=WWWAuthenticate("Bearer"))


def current_principal() -> Principal:
    """The request's principal: a token's, or the anonymous viewer when there is none.

    A malformed, unknown or revoked token is refused with 401 (it is never
    quietly treated as anonymous).
    """
    if "principal" not in g:
        header = request.headers.get("Authorization")
        if header is None:
            g.principal = ANONYMOUS
        else:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                _unauthorized("Authorization must be 'Bearer <token>'")
            with db_session() as session:
                principal = principal_for(session, token.strip())
            if principal is None:
                _unauthorized("unknown or revoked token")
            g.principal = principal
    return g.principal


def require(role: str) -> Principal:
    """The principal, if it has ``role``; else 401 (anonymous) or 403."""
    principal = current_principal()
    if not principal.may(role):
        if principal is ANONYMOUS:
            _unauthorized(f"this needs a {role} token: send Authorization: Bearer <token>")
        abort(403, description=f"this needs the {role} role; your token is a {principal.role}")
    return principal
