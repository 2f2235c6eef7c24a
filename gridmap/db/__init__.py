"""Database access: the embedded cluster, engines and sessions, and migrations."""

from gridmap.db.engine import database_url, make_engine, session_scope

__all__ = ["database_url", "make_engine", "session_scope"]
