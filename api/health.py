"""``GET /health``: is the database reachable, which PostGIS, which migration."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gridmap.db import migrate
from gridmap.db.cluster import ClusterError

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """Report the service's state; 200 when ready to serve, 503 otherwise."""
    head = migrate.head_revision()
    report: dict = {
        "status": "ok",
        "database": {
            "reachable": False,
            "postgis": None,
            "migration": {"current": None, "head": head},
        },
    }
    try:
        engine = current_app.extensions["gridmap"].engine
        with engine.connect() as connection:
            report["database"]["postgis"] = connection.scalar(
                text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
            )
        report["database"]["reachable"] = True
        current = migrate.current_revision(engine)
        report["database"]["migration"]["current"] = current
        if current != head:
            report["status"] = "unavailable"
            report["detail"] = "the schema is not at the newest migration: run gridmap db migrate"
    except (SQLAlchemyError, ClusterError) as exc:
        report["status"] = "unavailable"
        report["detail"] = f"database unreachable: {type(exc).__name__}"
    return jsonify(report), 200 if report["status"] == "ok" else 503
