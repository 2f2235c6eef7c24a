"""Every error as ``application/problem+json`` (RFC 9457)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from flask import Flask, Response, current_app, json, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from shapely.geometry import mapping
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from gridmap import logs
from gridmap.db.cluster import ClusterError
from gridmap.features import Conflict, NotFound, VersionMismatch
from gridmap.geometry import CRSProblem
from gridmap.grids import LayoutRefused
from gridmap.io.store import ImportRejected
from gridmap.planning import PlanningProblem
from gridmap.topology.edits import EditProblem

PROBLEM_JSON = "application/problem+json"


class ProblemItemSchema(ma.Schema):
    """One field or feature problem."""

    index = ma.fields.Integer(allow_none=True, metadata={"description": "Feature index"})
    in_ = ma.fields.String(data_key="in", metadata={"description": "query, json, header"})
    field = ma.fields.String(allow_none=True)
    reason = ma.fields.String()
    kind = ma.fields.String(metadata={"description": "Kind of layout finding"})
    grids = ma.fields.List(ma.fields.String(), metadata={"description": "Grids involved"})
    geometry = ma.fields.Dict(allow_none=True, metadata={"description": "Where (GeoJSON)"})
    location = ma.fields.List(
        ma.fields.Float(), allow_none=True, metadata={"description": "[lon, lat] of the fault"}
    )


class ProblemSchema(ma.Schema):
    """An error (RFC 9457 problem details)."""

    type = ma.fields.String()
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    errors = ma.fields.List(ma.fields.Nested(ProblemItemSchema))


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def _flatten(messages: Any, location: str, prefix: str = "") -> list[dict]:
    """webargs' nested validation messages as a flat list of problems."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if location == "json" and name.startswith("properties."):
                name = name.removeprefix("properties.")  # a feature's fields, by name
            out.extend(_flatten(value, location, name))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [{"in": location, "field": prefix or None, "reason": " ".join(messages)}]
    return [{"in": location, "field": prefix or None, "reason": str(messages)}]


def problems(bp: Any, *codes: int):
    """Document that a view may answer these error statuses (as problem+json)."""

    def decorate(view):
        for code in codes:
            view = bp.alt_response(code, response=HTTPStatus(code).name)(view)
        return view

    return decorate


class SchemaExtrasPlugin(BasePlugin):
    """Adds a schema class's ``OPENAPI_EXTRA`` to its component: what a marshmallow
    schema cannot say by its fields (``anyOf``, ``minProperties``)."""

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        return dict(getattr(kwargs.get("schema"), "OPENAPI_EXTRA", None) or {})


class GridmapApi(Api):
    """flask-smorest's Api, answering and documenting errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, *, extra_plugins: Any = None, **kwargs: Any) -> None:
        super()._init_spec(extra_plugins=[*(extra_plugins or ()), SchemaExtrasPlugin()], **kwargs)

    def _register_responses(self) -> None:
        for status in HTTPStatus:
            if status >= 400:
                response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
                prepare_response(response, self.spec, PROBLEM_JSON)
                self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        data = getattr(error, "data", None) or {}
        errors = None
        if "messages" in data:
            errors = [
                item
                for location, messages in data["messages"].items()
                for item in _flatten(messages, location)
            ]
        detail = data.get("message") or error.description or error.name
        if errors:
            detail = "; ".join(f"{e['field'] or e['in']}: {e['reason']}" for e in errors)
        headers = dict(data.get("headers") or {})
        original = error.get_response().headers
        for name in ("Allow", "Retry-After", "WWW-Authenticate"):
            if name in original:
                headers[name] = original[name]
        return problem(error.code or 500, error.name, detail, errors=errors, headers=headers)


def register_error_handlers(app: Flask) -> None:
    """Turn gridmap's own exceptions, and any unexpected one, into problem+json.

    Log records of the whole process are scrubbed from here on (:mod:`gridmap.logs`):
    an unexpected error is logged with its traceback but never its message, which
    may quote the row that failed.
    """
    logs.install()

    @app.errorhandler(ImportRejected)
    def rejected(exc: ImportRejected) -> Response:
        reasons = "; ".join(
            ("" if p.get("index") is None else f"feature {p['index']}: ")
            + (f"{p['field']}: " if p.get("field") else "")
            + p["reason"]
            for p in exc.problems[:5]
        )
        return problem(
            422, "Unprocessable Content", f"nothing was written: {reasons}", errors=exc.problems
        )

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> Response:
        return problem(404, "Not Found", str(exc))

    @app.errorhandler(VersionMismatch)
    def stale(exc: VersionMismatch) -> Response:
        return problem(
            412,
            "Precondition Failed",
            f"{exc}; read it again and apply your change to that version",
            headers={"ETag": f'"{exc.current}"'},
        )

    @app.errorhandler(LayoutRefused)
    def refused(exc: LayoutRefused) -> Response:
        errors = [
            {
                "kind": f.kind,
                "grids": f.grids,
                "reason": f.detail,
                "geometry": mapping(f.geometry) if f.geometry is not None else None,
            }
            for f in exc.findings
        ]
        return problem(409, "Conflict", str(exc), errors=errors)

    @app.errorhandler(EditProblem)
    @app.errorhandler(PlanningProblem)
    def bad_edit(exc: ValueError) -> Response:
        return problem(422, "Unprocessable Content", str(exc))

    @app.errorhandler(Conflict)
    def conflict(exc: Conflict) -> Response:
        return problem(409, "Conflict", str(exc))

    @app.errorhandler(CRSProblem)
    def bad_crs(exc: CRSProblem) -> Response:
        # Well-formed text that names no CRS, as a code may name no row: 422.
        return problem(422, "Unprocessable Content", str(exc))

    @app.errorhandler(OperationalError)
    @app.errorhandler(ClusterError)
    def database_down(exc: Exception) -> Response:
        current_app.logger.warning("database unavailable: %s", type(exc).__name__)
        return problem(
            503,
            "Service Unavailable",
            "the database is not answering; try again shortly",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return current_app.extensions["gridmap"].api.handle_http_exception(exc)
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return problem(
            500,
            "Internal Server Error",
            "gridmap could not answer this request; the error is in the server log.",
        )
