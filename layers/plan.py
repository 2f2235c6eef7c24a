"""The plan layer: a draft's grids over today's (a layer each, to toggle), its
measures in a box, and the buildings that change grid."""

from __future__ import annotations

from collections.abc import Sequence

import folium

from layers.base import FieldsTooltip, TextTooltip
from layers.grids import KIND_COLOURS, kind_name
from layers.i18n import _

MOVED_COLOUR = "#ff7f00"
#: A plan's status by name (a message of the catalogue: 草案, 已应用).
STATUS_NAMES = {"draft": "draft", "applied": "applied"}


def plan_layer(features: Sequence[dict]) -> folium.FeatureGroup:
    """A draft's grids (``key``, ``kind``, ``households``, ``polsby_popper``, ``note``)."""
    group = folium.FeatureGroup(name=_("plan"))
    for feature in sorted(features, key=lambda f: f["properties"]["kind"] == "micro"):
        p = feature["properties"]
        micro = p["kind"] == "micro"
        folium.GeoJson(
            {
                "type": "Feature",
                "geometry": feature["geometry"],
                "properties": {**p, "kind_name": kind_name(p["kind"])},
            },
            style_function=lambda f, micro=micro: {
                "color": "#5577aa" if micro else "#111",
                "weight": 1 if micro else 2.5,
                "dashArray": "4 3" if micro else None,
                "fillColor": KIND_COLOURS[f["properties"]["kind"]],
                "fillOpacity": 0.05 if micro else 0.3,
            },
        ).add_child(
            FieldsTooltip(
                ["key", "kind_name", "households", "buildings", "polsby_popper", "note"],
                [
                    _("grid"),
                    _("kind"),
                    _("households"),
                    _("buildings"),
                    _("compactness (Polsby-Popper)"),
                    _("note"),
                ],
            )
        ).add_to(group)
    return group


def moved_layer(points: Sequence[tuple[float, float, str]]) -> folium.FeatureGroup:
    """Buildings that change grid, as (lon, lat, text) markers."""
    group = folium.FeatureGroup(name=_("buildings changing grid"))
    for lon, lat, text in points:
        folium.CircleMarker(
            [lat, lon],
            radius=5,
            color=MOVED_COLOUR,
            weight=2,
            fill=True,
            fill_opacity=0.9,
        ).add_child(TextTooltip([text])).add_to(group)
    return group


def metrics_text(summary: dict) -> str:
    """One line of a plan's measures for the summary box, in the page's language."""
    m = summary["metrics"]
    general = m["general_households"]
    valid = m.get("validation") or {}
    in_range = "-" if general["in_range"] is None else f"{general['in_range']:.0%}"
    return _(
        "plan %(id)s (%(status)s): %(general)s general, %(micro)s micro, %(dedicated)s "
        "dedicated grids; %(in_range)s of general grids in range; households changing "
        "grid %(moved)s; %(validator)s",
        id=summary["id"],
        status=_(STATUS_NAMES.get(summary["status"], summary["status"])),
        general=m["grids"].get("general", 0),
        micro=m["grids"].get("micro", 0),
        dedicated=m["grids"].get("dedicated", 0),
        in_range=in_range,
        moved=m["households_moved"],
        validator=_("validator clean") if valid.get("valid") else _("validator NOT clean"),
    )
