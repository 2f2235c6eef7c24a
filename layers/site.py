"""The pages that are not maps: the home page (streets, communities, their figures and
links to every map) and the page a map error is shown on.

Every name from the data is escaped by the templates (autoescape): a community named
``<img onerror=...>`` is text. The pages run no script.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from jinja2 import Environment
from markupsafe import Markup
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.models import GRID_KINDS, STATION_KINDS
from layers.grids import kind_name as grid_kind_name
from layers.i18n import HTML_LANG, _, language
from layers.stations import kind_name as station_kind_name

_templates = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

#: The look shared by the pages that are not maps (inline styles are allowed; scripts
#: are not).
STYLE = """
body { font: 15px/1.6 "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei",
       "PingFang SC", sans-serif; margin: 0; color: #222; background: #f6f5f1 }
header { background: #24446b; color: white; padding: 12px 20px }
header h1 { margin: 0; font-size: 22px }
header nav a { color: #dce8f5; margin-right: 14px }
main { padding: 12px 20px; max-width: 1200px }
section { background: white; border-radius: 6px; padding: 10px 16px; margin: 14px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,.15) }
h2 { font-size: 19px; margin: 6px 0 }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #e3e1da; padding: 4px 8px; text-align: left;
         vertical-align: top }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums }
.links a { margin-right: 10px; white-space: nowrap }
.lang { float: right }
ul.kinds { list-style: none; padding: 0; margin: 4px 0 10px; columns: 2 }
ul.kinds li { margin: 2px 0 }
@media (max-width: 700px) { ul.kinds { columns: 1 } }
@media (max-width: 700px) {
  main { padding: 6px 8px } section { padding: 6px 8px }
  table, tbody, tr, td { display: block; width: auto }
  thead { display: none }
  tr { border-bottom: 2px solid #ccc; padding: 6px 0 }
  td { border: 0; padding: 2px 4px; text-align: left }
  td.n { text-align: left }
  td[data-label]::before { content: attr(data-label) "："; color: #666 }
}
"""

_LAYOUT = """<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="icon" href="data:,">
<title>{{ title }}</title>
<style>{{ style }}</style>
</head>
<body>
<header>
  <span class="lang"><a href="?lang=zh" style="color:#dce8f5">中文</a> ·
  <a href="?lang=en" style="color:#dce8f5">English</a></span>
  <h1>{{ heading }}</h1>
  <nav><a href="/">{{ _("Home") }}</a><a href="/api/v1/docs">{{ _("API documentation") }}</a></nav>
</header>
<main>
{{ body }}
</main>
</body>
</html>
"""

_HOME = """
<p>{{ _("Streets and communities with their grids, buildings, households and service "
"stations. Open a map, the grid editor or the code to embed a map in a portal.") }}</p>
{% for street in streets %}
<section class="street">
<h2>{{ street.name }} <small>({{ street.code }})</small></h2>
<p class="links">
  <a href="/maps/grids?area={{ street.code|urlencode }}">{{ _("Grid map") }}</a>
  <a href="/maps/grids?area={{ street.code|urlencode }}&amp;colour=place">{{
    _("Grid map by place type") }}</a>
  <a href="/embed?area={{ street.code|urlencode }}">{{ _("Embed code") }}</a>
  {% if reports.workload %}
  {{ _("Workload per grid:") }}
  <a href="{{ reports.workload }}?area={{ street.code|urlencode }}&amp;format=csv">CSV</a>
  <a href="{{ reports.workload }}?area={{ street.code|urlencode }}&amp;format=xlsx">Excel</a>
  {% endif %}
</p>
<p>{{ _("10-minute circle of each kind of station: the map, and coverage per grid to "
"download") }}</p>
<ul class="kinds">
  {% for kind, label in station_kinds %}
  <li class="links"><b>{{ label }}</b>
  <a href="/maps/coverage?area={{ street.code|urlencode }}&amp;kind={{ kind }}">{{
    _("map") }}</a>
  {% if reports.coverage %}
  <a href="{{ reports.coverage }}?area={{ street.code|urlencode }}&amp;kind={{ kind
    }}&amp;format=csv">CSV</a>
  <a href="{{ reports.coverage }}?area={{ street.code|urlencode }}&amp;kind={{ kind
    }}&amp;format=xlsx">Excel</a>
  {% endif %}
  </li>
  {% endfor %}
</ul>
<table>
<thead><tr>
  <th>{{ _("community") }}</th>
  {% for kind, label in grid_kinds %}<th class="n">{{ label }}</th>{% endfor %}
  <th class="n">{{ _("buildings") }}</th><th class="n">{{ _("households") }}</th>
  <th class="n">{{ _("stations") }}</th><th>{{ _("maps") }}</th>
</tr></thead>
<tbody>
{% for c in street.communities %}
<tr class="community" data-code="{{ c.code }}">
  <td data-label="{{ _("community") }}"><b class="name">{{ c.name }}</b>
    <small>({{ c.code }})</small></td>
  {% for kind, label in grid_kinds %}
  <td class="n" data-label="{{ label }}" data-figure="grids-{{ kind }}">{{
    c.grids.get(kind, 0) }}</td>
  {% endfor %}
  <td class="n" data-label="{{ _("buildings") }}" data-figure="buildings">{{ c.buildings }}</td>
  <td class="n" data-label="{{ _("households") }}" data-figure="households">{{ c.households }}</td>
  <td class="n" data-label="{{ _("stations") }}" data-figure="stations">{{ c.stations }}</td>
  <td class="links" data-label="{{ _("maps") }}">
    <a href="/maps/grids?area={{ c.code|urlencode }}">{{ _("Grid map") }}</a>
    <a href="/editor?area={{ c.code|urlencode }}">{{ _("Grid editor") }}</a>
    {% for plan_id, status in c.plans %}
    <a href="/maps/plans/{{ plan_id }}">{{ _("Plan %(id)s (%(status)s)", id=plan_id,
      status=_(status)) }}</a>
    {% endfor %}
  </td>
</tr>
{% endfor %}
</tbody>
</table>
</section>
{% else %}
<p>{{ _("No street has been loaded yet: run gridmap demo, or import areas.") }}</p>
{% endfor %}
"""

_ERROR = """
<section class="error">
<h2>{{ heading }}</h2>
<p class="detail">{{ detail }}</p>
<p><a href="/">{{ _("Back to the list of streets and communities") }}</a></p>
</section>
"""


@dataclass
class Community:
    """A community and its figures on the home page."""

    code: str
    name: str
    grids: dict[str, int] = field(default_factory=dict)
    buildings: int = 0
    households: int = 0
    stations: int = 0
    plans: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Street:
    """A street and its communities."""

    code: str
    name: str
    communities: list[Community] = field(default_factory=list)


def streets(session: Session) -> list[Street]:
    """Every street with its communities and their figures: active grids per kind,
    buildings and households whose point lies in the community, stations in it, and
    its plans (id, status)."""
    found: dict[str, Street] = {}
    rows = session.execute(
        text(
            "SELECT s.code, s.name, c.id, c.code, c.name, "
            "(SELECT count(*) FROM buildings b WHERE ST_Intersects(c.geom, b.point)), "
            "(SELECT coalesce(sum(b.households), 0) FROM buildings b "
            " WHERE ST_Intersects(c.geom, b.point)), "
            "(SELECT count(*) FROM stations t WHERE ST_Intersects(c.geom, t.geom)) "
            "FROM areas s LEFT JOIN areas c ON c.parent_id = s.id AND c.level = 'community' "
            "WHERE s.level = 'street' ORDER BY s.code, c.code"
        )
    ).all()
    communities: dict[int, Community] = {}
    for street_code, street_name, cid, code, name, buildings, households, stations in rows:
        street = found.setdefault(street_code, Street(street_code, street_name))
        if cid is not None:
            community = Community(code, name, {}, buildings, int(households), stations)
            communities[cid] = community
            street.communities.append(community)
    grids = session.execute(
        text(
            "SELECT community_id, kind, count(*) FROM grids WHERE active "
            "GROUP BY community_id, kind"
        )
    ).all()
    for cid, kind, n in grids:
        if cid in communities:
            communities[cid].grids[kind] = n
    plans = session.execute(text("SELECT community_id, id, status FROM plans ORDER BY id")).all()
    for cid, plan_id, status in plans:
        if cid in communities:
            communities[cid].plans.append((plan_id, status))
    return list(found.values())


def _page(title: str, heading: str, body: str) -> str:
    return _templates.from_string(_LAYOUT).render(
        lang=HTML_LANG[language()],
        title=title,
        heading=heading,
        body=body,
        style=Markup(STYLE),
        _=_,
    )


def home_page(found: Sequence[Street], reports: Mapping[str, str] | None = None) -> str:
    """The HTML of the home page: each street, its communities and figures, and links
    to every map of them.

    Parameters
    ----------
    found
        The streets (:func:`streets`).
    reports
        Addresses of the reports to download as CSV and Excel: ``workload`` (takes
        ``area``) and ``coverage`` (takes ``area`` and ``kind``); links are left out
        for a report not given.
    """
    body = _templates.from_string(_HOME).render(
        streets=found,
        reports=dict(reports or {}),
        grid_kinds=[(k, grid_kind_name(k)) for k in GRID_KINDS if k != "master"],
        station_kinds=[(k, station_kind_name(k)) for k in STATION_KINDS],
        _=_,
    )
    title = _("gridmap: streets and communities")
    return _page(title, title, Markup(body))


def error_page(status: int, detail: str) -> str:
    """The HTML of a map's error: what went wrong, in the page's language.

    Parameters
    ----------
    status
        The HTTP status (400: a wrong parameter, 404: no such area or plan).
    detail
        What was wrong, shown as text.
    """
    heading = {
        400: _("The map cannot be drawn: a parameter is wrong"),
        404: _("Not found"),
        422: _("The map cannot be drawn"),
    }.get(status, _("The map cannot be shown"))
    body = _templates.from_string(_ERROR).render(heading=heading, detail=detail, _=_)
    return _page(f"{heading} ({status})", heading, Markup(body))
