"""The gridmap web service: Flask app factory, one blueprint per resource."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from flask import Flask
from sqlalchemy import Engine

from gridmap.db.engine import database_url, make_engine


class GridmapState:
    """What the app shares between requests: the engine, made on first use so the
    app starts (and answers /health with 503) while the database is down."""

    def __init__(self, url: str | None):
        self._url = url

    @cached_property
    def engine(self) -> Engine:
        """The engine of the configured database."""
        return make_engine(self._url or database_url())


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the gridmap Flask app.

    Parameters
    ----------
    test_config
        Settings that override the defaults, such as ``DATABASE_URL``.
    """
    app = Flask(__name__)
    app.config.from_mapping(DATABASE_URL=None, MAX_CONTENT_LENGTH=20 * 1024 * 1024,
                            JSON_AS_ASCII=False)
    app.config.from_prefixed_env("GRIDMAP")
    if test_config:
        app.config.update(test_config)
    app.extensions["gridmap"] = GridmapState(app.config["DATABASE_URL"])

    from api import health
    from api.errors import register_error_handlers

    register_error_handlers(app)
    app.register_blueprint(health.bp)
    return app
