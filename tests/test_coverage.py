"""Coverage: walking distances checked on paper and against networkx, straight lines by
brute force, and the per-grid, per-station and per-area figures."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from gridmap.coverage.euclidean import nearest_by_air
from gridmap.coverage.network import (
    build_network,
    building_distances,
    connectivity,
    nearest_stations,
    road_edges,
    road_levels,
)
from gridmap.settings import CoverageRules


def distances(roads, buildings, stations):
    net = build_network(
        np.array(roads, dtype=object), shapely.points(buildings), shapely.points(stations)
    )
    return building_distances(net, nearest_stations(net))


def test_distances_on_an_l_shaped_street_add_up_on_paper():
    # A street east along y=0 for 100 m, then north along x=100 for 100 m.
    roads = [LineString([(0, 0), (100, 0)]), LineString([(100, 0), (100, 100)])]
    stations = [(0, 10)]  # 10 m north of the street's west end
    buildings = [(50, -5), (105, 60), (100, 100)]
    distance, station = distances(roads, buildings, stations)
    # station connector 10 + along the street + building connector
    assert distance == pytest.approx([10 + 50 + 5, 10 + 100 + 60 + 5, 10 + 100 + 100])
    assert list(station) == [0, 0, 0]


def test_a_building_and_a_station_on_one_edge_are_measured_along_it():
    roads = [LineString([(0, 0), (1000, 0)])]
    distance, _ = distances(roads, [(400, 3)], [(300, -4)])
    assert distance == pytest.approx([4 + 100 + 3])


def test_the_nearest_of_several_stations_wins_and_islands_are_unreachable():
    roads = [
        LineString([(0, 0), (100, 0)]),
        LineString([(100, 0), (200, 0)]),
        LineString([(1000, 0), (1100, 0)]),
    ]  # an island street
    distance, station = distances(roads, [(20, 1), (190, 1), (1050, 1)], [(0, 0), (200, 0)])
    assert distance[:2] == pytest.approx([21, 11])
    assert list(station[:2]) == [0, 1]
    assert np.isinf(distance[2]) and station[2] == -1


def test_network_distances_match_networkx_on_a_random_town():
    rng = np.random.default_rng(7)
    # A 12 x 12 lattice of 80 m blocks with a third of the links missing.
    lines = []
    for i in range(12):
        for j in range(12):
            if i < 11 and rng.random() > 0.3:
                lines.append(LineString([(i * 80, j * 80), ((i + 1) * 80, j * 80)]))
            if j < 11 and rng.random() > 0.3:
                lines.append(LineString([(i * 80, j * 80), (i * 80, (j + 1) * 80)]))
    buildings = rng.uniform(0, 880, size=(300, 2))
    stations = rng.uniform(0, 880, size=(6, 2))
    distance, _ = distances(lines, buildings, stations)

    # Independent reference: split each road at the points attached to it, one by one.
    graph = nx.Graph()
    cut_points = {k: [] for k in range(len(lines))}
    names = []
    for label, points in (("b", buildings), ("s", stations)):
        for n, (x, y) in enumerate(points):
            point = Point(x, y)
            k = min(range(len(lines)), key=lambda e: lines[e].distance(point))
            at = lines[k].interpolate(lines[k].project(point))
            cut_points[k].append((lines[k].project(point), (label, n)))
            graph.add_edge((label, n), ("on", label, n), weight=point.distance(at))
            names.append((label, n))
    for k, line in enumerate(lines):
        (x0, y0), (x1, y1) = line.coords
        chain = [(0.0, ("j", round(x0), round(y0)))]
        chain += [(t, ("on",) + name) for t, name in cut_points[k]]
        chain.append((line.length, ("j", round(x1), round(y1))))
        chain.sort(key=lambda c: c[0])
        for (t0, a), (t1, b) in zip(chain, chain[1:], strict=False):
            graph.add_edge(a, b, weight=t1 - t0)
    sources = [("s", n) for n in range(len(stations))]
    reference = nx.multi_source_dijkstra_path_length(graph, sources)
    expected = np.array([reference.get(("b", n), np.inf) for n in range(len(buildings))])
    assert np.isinf(distance).sum() == np.isinf(expected).sum()
    finite = np.isfinite(expected)
    assert distance[finite] == pytest.approx(expected[finite], abs=1e-6)


def test_straight_line_matches_brute_force():
    rng = np.random.default_rng(3)
    buildings, stations = rng.uniform(0, 2000, (500, 2)), rng.uniform(0, 2000, (20, 2))
    distance, station = nearest_by_air(buildings, stations, 1.3)
    pairwise = np.hypot(*(buildings[:, None, :] - stations[None, :, :]).transpose(2, 0, 1))
    assert station.tolist() == pairwise.argmin(axis=1).tolist()
    assert distance == pytest.approx(pairwise.min(axis=1) * 1.3)
    none, nobody = nearest_by_air(buildings, np.zeros((0, 2)), 1.3)
    assert np.isinf(none).all() and (nobody == -1).all()


def test_life_circles_follow_gb_50180():
    rules = CoverageRules()
    assert [rules.circle_metres(m) for m in (5, 10, 15)] == [300, 500, 1000]
    assert rules.circle_metres(12) == 12 * rules.walking_speed_m_per_min


# -- on the demo town, through the API and the command ---------------------------------


def _demo(layer):
    import json

    from tests.helpers import DEMO_DIR

    return json.loads((DEMO_DIR / f"{layer}.geojson").read_text(encoding="utf-8"))["features"]


def test_straight_line_coverage_of_the_demo_matches_an_independent_count(demo_client):
    from pyproj import Transformer
    from shapely.geometry import shape

    body = demo_client.get(
        "/api/v1/coverage?area=510107015&kind=service_post&method=euclidean"
    ).get_json()
    assert body["method"] == "euclidean" and body["distance_m"] == 500
    to_utm = Transformer.from_crs(4326, 32648, always_xy=True)
    homes = [f for f in _demo("buildings") if f["properties"]["households"] > 0]
    xy = np.array([to_utm.transform(*shape(f["geometry"]).centroid.coords[0]) for f in homes])
    posts = np.array(
        [
            to_utm.transform(*f["geometry"]["coordinates"])
            for f in _demo("stations")
            if f["properties"]["kind"] == "service_post"
        ]
    )
    walk = np.hypot(*(xy[:, None, :] - posts[None, :, :]).transpose(2, 0, 1)).min(axis=1) * 1.3
    households = np.array([f["properties"]["households"] for f in homes])
    clear = np.abs(walk - 500) > 3  # leave out buildings within a few metres of the edge
    summary = body["summary"]
    assert summary["buildings"] == len(homes)
    assert summary["households"] == households.sum()
    assert (
        abs(summary["households_covered"] - households[walk <= 500].sum())
        <= households[~clear].sum()
    )
    loads = sum(s["load"] for s in body["stations"])
    assert loads == summary["households_covered"]
    assert sum(g["households"] for g in body["grids"]) == summary["households"]


def test_network_coverage_is_never_better_than_the_crow_flies(demo_client):
    base = "/api/v1/coverage/buildings?area=510107015001&kind=canteen&limit=1000"
    network = demo_client.get(base + "&method=network").get_json()["features"]
    straight = demo_client.get(base + "&method=euclidean&").get_json()["features"]
    by_code = {f["properties"]["code"]: f["properties"] for f in straight}
    for feature in network:
        walked = feature["properties"]["distance_m"]
        crow = by_code[feature["properties"]["code"]]["distance_m"] / 1.3
        assert walked is None or walked >= crow - 0.5


def test_viewers_get_no_household_figures_per_building(demo_client, demo_tokens):
    url = "/api/v1/coverage/buildings?area=510107015006&kind=canteen&limit=5"
    anonymous = demo_client.get(url).get_json()
    assert anonymous["numberReturned"] == 5
    assert all("households" not in f["properties"] for f in anonymous["features"])
    staff = demo_client.get(url, headers={"Authorization": f"Bearer {demo_tokens['staff']}"})
    assert all(isinstance(f["properties"]["households"], int) for f in staff.get_json()["features"])


def test_gaps_hold_every_uncovered_home_and_service_areas_follow_streets(demo_client):
    from shapely.geometry import shape

    query = "area=510107015&kind=elderly_care"
    gaps = [
        shape(f["geometry"])
        for f in demo_client.get(f"/api/v1/coverage/gaps?{query}").get_json()["features"]
    ]
    homes = demo_client.get(f"/api/v1/coverage/buildings?{query}&limit=1000").get_json()
    uncovered = [shape(f["geometry"]) for f in homes["features"] if not f["properties"]["covered"]]
    assert gaps and uncovered
    union = shapely.union_all(gaps).buffer(1e-7)
    assert all(union.covers(b.representative_point()) for b in uncovered)
    areas = demo_client.get(f"/api/v1/coverage/service-areas?{query}&method=network").get_json()
    circle = np.pi * 500**2
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    sizes = [
        abs(geod.geometry_area_perimeter(shape(f["geometry"]))[0])
        for f in areas["features"]
        if f["geometry"]
    ]
    assert sizes and all(0 < s < circle for s in sizes)


def test_bad_coverage_questions_are_400_or_404(demo_client):
    assert demo_client.get("/api/v1/coverage?area=510107015").status_code == 400
    assert demo_client.get("/api/v1/coverage?area=510107015&kind=spa").status_code == 400
    assert (
        demo_client.get("/api/v1/coverage?area=510107015&kind=canteen&minutes=0").status_code == 400
    )
    assert demo_client.get("/api/v1/coverage?area=nope&kind=canteen").status_code == 404


def test_coverage_command(demo_db_url, tmp_path):
    import csv
    import json

    from tests.helpers import cli_env, run_cli

    out, table = tmp_path / "b.geojson", tmp_path / "grids.csv"
    result = run_cli(
        "coverage",
        "510107015003",
        "--kind",
        "elderly_care",
        "--geojson",
        str(out),
        "--csv",
        str(table),
        env=cli_env(demo_db_url),
    )
    assert "within 10 min (500 m, network)" in result.stdout
    assert result.stdout.strip().splitlines()[-1].split()[0] == "total"
    features = json.loads(out.read_text())["features"]
    # The report per grid (tests/test_reports.py checks it): grids, buildings in no
    # grid, and the community's total.
    rows = list(csv.DictReader(table.open(encoding="utf-8-sig")))
    assert rows[-1]["网格名称"] == "合计"
    assert sum(int(r["住宅楼栋数"]) for r in rows[:-1]) == len(features)


# -- where roads join ----------------------------------------------------------------------


def test_roads_join_where_they_share_a_vertex_in_their_middle():
    # Two OSM-style ways crossing at a vertex both have in their middle.
    roads = [
        LineString([(0, 0), (50, 0), (100, 0)]),
        LineString([(50, -50), (50, 0), (50, 50)]),
    ]
    net = build_network(
        np.array(roads, dtype=object), shapely.points([(50, 51)]), shapely.points([(100, 1)])
    )
    distance, station = building_distances(net, nearest_stations(net))
    assert net.pieces == 1
    assert distance == pytest.approx([1 + 50 + 50 + 1]) and station.tolist() == [0]


def _crossing(levels=None, junctions="crossings", second=((50, -50), (50, 50))):
    # A street along y=0 and one along x=50, digitised without a shared vertex.
    roads = np.array([LineString([(0, 0), (100, 0)]), LineString(second)], dtype=object)
    net = build_network(
        roads,
        shapely.points([(50, 51)]),
        shapely.points([(100, 1)]),
        junctions,
        None if levels is None else np.array(levels),
    )
    return net, building_distances(net, nearest_stations(net))[0][0]


def test_crossings_are_joined_only_when_asked_and_only_at_one_level():
    net, distance = _crossing(junctions="vertices")
    assert net.pieces == 2 and np.isinf(distance)
    net, distance = _crossing()
    assert net.pieces == 1 and distance == pytest.approx(1 + 50 + 50 + 1)
    # bridge=yes over the street: passes over it.
    net, distance = _crossing(road_levels([False, True], [False, False], [None, None]))
    assert net.pieces == 2 and np.isinf(distance)
    # A tunnel under it, and a layer=1 street crossing a bridge (layer 1 too): same rule.
    assert _crossing(road_levels([False, False], [False, True], [None, None]))[0].pieces == 2
    assert _crossing(road_levels([False, True], [False, False], [1, None]))[0].pieces == 1
    # A bridge landing on the street (its end on the street's middle) is joined to it.
    landing = ((50, 50), (50, 0))
    net, distance = _crossing([0, 1], second=landing)
    assert net.pieces == 1 and distance == pytest.approx(1 + 50 + 50 + 1)
    assert _crossing([0, 1], "vertices", second=landing)[0].pieces == 2


def test_a_loose_end_just_short_of_a_road_is_joined_when_noding_crossings():
    roads = np.array(
        [LineString([(0, 0), (100, 0)]), LineString([(50, 50), (50, 0.3)])], dtype=object
    )
    buildings, stations = shapely.points([(50, 51)]), shapely.points([(100, 1)])
    for snap, pieces in ((0.5, 1), (0.2, 2), (0.0, 2)):
        net = build_network(roads, buildings, stations, "crossings", snap_m=snap)
        assert net.pieces == pieces
    net = build_network(roads, buildings, stations, "crossings", snap_m=0.5)
    distance = building_distances(net, nearest_stations(net))[0]
    assert distance == pytest.approx([1 + 50 + 50 + 1])  # 49.7 m of street + 0.3 m joined
    assert build_network(roads, buildings, stations, "vertices", snap_m=0.5).pieces == 2
    # A spur shorter than the snapping distance is not bent back onto its own road.
    spur = np.array(
        [LineString([(0, 0), (100, 0)]), LineString([(50, 0), (50, 0.3)])], dtype=object
    )
    edges = road_edges(spur, "crossings", snap_m=0.5)
    assert sorted(shapely.length(edges.lines).round(6).tolist()) == [0.3, 50, 50]


def test_road_levels_follow_osm():
    levels = road_levels(
        [True, None, False, True, None], [None, True, None, None, None], [None, None, None, 2, -1]
    )
    assert levels.tolist() == [1, -1, 0, 2, -1]
    assert road_levels(n=3).tolist() == [0, 0, 0]


def test_connectivity_counts_pieces_and_who_could_not_join():
    roads = np.array(
        [LineString([(0, 0), (100, 0)]), LineString([(1000, 0), (1100, 0)])], dtype=object
    )
    buildings = shapely.points([(10, 5), (20, 5), (1050, 5), (500, 900)])  # the last: far
    stations = shapely.points([(0, 1), (3000, 3000)])  # the second: far
    net = build_network(roads, buildings, stations, max_connector_m=300)
    figures = connectivity(net)
    assert figures.pieces == 2
    assert figures.buildings_not_joined == 1 and figures.stations_not_joined == 1
    assert figures.main_piece_buildings == 2 and figures.buildings_without_station == 1
    assert figures.off_main_share == pytest.approx(1 / 3)
    distance, station = building_distances(net, nearest_stations(net))
    assert np.isfinite(distance).tolist() == [True, True, False, False]
    assert station.tolist()[2:] == [-1, -1]


# -- a centreline file digitised without shared vertices, through import, API and command ------


def _centreline_town(tmp_path):
    """A 400 m square community with a lattice of streets every 100 m, each drawn as one
    line across the whole town (no shared vertices), the middle north-south street a
    bridge (layer 1) over the others, homes along the streets, one by the bridge, and a
    station in the middle; GeoJSON files per layer."""
    import json

    lon0, lat0 = 104.06, 30.65  # Chengdu
    # Metres to degrees near enough (distances below are checked to 0.5%).
    m_lon, m_lat = 1 / (111_320 * np.cos(np.radians(lat0))), 1 / 110_540

    def lonlat(x, y):
        return [lon0 + x * m_lon, lat0 + y * m_lat]

    def collection(features):
        return json.dumps({"type": "FeatureCollection", "features": features})

    def feature(geometry_type, coordinates, **properties):
        return {
            "type": "Feature",
            "geometry": {"type": geometry_type, "coordinates": coordinates},
            "properties": properties,
        }

    ring = [lonlat(x, y) for x, y in [(-20, -20), (420, -20), (420, 420), (-20, 420), (-20, -20)]]
    roads = []
    for k in range(5):
        # Streets run 10 m past the edge streets, so no two share even an end point; the
        # bridge ends on the edge streets' middles.
        bridge = k == 2
        reach = (0, 400) if bridge else (-10, 410)
        roads.append(
            feature(
                "LineString",
                [lonlat(-10, 100 * k), lonlat(410, 100 * k)],
                **{"class": "residential"},
            )
        )
        roads.append(
            feature(
                "LineString",
                [lonlat(100 * k, reach[0]), lonlat(100 * k, reach[1])],
                **{"class": "residential", "bridge": bridge, "layer": 1 if bridge else None},
            )
        )
    homes = [
        feature("Point", lonlat(x + 50, y + 4), code=f"H{x}-{y}", use="residential", households=10)
        for x in range(0, 400, 100)
        for y in range(0, 500, 100)
    ]
    homes.append(feature("Point", lonlat(204, 250), code="B", use="residential", households=10))
    files = {
        "areas": collection(
            [feature("Polygon", [ring], code="C1", name="Centreline town", level="community")]
        ),
        "roads": collection(roads),
        "buildings": collection(homes),
        "stations": collection(
            [feature("Point", lonlat(150, 203), name="Clinic", kind="health_station")]
        ),
    }
    paths = {}
    for layer, text in files.items():
        paths[layer] = tmp_path / f"{layer}.geojson"
        paths[layer].write_text(text)
    return paths


def test_a_broken_network_is_reported_and_auto_does_not_use_it(
    engine, db_url, client, tokens, tmp_path
):
    from gridmap.io import import_file
    from tests.helpers import cli_env, run_cli

    for layer, path in _centreline_town(tmp_path).items():
        import_file(engine, path, layer)
    query = "/api/v1/coverage?area=C1&kind=health_station"

    auto = client.get(query).get_json()
    # Ten lines meeting nowhere (nine and the bridge): ten pieces, and auto measures by
    # straight line.
    assert auto["method"] == "euclidean"
    assert auto["network"]["pieces"] == 10 and auto["network"]["junctions"] == "vertices"
    assert any("10 pieces" in w for w in auto["warnings"])
    assert any("straight line" in w for w in auto["warnings"])

    forced = client.get(query + "&method=network").get_json()
    assert forced["method"] == "network" and any("10 pieces" in w for w in forced["warnings"])

    crossed = client.get(query + "&junctions=crossings").get_json()
    # Noded where they cross, except on the bridge (x = 200 m), which lands on the
    # streets at its ends: one piece, no warning.
    assert crossed["method"] == "network" and crossed["warnings"] == []
    assert crossed["network"]["pieces"] == 1
    assert crossed["network"]["buildings_not_joined"] == 0
    homes = client.get(
        "/api/v1/coverage/buildings?area=C1&kind=health_station&junctions=crossings&limit=100"
    ).get_json()["features"]
    walked = {f["properties"]["code"]: f["properties"]["distance_m"] for f in homes}
    # The station is 3 m off y=200 at x=150. The home at (50, 104): 50 m west to x=100,
    # 100 m south, 50 m west, 4 m to the door. The home by the bridge at (204, 250) is
    # not reached at the crossing 50 m away but over the bridge's north end: west to
    # x=100, north to y=400, east to x=200, 150 m south along the bridge.
    assert walked["H0-100"] == pytest.approx(3 + 50 + 100 + 50 + 4, rel=0.005)
    assert walked["B"] == pytest.approx(3 + 50 + 200 + 100 + 150 + 4, rel=0.005)
    assert client.get(query + "&junctions=nodes").status_code == 400

    from tests.helpers import bearer

    question = {"area": "C1", "kind": "health_station", "k": 1, "spacing_m": 100}
    sites = client.post(
        "/api/v1/planning/sites", json=question, headers=bearer(tokens["planner"])
    ).get_json()
    assert sites["method"] == "euclidean" and sites["network"]["pieces"] == 10
    assert any("10 pieces" in w for w in sites["warnings"])
    sites = client.post(
        "/api/v1/planning/sites",
        json={**question, "junctions": "crossings"},
        headers=bearer(tokens["planner"]),
    ).get_json()
    assert sites["method"] == "network" and sites["network"]["pieces"] == 1

    page = client.get("/maps/coverage?area=C1&kind=health_station&lang=en").get_data(True)
    assert "network: 10 pieces" in page and "warning: the road network is in 10 pieces" in page
    page = client.get("/maps/coverage?area=C1&kind=health_station&junctions=crossings&lang=en")
    assert "network: 1 piece," in page.get_data(as_text=True)

    env = cli_env(db_url)
    out = run_cli("coverage", "C1", "--kind", "health_station", env=env).stdout
    assert "euclidean" in out.splitlines()[0]
    assert "network (vertices): 10 pieces" in out and "warning: the road network" in out
    out = run_cli(
        "coverage", "C1", "--kind", "health_station", "--junctions", "crossings", env=env
    ).stdout
    assert "network (crossings): 1 piece," in out and "warning" not in out
