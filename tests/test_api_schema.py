"""Schemathesis against the OpenAPI document: every default check passes.

All of schemathesis' default checks run (no server error, status codes, content
types, headers and bodies as documented, schema-valid requests accepted and
schema-invalid ones refused, ...), bounded in examples per operation so the whole
run stays within a couple of minutes. The document is read from an app with no
database (it needs none); the calls go to an app on a copy of the demo town, as
an admin, so writes are tried too.

Two expectations are widened, each by what OpenAPI cannot say. A request the
document allows may be answered 422 (a ring that is not simple, a code that names
no row, an edit that breaks the layout: the document states every type, range,
length, pattern and member the server checks, but not these), 412 (If-Match names
a version the grid has left) or 415 (an uploaded file of a format gridmap does not
read). A missing If-Match is answered 428 Precondition Required (RFC 6585), the
status made for it, where schemathesis expects 400 or 422 for any missing header.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api import create_app
from gridmap.io.layers import LAYERS
from tests.helpers import bearer

_document = create_app({"DATABASE_URL": "postgresql+psycopg2://unused@127.0.0.1:9/none"})
schema = schemathesis.openapi.from_dict(
    _document.test_client().get("/api/v1/openapi.json").get_json()
)
_checks = schema.config.checks
_checks.positive_data_acceptance.expected_statuses = [
    *_checks.positive_data_acceptance.expected_statuses,
    "412",
    "415",
    "422",
]
_checks.missing_required_header.expected_statuses = [
    *_checks.missing_required_header.expected_statuses,
    "428",
]


@pytest.fixture
def demo_app(demo_db_url):
    return create_app({"TESTING": True, "DATABASE_URL": demo_db_url})


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, demo_app, demo_tokens):
    case.call_and_validate(app=demo_app, headers=bearer(demo_tokens["admin"]))


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _undeclared(document: dict, schema: dict, value, path: str) -> list[str]:
    """Members of ``value`` that ``schema`` does not declare, as JSON paths."""
    schema = _resolve(document, schema)
    variants = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if variants:
        found = [_undeclared(document, v, value, path) for v in variants]
        return min(found, key=len)
    if isinstance(value, list) and "items" in schema:
        return [
            m
            for i, item in enumerate(value)
            for m in _undeclared(document, schema["items"], item, f"{path}[{i}]")
        ]
    if not isinstance(value, dict) or "properties" not in schema:
        return []  # a free-form object (a GeoJSON geometry, settings, metrics)
    declared = schema["properties"]
    out = [f"{path}.{key}" for key in value if key not in declared]
    for key, member in value.items():
        if key in declared:
            out += _undeclared(document, declared[key], member, f"{path}.{key}")
    return out


def test_answers_declare_every_member(demo_client, demo_tokens):
    """Every member of every answer is declared by the document (schemathesis checks
    that answers fit their schema, not that the schema names all they carry)."""
    document = demo_client.get("/api/v1/openapi.json").get_json()
    admin = bearer(demo_tokens["admin"])
    community = demo_client.get("/api/v1/areas?level=community&limit=1").get_json()
    code = community["features"][0]["properties"]["code"]
    coverage = f"area={code}&kind=service_post"
    urls = [
        *(f"/api/v1/{layer}?limit=5" for layer in LAYERS),
        *(f"/api/v1/{layer}/1" for layer in LAYERS),
        "/api/v1/grids/1/history",
        f"/api/v1/grids/workload?area={code}",
        f"/api/v1/validate?area={code}",
        f"/api/v1/coverage?{coverage}",
        f"/api/v1/coverage/buildings?{coverage}&limit=5",
        f"/api/v1/coverage/gaps?{coverage}",
        f"/api/v1/coverage/service-areas?{coverage}",
        "/api/v1/tokens",
    ]
    undeclared = {}
    for url in urls:
        response = demo_client.get(url, headers=admin)
        assert response.status_code == 200, (url, response.get_json())
        template = url.split("?")[0].replace("/1/", "/{item_id}/")
        template = template[:-2] + "/{item_id}" if template.endswith("/1") else template
        operation = document["paths"][template]["get"]
        documented = _resolve(document, operation["responses"]["200"])
        body_schema = next(iter(documented["content"].values()))["schema"]
        found = _undeclared(document, body_schema, response.get_json(), "$")
        if found:
            undeclared[url] = found[:5]
    assert not undeclared, undeclared
