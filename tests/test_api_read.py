"""Reading through the API: lists, filters, paging, items, statistics and who sees what."""

from __future__ import annotations

import json

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import shape

from tests.helpers import DEMO_DIR, bearer

COMMUNITY = "510107015001"


def _demo(layer: str) -> list[dict]:
    return json.loads((DEMO_DIR / f"{layer}.geojson").read_text(encoding="utf-8"))["features"]


def test_list_grids_of_a_community_as_geojson(demo_client):
    response = demo_client.get(f"/api/v1/grids?area={COMMUNITY}&kind=general")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    body = response.get_json()
    expected = sorted(
        g["properties"]["code"]
        for g in _demo("grids")
        if g["properties"]["community"] == COMMUNITY and g["properties"]["kind"] == "general"
    )
    assert body["type"] == "FeatureCollection"
    assert sorted(f["properties"]["code"] for f in body["features"]) == expected
    assert body["numberMatched"] == body["numberReturned"] == len(expected)
    assert [link["rel"] for link in body["links"]] == ["self"]


def test_a_street_includes_its_communities(demo_client):
    body = demo_client.get("/api/v1/grids?area=510107015&limit=1000").get_json()
    assert body["numberMatched"] == len(_demo("grids"))


def test_paging_follows_next_links(demo_client):
    seen, url, pages = [], "/api/v1/buildings?limit=700", 0
    while url:
        body = demo_client.get(url).get_json()
        seen += [f["id"] for f in body["features"]]
        assert body["numberMatched"] == len(_demo("buildings"))
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url = nxt[0].replace("http://localhost", "") if nxt else None
        pages += 1
    assert pages == 4  # 2,450 buildings in pages of 700
    assert len(seen) == len(set(seen)) == len(_demo("buildings"))


def test_bbox_filter_matches_an_independent_count(demo_client):
    bbox = (104.04, 30.628, 104.047, 30.633)
    area = shapely.box(*bbox)
    expected = sum(1 for f in _demo("stations") if area.intersects(shape(f["geometry"])))
    body = demo_client.get("/api/v1/stations?bbox=" + ",".join(map(str, bbox))).get_json()
    assert expected > 0
    assert body["numberMatched"] == expected
    assert all(area.intersects(shape(f["geometry"])) for f in body["features"])


def test_grid_statistics_match_the_demo_files(demo_client):
    body = demo_client.get(f"/api/v1/grids?area={COMMUNITY}&kind=general").get_json()
    buildings = [(shape(f["geometry"]).centroid, f["properties"]) for f in _demo("buildings")]
    geod = Geod(ellps="WGS84")
    for feature in body["features"]:
        grid = shape(feature["geometry"])
        inside = [p for point, p in buildings if grid.contains(point)]
        stats = feature["properties"]
        assert stats["buildings"] == len(inside)
        assert stats["households"] == sum(p["households"] for p in inside)
        assert stats["population"] == sum(p["population"] for p in inside)
        assert stats["area_m2"] == pytest.approx(
            abs(geod.geometry_area_perimeter(grid)[0]), rel=1e-4
        )
        # Each old grid's worker serves just that grid.
        assert stats["households_per_worker"] == stats["households"]


def test_one_grid_with_its_etag(demo_client):
    listed = demo_client.get("/api/v1/grids?limit=1").get_json()["features"][0]
    response = demo_client.get(f"/api/v1/grids/{listed['id']}")
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.get_json()["properties"]["code"] == listed["properties"]["code"]


def test_viewers_see_no_household_figures_per_building(demo_client, demo_tokens):
    anonymous = demo_client.get("/api/v1/buildings?limit=5").get_json()["features"]
    viewer = demo_client.get(
        "/api/v1/buildings?limit=5", headers=bearer(demo_tokens["viewer"])
    ).get_json()["features"]
    staff = demo_client.get(
        "/api/v1/buildings?limit=5", headers=bearer(demo_tokens["staff"])
    ).get_json()["features"]
    for features in (anonymous, viewer):
        for f in features:
            assert "households" not in f["properties"] and "population" not in f["properties"]
            assert f["properties"]["use"]
    assert all(isinstance(f["properties"]["households"], int) for f in staff)
    item = demo_client.get(f"/api/v1/buildings/{anonymous[0]['id']}").get_json()
    assert "households" not in item["properties"]


def test_workers_are_for_staff(demo_client, demo_tokens):
    assert demo_client.get("/api/v1/workers").status_code == 401
    refused = demo_client.get("/api/v1/workers", headers=bearer(demo_tokens["viewer"]))
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    body = demo_client.get("/api/v1/workers", headers=bearer(demo_tokens["staff"])).get_json()
    assert body["numberMatched"] == 25
    assert all(f["geometry"] is None and f["properties"]["phone"] for f in body["features"])


def test_bad_tokens_are_refused_not_ignored(demo_client):
    for header in ("Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "):
        response = demo_client.get("/api/v1/grids", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "query, field",
    [
        ("colour=red", "colour"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=104,30,200,31", "bbox"),
        ("bbox=1e2,30,104,31", "bbox"),
        ("bbox=104,30,%20104.1,31", "bbox"),
        ("bbox=104,30,104.1,31%00", "bbox"),
        ("bbox=", "bbox"),
        ("kind=giant", "kind"),
        ("include_retired=perhaps", "include_retired"),
    ],
)
def test_bad_query_parameters_are_400(demo_client, query, field):
    response = demo_client.get(f"/api/v1/grids?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["detail"] and body["instance"] == "/api/v1/grids"


def test_bbox_corners_in_either_order_name_one_box(demo_client):
    one = demo_client.get("/api/v1/stations?bbox=104.04,30.628,104.047,30.633").get_json()
    other = demo_client.get("/api/v1/stations?bbox=104.047,30.633,104.04,30.628").get_json()
    assert one["numberMatched"] == other["numberMatched"] > 0


def test_unknown_area_and_id(demo_client):
    unknown_area = demo_client.get("/api/v1/stations?area=999")
    assert unknown_area.status_code == 404 and "999" in unknown_area.get_json()["detail"]
    missing = demo_client.get("/api/v1/stations/999999")
    assert missing.status_code == 404
    assert missing.get_json()["detail"] == "no station with id 999999"
