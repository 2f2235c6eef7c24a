"""Whole maps from the database: what a page, an embed or ``gridmap render`` shows.

The layer modules draw plain GeoJSON; this module fetches it once per map and
applies the viewer rule (worker names for staff only, no per-building figures).
"""

from __future__ import annotations

from collections.abc import Sequence

import folium
import shapely
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping, shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap import features
from gridmap.features import NotFound, Query
from gridmap.io.layers import LAYERS
from gridmap.models import Area, Worker
from layers.base import AssetUrl, base_map
from layers.grids import grid_labels, grids_layer, grids_legend
from layers.stations import stations_layer, stations_legend

#: Layers a grids map can show.
GRID_MAP_LAYERS = ("grids", "labels", "stations", "roads")


def _area(session: Session, code: str) -> Area:
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        raise NotFound(f"no area with code {code!r}")
    return area


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


def grids_map(
    session: Session,
    code: str,
    url: AssetUrl,
    staff: bool = False,
    layers: Sequence[str] = GRID_MAP_LAYERS,
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
    boundary = to_shape(_area(session, code).geom)
    fmap = base_map(shapely.bounds(boundary).tolist(), url, base, tile_key, tools)
    if "roads" in layers and base == "none":
        roads = folium.FeatureGroup(name="roads")
        for road in _point_features(session, "roads", code):
            folium.GeoJson(
                road,
                style_function=lambda f: {
                    "color": "#8a8a8a" if f["properties"]["barrier"] else "#bdbdbd",
                    "weight": 3 if f["properties"]["barrier"] else 1.5,
                },
                interactive=False,
            ).add_to(roads)
        roads.add_to(fmap)
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
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap
