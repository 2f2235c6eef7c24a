"""The walking network on real OpenStreetMap data, checked against networkx.

The extracts in ``data/osm`` (the centre of Helsinki and a small part of it) are read
with GDAL's OSM driver. The reference is computed here, independently of gridmap:
ways are split where an OSM coordinate occurs more than once (counted, not looked up
in gridmap), lengths are measured on a local ellipsoidal plane, buildings and stations
are joined to the nearest segment by brute force in numpy, and networkx finds every
building's nearest station. Per building, gridmap must agree on who is reachable (all
but 1%), who is inside the 500 m circle (all but 2%) and, in the median, the distance
(within 2%).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pyogrio.raw
import pytest
import shapely

from gridmap.coverage.network import (
    build_network,
    building_distances,
    connectivity,
    nearest_stations,
    road_levels,
)
from gridmap.geometry import MetricFrame
from gridmap.settings import PROJECT_ROOT, CoverageRules

OSM = PROJECT_ROOT / "data" / "osm"
HELSINKI, SMALL = OSM / "Helsinki.osm.pbf", OSM / "test.osm.pbf"
RULES = CoverageRules()
CIRCLE_M = RULES.circle_metres(10)
JOIN_M = RULES.max_connector_m

# Highway values a pedestrian cannot use, as the OSM wiki's access table has them.
NOT_FOR_WALKING = {"motorway", "motorway_link", "construction", "proposed", "raceway"}
HEALTH = {"pharmacy", "clinic", "doctors", "dentist", "hospital"}
SERVICE = {"post_office", "post_box", "parcel_locker", "atm", "bank", "library", "townhall"}


# -- reading the extracts -----------------------------------------------------------------


def _tags(text: str | None) -> dict[str, str]:
    return dict(re.findall(r'"([^"]+)"=>"([^"]*)"', text or ""))


def _read(path: Path, layer: str) -> tuple[np.ndarray, list[dict]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GDAL on unclosed rings
        meta, _, wkb, columns = pyogrio.raw.read(path, layer=layer)
    names = list(meta["fields"])
    records = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    for record in records:
        record.update({k: v for k, v in _tags(record.pop("other_tags")).items() if k not in record})
    return shapely.from_wkb(wkb, on_invalid="ignore"), records


@dataclass
class Extract:
    """Walkable ways, building points and amenity points of one extract, in lon/lat."""

    ways: np.ndarray
    way_tags: list[dict]
    footprints: np.ndarray
    amenities: np.ndarray
    amenity: list[str | None]


def _walkable(tags: dict) -> bool:
    highway = tags.get("highway")
    if not highway or highway in NOT_FOR_WALKING:
        return False
    return tags.get("foot") != "no" and (
        tags.get("access") not in ("no", "private") or tags.get("foot") in ("yes", "designated")
    )


def load_extract(path: Path) -> Extract:
    lines, line_tags = _read(path, "lines")
    keep = [k for k, tags in enumerate(line_tags) if _walkable(tags) and lines[k] is not None]
    polygons, polygon_tags = _read(path, "multipolygons")
    buildings = [
        k for k, tags in enumerate(polygon_tags) if tags.get("building") and polygons[k] is not None
    ]
    points, point_tags = _read(path, "points")
    return Extract(
        lines[keep],
        [line_tags[k] for k in keep],
        polygons[buildings],
        points,
        [tags.get("amenity") for tags in point_tags],
    )


@pytest.fixture(scope="module")
def helsinki() -> Extract:
    return load_extract(HELSINKI)


@pytest.fixture(scope="module")
def small() -> Extract:
    return load_extract(SMALL)


# -- the independent reference --------------------------------------------------------------


class LocalPlane:
    """Longitude/latitude to metres on a plane touching the WGS 84 ellipsoid at the data's
    mean latitude (meridian and prime-vertical radii of curvature there)."""

    def __init__(self, lonlat: np.ndarray):
        a, f = 6378137.0, 1 / 298.257223563
        e2 = f * (2 - f)
        lat0 = math.radians(float(np.mean(lonlat[:, 1])))
        w = 1 - e2 * math.sin(lat0) ** 2
        self.meridian = a * (1 - e2) / w**1.5
        self.prime = a / math.sqrt(w) * math.cos(lat0)
        self.origin = lonlat.mean(axis=0)

    def __call__(self, lonlat: np.ndarray) -> np.ndarray:
        d = np.radians(np.asarray(lonlat, dtype=float) - self.origin)
        return np.column_stack([d[:, 0] * self.prime, d[:, 1] * self.meridian])


def way_pieces(ways: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
    """Split ways where an OSM coordinate is used more than once (by two ways, or one
    way twice): the junctions of OSM's data model."""
    cleaned = []
    for way in ways:
        kept = [way[0]] + [c for prev, c in zip(way, way[1:], strict=False) if c != prev]
        if len(kept) > 1:
            cleaned.append(kept)
    uses = Counter(c for way in cleaned for c in way)
    pieces = []
    for way in cleaned:
        piece = [way[0]]
        for position in range(1, len(way)):
            piece.append(way[position])
            if uses[way[position]] > 1 and position < len(way) - 1:
                pieces.append(piece)
                piece = [way[position]]
        pieces.append(piece)
    return [p for p in pieces if len(p) > 1]


class Reference:
    """Walking distances on the split ways with networkx."""

    def __init__(self, ways_lonlat: list[list[tuple[float, float]]], plane: LocalPlane):
        self.pieces = way_pieces(ways_lonlat)
        self.plane = plane
        starts, ends, piece_of, offsets = [], [], [], []
        self.lengths = []
        for p, piece in enumerate(self.pieces):
            xy = plane(np.array(piece))
            seg = np.hypot(*np.diff(xy, axis=0).T)
            starts.append(xy[:-1])
            ends.append(xy[1:])
            piece_of += [p] * len(seg)
            offsets.append(np.concatenate([[0.0], np.cumsum(seg)[:-1]]))
            self.lengths.append(float(seg.sum()))
        self.a, self.b = np.concatenate(starts), np.concatenate(ends)
        self.piece_of = np.array(piece_of)
        self.offset = np.concatenate(offsets)

    def roads_graph(self) -> nx.Graph:
        graph = nx.Graph()
        for p, piece in enumerate(self.pieces):
            graph.add_edge(piece[0], piece[-1], weight=self.lengths[p])
        return graph

    def _nearest_segment(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.b - self.a
        dd = np.maximum((d**2).sum(axis=1), 1e-18)
        piece, along, gap = [], [], []
        for chunk in np.array_split(xy, max(1, len(xy) // 50)):
            rel = chunk[:, None, :] - self.a[None, :, :]
            t = np.clip((rel * d[None]).sum(axis=2) / dd[None], 0, 1)
            foot = self.a[None] + t[..., None] * d[None]
            dist = np.hypot(*(chunk[:, None, :] - foot).transpose(2, 0, 1))
            k = dist.argmin(axis=1)
            rows = np.arange(len(chunk))
            piece.append(self.piece_of[k])
            along.append(self.offset[k] + t[rows, k] * np.sqrt(dd[k]))
            gap.append(dist[rows, k])
        return np.concatenate(piece), np.concatenate(along), np.concatenate(gap)

    def distances(self, buildings_lonlat: np.ndarray, stations_lonlat: np.ndarray) -> np.ndarray:
        """Metres from each building to its nearest station (inf: unreachable)."""
        points = np.concatenate([buildings_lonlat, stations_lonlat])
        piece, along, gap = self._nearest_segment(self.plane(points))
        names = [("b", k) for k in range(len(buildings_lonlat))]
        names += [("s", k) for k in range(len(stations_lonlat))]
        graph = nx.Graph()
        on_piece: dict[int, list] = {}
        for name, p, t, g in zip(names, piece, along, gap, strict=True):
            if g <= JOIN_M:
                graph.add_edge(name, ("on", name), weight=g)
                on_piece.setdefault(p, []).append((t, ("on", name)))
        for p, piece_coords in enumerate(self.pieces):
            chain = [(0.0, piece_coords[0])]
            chain += sorted(on_piece.get(p, []), key=lambda c: c[0])
            chain.append((self.lengths[p], piece_coords[-1]))
            for (t0, u), (t1, v) in zip(chain, chain[1:], strict=False):
                w = max(t1 - t0, 0.0)
                if not graph.has_edge(u, v) or graph[u][v]["weight"] > w:
                    graph.add_edge(u, v, weight=w)
        sources = [n for n in names if n[0] == "s" and graph.has_node(n)]
        reach = nx.multi_source_dijkstra_path_length(graph, sources) if sources else {}
        return np.array([reach.get(n, np.inf) for n in names[: len(buildings_lonlat)]])


def _coords(ways: np.ndarray) -> list[list[tuple[float, float]]]:
    return [[tuple(c) for c in shapely.get_coordinates(way).tolist()] for way in ways]


# -- gridmap's side -----------------------------------------------------------------------


def _levels(tags: list[dict]) -> np.ndarray:
    def layer(t: dict) -> int | None:
        value = t.get("layer", "")
        return int(value) if re.fullmatch(r"-?\d+", value) else None

    return road_levels(
        [t.get("bridge", "no") != "no" for t in tags],
        [t.get("tunnel", "no") != "no" for t in tags],
        [layer(t) for t in tags],
    )


def gridmap_distances(
    ways: np.ndarray, levels: np.ndarray, buildings: np.ndarray, stations: np.ndarray
):
    frame = MetricFrame(shapely.box(*shapely.total_bounds(ways)))
    network = build_network(
        frame.to_metric(ways),
        frame.to_metric(shapely.points(buildings)),
        frame.to_metric(shapely.points(stations)),
        levels=levels,
        max_connector_m=JOIN_M,
    )
    distance, _ = building_distances(network, nearest_stations(network))
    return distance, network


def assert_agree(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    """The issue's bar: reachability within 1% of buildings, coverage within 2%,
    median distance ratio within 2%."""
    n = len(ours)
    reach = np.isfinite(ours) != np.isfinite(theirs)
    covered = (ours <= CIRCLE_M) != (theirs <= CIRCLE_M)
    both = np.isfinite(ours) & np.isfinite(theirs) & (theirs > 0)
    ratio = float(np.median(ours[both] / theirs[both]))
    figures = {
        "reach_differs": reach.sum() / n,
        "covered_differs": covered.sum() / n,
        "median_ratio": ratio,
    }
    assert figures["reach_differs"] <= 0.01, figures
    assert figures["covered_differs"] <= 0.02, figures
    assert abs(ratio - 1) <= 0.02, figures
    return figures


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [HELSINKI, SMALL], ids=["helsinki", "small"])
def test_pieces_of_the_network_match_networkx(path):
    extract = load_extract(path)
    reference = Reference(_coords(extract.ways), LocalPlane(shapely.get_coordinates(extract.ways)))
    expected = nx.number_connected_components(reference.roads_graph())
    _, network = gridmap_distances(
        extract.ways, _levels(extract.way_tags), np.zeros((0, 2)), np.zeros((0, 2))
    )
    assert network.pieces == expected
    # The ways meet in their middles: joined only at their ends they fall apart.
    ends = nx.Graph()
    for way in _coords(extract.ways):
        ends.add_edge(way[0], way[-1])
    assert nx.number_connected_components(ends) > 3 * expected


def _building_points(extract: Extract) -> np.ndarray:
    return shapely.get_coordinates(shapely.point_on_surface(shapely.make_valid(extract.footprints)))


def _stations(extract: Extract, amenities: set[str]) -> np.ndarray:
    chosen = [k for k, a in enumerate(extract.amenity) if a in amenities]
    return shapely.get_coordinates(extract.amenities[chosen])


@pytest.mark.parametrize("amenities", [HEALTH, SERVICE], ids=["health", "service"])
def test_helsinki_walking_distances_match_networkx_per_building(helsinki, amenities):
    buildings, stations = _building_points(helsinki), _stations(helsinki, amenities)
    assert len(buildings) > 450 and len(stations) >= 5
    ours, network = gridmap_distances(
        helsinki.ways, _levels(helsinki.way_tags), buildings, stations
    )
    plane = LocalPlane(shapely.get_coordinates(helsinki.ways))
    theirs = Reference(_coords(helsinki.ways), plane).distances(buildings, stations)
    assert_agree(ours, theirs)
    # A city centre is walkable: most buildings are on the network's main piece.
    net = connectivity(network)
    assert net.off_main_share <= RULES.max_off_main_share
    assert np.isfinite(theirs).mean() > 0.9


def test_small_extract_walking_distances_match_networkx(small):
    buildings = _building_points(small)
    stations = shapely.get_coordinates(
        small.amenities[[k for k, a in enumerate(small.amenity) if a]]
    )
    assert len(buildings) > 1000 and len(stations) >= 5
    ours, _ = gridmap_distances(small.ways, _levels(small.way_tags), buildings, stations)
    plane = LocalPlane(shapely.get_coordinates(small.ways))
    theirs = Reference(_coords(small.ways), plane).distances(buildings, stations)
    assert_agree(ours, theirs)


# -- through the database: the existing import and gridmap's coverage ---------------------------


def _feature_collection(geoms: np.ndarray, properties: list[dict]) -> str:
    features = [
        {"type": "Feature", "geometry": json.loads(shapely.to_geojson(g)), "properties": p}
        for g, p in zip(geoms, properties, strict=True)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})


def test_helsinki_coverage_through_import_and_analysis_matches_networkx(helsinki, engine, tmp_path):
    """Roads, buildings and health stations written as GeoJSON, imported with
    ``gridmap.io.import_file`` (the path ``gridmap import`` takes) and measured by
    ``gridmap.coverage.analyse``; the reference walks the roads as the database holds them."""
    from gridmap.coverage import analyse
    from gridmap.db.engine import session_scope
    from gridmap.io import import_file

    # The existing import takes valid footprints only (all or nothing).
    footprints = helsinki.footprints
    fine = shapely.is_valid(footprints) & (shapely.get_num_geometries(footprints) == 1)
    footprints = shapely.get_geometry(footprints[fine], 0)
    stations = helsinki.amenities[[k for k, a in enumerate(helsinki.amenity) if a in HEALTH]]
    area = shapely.box(*shapely.total_bounds(helsinki.ways)).buffer(0.001)

    def level(tags: dict) -> int | None:
        return int(tags["layer"]) if re.fullmatch(r"-?\d+", tags.get("layer", "")) else None

    files = {
        "areas": _feature_collection(
            np.array([area]), [{"code": "HEL", "name": "Helsinki centre", "level": "community"}]
        ),
        "roads": _feature_collection(
            helsinki.ways,
            [
                {
                    "class": t["highway"],
                    "bridge": t.get("bridge", "no") != "no",
                    "tunnel": t.get("tunnel", "no") != "no",
                    "layer": level(t),
                }
                for t in helsinki.way_tags
            ],
        ),
        "buildings": _feature_collection(
            footprints,
            [
                {"code": f"B{k}", "use": "residential", "households": 1}
                for k in range(len(footprints))
            ],
        ),
        "stations": _feature_collection(
            stations, [{"name": f"S{k}", "kind": "health_station"} for k in range(len(stations))]
        ),
    }
    for layer, text in files.items():
        path = tmp_path / f"{layer}.geojson"
        path.write_text(text)
        import_file(engine, path, layer)

    with session_scope(engine) as session:
        result = analyse(session, "HEL", "health_station", method="auto")
    assert result.method == "network" and not result.warnings
    assert result.network.pieces == nx.number_connected_components(
        Reference(
            _coords(helsinki.ways), LocalPlane(shapely.get_coordinates(helsinki.ways))
        ).roads_graph()
    )
    order = np.array([int(code[1:]) for code in result.data.buildings.codes])
    points = shapely.get_coordinates(shapely.point_on_surface(footprints))[order]
    plane = LocalPlane(shapely.get_coordinates(helsinki.ways))
    theirs = Reference(_coords(helsinki.ways), plane).distances(
        points, shapely.get_coordinates(stations)
    )
    assert_agree(result.distance, theirs)


# -- end to end: the OSM file imported with the documented commands ------------------------------


def test_helsinki_imported_from_osm_walks_like_networkx(engine, db_url, tmp_path):
    """The README's tour: the shipped areas, ``gridmap import Helsinki.osm.pbf`` for
    roads, buildings and stations, then ``gridmap coverage`` and ``render``; the reference walks the
    walkable roads as stored, split here at OSM coordinates used more than once."""
    from sqlalchemy import text

    from tests.helpers import cli_env, run_cli

    env = cli_env(db_url)
    # The README's tour, line by line: the shipped street and community, then the extract.
    run_cli("import", str(OSM / "helsinki-areas.geojson"), "--layer", "areas", env=env)
    run_cli("import", str(HELSINKI), "--layer", "roads", env=env)
    run_cli("import", str(HELSINKI), "--layer", "buildings", "--on-invalid", "repair", env=env)
    run_cli("import", str(HELSINKI), "--layer", "stations", env=env)
    out = tmp_path / "coverage.geojson"
    table = run_cli(
        "coverage", "HEL01", "--kind", "health_station", "--geojson", str(out), env=env
    ).stdout
    page = tmp_path / "coverage.html"
    run_cli(
        "render",
        "HEL01",
        "--layer",
        "coverage",
        "--kind",
        "health_station",
        "-o",
        str(page),
        env=env,
    )
    assert "leaflet" in page.read_text(encoding="utf-8").lower()  # the tour's map is written
    assert "(500 m, network)" in table.splitlines()[0]
    assert "warning" not in table

    with engine.connect() as conn:
        roads = conn.execute(text("SELECT ST_AsBinary(geom) FROM roads WHERE walkable")).all()
        stations = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE kind = 'health_station'")
        ).all()
        points = dict(
            (code, (x, y))
            for code, x, y in conn.execute(
                text("SELECT code, ST_X(point), ST_Y(point) FROM buildings WHERE households > 0")
            ).all()
        )
    ways = shapely.from_wkb([bytes(r[0]) for r in roads])
    features = json.loads(out.read_text())["features"]
    assert len(features) == len(points) > 300
    codes = [f["properties"]["code"] for f in features]
    distance = np.array(
        [
            np.inf if f["properties"]["distance_m"] is None else f["properties"]["distance_m"]
            for f in features
        ]
    )
    reference = Reference(_coords(ways), LocalPlane(shapely.get_coordinates(ways)))
    expected = reference.distances(np.array([points[c] for c in codes]), np.array(stations))
    assert_agree(distance, expected)
    # The table's network line counts the pieces networkx counts.
    pieces = nx.number_connected_components(reference.roads_graph())
    assert f"network (vertices): {pieces} pieces" in table
