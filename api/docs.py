"""The browsable API page's assets (Swagger UI), served locally: no CDN on an intranet."""

from __future__ import annotations

import swagger_ui_bundle
from flask import Blueprint, send_from_directory

#: Where the app serves Swagger UI's files; flask-smorest's page loads them from here.
ASSETS_URL = "/api/v1/docs/assets/"

bp = Blueprint("docs_assets", __name__)


@bp.get(ASSETS_URL + "<path:filename>")
def asset(filename: str):
    """One file of the Swagger UI bundle."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
