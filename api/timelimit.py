"""The request time limit: a request that runs too long is answered, not killed.

Every request gets a deadline (``REQUEST_TIME_LIMIT`` seconds, 30 by default). Its
database transaction carries the time left as PostgreSQL's ``statement_timeout``,
so a slow query or a wait for a lock is cancelled by the server; a transaction is
never committed after the deadline. Either way the answer is 503 problem+json saying
why, and nothing of the request is written. Work that needs longer runs as a
background job (``Prefer: respond-async``, or above the size thresholds).
"""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, g, has_request_context
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.errors import problem

#: Seconds a request may run; the answer after that is 503 with the reason.
DEFAULT_REQUEST_TIME_LIMIT = 30.0


class RequestTooLong(RuntimeError):
    """The request passed its time limit; its transaction was rolled back."""


def start_clock() -> None:
    """Start the request's clock (a ``before_request`` hook)."""
    g.gridmap_deadline = time.monotonic() + float(current_app.config["REQUEST_TIME_LIMIT"])


def seconds_left() -> float | None:
    """Seconds the current request has left, or ``None`` outside a request (a job)."""
    if not has_request_context() or "gridmap_deadline" not in g:
        return None
    return g.gridmap_deadline - time.monotonic()


def check_deadline() -> None:
    """Raise :class:`RequestTooLong` when the current request is past its deadline."""
    left = seconds_left()
    if left is not None and left <= 0:
        raise RequestTooLong


def limit_statements(session: Session) -> None:
    """Give the session's transaction the request's time left as its statement timeout."""
    left = seconds_left()
    if left is None:
        return
    check_deadline()
    session.execute(
        text("SELECT set_config('statement_timeout', :ms, true)"),
        {"ms": str(max(1, int(left * 1000)))},
    )


def _too_long(exc: RequestTooLong) -> Response:
    limit = float(current_app.config["REQUEST_TIME_LIMIT"])
    return problem(
        503,
        "Service Unavailable",
        f"the request ran longer than its limit of {limit:g} s and was stopped; nothing "
        "of it was written. Large imports, city-wide coverage and redraws of large "
        "communities run as background jobs: send 'Prefer: respond-async'.",
    )


def init_app(app: Flask) -> None:
    """Give every request of ``app`` a deadline and answer a passed one with 503."""
    app.config.setdefault("REQUEST_TIME_LIMIT", DEFAULT_REQUEST_TIME_LIMIT)
    app.before_request(start_clock)
    app.register_error_handler(RequestTooLong, _too_long)
