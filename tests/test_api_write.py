"""Writing through the API: roles, every class of bad input, versions, history, import."""

from __future__ import annotations

import io
import json

import pytest
from pyproj import Transformer
from sqlalchemy import text

from tests.helpers import bearer

COMMUNITY = "510107015001"
SQUARE = [[[104.0, 30.0], [104.01, 30.0], [104.01, 30.01], [104.0, 30.01], [104.0, 30.0]]]
WEST = [[[104.0, 30.0], [104.005, 30.0], [104.005, 30.01], [104.0, 30.01], [104.0, 30.0]]]


def snapshot(engine) -> dict:
    """Everything the API could have written, to show a refused request changed nothing."""
    with engine.connect() as conn:
        return {
            table: conn.execute(
                text(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY "
                    f"t::text), '')) FROM {table} t"
                )
            ).scalar()
            for table in (
                "areas",
                "grids",
                "buildings",
                "stations",
                "roads",
                "workers",
                "grid_revisions",
            )
        }


def station(coords, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": coords},
        "properties": {"name": "便民服务站", "kind": "service_post", **props},
    }


@pytest.fixture
def planner(tokens) -> dict[str, str]:
    return bearer(tokens["planner"])


@pytest.fixture
def community(client, planner) -> int:
    response = client.post(
        "/api/v1/areas",
        headers=planner,
        json={
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": SQUARE},
            "properties": {"code": COMMUNITY, "name": "玉林社区", "level": "community"},
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def grid(client, planner, community) -> dict:
    response = client.post(
        "/api/v1/grids?reason=first%20draft",
        headers=planner,
        json={
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": WEST},
            "properties": {
                "code": f"{COMMUNITY}001",
                "name": "一网格",
                "kind": "general",
                "community": COMMUNITY,
            },
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_read_update_delete_a_station(client, planner, engine):
    created = client.post(
        "/api/v1/stations", headers=planner, json=station([104.003, 30.004], capacity=1500)
    )
    assert created.status_code == 201
    assert created.mimetype == "application/geo+json"
    location = created.headers["Location"]
    assert location.endswith(f"/api/v1/stations/{created.get_json()['id']}")
    assert client.get(location).get_json()["properties"]["capacity"] == 1500

    changed = client.patch(location, headers=planner, json={"properties": {"capacity": 900}})
    assert changed.status_code == 200
    assert changed.get_json()["properties"] == {**created.get_json()["properties"], "capacity": 900}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT capacity, ST_X(geom) FROM stations")).one() == (
            900,
            104.003,
        )

    assert client.delete(location, headers=planner).status_code == 204
    assert client.get(location).status_code == 404


def test_anonymous_and_lower_roles_cannot_write(client, tokens, engine):
    before = snapshot(engine)
    anonymous = client.post("/api/v1/stations", json=station([104.0, 30.0]))
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    for role in ("viewer", "staff"):
        refused = client.post(
            "/api/v1/stations", headers=bearer(tokens[role]), json=station([104.0, 30.0])
        )
        assert refused.status_code == 403
        assert "planner" in refused.get_json()["detail"]
    assert snapshot(engine) == before


BAD_GEOMETRIES = [
    pytest.param(
        {
            "type": "Polygon",
            "coordinates": [
                [[104.0, 30.0], [104.01, 30.01], [104.01, 30.0], [104.0, 30.01], [104.0, 30.0]]
            ],
        },
        "Self-intersection",
        [104.005, 30.005],
        id="self-intersecting",
    ),
    pytest.param(
        {
            "type": "Polygon",
            "coordinates": [[[104.0, 30.0], [104.01, 30.0], [104.01, 30.01], [104.0, 30.01]]],
        },
        "not closed",
        [104.0, 30.0],
        id="unclosed-ring",
    ),
    pytest.param(
        {
            "type": "Polygon",
            "coordinates": [[[104.0, 30.0], [194.0, 30.0], [194.0, 31.0], [104.0, 30.0]]],
        },
        "outside longitude",
        [194.0, 30.0],
        id="out-of-range",
    ),
    pytest.param(
        {"type": "Point", "coordinates": [104.0, 30.0]},
        "is not one of Polygon, MultiPolygon",
        None,
        id="wrong-type",
    ),
    pytest.param({"type": "Polygon", "coordinates": []}, "empty geometry", None, id="empty"),
    pytest.param(
        {
            "type": "Polygon",
            "coordinates": [[[104.0, 30.0], ["a", 30.0], [104.01, 30.01], [104.0, 30.0]]],
        },
        "must be numbers",
        None,
        id="not-numbers",
    ),
    pytest.param({"type": "Hexagon", "coordinates": []}, "is not one of", None, id="unknown-type"),
    pytest.param(None, "missing geometry", None, id="missing"),
]


@pytest.mark.parametrize("geometry, reason, location", BAD_GEOMETRIES)
def test_bad_geometry_is_422_with_where_and_nothing_written(
    client, planner, community, engine, geometry, reason, location
):
    before = snapshot(engine)
    response = client.post(
        "/api/v1/grids",
        headers=planner,
        json={
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "code": f"{COMMUNITY}009",
                "name": "x",
                "kind": "general",
                "community": COMMUNITY,
            },
        },
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    (error,) = body["errors"]
    assert error["field"] == "geometry" and reason in error["reason"]
    if location is not None:
        assert error["location"] == pytest.approx(location)
    assert reason in body["detail"]
    assert snapshot(engine) == before


def test_nan_coordinates_are_refused(client, planner, engine):
    before = snapshot(engine)
    payload = json.dumps(station([float("nan"), 30.0]))  # Python writes the NaN literal
    response = client.post(
        "/api/v1/stations", headers=planner, data=payload, content_type="application/geo+json"
    )
    assert response.status_code == 400  # NaN is no JSON number: refused before parsing
    assert "NaN" in response.get_json()["detail"]
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "properties, field, reason",
    [
        ({"capacity": "many"}, "capacity", "whole number"),
        ({"capacity": -3}, "capacity", "at least 0"),
        ({"kind": "spaceport"}, "kind", "must be one of"),
        ({"name": None}, "name", "required"),
        ({"capcity": 10}, "capcity", "unknown field"),
        ({"community": "999"}, "community", "no areas with code '999'"),
    ],
)
def test_bad_properties_are_422_and_nothing_written(
    client, planner, engine, properties, field, reason
):
    before = snapshot(engine)
    feature = station([104.0, 30.0])
    feature["properties"].update(properties)
    response = client.post("/api/v1/stations", headers=planner, json=feature)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert reason in errors[0]["reason"]
    assert snapshot(engine) == before


def test_body_that_is_not_a_feature_is_422(client, planner, engine):
    before = snapshot(engine)
    for body in ({"type": "FeatureCollection"}, {"geometry": 5, "type": "Feature"}, [1, 2]):
        response = client.post("/api/v1/stations", headers=planner, json=body)
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"
    broken = client.post(
        "/api/v1/stations", headers=planner, data="{not json", content_type="application/json"
    )
    assert broken.status_code in (400, 422)
    assert snapshot(engine) == before


def test_cgcs2000_is_taken_as_is_and_utm_is_reprojected(client, planner, engine):
    named = station([104.01, 30.02])
    named["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
    assert client.post("/api/v1/stations", headers=planner, json=named).status_code == 201
    utm = client.post(
        "/api/v1/stations?crs=EPSG:32648", headers=planner, json=station([407514.6, 3388440.5])
    )
    assert utm.status_code == 201
    expected = Transformer.from_crs(32648, 4326, always_xy=True).transform(407514.6, 3388440.5)
    assert utm.get_json()["geometry"]["coordinates"] == pytest.approx(list(expected), abs=1e-9)
    with engine.connect() as conn:
        first = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM stations ORDER BY id")
        ).first()
    assert tuple(first) == (104.01, 30.02)
    unknown = client.post(
        "/api/v1/stations?crs=EPSG:999999", headers=planner, json=station([104.0, 30.0])
    )
    assert unknown.status_code == 422 and "unknown CRS" in unknown.get_json()["detail"]


def test_oversized_payload_is_413(db_url, tokens, engine):
    from api import create_app

    small = create_app({"DATABASE_URL": db_url, "MAX_CONTENT_LENGTH": 1024}).test_client()
    before = snapshot(engine)
    feature = station([104.0, 30.0], opening_hours="x" * 2000)
    response = small.post("/api/v1/stations", headers=bearer(tokens["planner"]), json=feature)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert snapshot(engine) == before


def test_grid_updates_need_the_current_version(client, planner, grid, engine):
    url = f"/api/v1/grids/{grid['id']}"
    etag = client.get(url).headers["ETag"]
    assert etag == '"1"'
    patch = {"properties": {"name": "一网格（调整）"}}
    missing = client.patch(url, headers=planner, json=patch)
    assert missing.status_code == 428
    stale = client.patch(url, headers={**planner, "If-Match": '"7"'}, json=patch)
    assert stale.status_code == 412 and stale.headers["ETag"] == '"1"'
    done = client.patch(url + "?reason=rename", headers={**planner, "If-Match": etag}, json=patch)
    assert done.status_code == 200 and done.headers["ETag"] == '"2"'
    assert done.get_json()["properties"]["name"] == "一网格（调整）"
    again = client.patch(url, headers={**planner, "If-Match": etag}, json=patch)
    assert again.status_code == 412  # the loser of a race gets 412, not an overwrite
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT version, action, author, reason, before->>'name', "
                "after->>'name' FROM grid_revisions ORDER BY id"
            )
        ).all()
    assert rows == [
        (1, "insert", "test-planner", "first draft", None, "一网格"),
        (2, "update", "test-planner", "rename", "一网格", "一网格（调整）"),
    ]


def test_history_and_revert(client, planner, grid):
    # A rename, then back: reverting a boundary that would reopen a gap is refused
    # (tests/test_editing.py), so the layout-neutral change is the one reverted here.
    url = f"/api/v1/grids/{grid['id']}"
    renamed = client.patch(
        url, headers={**planner, "If-Match": '"1"'}, json={"properties": {"name": "改名"}}
    )
    assert renamed.status_code == 200
    history = client.get(url + "/history").get_json()
    assert [(r["version"], r["action"]) for r in history] == [(1, "insert"), (2, "update")]
    first = history[0]["id"]

    missing_match = client.post(f"{url}/revert?revision={first}", headers=planner)
    assert missing_match.status_code == 428
    reverted = client.post(
        f"{url}/revert?revision={first}&reason=too%20big", headers={**planner, "If-Match": '"2"'}
    )
    assert reverted.status_code == 200
    assert reverted.headers["ETag"] == '"3"'
    assert reverted.get_json()["geometry"] == {"type": "MultiPolygon", "coordinates": [WEST]}
    assert reverted.get_json()["properties"]["name"] == "一网格"
    history = client.get(url + "/history").get_json()
    assert [(r["version"], r["action"], r["reason"]) for r in history][-1] == (
        3,
        "revert",
        "too big",
    )
    assert (
        client.post(
            f"{url}/revert?revision=999999", headers={**planner, "If-Match": '"3"'}
        ).status_code
        == 404
    )


def test_deleting_a_grid_retires_it(client, planner, grid, engine):
    url = f"/api/v1/grids/{grid['id']}"
    assert client.delete(url, headers=planner).status_code == 428
    assert client.delete(url, headers={**planner, "If-Match": '"1"'}).status_code == 204
    assert client.get("/api/v1/grids").get_json()["numberMatched"] == 0
    retired = client.get("/api/v1/grids?include_retired=true").get_json()["features"]
    assert [(f["id"], f["properties"]["active"]) for f in retired] == [(grid["id"], False)]
    assert client.get(url + "/history").get_json()[-1]["action"] == "retire"
    # The code is free again for a new grid.
    again = client.post(
        "/api/v1/grids",
        headers=planner,
        json={
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": WEST},
            "properties": {
                "code": grid["properties"]["code"],
                "name": "新",
                "kind": "general",
                "community": COMMUNITY,
            },
        },
    )
    assert again.status_code == 201


def test_an_area_in_use_cannot_be_deleted(client, planner, grid, community, engine):
    before = snapshot(engine)
    response = client.delete(f"/api/v1/areas/{community}", headers=planner)
    assert response.status_code == 409
    assert "still referred to" in response.get_json()["detail"]
    assert snapshot(engine) == before


def test_bulk_import_is_all_or_nothing(client, planner, engine):
    good = [station([104.0 + i / 1000, 30.0]) for i in range(3)]
    bad = good + [station([104.0, 30.0], kind="bar"), station([104.0, 95.0])]
    before = snapshot(engine)
    refused = client.post(
        "/api/v1/stations/import",
        headers=planner,
        json={"type": "FeatureCollection", "features": bad},
    )
    assert refused.status_code == 422
    assert sorted((e["index"], e["field"]) for e in refused.get_json()["errors"]) == [
        (3, "kind"),
        (4, "geometry"),
    ]
    assert snapshot(engine) == before
    done = client.post(
        "/api/v1/stations/import",
        headers=planner,
        json={"type": "FeatureCollection", "features": good},
    )
    assert done.status_code == 201 and done.get_json()["imported"] == 3
    assert client.get("/api/v1/stations").get_json()["numberMatched"] == 3


def test_bulk_import_of_an_uploaded_file(client, planner):
    collection = {"type": "FeatureCollection", "features": [station([104.0, 30.0])]}
    upload = {"file": (io.BytesIO(json.dumps(collection).encode()), "stations.geojson")}
    done = client.post(
        "/api/v1/stations/import", headers=planner, data=upload, content_type="multipart/form-data"
    )
    assert done.status_code == 201 and done.get_json()["imported"] == 1
    odd = {"file": (io.BytesIO(b"hello"), "notes.txt")}
    refused = client.post(
        "/api/v1/stations/import", headers=planner, data=odd, content_type="multipart/form-data"
    )
    assert refused.status_code == 415


def test_admin_manages_tokens(client, tokens):
    admin = bearer(tokens["admin"])
    assert client.get("/api/v1/tokens", headers=bearer(tokens["planner"])).status_code == 403
    made = client.post("/api/v1/tokens", headers=admin, json={"name": "portal", "role": "staff"})
    assert made.status_code == 201
    token = made.get_json()["token"]
    listed = client.get("/api/v1/tokens", headers=admin).get_json()
    assert {"portal", "test-admin"} <= {t["name"] for t in listed}
    assert all("token" not in t for t in listed)
    assert client.get("/api/v1/workers", headers=bearer(token)).status_code == 200
    assert (
        client.post(
            "/api/v1/tokens", headers=admin, json={"name": "portal", "role": "staff"}
        ).status_code
        == 409
    )
    assert client.delete("/api/v1/tokens/portal", headers=admin).status_code == 204
    assert client.get("/api/v1/workers", headers=bearer(token)).status_code == 401
