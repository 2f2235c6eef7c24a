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
