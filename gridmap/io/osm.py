"""OpenStreetMap tags as gridmap fields: buildings, roads and stations.

An ``.osm.pbf`` or ``.osm`` file is read with GDAL's OSM driver (through pyogrio):
buildings from its ``multipolygons`` layer, roads from ``lines``, stations from
``points`` and from the centroids of ``multipolygons`` that carry an amenity. Tags
without a column of their own are in ``other_tags``, in PostgreSQL hstore text
(``"building:levels"=>"6","layer"=>"-1"``). OSM-derived GeoJSON (overpass turbo,
osmnx, ``ogr2ogr``) carries the same tags as properties.

The mapping from tags to fields is pure (:func:`map_tags`) and documented in
:data:`BUILDING_USES`, :data:`STATION_KINDS` and :func:`road_fields`; a user's own
mapping (``--map``, ``--set``, ``--values``) is applied after it and wins.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.raw
import shapely

#: Layers an OSM mapping exists for.
OSM_LAYERS = ("buildings", "roads", "stations")

#: File name endings read with GDAL's OSM driver.
OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm")

#: ``building=*`` → building use. ``building=yes`` (a building of unknown kind, most
#: of OSM's footprints) is refined by the amenity, shop, office or tourism tags of the
#: same outline (:data:`AMENITY_USES`) and is otherwise taken as residential: in a
#: city's residential districts that is what most unlabelled footprints are, and a
#: mapping (``--values``) or ``--set use=...`` corrects it where it is not.
BUILDING_USES: dict[str, str] = {
    **dict.fromkeys(
        (
            "residential",
            "apartments",
            "house",
            "detached",
            "semidetached_house",
            "terrace",
            "dormitory",
            "bungalow",
            "farm",
            "cabin",
            "houseboat",
            "static_caravan",
            "yes",
        ),
        "residential",
    ),
    **dict.fromkeys(("school", "kindergarten", "university", "college"), "school"),
    **dict.fromkeys(("hospital",), "hospital"),
    **dict.fromkeys(
        ("commercial", "retail", "supermarket", "kiosk", "hotel", "shop", "mall"), "commercial"
    ),
    **dict.fromkeys(("office",), "office"),
    **dict.fromkeys(("industrial", "warehouse", "factory", "manufacture"), "industrial"),
    **dict.fromkeys(
        (
            "public",
            "civic",
            "government",
            "church",
            "cathedral",
            "chapel",
            "mosque",
            "temple",
            "shrine",
            "synagogue",
            "religious",
            "train_station",
            "transportation",
            "museum",
            "fire_station",
            "townhall",
            "library",
            "stadium",
            "sports_hall",
        ),
        "public",
    ),
    **dict.fromkeys(("mixed_use", "mixed"), "mixed"),
}

#: ``amenity=*`` on a ``building=yes`` outline → its use.
AMENITY_USES: dict[str, str] = {
    **dict.fromkeys(("school", "kindergarten", "college", "university"), "school"),
    **dict.fromkeys(("hospital", "clinic"), "hospital"),
    **dict.fromkeys(
        (
            "townhall",
            "courthouse",
            "police",
            "fire_station",
            "library",
            "community_centre",
            "public_building",
            "place_of_worship",
            "post_office",
        ),
        "public",
    ),
}

#: ``amenity=*`` (or ``healthcare=*``, ``social_facility=*``) → station kind. What a
#: Chinese community calls each kind, and the OSM tag closest to it:
#:
#: - party_service_center (党群服务中心): community_centre, townhall, social_centre
#: - service_post (便民服务站): post_office, parcel_locker
#: - canteen (社区食堂): canteen, food_court; social_facility=soup_kitchen
#: - elderly_care (养老服务站): nursing_home; social_facility=nursing_home,
#:   assisted_living, group_home, or social_facility:for=senior
#: - health_station (卫生服务站): clinic, doctors, hospital, pharmacy;
#:   healthcare=centre, clinic, doctor
#:
#: Restaurants, cafés, banks and the rest are not service stations and are not read.
STATION_KINDS: dict[str, str] = {
    **dict.fromkeys(("community_centre", "townhall", "social_centre"), "party_service_center"),
    **dict.fromkeys(("post_office", "parcel_locker"), "service_post"),
    **dict.fromkeys(("canteen", "food_court"), "canteen"),
    **dict.fromkeys(("nursing_home",), "elderly_care"),
    **dict.fromkeys(("clinic", "doctors", "hospital", "pharmacy"), "health_station"),
}
HEALTHCARE_KINDS = dict.fromkeys(("centre", "clinic", "doctor"), "health_station")
SOCIAL_FACILITY_KINDS = {
    "soup_kitchen": "canteen",
    "nursing_home": "elderly_care",
    "assisted_living": "elderly_care",
    "group_home": "elderly_care",
}

#: Highway classes no pedestrian may use.
NOT_WALKABLE = frozenset(
    {"motorway", "motorway_link", "construction", "proposed", "raceway", "bus_guideway"}
)
#: Highway classes a grid boundary should follow (main roads).
BARRIER_CLASSES = frozenset(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
    }
)
#: Highway values that are not ways at all.
NOT_ROADS = frozenset({"proposed", "abandoned", "razed", "no", "disused"})

_HSTORE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*=>\s*(?:"((?:[^"\\]|\\.)*)"|NULL)')
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_other_tags(text: str | None) -> dict[str, str]:
    """Tags from GDAL's ``other_tags`` column (hstore text).

    >>> parse_other_tags('"building:levels"=>"6","name:zh"=>"A \\\\"B\\\\""')
    {'building:levels': '6', 'name:zh': 'A "B"'}
    """
    if not text or not isinstance(text, str):
        return {}

    def unescape(value: str) -> str:
        return re.sub(r"\\(.)", r"\1", value)

    return {
        unescape(key): unescape(value)
        for key, value in ((m.group(1), m.group(2)) for m in _HSTORE.finditer(text))
        if value is not None
    }


def tags_of(record: Mapping[str, Any]) -> dict[str, str]:
    """One feature's OSM tags: its columns (or properties) and its ``other_tags``."""
    tags = parse_other_tags(record.get("other_tags"))
    for key, value in record.items():
        if key == "other_tags" or value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        tags.setdefault(key, str(value) if not isinstance(value, str) else value)
    return tags


def osm_reference(tags: Mapping[str, str]) -> str | None:
    """``way/123``-style name of the OSM object, from whichever id the source gives.

    GDAL's OSM driver gives ``osm_id`` (nodes, lines, relations) or ``osm_way_id``
    (closed ways in ``multipolygons``); overpass turbo gives ``@id`` or ``id`` as
    ``way/123``; osmnx gives ``element_type`` and ``osmid``.
    """
    if tags.get("osm_way_id"):
        return f"way/{tags['osm_way_id']}"
    for key in ("@id", "id"):
        value = tags.get(key, "")
        if "/" in value:
            return value
    if tags.get("element_type") and tags.get("osmid"):
        return f"{tags['element_type']}/{tags['osmid']}"
    if tags.get("osm_id"):
        return f"{tags.get('osm_type', 'osm')}/{tags['osm_id']}"
    return None


def _code(reference: str | None) -> str | None:
    """A building code from an OSM reference (``way/123`` → ``osm-w123``)."""
    if reference is None:
        return None
    kind, _, number = reference.partition("/")
    return f"osm-{kind[:1]}{number}"


def _whole(value: str | None) -> int | None:
    """The first number in a tag value as a whole number ≥ 1, or ``None``."""
    if not value:
        return None
    match = _NUMBER.search(value)
    if not match:
        return None
    number = math.ceil(float(match.group()))
    return number if number >= 1 else None


def _integer(value: str | None) -> int | None:
    if not value:
        return None
    match = re.fullmatch(r"\s*(-?\d+)\s*", value)
    return int(match.group(1)) if match else None


def _yes(value: str | None) -> bool | None:
    if value is None:
        return None
    return value not in ("no", "0", "false")


def building_fields(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """Building fields from tags, or ``None`` when the outline is not a building.

    ``building:levels`` gives floors (the first number, rounded up), and
    ``building:flats`` households where mapped.
    """
    building = tags.get("building")
    if not building or building == "no":
        return None
    use = BUILDING_USES.get(building, "other")
    if building == "yes":
        amenity = tags.get("amenity")
        if amenity in AMENITY_USES:
            use = AMENITY_USES[amenity]
        elif tags.get("shop") or tags.get("tourism") in ("hotel", "hostel", "guest_house"):
            use = "commercial"
        elif tags.get("office"):
            use = "office"
    fields: dict[str, Any] = {
        "code": _code(osm_reference(tags)),
        "name": tags.get("name"),
        "use": use,
        "floors": _whole(tags.get("building:levels")),
    }
    flats = _integer(tags.get("building:flats"))
    if flats is not None and flats >= 0:
        fields["households"] = flats
    return fields


def road_fields(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """Road fields from tags, or ``None`` when the line is not a highway.

    ``class`` is the ``highway`` value. Not walkable: motorways, roads under
    construction, and ways tagged ``foot=no`` or ``access=no``/``private``
    without ``foot=yes``/``designated``. Barriers (where grid boundaries should
    run): tertiary roads and above. ``bridge``, ``tunnel`` (any value but ``no``)
    and ``layer`` are carried, so crossing roads are joined only at one level.
    """
    highway = tags.get("highway")
    if not highway or highway in NOT_ROADS:
        return None
    foot = tags.get("foot")
    walkable = highway not in NOT_WALKABLE
    if foot == "no" or (
        tags.get("access") in ("no", "private") and foot not in ("yes", "designated")
    ):
        walkable = False
    if foot in ("yes", "designated") and highway not in ("construction", "proposed"):
        walkable = True
    return {
        "name": tags.get("name"),
        "class": highway,
        "walkable": walkable,
        "barrier": highway in BARRIER_CLASSES,
        "bridge": _yes(tags.get("bridge")),
        "tunnel": _yes(tags.get("tunnel")),
        "layer": _integer(tags.get("layer")),
    }


def station_kind(tags: Mapping[str, str]) -> str | None:
    """The station kind of a feature's tags (see :data:`STATION_KINDS`), or ``None``."""
    social = tags.get("social_facility")
    if social in SOCIAL_FACILITY_KINDS:
        return SOCIAL_FACILITY_KINDS[social]
    if social and tags.get("social_facility:for") in ("senior", "elderly"):
        return "elderly_care"
    amenity = tags.get("amenity")
    if amenity in STATION_KINDS:
        return STATION_KINDS[amenity]
    return HEALTHCARE_KINDS.get(tags.get("healthcare", ""))


def station_fields(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """Station fields from tags, or ``None`` when the feature is no service station."""
    kind = station_kind(tags)
    if kind is None:
        return None
    what = tags.get("amenity") or tags.get("social_facility") or tags.get("healthcare")
    reference = osm_reference(tags)
    name = tags.get("name") or f"{what} ({reference or 'OSM'})"
    return {
        "name": name,
        "kind": kind,
        "opening_hours": tags.get("opening_hours"),
        "capacity": _integer(tags.get("capacity")),
    }


MAPPERS = {"buildings": building_fields, "roads": road_fields, "stations": station_fields}


@dataclass
class OsmFeatures:
    """Features an OSM mapping selected for one layer.

    Attributes
    ----------
    geoms, records
        The selected features' geometries and gridmap fields.
    source_index
        Each selected feature's index among the features read.
    references
        Each selected feature's OSM reference (``way/123``) where known.
    left_out
        How many features read were not of this layer (a café for stations).
    """

    geoms: list[shapely.Geometry | None]
    records: list[dict[str, Any]]
    source_index: list[int]
    references: list[str | None]
    left_out: int


def map_tags(
    layer: str,
    geoms: Sequence[shapely.Geometry | None],
    records: Sequence[Mapping[str, Any]],
) -> OsmFeatures:
    """Select and map one layer's features from OSM-tagged features.

    Parameters
    ----------
    layer
        ``buildings``, ``roads`` or ``stations``.
    geoms
        The features' geometries (a station drawn as an outline becomes its centroid).
    records
        Each feature's columns or properties (tags, ``other_tags``, ids).

    Returns
    -------
    OsmFeatures
    """
    mapper = MAPPERS[layer]
    out = OsmFeatures([], [], [], [], 0)
    for index, (geom, record) in enumerate(zip(geoms, records, strict=True)):
        tags = tags_of(record)
        fields = mapper(tags)
        if fields is None:
            out.left_out += 1
            continue
        if (
            layer == "stations"
            and geom is not None
            and geom.geom_type in ("Polygon", "MultiPolygon")
            and not geom.is_empty
        ):
            geom = geom.centroid
        out.geoms.append(geom)
        # The tags stay beside the fields, so a user's mapping can still read them.
        out.records.append({**tags, **fields})
        out.source_index.append(index)
        out.references.append(osm_reference(tags))
    return out


def is_osm_file(path: Path) -> bool:
    """Whether a file is read with GDAL's OSM driver (``.osm.pbf``, ``.pbf``, ``.osm``)."""
    return Path(path).name.lower().endswith(OSM_SUFFIXES)


#: GDAL OSM layers each gridmap layer is read from.
OSM_SOURCE_LAYERS = {
    "buildings": ("multipolygons",),
    "roads": ("lines",),
    "stations": ("points", "multipolygons"),
}


def read_osm_layers(path: Path, layer: str) -> tuple[list, list[dict[str, Any]]]:
    """Geometries and columns (with ``osm_type``) of the OSM layers one gridmap layer uses.

    Raises
    ------
    pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError
        GDAL cannot read the file.
    """
    geoms: list = []
    records: list[dict[str, Any]] = []
    for source_layer in OSM_SOURCE_LAYERS[layer]:
        with warnings.catch_warnings():
            # The OSM driver warns of every unclosed or odd ring it meets; those
            # features are checked (and named) like any other.
            warnings.simplefilter("ignore", RuntimeWarning)
            meta, _, wkb, columns = pyogrio.raw.read(path, layer=source_layer)
        names = list(meta["fields"])
        osm_type = "node" if source_layer == "points" else "way"
        count = len(wkb) if wkb is not None else 0
        for i in range(count):
            record = {
                name: (value.item() if isinstance(value, np.generic) else value)
                for name, value in ((n, col[i]) for n, col in zip(names, columns, strict=True))
            }
            if source_layer == "multipolygons" and not record.get("osm_way_id"):
                record["osm_type"] = "relation"
            else:
                record["osm_type"] = osm_type
            records.append(record)
        geoms.extend(wkb if wkb is not None else [])
    return geoms, records
