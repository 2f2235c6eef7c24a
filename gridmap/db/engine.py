"""Engines and sessions for the configured database (embedded or external)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from gridmap.settings import Settings


def database_url(settings: Settings | None = None) -> str:
    """The SQLAlchemy URL gridmap talks to.

    ``GRIDMAP_DATABASE_URL`` when set; otherwise the embedded cluster's remembered
    URL (the cluster must have been started with ``gridmap db start``).
    """
    settings = settings or Settings.from_env()
    if settings.database_url:
        return settings.database_url
    from gridmap.db.cluster import Cluster

    return Cluster(settings.pg_dir, settings.pg_bin).url


def make_engine(url: str | None = None) -> Engine:
    """An engine that checks connections before use, so a restarted server is survived.

    Its errors never quote bound parameters (``hide_parameters``): a failed
    statement's values may be a worker's name and phone, and errors reach logs.
    """
    return create_engine(
        url or database_url(), pool_pre_ping=True, hide_parameters=True, future=True
    )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back when it raises."""
    with sessionmaker(engine, expire_on_commit=False)() as session, session.begin():
        yield session
