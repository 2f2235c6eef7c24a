"""Schemathesis against the OpenAPI document: no 5xx, every response as documented.

Bounded in examples per operation so the whole run stays within a minute or two.
The document is read from an app with no database (it needs none); the calls go
to an app on a copy of the demo town, as an admin, so writes are tried too.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from tests.helpers import bearer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_document = create_app({"DATABASE_URL": "postgresql+psycopg2://unused@127.0.0.1:9/none"})
schema = schemathesis.openapi.from_dict(
    _document.test_client().get("/api/v1/openapi.json").get_json()
)


@pytest.fixture
def demo_app(demo_db_url):
    return create_app({"TESTING": True, "DATABASE_URL": demo_db_url})


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, demo_app, demo_tokens):
    case.call_and_validate(app=demo_app, headers=bearer(demo_tokens["admin"]), checks=CHECKS)
