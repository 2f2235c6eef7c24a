"""The grids layer: polygons coloured by kind (and general grids by place type),
labelled with code and name, tooltips with their figures, and a legend."""

from __future__ import annotations

from collections.abc import Sequence

import folium

from layers.base import FieldsTooltip, Legend, TextLabel, TextTooltip
from layers.i18n import _

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
#: The name of each grid kind (a message of the catalogue: 一般网格 in Chinese).
KIND_NAMES = {
    "master": "master grid",
    "general": "general grid",
    "micro": "micro grid",
    "dedicated": "dedicated grid",
}
#: The name of each place type of general grids.
PLACE_NAMES = {
    "new_build": "new-build estate",
    "old_compound": "old compound",
    "urban_village": "urban village",
    "work_unit": "work unit",
    "suburban": "suburban",
    None: "place type unknown",
}


def kind_name(kind: str) -> str:
    """A grid kind's name in the page's language (``general`` → 一般网格)."""
    return _(KIND_NAMES[kind]) if kind in KIND_NAMES else kind


def place_name(place_type: str | None) -> str:
    """A place type's name in the page's language (``old_compound`` → 老旧型)."""
    return _(PLACE_NAMES[place_type]) if place_type in PLACE_NAMES else str(place_type)


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
    name: str | None = None,
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
    name
        The layer's name in the layer control (网格 when not given).
    show
        Whether the layer is on when the map opens.
    """
    group = folium.FeatureGroup(name=name or _("grids"), show=show)
    fields = ["code", "name", "kind_name", "households", "buildings"]
    aliases = [_("code"), _("name"), _("kind"), _("households"), _("buildings")]
    if staff:
        fields.append("worker_name")
        aliases.append(_("grid worker"))
    ordered = sorted(features, key=lambda f: ORDER[f["properties"]["kind"]])
    for feature in ordered:
        props = {k: feature["properties"].get(k) for k in [*fields, "kind", "place_type"]}
        props["kind_name"] = kind_name(props["kind"])
        folium.GeoJson(
            {"type": "Feature", "geometry": feature["geometry"], "properties": props},
            style_function=_style(by_place),
        ).add_child(FieldsTooltip(fields, aliases)).add_to(group)
    return group


def grid_labels(
    features: Sequence[dict], points: Sequence[tuple[float, float]]
) -> folium.FeatureGroup:
    """Code and name of general and dedicated grids at a point inside each (lon, lat)."""
    group = folium.FeatureGroup(name=_("grid labels"))
    for feature, (lon, lat) in zip(features, points, strict=True):
        p = feature["properties"]
        if p["kind"] not in ("general", "dedicated"):
            continue
        group.add_child(
            TextLabel([lat, lon], [p["code"][-3:], p["name"]], "gridmap-label", (90, 28))
        )
    return group


def grids_legend(by_place: bool = False) -> Legend:
    """The legend of :func:`grids_layer` (bottom left, the stations' is bottom right)."""
    if by_place:
        entries = [(place_name(k), c) for k, c in PLACE_COLOURS.items()]
        return Legend(_("general grids by place type"), entries, corner="left")
    entries = [(kind_name(k), c) for k, c in KIND_COLOURS.items() if k != "master"]
    return Legend(_("grids"), entries, corner="left")


FINDING_COLOURS = {"error": "#d7191c", "warning": "#fdae61"}
#: The name of each kind of validation finding (a message of the catalogue).
FINDING_NAMES = {
    "gap": "gap",
    "overlap": "overlap",
    "outside_parent": "outside its parent",
    "invalid_geometry": "invalid geometry",
    "not_contiguous": "not in one piece",
    "building_unassigned": "building in no grid",
    "building_in_several": "building in several grids",
    "building_split": "building cut by a boundary",
    "households_out_of_range": "households out of range",
    "no_worker": "no grid worker",
    "worker_overloaded": "grid worker overloaded",
}


def finding_name(kind: str) -> str:
    """A finding kind's name in the page's language (``gap`` → 缺口)."""
    return _(FINDING_NAMES[kind]) if kind in FINDING_NAMES else kind


def findings_layer(findings: Sequence[dict]) -> folium.FeatureGroup:
    """The validator's findings where they are (``kind``, ``severity``, ``detail``,
    ``geometry``), errors red and warnings orange; the tooltip names the kind in the
    page's language (the detail is the validator's own words)."""
    group = folium.FeatureGroup(name=_("validation findings"))
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
        ).add_child(
            TextTooltip(
                [
                    _(
                        "%(kind)s: %(detail)s",
                        kind=finding_name(finding["kind"]),
                        detail=finding["detail"],
                    )
                ]
            )
        ).add_to(group)
    return group
