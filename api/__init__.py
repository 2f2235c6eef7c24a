"""The gridmap web service: Flask app factory, one blueprint per resource."""

from __future__ import annotations

import secrets
from functools import cached_property
from typing import Any

from flask import Flask, Response, current_app, g
from flask_cors import CORS
from sqlalchemy import Engine

from gridmap import __version__
from gridmap.db.engine import database_url, make_engine
from gridmap.settings import PROJECT_ROOT

#: Defaults of the app's settings; each can be set as GRIDMAP_<NAME> in the environment.
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,
    # Largest request body; bigger ones get 413 (bulk imports of a city fit in this).
    "MAX_CONTENT_LENGTH": 20 * 1024 * 1024,
    # Origins whose pages may read the API from the browser (CORS), e.g. a city's portal.
    "CORS_ORIGINS": [],
    # Origins whose pages may frame /embed/... maps (comma-separated in the environment).
    "EMBED_ORIGINS": [],
    # Base map of the maps: none (a plain background with gridmap's roads), osm,
    # tianditu (with MAP_TILE_KEY) or intranet (the tile URL template MAP_TILE_URL).
    "MAP_BASE": "none",
    "MAP_TILE_URL": None,
    "MAP_TILE_KEY": None,
    # The key that signs browser session cookies; without one, a key made on first use
    # and kept in SECRET_KEY_FILE (mode 600), so every worker shares it.
    "SECRET_KEY": None,
    "SECRET_KEY_FILE": str(PROJECT_ROOT / "data" / "secret_key"),
    # Hours a browser session lasts; send its cookie over HTTPS only (set behind TLS).
    "SESSION_HOURS": 8,
    "SESSION_COOKIE_SECURE": False,
}


class GridmapState:
    """What the app shares between requests: the engine, made on first use so the
    app starts (and answers /health with 503) while the database is down."""

    def __init__(self, url: str | None, api: Any):
        self._url = url
        self.api = api

    @cached_property
    def engine(self) -> Engine:
        """The engine of the configured database."""
        return make_engine(self._url or database_url())


def origin_list(value: Any) -> list[str]:
    """Origins from a setting: a list, or a comma-separated string from the environment."""
    if isinstance(value, str):
        return [origin.strip() for origin in value.split(",") if origin.strip()]
    return list(value or [])


def csp_nonce() -> str:
    """This response's script nonce (made on first use): the scripts a page may run
    carry it, and the Content-Security-Policy names it."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def security_headers(response: Response) -> Response:
    """Content-Security-Policy on every response: only scripts with this response's
    nonce run; frames only for embeds, by the origins in ``EMBED_ORIGINS`` (an embed
    view sets ``g.frame_ancestors``), ``'none'`` for everything else."""
    from layers.base import BASE_MAPS, page_policy, tile_origins

    tiles = [t[0] for t in BASE_MAPS.values() if t] + [current_app.config["MAP_TILE_URL"]]
    ancestors = g.get("frame_ancestors")
    frames = " ".join(ancestors) if ancestors else "'none'"
    policy = page_policy(csp_nonce(), tile_origins(*tiles))
    response.headers["Content-Security-Policy"] = f"{policy}; frame-ancestors {frames}"
    if not ancestors:
        response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the gridmap Flask app.

    Parameters
    ----------
    test_config
        Settings that override the defaults and the environment, such as
        ``DATABASE_URL`` or ``CORS_ORIGINS``.
    """
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("GRIDMAP")
    if test_config:
        app.config.update(test_config)

    from api import (
        areas,
        auth,
        buildings,
        coverage,
        docs,
        grids,
        health,
        maps,
        planning,
        plans,
        reports,
        roads,
        stations,
        tokens,
        validation,
        workers,
    )
    from api.errors import GridmapApi, register_error_handlers
    from api.guards import register_guards

    app.config.update(
        API_TITLE="gridmap",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=docs.ASSETS_URL,
        # No call to swagger.io's validator: the page loads nothing from the internet.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
    )
    api = GridmapApi(
        app,
        spec_kwargs={
            "info": {
                "description": (
                    "Community grids, buildings, roads and service stations. GeoJSON in EPSG:4326; "
                    "errors are application/problem+json. Send Authorization: Bearer <token>; "
                    "anonymous requests read as viewers. Browser pages sign in at /signin "
                    "instead: an HttpOnly session cookie, and every write made with it "
                    "sends the session's CSRF token in the X-CSRF-Token header (else 403)."
                )
            }
        },
    )
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme(
        "session", {"type": "apiKey", "in": "cookie", "name": "gridmap_session"}
    )
    app.extensions["gridmap"] = GridmapState(app.config["DATABASE_URL"], api)
    register_error_handlers(app)
    register_guards(app)
    from api import jobs, timelimit

    timelimit.init_app(app)
    jobs.init_app(app)
    for module in (
        areas,
        grids,
        buildings,
        stations,
        roads,
        workers,
        validation,
        coverage,
        planning,
        plans,
        reports,
        tokens,
    ):
        api.register_blueprint(module.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(maps.bp)
    from api import ogc

    app.register_blueprint(ogc.bp)  # OGC API - Features: its own OpenAPI at /ogc/api
    from api import home
    from layers import i18n

    app.register_blueprint(home.bp)
    i18n.init_app(app)  # pages in Chinese, English on request (Flask-Babel)
    auth.init_app(app)
    app.after_request(security_headers)
    app.context_processor(lambda: {"csp_nonce": csp_nonce})
    CORS(
        app,
        resources={
            r"/api/v1/*": {
                "origins": origin_list(app.config["CORS_ORIGINS"]),
                "methods": ["GET", "HEAD", "OPTIONS"],
            },
            r"/ogc*": {
                "origins": origin_list(app.config["CORS_ORIGINS"]),
                "methods": ["GET", "HEAD", "OPTIONS"],
            },
        },
        expose_headers=["ETag", "Location"],
    )
    return app
