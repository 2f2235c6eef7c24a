"""Whole maps from the database: what a page, an embed or ``gridmap render`` shows.

The layer modules draw plain GeoJSON; this module fetches it once per map and
applies the viewer rule (worker names for staff only, no per-building figures).
"""

from __future__ import annotations

from collections.abc import Sequence

import folium
import numpy as np
import shapely
from branca.element import Element
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping, shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap import features
from gridmap.coverage import Coverage, analyse
from gridmap.features import NotFound, Query
from gridmap.io.layers import LAYERS
from gridmap.models import Area, Building, Worker
from gridmap.planning import plan_sites
from gridmap.redraw import plans
from gridmap.topology import validate_area
from layers.base import AssetUrl, LayerControl, base_map, page_title
from layers.coverage import (
    GAP_COLOUR,
    SERVICE_COLOUR,
    SITE_STYLE,
    SummaryBox,
    areas_layer,
    buildings_layer,
    coverage_legend,
    sites_layer,
)
from layers.grids import findings_layer, grid_labels, grids_layer, grids_legend
from layers.i18n import _
from layers.plan import metrics_text, moved_layer, plan_layer
from layers.stations import kind_name, stations_layer, stations_legend

#: Layers a grids map can show (findings: the validator's, drawn where they are).
GRID_MAP_LAYERS = ("grids", "labels", "stations", "roads", "findings")
#: Layers shown when none are asked for.
DEFAULT_GRID_LAYERS = ("grids", "labels", "stations", "roads")
#: A plan's notes shown under its measures (the API lists them all).
PLAN_NOTES_SHOWN = 5


def _area(session: Session, code: str) -> Area:
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        raise NotFound(_("There is no street or community with the code %(code)s.", code=code))
    return area


def area_title(session: Session, code: str) -> str:
    """An area's name and code, for a page's title (``玉林街道 (510107015)``).

    Raises
    ------
    NotFound
    """
    return f"{_area(session, code).name} ({code})"


def area_bounds(session: Session, code: str) -> list[float]:
    """An area's (minlon, minlat, maxlon, maxlat).

    Raises
    ------
    NotFound
    """
    return shapely.bounds(to_shape(_area(session, code).geom)).tolist()


def grid_features(session: Session, code: str, staff: bool) -> list[dict]:
    """The area's active grids as GeoJSON features with their figures."""
    page = features.select_features(session, LAYERS["grids"], Query(area=code))
    stats = features.grid_statistics(session, [r["id"] for r in page.records])
    names = {}
    if staff:
        names = dict(session.execute(select(Worker.code, Worker.name)).all())
    return [
        {
            "type": "Feature",
            "geometry": mapping(geom),
            "properties": {
                **{k: record[k] for k in ("code", "name", "kind", "place_type")},
                "households": stats[record["id"]]["households"],
                "buildings": stats[record["id"]]["buildings"],
                **({"worker_name": names.get(record["worker"])} if staff else {}),
            },
        }
        for record, geom in zip(page.records, page.geoms, strict=True)
    ]


def _point_features(session: Session, layer: str, code: str) -> list[dict]:
    page = features.select_features(session, LAYERS[layer], Query(area=code))
    return [
        {"type": "Feature", "geometry": mapping(geom), "properties": record}
        for record, geom in zip(page.records, page.geoms, strict=True)
    ]


def _roads(session: Session, code: str) -> folium.FeatureGroup:
    roads = folium.FeatureGroup(name=_("roads"))
    for road in _point_features(session, "roads", code):
        folium.GeoJson(
            road,
            style_function=lambda f: {
                "color": "#8a8a8a" if f["properties"]["barrier"] else "#bdbdbd",
                "weight": 3 if f["properties"]["barrier"] else 1.5,
            },
            interactive=False,
        ).add_to(roads)
    return roads


def grids_map(
    session: Session,
    code: str,
    url: AssetUrl,
    staff: bool = False,
    layers: Sequence[str] = DEFAULT_GRID_LAYERS,
    base: str = "none",
    tile_key: str | None = None,
    tools: bool = True,
    by_place: bool = False,
) -> folium.Map:
    """A map of an area's grids (and stations, and its roads when there are no tiles).

    Raises
    ------
    NotFound
        No area has that code.
    """
    fmap = base_map(area_bounds(session, code), url, base, tile_key, tools)
    page_title(fmap, _("Grids of %(area)s", area=area_title(session, code)))
    if "roads" in layers and base == "none":
        _roads(session, code).add_to(fmap)
    if "grids" in layers:
        grids = grid_features(session, code, staff)
        grids_layer(grids, staff=staff, by_place=by_place).add_to(fmap)
        if "labels" in layers:
            points = [
                shapely.get_coordinates(shapely.point_on_surface(shape(g["geometry"])))[0]
                for g in grids
            ]
            grid_labels(grids, points).add_to(fmap)
        fmap.add_child(grids_legend(by_place))
    if "stations" in layers:
        stations_layer(_point_features(session, "stations", code)).add_to(fmap)
        fmap.add_child(stations_legend())
    if "findings" in layers:
        findings_layer(validate_area(session, code).as_dict()["findings"]).add_to(fmap)
    LayerControl().add_to(fmap)
    return fmap


def coverage_map(
    session: Session,
    code: str,
    kind: str,
    url: AssetUrl,
    minutes: float = 10,
    method: str = "auto",
    base: str = "none",
    tile_key: str | None = None,
    tools: bool = True,
    sites: int | None = None,
    junctions: str | None = None,
) -> folium.Map:
    """Who reaches a station of ``kind`` within ``minutes``: buildings by walking
    minutes (no household figures), gap areas, service areas, stations, a summary
    (with the network's pieces, who could not join it, and warnings);
    and with ``sites``, that many proposed new sites (maximal covering from road
    junctions 100 m apart) with each one's gain."""
    where = area_title(session, code)  # an unknown area is NotFound in the page's words
    result = analyse(session, code, kind, minutes, method, junctions=junctions)
    data, frame = result.data, result.data.frame
    fmap = base_map(
        shapely.bounds(frame.to_lonlat(data.area_m)).tolist(), url, base, tile_key, tools
    )
    page_title(
        fmap,
        _(
            "%(kind)s within %(minutes)s minutes: %(area)s",
            kind=kind_name(kind),
            minutes=f"{minutes:g}",
            area=where,
        ),
    )
    if base == "none":
        _roads(session, code).add_to(fmap)
    reached = np.isfinite(result.distance)
    buildings = [
        {
            "type": "Feature",
            "geometry": mapping(frame.to_lonlat(data.buildings.shapes_m[k])),
            "properties": {
                "code": data.buildings.codes[k],
                "minutes": round(float(result.minutes_to[k]), 1) if reached[k] else None,
                "covered": bool(result.covered[k]),
            },
        }
        for k in range(len(data.buildings.ids))
    ]
    service = [mapping(p) for p in result.service_areas() if p is not None]
    areas_layer(service, _("service areas"), SERVICE_COLOUR, dashed=True).add_to(fmap)
    areas_layer([mapping(p) for p in result.gaps()], _("gap areas"), GAP_COLOUR).add_to(fmap)
    buildings_layer(buildings, minutes).add_to(fmap)
    stations = [
        {
            "type": "Feature",
            "geometry": mapping(frame.to_lonlat(shapely.Point(xy))),
            "properties": {"name": name, "kind": kind, "capacity": capacity},
        }
        for xy, name, capacity in zip(
            data.stations.xy, data.stations.names, data.stations.capacity, strict=True
        )
    ]
    stations_layer(stations).add_to(fmap)
    if sites:
        proposal = plan_sites(
            session, code, kind, minutes, method, k=sites, spacing_m=100, junctions=junctions
        )
        sites_layer(proposal["sites"]).add_to(fmap)
        fmap.get_root().header.add_child(Element(SITE_STYLE))
    totals = result.summary()
    share = "-" if totals["share"] is None else f"{totals['share']:.0%}"
    fmap.add_child(
        SummaryBox(
            _(
                "%(kind)s within %(minutes)s min (%(metres)s m, %(method)s): %(covered)s of "
                "%(total)s households (%(share)s)",
                kind=kind_name(kind),
                minutes=f"{minutes:g}",
                metres=f"{result.distance_m:g}",
                method=_(METHOD_NAMES.get(result.method, result.method)),
                covered=f"{totals['households_covered']:,}",
                total=f"{totals['households']:,}",
                share=share,
            )
            + network_note(result)
        )
    )
    fmap.add_child(coverage_legend())
    LayerControl().add_to(fmap)
    return fmap


#: The summary's words on the network: one piece, and more.
NETWORK_NOTES = (
    "network: %(pieces)s piece, not joined: %(buildings)s buildings, %(stations)s stations",
    "network: %(pieces)s pieces, not joined: %(buildings)s buildings, %(stations)s stations",
)
#: How distances were measured, by the coverage result's ``method``.
METHOD_NAMES = {"network": "along the walking network", "euclidean": "straight line"}


def network_note(result: Coverage) -> str:
    """The summary's words on the network: its pieces, who could not join it, warnings
    (a warning's text is the engine's own)."""
    net, note = result.network, ""
    if net is not None:
        note = " · " + _(
            NETWORK_NOTES[net.pieces != 1],
            pieces=net.pieces,
            buildings=net.buildings_not_joined,
            stations=net.stations_not_joined,
        )
    return note + "".join(" · " + _("warning: %(text)s", text=w) for w in result.warnings)


def plan_map(
    session: Session,
    plan_id: int,
    url: AssetUrl,
    staff: bool = False,
    base: str = "none",
    tile_key: str | None = None,
    tools: bool = True,
) -> folium.Map:
    """A draft over today's grids (toggle them in the layer control), its measures,
    and the buildings that change grid."""
    try:
        plan = plans.get_plan(session, plan_id)
    except NotFound:
        raise NotFound(_("There is no plan %(id)s.", id=plan_id)) from None
    code = plan.community.code
    boundary = to_shape(plan.community.geom)
    fmap = base_map(shapely.bounds(boundary).tolist(), url, base, tile_key, tools)
    page_title(fmap, _("Plan %(id)s of %(area)s", id=plan_id, area=area_title(session, code)))
    if base == "none":
        _roads(session, code).add_to(fmap)
    today = [g for g in grid_features(session, code, staff) if g["properties"]["kind"] != "master"]
    grids_layer(today, staff=staff, name=_("today's grids"), show=False).add_to(fmap)
    drafted = [
        {"type": "Feature", "geometry": mapping(geom), "properties": props}
        for props, geom in plans.plan_features(plan)
    ]
    plan_layer(drafted).add_to(fmap)
    moves = plans.diff(session, plan)["moves"]
    where = dict(
        session.execute(
            select(Building.code, Building.point).where(
                Building.code.in_([m["building"] for m in moves])
            )
        ).all()
    )
    points = []
    for move in moves:
        point = to_shape(where[move["building"]])
        points.append(
            (point.x, point.y, f"{move['building']}: {move['from'] or '-'} → {move['to']}")
        )
    moved_layer(points).add_to(fmap)
    summary = plans.summary(plan)
    notes = [_("author: %(name)s", name=summary["author"])]
    notes += [_("note: %(text)s", text=note) for note in summary["notes"][:PLAN_NOTES_SHOWN]]
    fmap.add_child(SummaryBox(metrics_text(summary), notes))
    fmap.add_child(grids_legend())
    LayerControl().add_to(fmap)
    return fmap
