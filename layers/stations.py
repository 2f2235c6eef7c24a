"""The stations layer: a marker per station, coloured by kind, and service areas."""

from __future__ import annotations

from collections.abc import Sequence

import folium

from layers.base import Legend, TextTooltip

KIND_COLOURS = {
    "party_service_center": "#c0392b",
    "service_post": "#e67e22",
    "canteen": "#8e44ad",
    "elderly_care": "#16a085",
    "health_station": "#2980b9",
    "other": "#7f8c8d",
}
KIND_NAMES = {
    "party_service_center": "党群服务中心",
    "service_post": "服务站",
    "canteen": "长者食堂",
    "elderly_care": "养老服务",
    "health_station": "卫生服务站",
    "other": "其他",
}


def stations_layer(
    features: Sequence[dict], name: str = "服务站点 stations"
) -> folium.FeatureGroup:
    """A marker per station (GeoJSON point features with ``name``, ``kind``, ``capacity``)."""
    group = folium.FeatureGroup(name=name)
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
                    KIND_NAMES.get(p["kind"], p["kind"]),
                    f"容量 capacity {p['capacity']}" if p.get("capacity") else None,
                ]
            )
        ).add_to(group)
    return group


def stations_legend() -> Legend:
    """The legend of :func:`stations_layer`."""
    return Legend(
        "服务站点 stations", [(f"{KIND_NAMES[k]} {k}", c) for k, c in KIND_COLOURS.items()]
    )
