"""The database session of a request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from psycopg2.errors import QueryCanceled
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api.timelimit import RequestTooLong, check_deadline, limit_statements
from gridmap.db.engine import session_scope


@contextmanager
def db_session() -> Iterator[Session]:
    """One transaction on the app's database: committed when the block ends.

    It runs within the request's time limit (``api/timelimit.py``): statements are
    cancelled by PostgreSQL when the time is up, and nothing is committed after it.
    """
    try:
        with session_scope(current_app.extensions["gridmap"].engine) as session:
            limit_statements(session)
            yield session
            check_deadline()
    except OperationalError as exc:
        if isinstance(exc.orig, QueryCanceled):
            raise RequestTooLong from exc
        raise
