"""Checks every API request passes before its view: URL length, media type, body shape.

They run before any parsing, so a body that would make a parser work hard (deep
nesting) or lie about what it is (``text/plain`` JSON) is refused cheaply and the
same way for every caller, anonymous ones included.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from flask import Flask, Response, request
from werkzeug.routing import Map, UnicodeConverter

from api.errors import problem

#: Longest query string the API reads, in bytes: every parameter at its longest, each
#: character percent-encoded as four UTF-8 bytes, fits (a reason of 500 characters is
#: 6,000 bytes). gunicorn refuses request lines over ``limit_request_line`` (8,190) itself.
MAX_QUERY_BYTES = 8000
#: Deepest nesting of arrays and objects a JSON body may have. A FeatureCollection of
#: MultiPolygons needs 8 (collection, features, feature, geometry, four arrays).
MAX_JSON_DEPTH = 32
#: Largest body of a request that writes one feature or asks one question (bytes);
#: a building of 5,000 vertices is about 0.2 MB, a grid of 50,000 about 2 MB. Bulk
#: imports have the app's ``MAX_CONTENT_LENGTH`` instead.
MAX_SINGLE_BODY_BYTES = 5 * 1024 * 1024
#: Endpoints that take an uploaded file (multipart/form-data) as well as JSON.
FILE_ENDPOINT_SUFFIX = ".bulk_import"

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NON_NUMBERS = re.compile(rb"NaN|Infinity")
_OPEN = frozenset(b"[{")


def json_skeleton(body: bytes) -> bytes:
    """A JSON text with every string emptied: what is left is structure and numbers."""
    # A function as the replacement lets other threads run between matches: a plain
    # b'""' made one C call that held the GIL 0.7 s on a 19 MB import, and /health
    # (served by another thread of the same worker) waited for it.
    return _JSON_STRING.sub(lambda _: b'""', body)


def json_depth(skeleton: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest, without parsing it.

    Parameters
    ----------
    skeleton
        The text with its strings emptied (:func:`json_skeleton`), so that
        brackets inside strings do not count.

    Examples
    --------
    >>> json_depth(json_skeleton(b'{"a": [[1, 2], "[[["]}'))
    3
    """
    brackets = np.frombuffer(skeleton, dtype=np.uint8)
    positions = np.flatnonzero(np.isin(brackets, np.frombuffer(b"[]{}", dtype=np.uint8)))
    if positions.size == 0:
        return 0
    steps = np.where(np.isin(brackets[positions], np.array(list(_OPEN))), 1, -1)
    return int(np.cumsum(steps).max())


def _has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def check_request() -> Response | None:
    """Refuse an API request whose URL or body no view should have to read.

    Returns
    -------
    Response or None
        A problem+json answer (400 for a repeated query parameter, a body nested too
        deep or NaN in it; 413, 414, 415), or ``None`` to go on.
    """
    if not request.path.startswith(("/api/v1/", "/ogc")):
        return None
    takes_files = (request.endpoint or "").endswith(FILE_ENDPOINT_SUFFIX)
    if request.path.startswith("/ogc") and any("\x00" in v for v in request.args.values()):
        # /api/v1 reads each parameter through a schema that says which one; /ogc's are
        # read by hand, and the database refuses NUL in text.
        return problem(400, "Bad Request", "query parameters cannot hold a NUL character")
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:  # no parameter of this API is a list: a second value would be dropped
        return problem(
            400,
            "Bad Request",
            f"each query parameter is read once; {', '.join(repeated)} came more than once",
            errors=[
                {"in": "query", "field": name, "reason": "given more than once"}
                for name in repeated
            ],
        )
    if len(request.query_string) > MAX_QUERY_BYTES:
        return problem(
            414,
            "URI Too Long",
            f"the query string has {len(request.query_string)} bytes; "
            f"at most {MAX_QUERY_BYTES} are read",
        )
    if request.method not in ("POST", "PUT", "PATCH") or not _has_body():
        return None
    if request.mimetype == "multipart/form-data" and takes_files:
        return None
    if not request.is_json:
        accepted = "application/json or application/geo+json" + (
            ", or a file as multipart/form-data" if takes_files else ""
        )
        return problem(
            415,
            "Unsupported Media Type",
            f"the body is {request.mimetype or 'of no stated type'}; send {accepted}",
        )
    if not takes_files and (request.content_length or 0) > MAX_SINGLE_BODY_BYTES:
        return problem(
            413,
            "Content Too Large",
            f"the body has {request.content_length} bytes; one feature or question may "
            f"have {MAX_SINGLE_BODY_BYTES} (bulk imports take more)",
        )
    body = request.get_data(cache=True)
    if not takes_files and len(body) > MAX_SINGLE_BODY_BYTES:  # chunked, no length given
        return problem(
            413, "Content Too Large", f"one feature or question may have {MAX_SINGLE_BODY_BYTES}"
        )
    skeleton = json_skeleton(body)
    depth = json_depth(skeleton)
    if depth > MAX_JSON_DEPTH:
        return problem(
            400,
            "Bad Request",
            f"the JSON body nests {depth} levels deep; at most {MAX_JSON_DEPTH} are read",
        )
    if _NON_NUMBERS.search(skeleton):
        return problem(
            400,
            "Bad Request",
            "NaN and Infinity are not JSON numbers: send a number, or null to leave a value out",
        )
    return None


class TextConverter(UnicodeConverter):
    """A path segment without NUL characters (none is stored, and the driver refuses
    them): a URL with one matches no route, so it is answered 404."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\x00]")


def register_guards(app: Flask) -> None:
    """Run :func:`check_request` before every request of ``app``, and read text path
    segments with :class:`TextConverter` (call before blueprints are registered)."""
    app.before_request(check_request)
    app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
    app.extensions["gridmap"].api.register_converter(
        TextConverter, lambda converter: {"type": "string", "pattern": r"^[^/\x00]+$"}
    )
