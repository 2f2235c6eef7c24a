"""The API over real HTTP from `gridmap serve`, its OpenAPI document, docs page and CORS."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from tests.helpers import bearer, cli_env, run_cli


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    """One request; returns (status, headers, parsed JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/geo+json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw = response.read()
            return response.status, response.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_write_and_read_over_http(live_server, db_url):
    token = run_cli(
        "token", "create", "--role", "planner", "http-planner", env=cli_env(db_url)
    ).stdout.strip()
    area = {
        "type": "Feature",
        "properties": {"code": "510107015001", "name": "玉林社区", "level": "community"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[104.0, 30.0], [104.01, 30.0], [104.01, 30.01], [104.0, 30.0]]],
        },
    }
    status, _, body = http("POST", live_server + "/api/v1/areas", area)
    assert status == 401 and body["status"] == 401

    status, headers, body = http("POST", live_server + "/api/v1/areas", area, bearer(token))
    assert status == 201
    assert headers["Content-Type"] == "application/geo+json"
    assert body["properties"]["name"] == "玉林社区"

    status, headers, listed = http("GET", live_server + "/api/v1/areas?level=community")
    assert status == 200 and listed["numberMatched"] == 1
    assert listed["features"][0]["id"] == body["id"]

    status, headers, problem = http("GET", live_server + "/api/v1/areas?level=planet")
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == "level"


def test_openapi_document_describes_the_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/v1/grids",
        "/api/v1/grids/{item_id}",
        "/api/v1/grids/{item_id}/history",
        "/api/v1/grids/{item_id}/revert",
        "/api/v1/stations/import",
        "/api/v1/buildings",
        "/api/v1/roads",
        "/api/v1/areas",
        "/api/v1/workers",
        "/api/v1/tokens",
    ):
        assert path in spec["paths"], path
    grid_list = spec["paths"]["/api/v1/grids"]["get"]
    assert {p["name"] for p in grid_list["parameters"]} >= {
        "bbox",
        "area",
        "kind",
        "limit",
        "offset",
    }
    assert "application/geo+json" in grid_list["responses"]["200"]["content"]
    patch = spec["paths"]["/api/v1/grids/{item_id}"]["patch"]
    assert {"412", "428", "422"} <= set(patch["responses"])


def test_docs_page_loads_only_local_assets(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/api/v1/docs/assets/") for s in sources)
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.data) > 1000, source
    assert "http://" not in html and "https://" not in html


def test_cors_only_for_allowed_origins(db_url):
    from api import create_app

    app = create_app({"DATABASE_URL": db_url, "CORS_ORIGINS": "https://portal.example.gov.cn"})
    client = app.test_client()
    allowed = client.get("/api/v1/areas", headers={"Origin": "https://portal.example.gov.cn"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://portal.example.gov.cn"
    other = client.get("/api/v1/areas", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options(
        "/api/v1/areas",
        headers={
            "Origin": "https://portal.example.gov.cn",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert "POST" not in preflight.headers.get("Access-Control-Allow-Methods", "")


def test_token_cli(db_url):
    env = cli_env(db_url)
    token = run_cli("token", "create", "--role", "staff", "desk", env=env).stdout.strip()
    assert len(token) >= 40
    assert "desk\tstaff" in run_cli("token", "list", env=env).stdout
    again = run_cli("token", "create", "--role", "staff", "desk", env=env, check=False)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert "revoked desk" in run_cli("token", "revoke", "desk", env=env).stdout
    assert "revoked" in run_cli("token", "list", env=env).stdout.split("desk")[1]


SAMPLES = {
    "areas": (
        {
            "type": "Polygon",
            "coordinates": [[[104.0, 30.0], [104.01, 30.0], [104.01, 30.01], [104.0, 30.0]]],
        },
        {"code": "510107099", "name": "测试街道", "level": "street"},
        {"name": "新名"},
    ),
    "workers": (None, {"code": "W9", "name": "李四", "phone": "13900000000"}, {"phone": None}),
    "buildings": (
        {"type": "Point", "coordinates": [104.005, 30.002]},
        {"code": "B9", "use": "residential", "households": 12},
        {"households": 14},
    ),
    "stations": (
        {"type": "Point", "coordinates": [104.005, 30.003]},
        {"name": "站", "kind": "canteen"},
        {"capacity": 300},
    ),
    "roads": (
        {"type": "LineString", "coordinates": [[104.0, 30.0], [104.01, 30.0]]},
        {"class": "footway"},
        {"barrier": True},
    ),
}


def test_every_resource_over_http(live_server, db_url):
    token = run_cli(
        "token", "create", "--role", "admin", "http-admin", env=cli_env(db_url)
    ).stdout.strip()
    auth = bearer(token)
    for layer, (geometry, properties, change) in SAMPLES.items():
        feature = {"type": "Feature", "geometry": geometry, "properties": properties}
        status, headers, created = http("POST", f"{live_server}/api/v1/{layer}", feature, auth)
        assert status == 201, (layer, created)
        url = f"{live_server}/api/v1/{layer}/{created['id']}"
        status, _, read = http("GET", url, headers=auth)
        assert status == 200 and read["properties"] == created["properties"], layer
        status, _, changed = http("PATCH", url, {"properties": change}, auth)
        assert status == 200 and all(changed["properties"][k] == v for k, v in change.items())
        status, _, listed = http("GET", f"{live_server}/api/v1/{layer}", headers=auth)
        assert listed["numberMatched"] == 1, layer
        status, _, _ = http("DELETE", url, headers=auth)
        assert status == 204, layer
        status, _, _ = http("GET", url, headers=auth)
        assert status == 404, layer
