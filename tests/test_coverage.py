"""Coverage: walking distances checked on paper and against networkx, straight lines by
brute force, and the per-grid, per-station and per-area figures."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from gridmap.coverage.euclidean import nearest_by_air
from gridmap.coverage.network import build_network, building_distances, nearest_stations
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
    rows = list(csv.DictReader(table.open()))
    assert sum(int(r["buildings"]) for r in rows) == len(features)
