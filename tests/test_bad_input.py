"""Every class of bad input of issue 12 is answered 4xx problem+json, and nothing changes.

Each test takes a snapshot of every table the API writes before the request and
compares it after (rows, versions and revisions included); changes to a grid also
check its ETag and the length of its history.
"""

# The write tests' fixtures (planner, community, grid) are imported, then asked for by name.
# ruff: noqa: F811

from __future__ import annotations

import json

import pytest
from pyproj import Transformer

from api.guards import MAX_JSON_DEPTH, MAX_QUERY_BYTES, MAX_SINGLE_BODY_BYTES
from gridmap.geometry import MAX_VERTICES
from tests.helpers import bearer
from tests.test_api_write import (  # noqa: F401 (fixtures)
    COMMUNITY,
    SQUARE,
    community,
    grid,
    planner,
    snapshot,
    station,
)

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    """The response is ``status`` as problem+json; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def building(code: str = "B1", geometry: dict | None = None, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": geometry or {"type": "Point", "coordinates": [104.003, 30.004]},
        "properties": {"code": code, "use": "residential", "households": 10, **props},
    }


def ring(vertices: int, centre=(104.005, 30.005), radius=0.001) -> list[list[float]]:
    """A closed circle-like ring of ``vertices`` distinct positions (plus the closing one)."""
    import math

    points = [
        [
            centre[0] + radius * math.cos(2 * math.pi * k / vertices),
            centre[1] + radius * math.sin(2 * math.pi * k / vertices),
        ]
        for k in range(vertices)
    ]
    return points + [points[0]]


def _history(client, grid_id: int) -> list:
    return client.get(f"/api/v1/grids/{grid_id}/history").get_json()


# -- values outside the column's range, and of the wrong JSON type --------------------


@pytest.mark.parametrize(
    "layer, feature, field, reason",
    [
        ("buildings", building(households=1e20), "households", "at most 2147483647"),
        ("buildings", building(population=2**31), "population", "at most 2147483647"),
        ("stations", station([104.0, 30.0], capacity=2**31), "capacity", "at most"),
        ("stations", station([104.0, 30.0], capacity=-1), "capacity", "at least 0"),
        ("stations", station([104.0, 30.0], capacity="12"), "capacity", "whole number"),
        ("stations", station([104.0, 30.0], capacity=True), "capacity", "whole number"),
        ("stations", station([104.0, 30.0], capacity=1.5), "capacity", "whole number"),
        ("buildings", building(code="X" * 33), "code", "at most 32 characters"),
        ("stations", station([104.0, 30.0], name="x" * 2001), "name", "at most 2000"),
        ("stations", station([104.0, 30.0], name=""), "name", "required"),
        (
            "roads",
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[104, 30], [104.001, 30]]},
                "properties": {"class": "footway", "walkable": "yes"},
            },
            "walkable",
            "true or false",
        ),
    ],
)
def test_values_outside_the_column_or_of_the_wrong_type_are_422(
    client, planner, engine, layer, feature, field, reason
):
    before = snapshot(engine)
    body = assert_problem(client.post(f"/api/v1/{layer}", headers=planner, json=feature), 422)
    assert [e["field"] for e in body["errors"]] == [field]
    assert reason in body["errors"][0]["reason"]
    assert snapshot(engine) == before


def test_a_200_character_worker_code_is_422_not_a_database_error(client, planner, engine):
    before = snapshot(engine)
    worker = {"type": "Feature", "geometry": None, "properties": {"code": "W" * 200, "name": "x"}}
    body = assert_problem(client.post("/api/v1/workers", headers=planner, json=worker), 422)
    assert body["errors"][0]["field"] == "code"
    assert snapshot(engine) == before


def test_out_of_range_values_in_a_change_are_422(client, planner, grid, engine):
    created = client.post("/api/v1/stations", headers=planner, json=station([104.003, 30.004]))
    url = created.headers["Location"]
    before = snapshot(engine)
    for properties in ({"capacity": 2**31}, {"capacity": 1e20}, {"name": None}):
        assert_problem(client.patch(url, headers=planner, json={"properties": properties}), 422)
    assert snapshot(engine) == before


# -- NaN, Infinity, nesting depth: refused before parsing -------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_400(client, planner, engine, literal):
    before = snapshot(engine)
    text = json.dumps(station([104.0, 30.0])).replace('"kind"', f'"capacity": {literal}, "kind"')
    body = assert_problem(
        client.post(
            "/api/v1/stations", headers=planner, data=text, content_type="application/json"
        ),
        400,
    )
    assert "NaN and Infinity" in body["detail"]
    assert snapshot(engine) == before


def test_nan_inside_a_string_is_only_text(client, planner):
    created = client.post(
        "/api/v1/stations", headers=planner, json=station([104.0, 30.0], name="NaN")
    )
    assert created.status_code == 201


@pytest.mark.parametrize("headers", [{}, "planner"], ids=["anonymous", "planner"])
def test_deep_nesting_is_400_before_parsing(client, tokens, engine, headers):
    headers = bearer(tokens["planner"]) if headers == "planner" else {}
    before = snapshot(engine)
    deep = "[" * 10_000 + "]" * 10_000
    for url in ("/api/v1/stations", "/api/v1/stations/import", "/api/v1/plans"):
        body = assert_problem(
            client.post(url, headers=headers, data=deep, content_type="application/json"), 400
        )
        assert f"at most {MAX_JSON_DEPTH}" in body["detail"]
    brackets_in_text = station([104.0, 30.0], name="[" * 100)
    assert client.post("/api/v1/stations", json=brackets_in_text).status_code == 401  # not 400
    assert snapshot(engine) == before


# -- media type, empty and no-op changes ------------------------------------------------


def test_a_change_sent_as_text_plain_is_415_and_changes_nothing(client, planner, grid, engine):
    url = f"/api/v1/grids/{grid['id']}"
    before = snapshot(engine)
    body = assert_problem(
        client.patch(
            url,
            headers={**planner, "If-Match": '"1"'},
            data=json.dumps({"properties": {"name": "改"}}),
            content_type="text/plain",
        ),
        415,
    )
    assert "text/plain" in body["detail"]
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        response = client.post(
            "/api/v1/stations", headers=planner, data="a=b", content_type=content_type
        )
        assert_problem(response, 415)
    assert client.get(url).headers["ETag"] == '"1"'
    assert len(_history(client, grid["id"])) == 1
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "kwargs, status, detail",
    [
        ({}, 400, "nothing to change"),
        ({"json": {}}, 400, "nothing to change"),
        ({"json": {"type": "Feature"}}, 400, "nothing to change"),
        ({"json": {"properties": {}}}, 400, "nothing to change"),
        ({"json": {"properties": {}, "geometry": None}}, 422, "cannot be removed"),
    ],
    ids=["no-body", "empty-object", "type-only", "empty-properties", "null-geometry"],
)
def test_an_empty_change_is_400_without_a_new_version(
    client, planner, grid, engine, kwargs, status, detail
):
    url = f"/api/v1/grids/{grid['id']}"
    before = snapshot(engine)
    response = client.patch(url, headers={**planner, "If-Match": '"1"'}, **kwargs)
    assert detail in assert_problem(response, status)["detail"]
    assert client.get(url).headers["ETag"] == '"1"'
    assert len(_history(client, grid["id"])) == 1
    assert snapshot(engine) == before


def test_a_change_to_what_is_there_answers_200_without_a_new_version(client, planner, grid, engine):
    url = f"/api/v1/grids/{grid['id']}"
    before = snapshot(engine)
    same = {
        "properties": {"name": grid["properties"]["name"], "kind": "general"},
        "geometry": grid["geometry"],
    }
    response = client.patch(url, headers={**planner, "If-Match": '"1"'}, json=same)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.get_json()["properties"]["version"] == 1
    assert len(_history(client, grid["id"])) == 1
    assert snapshot(engine) == before
    stale = client.patch(url, headers={**planner, "If-Match": '"7"'}, json=same)
    assert_problem(stale, 412)  # the version is still checked


# -- coordinates outside their CRS's area or far from every area ------------------------


def test_coordinates_outside_the_crs_area_are_422(client, planner, community, engine):
    before = snapshot(engine)
    # UTM 48N (102-108°E) metres that land near 160°E.
    far_east = Transformer.from_crs(4326, 32648, always_xy=True).transform(160.0, 30.0)
    body = assert_problem(
        client.post(
            "/api/v1/stations?crs=EPSG:32648", headers=planner, json=station(list(far_east))
        ),
        422,
    )
    assert "area of use" in body["errors"][0]["reason"]
    assert body["errors"][0]["location"][0] == pytest.approx(160.0)
    # CGCS2000 (China) in Europe.
    europe = station([10.0, 50.0])
    europe["crs"] = {"type": "name", "properties": {"name": "EPSG:4490"}}
    assert_problem(client.post("/api/v1/stations", headers=planner, json=europe), 422)
    assert snapshot(engine) == before


def test_a_point_12000_km_from_every_area_is_422(client, planner, community, engine):
    before = snapshot(engine)
    # Longitude and latitude sent as if they were Web Mercator metres: near (0, 0).
    body = assert_problem(
        client.post(
            "/api/v1/stations?crs=EPSG:3857", headers=planner, json=station([104.003, 30.004])
        ),
        422,
    )
    assert "km from every street and community" in body["errors"][0]["reason"]
    created = client.post("/api/v1/stations", headers=planner, json=station([104.003, 30.004]))
    moved = client.patch(
        created.headers["Location"],
        headers=planner,
        json={"geometry": {"type": "Point", "coordinates": [2.35, 48.85]}},
    )
    assert_problem(moved, 422)
    assert client.get(created.headers["Location"]).get_json()["geometry"]["coordinates"] == [
        104.003,
        30.004,
    ]
    client.delete(created.headers["Location"], headers=planner)
    assert snapshot(engine) == before


# -- URL length, NUL characters, unknown keys, bbox --------------------------------------


def test_a_long_query_string_is_414_problem_json(client):
    body = assert_problem(client.get("/api/v1/stations?area=" + "1" * MAX_QUERY_BYTES), 414)
    assert str(MAX_QUERY_BYTES) in body["detail"]


def test_a_repeated_query_parameter_is_400(client):
    body = assert_problem(client.get("/api/v1/stations?kind=canteen&kind=other&limit=1"), 400)
    assert [e["field"] for e in body["errors"]] == ["kind"]


@pytest.mark.parametrize("header", ['""', "W/x", '"²"', '"1234567890"', "*"])
def test_an_unreadable_if_match_is_400(client, planner, grid, engine, header):
    before = snapshot(engine)
    response = client.patch(
        f"/api/v1/grids/{grid['id']}",
        headers={**planner, "If-Match": header},
        json={"properties": {"name": "x"}},
    )
    assert_problem(response, 400)
    assert snapshot(engine) == before


def test_nul_characters_are_refused_everywhere(client, planner, tokens, engine):
    before = snapshot(engine)
    assert_problem(
        client.post("/api/v1/stations", headers=planner, json=station([104.0, 30.0], name="a\0b")),
        422,
    )
    assert_problem(
        client.post("/api/v1/stations?reason=a%00b", headers=planner, json=station([104.0, 30.0])),
        400,
    )
    assert_problem(client.get("/api/v1/stations?area=a%00b"), 400)
    # Map pages answer with an HTML page, in Chinese, of the same status.
    for page in ("/maps/grids?area=a%00b", "/maps/coverage?area=x&kind=canteen&sites=%C2%B2"):
        answer = client.get(page)
        assert answer.status_code == 400 and answer.mimetype == "text/html", page
    assert_problem(client.delete("/api/v1/tokens/a%00b", headers=bearer(tokens["admin"])), 404)
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "feature, field",
    [
        ({**station([104.0, 30.0]), "name": "top-level"}, "name"),
        ({**station([104.0, 30.0]), "properties": {"name": "x", "kind": "canteen", "x": 1}}, "x"),
        (
            {**station([104.0, 30.0]), "crs": {"type": "name", "properties": {"href": "x"}}},
            "crs.properties",
        ),
    ],
)
def test_unknown_keys_are_422(client, planner, engine, feature, field):
    before = snapshot(engine)
    body = assert_problem(client.post("/api/v1/stations", headers=planner, json=feature), 422)
    assert any(e["field"].startswith(field) for e in body["errors"]), body["errors"]
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "bbox", ["1,2,3", "a,b,c,d", "1e2,0,1,1", "104,30,190,31", "104,-91,105,31", " 1,2,3,4"]
)
def test_bad_bbox_strings_are_400(client, bbox):
    body = assert_problem(client.get("/api/v1/stations", query_string={"bbox": bbox}), 400)
    assert body["errors"][0]["field"] == "bbox"


# -- limits of one request: vertices per geometry, body size -----------------------------


def test_a_building_over_the_vertex_cap_is_422(client, planner, engine):
    before = snapshot(engine)
    limit = MAX_VERTICES["buildings"]
    footprint = {"type": "Polygon", "coordinates": [ring(limit + 10)]}
    body = assert_problem(
        client.post("/api/v1/buildings", headers=planner, json=building(geometry=footprint)), 422
    )
    assert f"at most {limit}" in body["errors"][0]["reason"]
    assert snapshot(engine) == before
    fits = {"type": "Polygon", "coordinates": [ring(limit - 10)]}
    assert (
        client.post("/api/v1/buildings", headers=planner, json=building(geometry=fits)).status_code
        == 201
    )


def test_a_grid_over_the_vertex_cap_is_422(client, planner, grid, engine):
    url = f"/api/v1/grids/{grid['id']}"
    before = snapshot(engine)
    boundary = {"type": "Polygon", "coordinates": [ring(MAX_VERTICES["grids"] + 1, radius=0.004)]}
    body = assert_problem(
        client.patch(url, headers={**planner, "If-Match": '"1"'}, json={"geometry": boundary}),
        422,
    )
    assert "vertices" in body["errors"][0]["reason"]
    assert client.get(url).headers["ETag"] == '"1"'
    assert snapshot(engine) == before


def test_a_500000_vertex_footprint_is_refused_by_size(client, planner, engine):
    before = snapshot(engine)
    footprint = {"type": "Polygon", "coordinates": [ring(500_000)]}
    text = json.dumps(building(geometry=footprint))
    assert len(text) > MAX_SINGLE_BODY_BYTES
    body = assert_problem(
        client.post(
            "/api/v1/buildings", headers=planner, data=text, content_type="application/json"
        ),
        413,
    )
    assert "bulk imports" in body["detail"]
    assert snapshot(engine) == before


def test_the_openapi_document_states_the_limits(client):
    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    properties = schemas["StationsInProperties"]
    assert properties["additionalProperties"] is False
    assert properties["properties"]["capacity"]["maximum"] == 2**31 - 1
    assert schemas["StationsFeatureIn"]["additionalProperties"] is False
    assert "\\x00" in properties["properties"]["opening_hours"]["pattern"]
    parameters = document["paths"]["/api/v1/stations"]["get"]["parameters"]
    bbox = next(p for p in parameters if p["name"] == "bbox")
    assert bbox["schema"]["pattern"].startswith("^")
    post = document["paths"]["/api/v1/stations"]["post"]["responses"]
    patch = document["paths"]["/api/v1/stations/{item_id}"]["patch"]["responses"]
    assert {"413", "415", "422"} <= set(post) and {"413", "415", "422"} <= set(patch)
    assert SQUARE and COMMUNITY  # the shared fixtures' data is the same as the write tests'


@pytest.mark.parametrize(
    "layer, feature, field",
    [
        (
            "workers",
            {"type": "Feature", "geometry": None, "properties": {"code": "W" * 200, "name": "x"}},
            "code",
        ),
        ("buildings", building(households=1e20), "households"),
        ("stations", station([104.0, 30.0], capacity=2**31), "capacity"),
    ],
)
def test_out_of_range_values_in_an_import_are_422(client, planner, engine, layer, feature, field):
    before = snapshot(engine)
    collection = {"type": "FeatureCollection", "features": [feature]}
    response = client.post(f"/api/v1/{layer}/import", headers=planner, json=collection)
    body = assert_problem(response, 422)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, field)]
    assert snapshot(engine) == before
