"""API tokens: made once, shown once, kept only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gridmap.models import ROLES, ApiToken


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a token's name and role, or the anonymous viewer."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this principal has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


ANONYMOUS = Principal("anonymous", "viewer")


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are 256 random bits, so a plain hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, role: str) -> str:
    """Make a token for ``name`` with ``role``; return the token, which is not kept.

    Raises
    ------
    ValueError
        An unknown role or a name that already has a token.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise ValueError(f"a token named {name!r} exists already")
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role, token_hash=hash_token(token)))
    session.flush()
    return token


def principal_for(session: Session, token: str) -> Principal | None:
    """The principal of a live token, or ``None`` for an unknown or revoked one."""
    return principal_for_hash(session, hash_token(token))


def principal_for_hash(session: Session, token_hash: str) -> Principal | None:
    """The principal of the live token with this hash (a browser session keeps the
    hash, never the token), or ``None`` for an unknown or revoked one."""
    row = session.execute(
        select(ApiToken.name, ApiToken.role).where(
            ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)
        )
    ).first()
    return Principal(row.name, row.role) if row else None


def revoke_token(session: Session, name: str) -> bool:
    """Revoke the token of ``name``; return whether there was a live one."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return result.rowcount > 0


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, newest first (hashes included; never the tokens themselves)."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id.desc())))
