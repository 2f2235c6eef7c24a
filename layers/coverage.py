"""The coverage layer: buildings coloured by walking minutes to the nearest station of
a kind (uncovered ones distinct), gap areas, service areas, and a summary box."""

from __future__ import annotations

from collections.abc import Sequence

import folium
from branca.element import MacroElement, Template

from layers.base import FieldsTooltip, Legend, TextLabel, TextTooltip
from layers.i18n import _

#: Walking minutes bands: upper bound, colour, label (a message of the catalogue).
BANDS = (
    (5, "#1a9850", "≤ 5 min"),
    (10, "#91cf60", "5-10 min"),
    (15, "#fc8d59", "10-15 min"),
    (float("inf"), "#d73027", "> 15 min or unreachable"),
)
GAP_COLOUR = "#d73027"
SERVICE_COLOUR = "#2c7fb8"


def band(minutes: float | None, circle: float) -> tuple[str, str]:
    """Colour and label of a building's walking minutes (``None``: unreachable), the
    label in the page's language."""
    if minutes is None:
        return BANDS[-1][1], _(BANDS[-1][2])
    for upper, colour, label in BANDS:
        if minutes <= upper:
            return colour, _(label)
    return BANDS[-1][1], _(BANDS[-1][2])


def buildings_layer(features: Sequence[dict], circle: float) -> folium.FeatureGroup:
    """Buildings (footprints or points) with ``code``, ``minutes`` and ``covered``
    (``True``/``False``, shown as 是/否)."""
    group = folium.FeatureGroup(name=_("buildings by walking minutes"))
    yes, no = _("yes"), _("no")
    shown = [
        {
            **f,
            "properties": {
                **f["properties"],
                "covered": yes if f["properties"]["covered"] else no,
            },
        }
        for f in features
    ]

    def style(feature: dict) -> dict:
        colour, _ = band(feature["properties"]["minutes"], circle)
        return {"color": colour, "fillColor": colour, "weight": 1, "fillOpacity": 0.8}

    folium.GeoJson(
        {"type": "FeatureCollection", "features": shown},
        style_function=style,
        marker=folium.CircleMarker(radius=4),
    ).add_child(
        FieldsTooltip(
            ["code", "minutes", "covered"], [_("building"), _("walking minutes"), _("covered")]
        )
    ).add_to(group)
    return group


def areas_layer(
    geometries: Sequence[dict], name: str, colour: str, dashed: bool = False
) -> folium.FeatureGroup:
    """Polygons of one kind (gap areas, service areas), outlined in one colour."""
    group = folium.FeatureGroup(name=name)
    for geometry in geometries:
        folium.GeoJson(
            geometry,
            style_function=lambda f: {
                "color": colour,
                "weight": 2,
                "dashArray": "6 4" if dashed else None,
                "fillColor": colour,
                "fillOpacity": 0.15,
            },
            interactive=False,
        ).add_to(group)
    return group


class SummaryBox(MacroElement):
    """A line of figures (households covered, a plan's measures) at the top left,
    clear of the layer control, with notes under it; all of it shown as text.

    Parameters
    ----------
    text
        The line.
    notes
        Lines under it (a plan's notes), smaller.
    """

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div class="gridmap-summary" style="position: absolute; top: 10px; left: 60px;
             max-width: max(240px, calc(100% - 520px)); z-index: 1000; background: white;
             padding: 6px 12px; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3);
             font: 13px/1.5 sans-serif;">
          {{ this.text|e }}
          {% for note in this.notes %}<br><small>{{ note|e }}</small>{% endfor %}
        </div>
        {% endmacro %}
        """
    )

    def __init__(self, text: str, notes: Sequence[str] = ()):
        super().__init__()
        self._name = "SummaryBox"
        self.text = text
        self.notes = [str(note) for note in notes]


def coverage_legend() -> Legend:
    """The legend of :func:`buildings_layer` and the gap areas."""
    entries = [(_(label), colour) for _upper, colour, label in BANDS]
    return Legend(_("walking minutes"), [*entries, (_("gap area"), GAP_COLOUR)], corner="left")


def sites_layer(sites: Sequence[dict]) -> folium.FeatureGroup:
    """Proposed station sites (``rank``, ``location`` [lon, lat], ``gain_households``)."""
    group = folium.FeatureGroup(name=_("proposed sites"))
    for site in sites:
        lon, lat = site["location"]
        label = TextLabel([lat, lon], [site["rank"]], "gridmap-site", (24, 24))
        label.add_child(
            TextTooltip(
                [
                    _(
                        "proposed site %(rank)s: +%(gain)s households",
                        rank=site["rank"],
                        gain=site["gain_households"],
                    )
                ]
            )
        ).add_to(group)
    return group


SITE_STYLE = (
    "<style>.gridmap-site { width: 22px; height: 22px; border-radius: 50%; background: #111;"
    " color: white; font: bold 12px/22px sans-serif; text-align: center;"
    " border: 2px solid #ffd700; }</style>"
)
