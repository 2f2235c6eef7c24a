"""``/api/v1/reports``: tables to take away (CSV, Excel), and how any view answers with one.

The tables are built by :mod:`gridmap.reports`; here a request picks its format
(``format=csv|xlsx``, or ``Accept: text/csv`` or the Excel media type) and gets the
file as an attachment. Worker names are personal data: only staff get them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import marshmallow as ma
from flask import Response, request
from flask_smorest import Blueprint

from api.auth import require
from api.database import db_session
from api.errors import problems
from api.resources import Text
from gridmap import report_store, reports

JSON = "application/json"

bp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    description="Reports per grid and community with names, community subtotals and the "
    "area's total, as JSON, CSV (UTF-8 with a byte order mark, for Excel) or Excel. "
    "Worker names for staff only.",
)


def file_responses(blueprint: Blueprint):
    """Document that a view of ``blueprint`` answers 200 with a CSV or Excel file too
    (besides its JSON)."""

    def decorate(view):
        for media_type, schema in (
            (reports.CSV_TYPE, {"type": "string"}),
            (reports.XLSX_TYPE, {"type": "string", "format": "binary"}),
        ):
            view = blueprint.alt_response(
                200,
                schema=schema,
                content_type=media_type,
                description="JSON, or a report file (format=csv or xlsx, or asked for "
                "by Accept) sent with Content-Disposition: attachment",
                success=True,
            )(view)
        return view

    return decorate


def format_field() -> Text:
    """The ``format`` query parameter: json, csv or xlsx (default: by ``Accept``)."""
    return Text(
        load_default=None,
        validate=ma.validate.OneOf(("json", *reports.FORMATS)),
        metadata={
            "description": "json, csv or xlsx; without it, Accept: text/csv or "
            f"{reports.XLSX_TYPE} asks for a file"
        },
    )


def wanted_format(asked: str | None) -> str:
    """The format of this answer: ``format`` when given, else the best of ``Accept``
    (JSON when it names neither file type)."""
    if asked:
        return asked
    best = request.accept_mimetypes.best_match([JSON, reports.CSV_TYPE, reports.XLSX_TYPE], JSON)
    return {reports.CSV_TYPE: "csv", reports.XLSX_TYPE: "xlsx"}.get(best, "json")


def file_response(table: reports.Table, fmt: str, filename: str) -> Response:
    """A report table as a downloaded file of ``fmt`` (csv or xlsx)."""
    response = Response(reports.write(table, fmt), mimetype=reports.FORMATS[fmt])
    if fmt == "csv":
        response.headers["Content-Type"] = f"{reports.CSV_TYPE}; charset=utf-8"
    # An area code may be any text: an ASCII name for every client, and the name itself
    # as RFC 5987's filename* (headers travel as Latin-1).
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
    )
    return response


def made_note() -> tuple[str, str]:
    """When a report was made, as a note (UTC)."""
    return ("生成时间", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


class TableSchema(ma.Schema):
    """A report as JSON: its header, rows and what each row is."""

    title = ma.fields.String()
    columns = ma.fields.List(ma.fields.String())
    rows = ma.fields.List(
        ma.fields.List(ma.fields.Raw(allow_none=True)),
        metadata={"description": "Cells: text, numbers or null (no figure)"},
    )
    kinds = ma.fields.List(
        ma.fields.String(), metadata={"description": "Per row: " + ", ".join(reports.ROW_KINDS)}
    )
    notes = ma.fields.List(
        ma.fields.List(ma.fields.String()), metadata={"description": "[label, value]"}
    )


class WorkloadArgs(ma.Schema):
    """Which area, in which format."""

    area = Text(required=True, metadata={"description": "Street or community code"})
    format = format_field()


@bp.route("/workload", methods=["GET"])
@bp.arguments(WorkloadArgs, location="query", unknown=ma.RAISE, error_status_code=400)
@bp.response(200, TableSchema)
@file_responses(bp)
@problems(bp, 400, 404)
def workload(args: dict[str, Any]):
    """Workload per grid and community: buildings, households (estimated), residents, stations

    One row per general and dedicated grid with its community's and its own name
    (and its worker's, for staff), a subtotal per community and the area's total."""
    principal = require("viewer")
    with db_session() as session:
        names = report_store.area_names(session, args["area"])
        figures = report_store.workload_figures(session, args["area"])
    table = reports.workload_table(
        figures, names, workers=principal.may("staff"), notes=[made_note()]
    )
    fmt = wanted_format(args["format"])
    if fmt == "json":
        return table
    return file_response(table, fmt, reports.file_name("workload", names.code, fmt))
