"""OGC API - Features at /ogc: through Flask's test client and over HTTP with GDAL.

Every answer is checked against SQL computed here, and coordinates in other CRSs
against pyproj transforms computed here, never against the server's own helpers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import schemathesis
import shapely
from hypothesis import HealthCheck, settings
from pyproj import Transformer
from sqlalchemy import text

from api import create_app
from tests.conftest import serving
from tests.helpers import bearer, make_tempdir

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
#: The demo town is in Chengdu (104° E): UTM zone 48 north.
UTM = 32648
LAYER_TABLES = ("areas", "grids", "buildings", "stations", "roads")


def _ids(engine, sql: str, **params) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text(sql), params)]


def _path(url: str) -> str:
    """A link's path and query, for the test client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _all_pages(client, first: str, headers: dict | None = None) -> tuple[list[int], list[dict]]:
    """Every feature id by following next links, and the pages' bodies."""
    ids, pages, url = [], [], first
    while url:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        pages.append(body)
        ids += [f["id"] for f in body["features"]]
        url = next((_path(x["href"]) for x in body["links"] if x["rel"] == "next"), None)
    return ids, pages


def test_landing_conformance_and_collections(demo_client):
    landing = demo_client.get("/ogc")
    assert landing.status_code == 200
    rels = {link["rel"]: link["href"] for link in landing.get_json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    document = demo_client.get(_path(rels["service-desc"]))
    assert document.status_code == 200
    assert document.get_json()["openapi"].startswith("3.0")
    conforms = demo_client.get("/ogc/conformance").get_json()["conformsTo"]
    for needed in (
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-1/1.0/conf/geojson",
        "ogcapi-features-2/1.0/conf/crs",
        "ogcapi-features-3/1.0/conf/filter",
        "ogcapi-features-3/1.0/conf/features-filter",
        "cql2/1.0/conf/cql2-text",
        "cql2/1.0/conf/basic-cql2",
        "cql2/1.0/conf/advanced-comparison-operators",
        "cql2/1.0/conf/basic-spatial-functions",
        "ogcapi-features-4/1.0/conf/create-replace-delete",
    ):
        assert f"http://www.opengis.net/spec/{needed}" in conforms
    listed = demo_client.get("/ogc/collections").get_json()["collections"]
    assert [c["id"] for c in listed] == list(LAYER_TABLES)
    for found in listed:
        assert found["storageCrs"] == CRS84
        assert {CRS84, f"{EPSG}4326", f"{EPSG}4490", f"{EPSG}{UTM}"} <= set(found["crs"])
        minx, miny, maxx, maxy = found["extent"]["spatial"]["bbox"][0]
        assert 103.9 < minx < maxx < 104.2 and 30.5 < miny < maxy < 30.8
        one = demo_client.get(f"/ogc/collections/{found['id']}")
        assert one.status_code == 200 and one.get_json()["id"] == found["id"]
    assert demo_client.get("/ogc/collections/workers").status_code == 404
    assert demo_client.get("/ogc/collections/tokens/items").status_code == 404


def test_keyset_paging_returns_every_row_exactly_once(demo_client, demo_engine):
    expected = _ids(demo_engine, "SELECT id FROM buildings ORDER BY id")
    ids, pages = _all_pages(demo_client, "/ogc/collections/buildings/items?limit=97")
    assert ids == expected and len(set(ids)) == len(ids)
    assert all(p["numberMatched"] == len(expected) for p in pages)
    assert [p["numberReturned"] for p in pages[:-1]] == [97] * (len(pages) - 1)
    assert "numberMatchedEstimated" not in pages[0]
    assert not any(link["rel"] == "prev" for link in pages[0]["links"])
    # Back from the last page by prev links: the same pages, in reverse.
    back, url = [], next(_path(x["href"]) for x in pages[-1]["links"] if x["rel"] == "prev")
    while url:
        body = demo_client.get(url).get_json()
        back = [f["id"] for f in body["features"]] + back
        url = next((_path(x["href"]) for x in body["links"] if x["rel"] == "prev"), None)
    assert back + [f["id"] for f in pages[-1]["features"]] == expected
    # The next link carries a key, not an offset.
    query = parse_qs(urlsplit(pages[0]["links"][-1]["href"]).query)
    assert query["after"] == [str(expected[96])] and "offset" not in query
    # Grids: retired ones are not features.
    grid_ids, _ = _all_pages(demo_client, "/ogc/collections/grids/items?limit=7")
    assert grid_ids == _ids(demo_engine, "SELECT id FROM grids WHERE active ORDER BY id")


def test_number_matched_is_an_estimate_above_the_limit_and_says_so(
    demo_client, demo_engine, monkeypatch
):
    from gridmap import ogc

    monkeypatch.setattr(ogc, "EXACT_COUNT_LIMIT", 100)
    with demo_engine.begin() as conn:
        conn.execute(text("ANALYZE buildings"))
        reltuples = conn.scalar(
            text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'buildings'")
        )
    body = demo_client.get("/ogc/collections/buildings/items?limit=5").get_json()
    assert body["numberMatched"] == reltuples and body["numberMatchedEstimated"] is True
    assert "estimate" in body["description"]
    filtered = demo_client.get("/ogc/collections/buildings/items?limit=5&use=residential")
    assert filtered.get_json()["numberMatchedEstimated"] is True


def _expected_in(geometry: dict, target: int) -> shapely.Geometry:
    import numpy as np

    transformer = Transformer.from_crs("OGC:CRS84", f"EPSG:{target}", always_xy=False)

    def project(xy: np.ndarray) -> np.ndarray:
        a, b = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([a, b])

    return shapely.transform(shapely.geometry.shape(geometry), project)


@pytest.mark.parametrize("code", [4326, 4490, UTM])
def test_answers_in_another_crs_match_pyproj(demo_client, code):
    plain = demo_client.get("/ogc/collections/grids/items?limit=3")
    assert plain.headers["Content-Crs"] == f"<{CRS84}>"
    asked = demo_client.get(f"/ogc/collections/grids/items?limit=3&crs={quote(EPSG + str(code))}")
    assert asked.status_code == 200
    assert asked.headers["Content-Crs"] == f"<{EPSG}{code}>"
    for lonlat, there in zip(
        plain.get_json()["features"], asked.get_json()["features"], strict=True
    ):
        expected = _expected_in(lonlat["geometry"], code)
        got = shapely.geometry.shape(there["geometry"])
        tolerance = 0.001 if code == UTM else 1e-9  # a millimetre, or 1e-9 degrees
        assert got.equals_exact(expected, tolerance=tolerance)
    if code != UTM:  # latitude first, as EPSG orders these two
        first = asked.get_json()["features"][0]["geometry"]["coordinates"][0][0][0]
        assert 30 < first[0] < 31 and 103 < first[1] < 105
    one_id = plain.get_json()["features"][0]["id"]
    item = demo_client.get(f"/ogc/collections/grids/items/{one_id}?crs={quote(EPSG + str(code))}")
    assert item.headers["Content-Crs"] == f"<{EPSG}{code}>"
    assert shapely.geometry.shape(item.get_json()["geometry"]).equals_exact(
        _expected_in(plain.get_json()["features"][0]["geometry"], code), tolerance=0.001
    )
    refused = demo_client.get(f"/ogc/collections/grids/items?crs={quote(EPSG + '3857')}")
    assert refused.status_code == 400 and "not offered" in refused.get_json()["detail"]


def test_bbox_in_its_own_crs_matches_sql(demo_client, demo_engine):
    lon1, lat1, lon2, lat2 = 104.035, 30.628, 104.045, 30.636
    expected = _ids(
        demo_engine,
        "SELECT id FROM buildings WHERE ST_Intersects(point, ST_MakeEnvelope(:a,:b,:c,:d,4326)) "
        "ORDER BY id",
        a=lon1,
        b=lat1,
        c=lon2,
        d=lat2,
    )
    assert 0 < len(expected) < 2450
    ids, _ = _all_pages(
        demo_client, f"/ogc/collections/buildings/items?limit=50&bbox={lon1},{lat1},{lon2},{lat2}"
    )
    assert ids == expected
    # The same box in EPSG:4326 axis order (latitude first).
    latlon = f"{lat1},{lon1},{lat2},{lon2}&bbox-crs={quote(EPSG + '4326')}"
    ids, _ = _all_pages(demo_client, f"/ogc/collections/buildings/items?limit=50&bbox={latlon}")
    assert ids == expected
    # A box in UTM metres: pyproj here, ST_Transform in the database for the answer.
    to_utm = Transformer.from_crs("OGC:CRS84", f"EPSG:{UTM}", always_xy=True)
    x1, y1 = to_utm.transform(lon1, lat1)
    x2, y2 = to_utm.transform(lon2, lat2)
    in_utm = _ids(
        demo_engine,
        "SELECT id FROM buildings WHERE ST_Intersects(ST_Transform(point, :srid), "
        "ST_MakeEnvelope(:a,:b,:c,:d,:srid)) ORDER BY id",
        a=x1,
        b=y1,
        c=x2,
        d=y2,
        srid=UTM,
    )
    ids, _ = _all_pages(
        demo_client,
        f"/ogc/collections/buildings/items?limit=500&bbox={x1},{y1},{x2},{y2}"
        f"&bbox-crs={quote(EPSG + str(UTM))}",
    )
    assert ids == in_utm
    assert demo_client.get("/ogc/collections/buildings/items?bbox=1,2,3").status_code == 400
    assert demo_client.get("/ogc/collections/buildings/items?bbox=1,2,3,x").status_code == 400
    for bad in ("1,2,3,nan", "95,104,96,105&bbox-crs=EPSG:4326", "200,30,201,31"):
        answer = demo_client.get(f"/ogc/collections/buildings/items?bbox={bad}")
        assert answer.status_code == 400, (bad, answer.get_json())
    huge = demo_client.get(f"/ogc/collections/buildings/items?filter={quote('floors > 1e400')}")
    assert huge.status_code in (200, 400)


#: CQL2 text filters and the SQL that must select the same rows.
FILTERS = [
    ("grids", "kind = 'general'", "kind = 'general'"),
    ("grids", "\"kind\" = 'general' AND \"name\" <> ''", "kind = 'general' AND name <> ''"),
    ("grids", "kind <> 'general' AND kind <> 'micro'", "kind NOT IN ('general', 'micro')"),
    ("grids", "NOT (kind = 'master') OR code LIKE '%001'", "kind <> 'master' OR code LIKE '%001'"),
    ("grids", "kind IN ('micro', 'dedicated')", "kind IN ('micro', 'dedicated')"),
    ("grids", "place_type IS NULL", "place_type IS NULL"),
    ("grids", "CASEI(name) LIKE '%网格'", "lower(name) LIKE '%网格'"),
    (
        "grids",
        "community = '510107015001' AND worker IS NOT NULL",
        "community_id = (SELECT id FROM areas WHERE code = '510107015001') "
        "AND worker_id IS NOT NULL",
    ),
    ("buildings", "floors BETWEEN 3 AND 7", "floors BETWEEN 3 AND 7"),
    ("buildings", "floors NOT BETWEEN 3 AND 7", "NOT (floors BETWEEN 3 AND 7)"),
    ("buildings", "floors >= 6 AND use = 'residential'", "floors >= 6 AND use = 'residential'"),
    ("buildings", "code LIKE 'B0_1%'", "code LIKE 'B0_1%'"),
    ("stations", "capacity > 100 OR kind = 'canteen'", "capacity > 100 OR kind = 'canteen'"),
    (
        "buildings",
        "S_INTERSECTS(geometry, BBOX(104.035, 30.628, 104.045, 30.636))",
        "ST_Intersects(point, ST_MakeEnvelope(104.035, 30.628, 104.045, 30.636, 4326))",
    ),
    (
        "buildings",
        "S_INTERSECTS(geometry, POLYGON((104.035 30.628, 104.045 30.628, 104.04 30.636, "
        "104.035 30.628))) AND use = 'residential'",
        "ST_Intersects(point, ST_GeomFromText('POLYGON((104.035 30.628, 104.045 30.628, "
        "104.04 30.636, 104.035 30.628))', 4326)) AND use = 'residential'",
    ),
    (
        "roads",
        "S_INTERSECTS(geometry, LINESTRING(104.03 30.63, 104.05 30.63)) AND walkable = TRUE",
        "ST_Intersects(geom, ST_GeomFromText('LINESTRING(104.03 30.63, 104.05 30.63)', 4326)) "
        "AND walkable",
    ),
    (
        "roads",
        "class = 'residential' AND barrier = false",
        "class = 'residential' AND NOT barrier",
    ),
]


@pytest.mark.parametrize(("layer", "cql", "sql"), FILTERS)
def test_cql2_filters_select_what_sql_selects(demo_client, demo_engine, layer, cql, sql):
    active = " AND active" if layer == "grids" else ""
    expected = _ids(demo_engine, f"SELECT id FROM {layer} WHERE ({sql}){active} ORDER BY id")
    ids, pages = _all_pages(
        demo_client, f"/ogc/collections/{layer}/items?limit=200&filter={quote(cql)}"
    )
    assert ids == expected
    assert pages[0]["numberMatched"] == len(expected)


def test_property_parameters_filter_by_equality(demo_client, demo_engine):
    expected = _ids(
        demo_engine, "SELECT id FROM grids WHERE kind = 'general' AND active ORDER BY id"
    )
    ids, _ = _all_pages(demo_client, "/ogc/collections/grids/items?kind=general&limit=5")
    assert ids == expected and ids
    in_community = _ids(
        demo_engine,
        "SELECT g.id FROM grids g JOIN areas a ON a.id = g.community_id "
        "WHERE a.code = '510107015002' AND g.active ORDER BY g.id",
    )
    ids, _ = _all_pages(demo_client, "/ogc/collections/grids/items?area=510107015002&limit=4")
    assert ids == in_community and ids
    missing = demo_client.get("/ogc/collections/grids/items?area=000")
    assert missing.status_code == 404
    answer = demo_client.get("/ogc/collections/grids/items?colour=red")
    assert answer.status_code == 400 and "colour" in answer.get_json()["detail"]
    datetime = demo_client.get("/ogc/collections/grids/items?datetime=2024-01-01T00:00:00Z")
    assert datetime.status_code == 400 and "no time" in datetime.get_json()["detail"]


INJECTIONS = [
    "code = 'x' OR 1=1",
    "code = 'x'; DROP TABLE grids",
    "code = 'x' --",
    "\"code'; DROP TABLE grids; --\" = 'x'",
    "pg_sleep(5) = 1",
    "id > 0",
    "version > 0",
    "community_id = 1",
    "code = name",
    "floors = 'a'",
    "kind = 1",
    "S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))",
    "kind LIKE 5",
    "code = DATE('2020-01-01')",
    "x" * 5000,
    "name = 'a\x00b'",
]


@pytest.mark.parametrize("cql", INJECTIONS)
def test_filters_outside_the_whitelist_are_refused(demo_client, demo_engine, cql):
    before = _ids(demo_engine, "SELECT count(*) FROM grids")
    answer = demo_client.get(f"/ogc/collections/grids/items?filter={quote(cql)}")
    assert 400 <= answer.status_code < 500 and answer.status_code != 404, answer.get_json()
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert _ids(demo_engine, "SELECT count(*) FROM grids") == before


@pytest.mark.parametrize(
    "query",
    [
        "area=a%00b",
        "code=a%00b",
        "bbox=-1e300,-1e300,1e300,1e300&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4326",
        "filter-crs=http://www.opengis.net/def/crs/EPSG/0/4326&filter="
        + quote("S_INTERSECTS(geometry, BBOX(-1e300, -1e300, 1e300, 1e300))"),
    ],
)
def test_nul_and_absurd_coordinates_are_400(demo_client, query):
    answer = demo_client.get(f"/ogc/collections/grids/items?{query}")
    assert answer.status_code == 400, answer.get_data(True)
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_a_quote_in_a_property_parameter_is_a_value(demo_client):
    answer = demo_client.get(f"/ogc/collections/grids/items?code={quote(chr(39) + ' OR 1=1 --')}")
    assert answer.status_code == 200 and answer.get_json()["numberMatched"] == 0


def test_viewers_see_no_personal_data(demo_client, demo_tokens):
    body = demo_client.get("/ogc/collections/buildings/items?limit=5").get_json()
    assert all("households" not in f["properties"] for f in body["features"])
    assert all("population" not in f["properties"] for f in body["features"])
    queryables = demo_client.get("/ogc/collections/buildings/queryables")
    assert queryables.headers["Content-Type"] == "application/schema+json"
    assert "households" not in queryables.get_json()["properties"]
    assert "geometry" in queryables.get_json()["properties"]
    by_filter = demo_client.get("/ogc/collections/buildings/items?filter=households%20%3E%200")
    assert by_filter.status_code == 400
    by_parameter = demo_client.get("/ogc/collections/buildings/items?households=3")
    assert by_parameter.status_code == 403
    one = demo_client.get(f"/ogc/collections/buildings/items/{body['features'][0]['id']}")
    assert "households" not in one.get_json()["properties"]
    staff = bearer(demo_tokens["staff"])
    seen = demo_client.get("/ogc/collections/buildings/items?limit=5", headers=staff).get_json()
    assert all("households" in f["properties"] for f in seen["features"])
    filtered = demo_client.get(
        "/ogc/collections/buildings/items?filter=households%20%3E%200", headers=staff
    )
    assert filtered.status_code == 200
    assert (
        "households"
        in demo_client.get("/ogc/collections/buildings/queryables", headers=staff).get_json()[
            "properties"
        ]
    )


def _grid(engine, grid_id: int) -> tuple:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT version, name, active, ST_AsText(geom) FROM grids WHERE id = :id"),
            {"id": grid_id},
        ).one()


def test_grid_edits_follow_the_rest_rules(demo_client, demo_engine, demo_tokens):
    planner = bearer(demo_tokens["planner"])
    grid_id = _ids(
        demo_engine, "SELECT id FROM grids WHERE kind = 'general' AND active ORDER BY id LIMIT 1"
    )[0]
    url = f"/ogc/collections/grids/items/{grid_id}"
    read = demo_client.get(url)
    etag = read.headers["ETag"]
    assert etag == f'"{_grid(demo_engine, grid_id)[0]}"'
    assert demo_client.get(url, headers={"If-None-Match": etag}).status_code == 304
    options = demo_client.options(url)
    assert {"PUT", "PATCH", "DELETE"} <= {m.strip() for m in options.headers["Allow"].split(",")}
    assert "POST" not in demo_client.options("/ogc/collections/roads/items").headers["Allow"]
    patch = {"type": "Feature", "properties": {"name": "改名网格"}}
    merge = {"Content-Type": "application/merge-patch+json"}
    # Anonymous and viewers cannot write; no If-Match is 428.
    assert demo_client.patch(url, json=patch, headers={"If-Match": etag}).status_code == 401
    assert demo_client.patch(url, json=patch, headers=planner).status_code == 428
    # A stale ETag: 412 and nothing changes.
    before = _grid(demo_engine, grid_id)
    stale = {**planner, **merge, "If-Match": f'"{before[0] - 1}"'}
    answer = demo_client.patch(url, data=json.dumps(patch), headers=stale)
    assert answer.status_code == 412 and answer.headers["ETag"] == etag
    assert _grid(demo_engine, grid_id) == before
    # The right ETag: changed, a new ETag.
    answer = demo_client.patch(
        url, data=json.dumps(patch), headers={**planner, **merge, "If-Match": etag}
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["properties"]["name"] == "改名网格"
    new_etag = answer.headers["ETag"]
    assert new_etag == f'"{before[0] + 1}"' and _grid(demo_engine, grid_id)[1] == "改名网格"
    # Replace: the old ETag is stale now.
    feature = read.get_json()
    fields = (
        "code",
        "name",
        "kind",
        "place_type",
        "dedicated_category",
        "community",
        "parent",
        "worker",
    )
    replacement = {
        "type": "Feature",
        "geometry": feature["geometry"],
        "properties": {**{k: feature["properties"][k] for k in fields}, "name": "替换网格"},
    }
    with_old = {**planner, "If-Match": etag}
    answer = demo_client.put(url, json=replacement, headers=with_old)
    assert answer.status_code == 412, answer.get_json()
    assert _grid(demo_engine, grid_id)[1] == "改名网格"
    answer = demo_client.put(url, json=replacement, headers={**planner, "If-Match": new_etag})
    assert answer.status_code == 200, answer.get_json()
    assert _grid(demo_engine, grid_id)[1] == "替换网格"
    # A replacement that would leave the layout invalid (a hole where the grid was) is 409.
    shrunk = {
        **replacement,
        "geometry": shapely.geometry.mapping(
            shapely.geometry.shape(feature["geometry"]).buffer(-0.0005)
        ),
    }
    current = answer.headers["ETag"]
    refused = demo_client.put(url, json=shrunk, headers={**planner, "If-Match": current})
    assert refused.status_code == 409
    assert _grid(demo_engine, grid_id)[0] == before[0] + 2
    # A bad body is 422 with the REST API's reasons.
    bad = {**replacement, "properties": {**replacement["properties"], "kind": "castle"}}
    assert (
        demo_client.put(url, json=bad, headers={**planner, "If-Match": current}).status_code == 422
    )
    # Other collections take no edits.
    roads = demo_client.post("/ogc/collections/roads/items", json=replacement, headers=planner)
    assert roads.status_code == 405


def test_a_grid_created_read_and_deleted(demo_client, demo_engine, demo_tokens):
    planner = bearer(demo_tokens["planner"])
    micro = demo_client.get("/ogc/collections/grids/items?kind=general&limit=1").get_json()
    source = micro["features"][0]
    new = {
        "type": "Feature",
        "geometry": source["geometry"],
        "properties": {
            "code": "510107015001999",
            "name": "新网格",
            "kind": "dedicated",
            "dedicated_category": "school",
            "community": source["properties"]["community"],
        },
    }
    assert demo_client.post("/ogc/collections/grids/items", json=new).status_code == 401
    viewer = bearer(demo_tokens["viewer"])
    assert (
        demo_client.post("/ogc/collections/grids/items", json=new, headers=viewer).status_code
        == 403
    )
    created = demo_client.post("/ogc/collections/grids/items", json=new, headers=planner)
    assert created.status_code == 201, created.get_json()
    location = _path(created.headers["Location"])
    read = demo_client.get(location)
    assert read.status_code == 200 and read.get_json()["properties"]["name"] == "新网格"
    etag = read.headers["ETag"]
    stale = demo_client.delete(location, headers={**planner, "If-Match": '"99"'})
    assert stale.status_code == 412
    assert demo_client.get(location).status_code == 200
    assert demo_client.delete(location, headers={**planner, "If-Match": etag}).status_code == 204
    assert demo_client.get(location).status_code == 404
    grid_id = int(location.rsplit("/", 1)[1])
    assert _grid(demo_engine, grid_id)[2] is False  # retired, with its history


def test_a_geometry_sent_in_utm_is_stored_in_lon_lat(demo_client, demo_engine, demo_tokens):
    planner = bearer(demo_tokens["planner"])
    micro = demo_client.get("/ogc/collections/grids/items?kind=general&limit=1").get_json()
    source = micro["features"][0]
    in_utm = _expected_in(source["geometry"], UTM)
    new = {
        "type": "Feature",
        "geometry": shapely.geometry.mapping(in_utm),
        "properties": {
            "code": "510107015001998",
            "name": "UTM 网格",
            "kind": "dedicated",
            "dedicated_category": "school",
            "community": source["properties"]["community"],
        },
    }
    headers = {**planner, "Content-Crs": f"<{EPSG}{UTM}>"}
    created = demo_client.post("/ogc/collections/grids/items", json=new, headers=headers)
    assert created.status_code == 201, created.get_json()
    stored = shapely.geometry.shape(created.get_json()["geometry"])
    assert stored.equals_exact(shapely.geometry.shape(source["geometry"]), tolerance=1e-8)


def _gdal(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_gdal_lists_and_pages_every_layer(demo_db_url, demo_engine, demo_tokens):
    folder = make_tempdir("gridmap-ogc-")
    with serving(demo_db_url) as base:
        source = f"OAPIF:{base}/ogc"
        listing = _gdal("ogrinfo", "-ro", "-q", source)
        assert re.findall(r"^\d+: (\w+)", listing, re.MULTILINE) == list(LAYER_TABLES), listing
        for layer in LAYER_TABLES:
            out = folder / f"{layer}.geojson"
            _gdal(
                "ogr2ogr",
                "-f",
                "GeoJSON",
                str(out),
                source,
                layer,
                "-oo",
                "PAGE_SIZE=113",
                "-preserve_fid",
            )
            written = json.loads(out.read_text())["features"]
            assert written and "id" in written[0], written[:1]
            where = " WHERE active" if layer == "grids" else ""
            expected = _ids(demo_engine, f"SELECT id FROM {layer}{where} ORDER BY id")
            got = sorted(f["id"] for f in written)
            assert got == expected, layer
        # An attribute filter GDAL passes on to the server.
        out = folder / "general.geojson"
        debug = _gdal(
            "ogr2ogr",
            "-f",
            "GeoJSON",
            str(out),
            source,
            "grids",
            "-where",
            "kind = 'general'",
            "-preserve_fid",
            "--debug",
            "on",
        )
        # GDAL 3.6 sends an equality on a property as that property's parameter.
        assert "kind=general" in debug, debug
        general = json.loads(out.read_text())["features"]
        assert sorted(f["id"] for f in general) == _ids(
            demo_engine, "SELECT id FROM grids WHERE kind = 'general' AND active ORDER BY id"
        )
        # Counts as ogrinfo reports them.
        summary = _gdal("ogrinfo", "-ro", "-so", source, "buildings")
        assert f"Feature Count: {len(_ids(demo_engine, 'SELECT id FROM buildings'))}" in summary
        # Anonymous: no household figures; with a staff token in GDAL's headers, there.
        assert "households:" not in summary
        staff = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {demo_tokens['staff']}"}
        assert "households:" in _gdal("ogrinfo", "-ro", "-so", source, "buildings", env=staff)


def test_the_api_guards_and_http_semantics_hold_for_ogc(demo_client, demo_tokens):
    repeated = demo_client.get("/ogc/collections/grids/items?limit=1&limit=2")
    assert repeated.status_code == 400
    assert repeated.headers["Content-Type"] == "application/problem+json"
    planner = bearer(demo_tokens["planner"])
    as_text = demo_client.post(
        "/ogc/collections/grids/items",
        data="{}",
        headers={**planner, "Content-Type": "text/plain"},
    )
    assert as_text.status_code == 415
    # A limit above the largest page gets the largest page; below 1 is refused.
    large = demo_client.get("/ogc/collections/buildings/items?limit=999999")
    assert large.status_code == 200 and large.get_json()["numberReturned"] == 2450
    assert demo_client.get("/ogc/collections/buildings/items?limit=0").status_code == 400
    # QGIS asks OPTIONS of an item that may not exist to learn what it may do.
    probe = demo_client.options("/ogc/collections/grids/items/unknown_id")
    assert probe.status_code == 204 and "PUT" in probe.headers["Allow"]
    assert demo_client.head("/ogc/collections/grids/items?limit=1").status_code == 200
    assert demo_client.get("/ogc/collections/grids/items/unknown_id").status_code == 404
    assert demo_client.get("/ogc/collections/grids/items/999999").status_code == 404
    # Digits that are not ASCII ("²" passes str.isdigit) are refused, never a 500.
    assert demo_client.get("/ogc/collections/grids/items/%C2%B2").status_code == 404
    assert demo_client.get("/ogc/collections/grids/items?limit=%C2%B2").status_code == 400
    assert demo_client.get("/ogc/collections/grids/items?after=%C2%B2").status_code == 400
    assert demo_client.get("/ogc/collections/grids/items?crs=EPSG:%C2%B2").status_code == 400


def test_a_deep_page_reads_one_page_of_rows_not_every_row_before_it(demo_client, demo_engine):
    with demo_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO stations (name, kind, geom) SELECT 'post ' || n, 'other', "
                "ST_SetSRID(ST_MakePoint(104.03 + (n % 300) * 1e-4, 30.62 + (n / 300) * 1e-4), "
                "4326) FROM generate_series(1, 60000) AS n"
            )
        )
        conn.execute(text("ANALYZE stations"))
        last_ids = _ids(demo_engine, "SELECT id FROM stations ORDER BY id DESC LIMIT 20")
    statements: list[tuple[str, dict]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "FROM stations" in statement and "ORDER BY stations.id" in statement:
            statements.append((statement, parameters))

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from gridmap import ogc
    from gridmap.io.layers import LAYERS

    event.listen(demo_engine, "before_cursor_execute", keep)
    try:
        with Session(demo_engine) as session:
            found = ogc.select_keyset(session, LAYERS["stations"], [], 10, after=last_ids[-1])
    finally:
        event.remove(demo_engine, "before_cursor_execute", keep)
    assert [r["id"] for r in found.page.records] == sorted(last_ids)[1:11]
    statement, parameters = statements[-1]
    with demo_engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
        ).scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def rows_read(node: dict) -> int:
        own = node.get("Actual Rows", 0) if node.get("Relation Name") == "stations" else 0
        return own + sum(rows_read(child) for child in node.get("Plans", []))

    # Keyset on the primary key: a page of rows (and its one look-ahead), not 60,000.
    assert rows_read(plan[0]["Plan"]) <= 11
    # The API's own next link leads there too.
    page = demo_client.get(f"/ogc/collections/stations/items?limit=10&after={last_ids[-1]}")
    assert [f["id"] for f in page.get_json()["features"]] == sorted(last_ids)[1:11]
    assert page.get_json()["numberMatched"] == 60030


_document = create_app({"DATABASE_URL": "postgresql+psycopg2://unused@127.0.0.1:9/none"})
ogc_schema = schemathesis.openapi.from_dict(
    _document.test_client().get("/ogc/api", base_url="http://localhost").get_json()
)
# OpenAPI cannot state CQL2's grammar nor which CRSs the stored areas make available:
# a schema-valid filter or CRS may be refused with 400, saying why; a feature body is
# checked as the REST API checks it (422), against the grid's version (412) and the
# layout (409), as tests/test_api_schema.py widens it for /api/v1.
_ogc_checks = ogc_schema.config.checks
_ogc_checks.positive_data_acceptance.expected_statuses = [
    *_ogc_checks.positive_data_acceptance.expected_statuses,
    "400",
    "412",
    "415",
    "422",
]
_ogc_checks.missing_required_header.expected_statuses = [
    *_ogc_checks.missing_required_header.expected_statuses,
    "428",
]


@ogc_schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_ogc_conforms_to_its_openapi_document(case, demo_client, demo_tokens):
    case.call_and_validate(app=demo_client.application, headers=bearer(demo_tokens["admin"]))
