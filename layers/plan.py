"""The plan layer: a draft's grids over today's (a layer each, to toggle), its
measures in a box, and the buildings that change grid."""

from __future__ import annotations

from collections.abc import Sequence

import folium

from layers.base import FieldsTooltip, TextTooltip
from layers.grids import KIND_COLOURS

MOVED_COLOUR = "#ff7f00"


def plan_layer(features: Sequence[dict]) -> folium.FeatureGroup:
    """A draft's grids (``key``, ``kind``, ``households``, ``polsby_popper``, ``note``)."""
    group = folium.FeatureGroup(name="方案网格 plan")
    for feature in sorted(features, key=lambda f: f["properties"]["kind"] == "micro"):
        p = feature["properties"]
        micro = p["kind"] == "micro"
        folium.GeoJson(
            {"type": "Feature", "geometry": feature["geometry"], "properties": p},
            style_function=lambda f, micro=micro: {
                "color": "#5577aa" if micro else "#111",
                "weight": 1 if micro else 2.5,
                "dashArray": "4 3" if micro else None,
                "fillColor": KIND_COLOURS[f["properties"]["kind"]],
                "fillOpacity": 0.05 if micro else 0.3,
            },
        ).add_child(
            FieldsTooltip(
                ["key", "kind", "households", "buildings", "polsby_popper", "note"],
                [
                    "网格 key",
                    "类型 kind",
                    "户数 households",
                    "楼栋 buildings",
                    "紧凑度 Polsby-Popper",
                    "备注 note",
                ],
            )
        ).add_to(group)
    return group


def moved_layer(points: Sequence[tuple[float, float, str]]) -> folium.FeatureGroup:
    """Buildings that change grid, as (lon, lat, text) markers."""
    group = folium.FeatureGroup(name="变更网格的楼栋 buildings changing grid")
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
    """One line of a plan's measures for the summary box."""
    m = summary["metrics"]
    general = m["general_households"]
    valid = m.get("validation") or {}
    in_range = "-" if general["in_range"] is None else f"{general['in_range']:.0%}"
    return (
        f"plan {summary['id']} ({summary['status']}): {m['grids'].get('general', 0)} general, "
        f"{m['grids'].get('micro', 0)} micro, {m['grids'].get('dedicated', 0)} dedicated; "
        f"{in_range} of general grids in range; households changing grid "
        f"{m['households_moved']}; validator {'clean' if valid.get('valid') else 'NOT clean'}"
    )
