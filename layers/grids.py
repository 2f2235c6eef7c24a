"""The grids layer: polygons coloured by kind (and general grids by place type),
labelled with code and name, tooltips with their figures, and a legend."""

from __future__ import annotations

from collections.abc import Sequence

import folium

from layers.base import FieldsTooltip, Legend, TextTooltip, text_html

#: Fill colour by grid kind; the master grid is an outline only.
KIND_COLOURS = {
    "master": "#00000000",
    "general": "#4e79a7",
    "micro": "#b6d7f0",
    "dedicated": "#e15759",
}
#: Fill colour of general grids by place type, when coloured that way.
PLACE_COLOURS = {
    "new_build": "#4e79a7",
    "old_compound": "#f28e2b",
    "urban_village": "#edc948",
    "work_unit": "#76b7b2",
    "suburban": "#59a14f",
    None: "#9c9c9c",
}
KIND_NAMES = {
    "master": "总网格 master",
    "general": "一般网格 general",
    "micro": "微网格 micro",
    "dedicated": "专属网格 dedicated",
}
#: Drawing order: the master grid under everything, micro grids on top.
ORDER = {"master": 0, "general": 1, "dedicated": 1, "micro": 2}


def _style(by_place: bool):
    def style(feature: dict) -> dict:
        p = feature["properties"]
        colour = (
            PLACE_COLOURS.get(p.get("place_type"))
            if by_place and p["kind"] == "general"
            else KIND_COLOURS[p["kind"]]
        )
        return {
            "color": "#222" if p["kind"] != "micro" else "#5577aa",
            "weight": {"master": 3, "micro": 1}.get(p["kind"], 2),
            "dashArray": "4 3" if p["kind"] == "micro" else None,
            "fillColor": colour,
            "fillOpacity": 0 if p["kind"] == "master" else 0.35,
        }

    return style


def grids_layer(
    features: Sequence[dict],
    staff: bool = False,
    by_place: bool = False,
    name: str = "网格 grids",
    show: bool = True,
) -> folium.FeatureGroup:
    """A layer of grid polygons.

    Parameters
    ----------
    features
        GeoJSON features of grids with ``code``, ``name``, ``kind``, ``place_type``,
        ``households``, ``buildings`` and (for staff) ``worker_name``.
    staff
        Show the worker's name in the tooltip (never their contacts).
    by_place
        Colour general grids by place type instead of by kind.
    show
        Whether the layer is on when the map opens.
    """
    group = folium.FeatureGroup(name=name, show=show)
    fields = ["code", "name", "kind", "households", "buildings"]
    aliases = ["编码 code", "名称 name", "类型 kind", "户数 households", "楼栋 buildings"]
    if staff:
        fields.append("worker_name")
        aliases.append("网格员 worker")
    ordered = sorted(features, key=lambda f: ORDER[f["properties"]["kind"]])
    for feature in ordered:
        props = {k: feature["properties"].get(k) for k in [*fields, "place_type"]}
        folium.GeoJson(
            {"type": "Feature", "geometry": feature["geometry"], "properties": props},
            style_function=_style(by_place),
        ).add_child(FieldsTooltip(fields, aliases)).add_to(group)
    return group


def grid_labels(
    features: Sequence[dict], points: Sequence[tuple[float, float]]
) -> folium.FeatureGroup:
    """Code and name of general and dedicated grids at a point inside each (lon, lat)."""
    group = folium.FeatureGroup(name="网格标注 grid labels")
    for feature, (lon, lat) in zip(features, points, strict=True):
        p = feature["properties"]
        if p["kind"] not in ("general", "dedicated"):
            continue
        folium.Marker(
            [lat, lon],
            icon=folium.DivIcon(
                html=(
                    f'<div class="gridmap-label">{text_html(p["code"][-3:])}<br>'
                    f"{text_html(p['name'])}</div>"
                ),
                icon_size=(90, 28),
                icon_anchor=(45, 14),
                class_name="gridmap-label-icon",
            ),
        ).add_to(group)
    return group


def grids_legend(by_place: bool = False) -> Legend:
    """The legend of :func:`grids_layer` (bottom left, the stations' is bottom right)."""
    if by_place:
        entries = [(k or "unknown", c) for k, c in PLACE_COLOURS.items()]
        return Legend("一般网格 place type", entries, corner="left")
    entries = [(KIND_NAMES[k], c) for k, c in KIND_COLOURS.items() if k != "master"]
    return Legend("网格 grids", entries, corner="left")


FINDING_COLOURS = {"error": "#d7191c", "warning": "#fdae61"}


def findings_layer(findings: Sequence[dict]) -> folium.FeatureGroup:
    """The validator's findings where they are (``kind``, ``severity``, ``detail``,
    ``geometry``), errors red and warnings orange."""
    group = folium.FeatureGroup(name="校验问题 validation findings")
    for finding in findings:
        if finding["geometry"] is None:
            continue
        colour = FINDING_COLOURS[finding["severity"]]
        folium.GeoJson(
            finding["geometry"],
            style_function=lambda f, colour=colour: {
                "color": colour,
                "weight": 3,
                "fillColor": colour,
                "fillOpacity": 0.45,
            },
            marker=folium.CircleMarker(radius=6),
        ).add_child(TextTooltip([f"{finding['kind']}: {finding['detail']}"])).add_to(group)
    return group
