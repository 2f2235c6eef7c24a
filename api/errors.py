"""Every error as ``application/problem+json`` (RFC 9457)."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, type_: str = "about:blank",
            **extra: Any) -> Response:
    """A problem+json response; ``extra`` members (such as ``errors``) are added as given."""
    body = {"type": type_, "title": title, "status": status, "detail": detail,
            "instance": request.path, **extra}
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def register_error_handlers(app: Flask) -> None:
    """Turn every HTTP error, and any unexpected exception, into problem+json."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = problem(exc.code or 500, exc.name, exc.description or exc.name)
        for header in ("Allow", "Retry-After"):
            if exc.get_response().headers.get(header):
                response.headers[header] = exc.get_response().headers[header]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error on %s", request.path)
        return problem(500, "Internal Server Error",
                       "gridmap could not answer this request; the error is in the server log.")
