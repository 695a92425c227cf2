"""Property-based requests generated from /openapi.json against the real server: no 5xx, no
answer outside the schema, no unexpected status or content type (a bounded run)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]


@pytest.fixture
def api_schema(live):
    return schemathesis.openapi.from_url(f"{live}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_own_contract(case, people):
    case.call_and_validate(headers=people["admin"]["headers"], checks=CHECKS)
