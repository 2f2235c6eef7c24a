"""The home page (``/``): every street and its communities with their figures, and
links to every map, the editor, the plans, the embed code, the API documentation and
the reports (CSV and Excel). In Chinese unless English is asked for (``lang=en`` or
``Accept-Language``)."""

from __future__ import annotations

from flask import Blueprint, Response, url_for

from api.database import db_session
from layers.site import home_page, streets

bp = Blueprint("home", __name__)


@bp.route("/")
def home() -> Response:
    """The list of streets and communities with their figures, maps and reports."""
    with db_session() as session:
        found = streets(session)
    reports = {
        "workload": url_for("reports.workload"),
        "coverage": url_for("coverage.coverage"),
    }
    return Response(home_page(found, reports), mimetype="text/html")
