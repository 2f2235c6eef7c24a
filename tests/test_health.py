"""GET /health through the test client and over real HTTP from `gridmap serve`."""

from __future__ import annotations

import json
import urllib.request

from sqlalchemy import text

from api import create_app
from tests.helpers import free_port


def test_health_reports_database_postgis_and_migration(client, engine):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    with engine.connect() as conn:
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True
    assert postgis.startswith(body["database"]["postgis"])
    assert body["database"]["migration"] == {"current": current, "head": current}


def test_unmigrated_database_is_503(empty_db_url):
    response = create_app({"DATABASE_URL": empty_db_url}).test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"]["reachable"] is True
    assert body["database"]["migration"]["current"] is None
    assert "gridmap db migrate" in body["detail"]


def test_unreachable_database_is_503_not_a_crash():
    url = f"postgresql+psycopg2://nobody:secret@127.0.0.1:{free_port()}/gridmap"
    response = create_app({"DATABASE_URL": url}).test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["database"]["reachable"] is False
    assert "secret" not in response.get_data(as_text=True)


def test_unknown_path_is_problem_json(client):
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 404 and body["instance"] == "/no/such/thing" and body["detail"]


def test_health_over_http_from_the_production_server(live_server):
    with urllib.request.urlopen(live_server + "/health", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        server = response.headers.get("Server", "")
        body = json.loads(response.read())
    assert "gunicorn" in server.lower()
    assert body["status"] == "ok" and body["database"]["reachable"] is True
