"""The API over real HTTP from `gridmap serve`, its OpenAPI document, docs page and CORS."""

from __future__ import annotations

import json
import math
import re
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.client import HTTPResponse

from sqlalchemy import text

from tests.conftest import serving
from tests.helpers import bearer, cli_env, run_cli

SAMPLE_AREA = {
    "type": "Feature",
    "properties": {"code": "510107015001", "name": "玉林社区", "level": "community"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[104.0, 30.0], [104.01, 30.0], [104.01, 30.01], [104.0, 30.0]]],
    },
}


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


def _send(base: str, method: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    """One request whose body is sent in pieces, stopping when the server answers early
    (as curl does): a refused 20 MB body need not be sent in full."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent, view = 0, memoryview(body)
        while sent < len(body) and not select.select([sock], [], [], 0)[0]:
            try:
                sent += sock.send(view[sent : sent + 65536])
            except (BrokenPipeError, ConnectionResetError):
                break
        response = HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


#: Asks for /health every 50 ms until stdin closes; prints each answer's status and seconds.
PROBE = """
import sys, threading, time, urllib.request
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while not done.is_set():
    started = time.monotonic()
    with urllib.request.urlopen(sys.argv[1] + "/health", timeout=10) as response:
        print(response.status, time.monotonic() - started, flush=True)
    time.sleep(0.05)
"""


def test_two_huge_requests_leave_health_answering(db_url, tmp_path):
    """Two 20 MB PATCHes (a 600,000-vertex boundary) and two 19 MB imports at once:
    /health, asked by another client process, answers within a second all along; the
    PATCHes get 413 problem+json, the imports a 202 with their job, which then runs
    in the server's job process."""
    token = run_cli("token", "create", "--role", "planner", "huge", env=cli_env(db_url))
    auth = {**bearer(token.stdout.strip()), "Content-Type": "application/json"}
    steps = 600_000
    ring = [
        [
            104.0 + 0.01 * math.cos(2 * math.pi * k / steps),
            30.0 + 0.01 * math.sin(2 * math.pi * k / steps),
        ]
        for k in range(steps)
    ]
    ring.append(ring[0])
    huge_patch = json.dumps({"geometry": {"type": "Polygon", "coordinates": [ring]}}).encode()
    stations = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [104.0 + k * 1e-6, 30.0]},
            "properties": {"name": f"站{k}", "kind": "canteen"},
        }
        for k in range(130_000)
    ]
    huge_import = json.dumps({"type": "FeatureCollection", "features": stations}).encode()
    assert len(huge_patch) > 20 * 1024 * 1024 > len(huge_import) > 15 * 1024 * 1024

    with (tmp_path / "serve.log").open("wb") as log, serving(db_url, log) as base:
        status, _, body = http(
            "POST", base + "/api/v1/areas", SAMPLE_AREA, bearer(token.stdout.strip())
        )
        assert status == 201
        answers: dict[str, tuple] = {}
        prober = subprocess.Popen(
            [sys.executable, "-c", PROBE, base],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)
        requests = [("PATCH", f"/api/v1/areas/{body['id']}", huge_patch)] * 2
        requests += [("POST", "/api/v1/stations/import", huge_import)] * 2
        senders = [
            threading.Thread(
                target=lambda n, r: answers.__setitem__(n, _send(base, *r, auth)), args=(n, r)
            )
            for n, r in enumerate(requests)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=120)
        time.sleep(3.0)  # the import jobs are running now
        probed, _ = prober.communicate("", timeout=30)
        status, _, job = http("GET", base + answers[2][1]["Location"], headers=auth)

    for n in (0, 1):
        status, headers, _ = answers[n]
        assert status == 413 and headers["Content-Type"] == "application/problem+json"
    for n in (2, 3):
        status, headers, _ = answers[n]
        assert status == 202 and headers["Location"].startswith("/api/v1/jobs/")
    assert job["status"] in ("queued", "running")
    latencies = [float(line.split()[1]) for line in probed.splitlines()]
    assert {line.split()[0] for line in probed.splitlines()} == {"200"}
    print(f"/health: {len(latencies)} answers, slowest {max(latencies):.2f} s")
    assert len(latencies) > 20
    assert max(latencies) < 1.0, f"slowest /health {max(latencies):.2f} s: {latencies}"


def test_gunicorn_refusals_are_problem_json(live_server):
    """What gunicorn refuses before the app sees it is answered like the app's refusals."""
    host, port = live_server.removeprefix("http://").split(":")
    cases = {
        414: f"GET /api/v1/areas?name={'x' * 9000} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        400: "GET /health?<script> HTTP/1.1 junk\r\nHost: h\r\n\r\n",
        431: "GET /health HTTP/1.1\r\nHost: h\r\n"
        + "".join(f"X-Many-{n}: {n}\r\n" for n in range(120))
        + "\r\n",
    }
    for status, raw in cases.items():
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw.encode())
            response = HTTPResponse(sock)
            response.begin()
            body = json.loads(response.read())
        assert response.status == status
        assert response.getheader("Content-Type") == "application/problem+json"
        assert body["status"] == status and body["detail"]
        assert "xxxx" not in body["detail"] and "script" not in body["detail"]  # not echoed


def test_a_request_past_its_time_limit_is_503_and_writes_nothing(db_url, tokens, engine):
    from api import create_app
    from tests.test_api_write import snapshot, station

    planner = bearer(tokens["planner"])
    before = snapshot(engine)
    no_time = create_app({"DATABASE_URL": db_url, "REQUEST_TIME_LIMIT": 0}).test_client()
    response = no_time.post("/api/v1/stations", headers=planner, json=station([104.0, 30.0]))
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert "limit of 0 s" in response.get_json()["detail"]
    assert "respond-async" in response.get_json()["detail"]
    assert snapshot(engine) == before


def test_a_request_waiting_on_a_lock_is_stopped_at_its_time_limit(db_url, tokens, engine):
    """A grid edit waiting for the grid's row lock (another edit holding it) is
    cancelled by PostgreSQL at the request's time limit and answered 503."""
    from api import create_app
    from tests.test_editing import COMMUNITY, X0, strip

    planner = bearer(tokens["planner"])
    client = create_app({"DATABASE_URL": db_url, "REQUEST_TIME_LIMIT": 1}).test_client()

    def post(layer: str, geometry: dict, **properties) -> dict:
        feature = {"type": "Feature", "geometry": geometry, "properties": properties}
        response = client.post(f"/api/v1/{layer}", headers=planner, json=feature)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    post("areas", strip(X0, X0 + 0.002), code=COMMUNITY, name="社区", level="community")
    grid = post(
        "grids",
        strip(X0, X0 + 0.002),
        code=f"{COMMUNITY}001",
        name="A",
        kind="general",
        community=COMMUNITY,
    )
    with engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM grids WHERE id = :id FOR UPDATE"), {"id": grid["id"]})
        started = time.monotonic()
        response = client.patch(
            f"/api/v1/grids/{grid['id']}",
            headers={**planner, "If-Match": '"1"'},
            json={"properties": {"name": "B"}},
        )
        waited = time.monotonic() - started
        holder.rollback()
    assert response.status_code == 503, response.get_json()
    assert "limit of 1 s" in response.get_json()["detail"]
    assert 0.9 < waited < 3
    assert client.get(f"/api/v1/grids/{grid['id']}").get_json()["properties"]["name"] == "A"
