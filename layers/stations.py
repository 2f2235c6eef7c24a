"""The stations layer: a marker per station, coloured by kind, and service areas."""

from __future__ import annotations

from collections.abc import Sequence

import folium

from layers.base import Legend, TextTooltip
from layers.i18n import _

KIND_COLOURS = {
    "party_service_center": "#c0392b",
    "service_post": "#e67e22",
    "canteen": "#8e44ad",
    "elderly_care": "#16a085",
    "health_station": "#2980b9",
    "other": "#7f8c8d",
}
#: The name of each station kind (a message of the catalogue: 养老服务站 in Chinese).
KIND_NAMES = {
    "party_service_center": "party and public service centre",
    "service_post": "neighbourhood service post",
    "canteen": "community canteen",
    "elderly_care": "elderly care station",
    "health_station": "health station",
    "other": "other station",
}


def kind_name(kind: str) -> str:
    """A station kind's name in the page's language (``elderly_care`` → 养老服务站)."""
    return _(KIND_NAMES[kind]) if kind in KIND_NAMES else kind


def stations_layer(features: Sequence[dict], name: str | None = None) -> folium.FeatureGroup:
    """A marker per station (GeoJSON point features with ``name``, ``kind``, ``capacity``),
    in a layer named ``name`` (服务站点 when not given)."""
    group = folium.FeatureGroup(name=name or _("stations"))
    for feature in features:
        p = feature["properties"]
        lon, lat = feature["geometry"]["coordinates"]
        folium.CircleMarker(
            [lat, lon],
            radius=7,
            color="white",
            weight=2,
            fill=True,
            fill_color=KIND_COLOURS.get(p["kind"], KIND_COLOURS["other"]),
            fill_opacity=1,
        ).add_child(
            TextTooltip(
                [
                    p["name"],
                    kind_name(p["kind"]),
                    _("capacity %(n)s", n=p["capacity"]) if p.get("capacity") else None,
                ]
            )
        ).add_to(group)
    return group


def stations_legend() -> Legend:
    """The legend of :func:`stations_layer`."""
    return Legend(_("stations"), [(kind_name(k), c) for k, c in KIND_COLOURS.items()])
