"""Log lines that carry no personal data and no secret, whatever fails.

Two guards, both installed by :func:`install` for every logger of the process
(gridmap's, Flask's, gunicorn's error and access logs, SQLAlchemy's):

- Exceptions are logged as their traceback of frames and exception *types* only.
  An exception's message may quote the data that failed: psycopg2 errors carry
  the row (``DETAIL: Failing row contains (...)``, ``LINE 1: ... VALUES ('...')``),
  SQLAlchemy adds the bound parameters, a ``ValueError`` may repeat the value.
  Database errors keep what names the fault without quoting data: the SQLSTATE
  and the table, column and constraint names.
- Every message passes :func:`scrub`, which blanks bearer tokens, secrets given as
  ``key=value``, every value of a URL's query string (gunicorn's access log shows
  request lines), passwords in URLs, and mobile phone and ID card numbers.

Engines are made with ``hide_parameters=True`` as well
(:func:`gridmap.db.engine.make_engine`), so SQLAlchemy's own texts hold no values.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType
from typing import Any

#: What :func:`scrub` puts where a secret or a personal number was.
REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token> (and Basic credentials).
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # Query parameters and key=value pairs that hold secrets.
    (
        re.compile(
            r"(?i)\b((?:access_|api_|id_|refresh_)?token|tk|key|api_?key|password|passwd|"
            r"secret|session|csrf(?:_token)?|authorization)=([^&\s\"';,]+)"
        ),
        rf"\1={REDACTED}",
    ),
    # Every other value of a URL's query string (a reason or a filter may name a person).
    (re.compile(r"([?&][A-Za-z0-9_.~\[\]-]+)=(?!\[redacted\])[^&\s\"'#]+"), rf"\1={REDACTED}"),
    # user:password@ in database and other URLs.
    (re.compile(r"(//[^/:@\s]+):[^@\s/]+@"), rf"\1:{REDACTED}@"),
    # Resident identity card numbers (18 characters) and mainland mobile numbers.
    (re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), REDACTED),
    (re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)"), REDACTED),
)


def scrub(text: str) -> str:
    """``text`` with tokens, secrets in URLs and personal numbers blanked out.

    Examples
    --------
    >>> scrub("GET /maps/grids?token=abc123&reason=x Bearer s3cr3t 13812345678")
    'GET /maps/grids?token=[redacted]&reason=[redacted] Bearer [redacted] [redacted]'
    """
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _exception_summary(exc: BaseException) -> str:
    """An exception's type and, for a database error, the names of what failed."""
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    original = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    parts = []
    code = getattr(original, "pgcode", None) or getattr(original, "sqlstate", None)
    if code:
        parts.append(f"SQLSTATE {code}")
    diag = getattr(original, "diag", None)
    for attribute in ("table_name", "column_name", "constraint_name"):
        value = getattr(diag, attribute, None)
        if value:
            parts.append(f"{attribute.removesuffix('_name')} {value}")
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{name}{detail}: message withheld from the log (it may quote the data)"


def safe_traceback(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
) -> str:
    """A traceback of frames and exception types, without any exception's message.

    Chained exceptions (``raise ... from``, and errors while handling others) are
    shown as Python shows them, each by :func:`_exception_summary`.
    """
    _, exc, tb = exc_info
    chain: list[tuple[BaseException, TracebackType | None, str | None]] = []
    seen: set[int] = set()
    link: str | None = None
    current: BaseException | None = exc
    current_tb = tb
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, current_tb, link))
        if current.__cause__ is not None:
            link = "The above exception was the direct cause of the following exception:"
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            link = "During handling of the above exception, another exception occurred:"
            current = current.__context__
        else:
            current = None
        current_tb = current.__traceback__ if current is not None else None
    lines: list[str] = []
    for item, item_tb, following in reversed(chain):
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in traceback.format_tb(item_tb))
        lines.append(_exception_summary(item))
        if following:
            lines.extend(["", following, ""])
    return "\n".join(lines)


_MARK = "_gridmap_scrubbing"


def _scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not lose the line
        message = f"{record.msg!r} (unformattable arguments withheld)"
    record.msg = scrub(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = scrub(safe_traceback(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    return record


def install() -> None:
    """Scrub every log record this process makes from now on (safe to call again).

    The record factory is wrapped rather than a handler filtered, so records of
    every logger and every handler (gunicorn's included) are covered, and
    formatters only ever see the scrubbed message and traceback.
    """
    factory = logging.getLogRecordFactory()
    if getattr(factory, _MARK, False):
        return

    def scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _scrub_record(factory(*args, **kwargs))

    setattr(scrubbing_factory, _MARK, True)
    logging.setLogRecordFactory(scrubbing_factory)
