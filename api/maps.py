"""Map pages (``/maps/grids``, ``/maps/coverage``, ``/maps/plans/ID``), embeds for
other portals (``/embed/...``) and their assets.

Every asset is served from ``layers/static`` (no CDN). Every page runs only scripts
that carry its response's nonce (``api.security_headers`` sends the policy). Pages may
not be framed; embeds may be, by the origins in ``EMBED_ORIGINS``
(``frame-ancestors``), and show viewer data only, whoever asks.

Pages are in Chinese unless English is asked for (``lang=en`` or ``Accept-Language``;
:mod:`layers.i18n`), and a map's errors (a wrong parameter, an unknown area or plan)
are HTML pages in the same language with their status (:func:`layers.site.error_page`),
not the API's problem+json.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import folium
from flask import Blueprint, Response, current_app, g, request, send_from_directory, url_for
from markupsafe import escape
from werkzeug.exceptions import BadRequest, HTTPException

from api import csp_nonce, origin_list
from api.auth import csrf_token, current_principal
from api.database import db_session
from gridmap.coverage import JUNCTION_RULES, METHODS
from gridmap.features import NotFound
from gridmap.models import STATION_KINDS
from gridmap.planning import PlanningProblem
from gridmap.tokens import ANONYMOUS
from layers.assets import STATIC_DIR
from layers.base import BASE_MAPS, render_page, served
from layers.editor import editor_map
from layers.i18n import HTML_LANG, _, language
from layers.pages import (
    DEFAULT_GRID_LAYERS,
    GRID_MAP_LAYERS,
    area_bounds,
    coverage_map,
    grids_map,
    plan_map,
)
from layers.site import error_page

bp = Blueprint("maps", __name__)

#: Query parameters of each kind of map (``lang``: ``zh`` or ``en``, on every page).
MAP_PARAMETERS = {"area", "layers", "base", "colour", "lang"}
COVERAGE_PARAMETERS = {
    "area",
    "kind",
    "minutes",
    "method",
    "junctions",
    "base",
    "sites",
    "lang",
}


def _error_page(status: int, detail: str) -> Response:
    return Response(error_page(status, detail), status=status, mimetype="text/html")


@bp.errorhandler(HTTPException)
def http_error_page(error: HTTPException) -> Response:
    """A map's error as an HTML page (a wrong parameter 400, an unknown plan 404)."""
    response = _error_page(error.code or 500, error.description or error.name)
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):
        if name in error.get_response().headers:
            response.headers[name] = error.get_response().headers[name]
    return response


@bp.errorhandler(NotFound)
def not_found_page(error: NotFound) -> Response:
    """An unknown area or plan, as an HTML page (404)."""
    return _error_page(404, str(error))


@bp.errorhandler(PlanningProblem)
def planning_problem_page(error: PlanningProblem) -> Response:
    """Proposed sites that cannot be worked out (no candidates), as an HTML page (422)."""
    return _error_page(422, str(error))


def _base(allowed: set[str]) -> str:
    """The base map asked for (or configured); 400 for unknown parameters or bases."""
    if any("\x00" in value for value in request.args.values()):
        raise BadRequest(_("query parameters cannot hold a NUL character"))
    unknown = sorted(set(request.args) - allowed - {"lang"})
    if unknown:
        raise BadRequest(_("unknown query parameter(s): %(names)s", names=", ".join(unknown)))
    if request.args.get("lang", "zh") not in ("zh", "en"):
        raise BadRequest(_("lang must be zh or en"))
    base = request.args.get("base", current_app.config["MAP_BASE"])
    names = set(BASE_MAPS) | {"intranet"}
    if base not in names:
        raise BadRequest(_("base must be one of %(names)s", names=", ".join(sorted(names))))
    return current_app.config["MAP_TILE_URL"] or "none" if base == "intranet" else base


def _area() -> str:
    area = request.args.get("area")
    if not area:
        raise BadRequest(_("area is required: a street or community code"))
    return area


def _map_args() -> dict[str, Any]:
    """The grids map's parameters from the query string; 400 for anything wrong."""
    base = _base(MAP_PARAMETERS)
    area = _area()
    layers = [x for x in request.args.get("layers", ",".join(DEFAULT_GRID_LAYERS)).split(",") if x]
    wrong = sorted(set(layers) - set(GRID_MAP_LAYERS))
    if wrong:
        raise BadRequest(
            _(
                "unknown layer(s) %(wrong)s; each must be one of %(names)s",
                wrong=", ".join(wrong),
                names=", ".join(GRID_MAP_LAYERS),
            )
        )
    colour = request.args.get("colour", "kind")
    if colour not in ("kind", "place"):
        raise BadRequest(_("colour must be kind or place"))
    return {"area": area, "layers": layers, "base": base, "by_place": colour == "place"}


def _grids_html(args: dict[str, Any], staff: bool, tools: bool) -> str:
    url = served(url_for("maps.static", filename=""))
    with db_session() as session:
        fmap = grids_map(
            session,
            args["area"],
            url,
            staff=staff,
            layers=args["layers"],
            base=args["base"],
            tile_key=current_app.config["MAP_TILE_KEY"],
            tools=tools,
            by_place=args["by_place"],
        )
    return _page(fmap)


def _page(fmap: folium.Map) -> str:
    """A map's HTML, its scripts carrying this response's nonce."""
    return render_page(fmap, csp_nonce())


@bp.route("/maps/static/<path:filename>")
def static(filename: str) -> Response:
    """A vendored asset (Leaflet, plugins, their images and licences)."""
    return send_from_directory(STATIC_DIR, filename, max_age=86400)


@bp.route("/maps/grids")
def grids_page() -> Response:
    """A full page of an area's grids and stations, with layer control, full screen and
    measuring; staff tokens see worker names in the tooltips."""
    args = _map_args()
    html = _grids_html(args, current_principal().may("staff"), tools=True)
    return Response(html, mimetype="text/html")


@bp.route("/embed/grids")
def grids_embed() -> Response:
    """The grids map for an iframe in another portal: no tools, viewer data only."""
    return _embeddable(_grids_html(_map_args(), staff=False, tools=False))


def _coverage_args() -> dict[str, Any]:
    """The coverage map's parameters from the query string; 400 for anything wrong."""
    base = _base(COVERAGE_PARAMETERS)
    area = _area()
    kind = request.args.get("kind")
    if kind not in STATION_KINDS:
        raise BadRequest(_("kind is required, one of %(names)s", names=", ".join(STATION_KINDS)))
    try:
        minutes = float(request.args.get("minutes", 10))
    except ValueError:
        raise BadRequest(_("minutes must be a number")) from None
    if not 1 <= minutes <= 60:
        raise BadRequest(_("minutes must be between 1 and 60"))
    method = request.args.get("method", "auto")
    if method not in METHODS:
        raise BadRequest(_("method must be one of %(names)s", names=", ".join(METHODS)))
    junctions = request.args.get("junctions")
    if junctions is not None and junctions not in JUNCTION_RULES:
        raise BadRequest(_("junctions must be one of %(names)s", names=", ".join(JUNCTION_RULES)))
    sites = request.args.get("sites")
    if sites is not None and not (sites.isascii() and sites.isdigit() and 1 <= int(sites) <= 20):
        raise BadRequest(_("sites must be a whole number from 1 to 20"))
    return {
        "code": area,
        "kind": kind,
        "minutes": minutes,
        "method": method,
        "junctions": junctions,
        "base": base,
        "sites": int(sites) if sites else None,
    }


def _coverage_html(tools: bool) -> str:
    url = served(url_for("maps.static", filename=""))
    with db_session() as session:
        fmap = coverage_map(
            session,
            url=url,
            tile_key=current_app.config["MAP_TILE_KEY"],
            tools=tools,
            **_coverage_args(),
        )
    return _page(fmap)


def _embeddable(html: str) -> Response:
    """An embed's response: framed by gridmap and the ``EMBED_ORIGINS`` only."""
    g.frame_ancestors = ["'self'", *origin_list(current_app.config["EMBED_ORIGINS"])]
    return Response(html, mimetype="text/html")


@bp.route("/maps/coverage")
def coverage_page() -> Response:
    """Buildings by walking minutes to the nearest station of a kind, gap areas, service
    areas and a summary, with tools."""
    return Response(_coverage_html(tools=True), mimetype="text/html")


@bp.route("/embed/coverage")
def coverage_embed() -> Response:
    """The coverage map for an iframe in another portal (no per-building figures)."""
    return _embeddable(_coverage_html(tools=False))


@bp.route("/maps/plans/<int:plan_id>")
def plan_page(plan_id: int) -> Response:
    """A draft plan over today's grids, its measures and the buildings changing grid."""
    base = _base({"base", "lang"})
    url = served(url_for("maps.static", filename=""))
    with db_session() as session:
        fmap = plan_map(
            session,
            plan_id,
            url,
            staff=current_principal().may("staff"),
            base=base,
            tile_key=current_app.config["MAP_TILE_KEY"],
        )
        html = _page(fmap)
    return Response(html, mimetype="text/html")


@bp.route("/editor")
def editor_page() -> Response:
    """The grid editor of an area. Saving needs a planner signed in at ``/signin``:
    the browser keeps an HttpOnly session cookie, never the token, and the page gets
    the session's CSRF token for its writes."""
    _base({"area", "lang"})
    code = _area()
    with db_session() as session:
        bounds = area_bounds(session, code)
    url = served(url_for("maps.static", filename=""))
    principal = current_principal()
    fmap = editor_map(
        bounds,
        url,
        code,
        url_for("grids.Collection").rsplit("/", 1)[0],
        session={
            "who": None
            if principal is ANONYMOUS
            else {"name": principal.name, "role": principal.role},
            "csrf": csrf_token(),
            "signin": url_for("session.sign_in_page", next=request.full_path),
            "signout": url_for("session.sign_out"),
        },
    )
    response = Response(_page(fmap), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"  # it carries the session's CSRF token
    return response


#: What the snippet page says above the code.
PASTE_HERE = "Paste this into the portal page (its origin must be in GRIDMAP_EMBED_ORIGINS):"


@bp.route("/embed")
def snippet() -> Response:
    """The iframe HTML that embeds a chosen grids view (same parameters as the embed)."""
    args = _map_args()
    query = {k: v for k, v in request.args.items() if k in MAP_PARAMETERS}
    source = url_for("maps.grids_embed", _external=True) + "?" + urlencode(query)
    code = (
        f'<iframe src="{escape(source)}" width="800" height="600" style="border:0" '
        f'title="{escape(_("Grids of %(area)s", area=args["area"]))}" loading="lazy"></iframe>'
    )
    page = (
        f'<!doctype html><html lang="{HTML_LANG[language()]}"><meta charset=utf-8>'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f"<title>{escape(_('Code to embed the grids of %(area)s', area=args['area']))}</title>"
        f"<p>{escape(_(PASTE_HERE))}</p>"
        f"<textarea rows=4 cols=100 readonly>{escape(code)}</textarea>"
        f'<p><a href="/">{escape(_("Home"))}</a></p>'
    )
    return Response(page, mimetype="text/html")
