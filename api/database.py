"""The database session of a request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy.orm import Session

from gridmap.db.engine import session_scope


@contextmanager
def db_session() -> Iterator[Session]:
    """One transaction on the app's database: committed when the block ends."""
    with session_scope(current_app.extensions["gridmap"].engine) as session:
        yield session
