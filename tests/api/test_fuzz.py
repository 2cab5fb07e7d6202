"""Schemathesis fuzzes every operation from the app's own openapi.json (in-process WSGI).

Each operation gets valid and invalid inputs, and valid ones aimed at an existing job; every response must be
documented (status, content type, headers, schema), invalid input must be refused, and none may be a server
error. Not checked: that every schema-valid input is accepted, because business rules the schema cannot
express (the provider must be configured, a body must suit the job's endpoint, a file must parse) answer 422.
Schemathesis' pytest plugin (``from_fixture``) fails under pytest 9, so operations are driven through Hypothesis.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.factories import new_job

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 40
OPERATIONS = [
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/jobs/"),
    ("POST", "/api/v1/jobs/"),
    ("GET", "/api/v1/jobs/stats/overview"),
    ("GET", "/api/v1/jobs/{job_id}"),
    ("PUT", "/api/v1/jobs/{job_id}"),
    ("DELETE", "/api/v1/jobs/{job_id}"),
    ("POST", "/api/v1/jobs/{job_id}/requests"),
    ("GET", "/api/v1/jobs/{job_id}/requests"),
    ("GET", "/api/v1/jobs/{job_id}/requests/{request_id}"),
    ("GET", "/api/v1/jobs/{job_id}/responses"),
    ("GET", "/api/v1/jobs/{job_id}/events"),
    ("GET", "/api/v1/jobs/{job_id}/results"),
    ("POST", "/api/v1/jobs/{job_id}/files"),
    ("POST", "/api/v1/jobs/{job_id}/files/preview"),
    ("POST", "/api/v1/jobs/from-file"),
    ("POST", "/api/v1/jobs/{job_id}/submit"),
    ("POST", "/api/v1/jobs/{job_id}/cancel"),
    ("POST", "/api/v1/jobs/{job_id}/retry"),
    ("POST", "/api/v1/jobs/{job_id}/resend-cancelled"),
]


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def test_the_document_lists_every_operation(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_keeps_to_the_document(app_ctx, api_schema, method, path):
    operation = api_schema[path][method]
    job = new_job(count=3)
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    if "{job_id}" in path:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"job_id": job.id}))

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def fuzz(case):
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    fuzz()


def test_docs_ui_is_served_from_local_assets(client):
    assert client.get("/api/v1/").headers["Location"] == "/api/v1/swagger"
    page = client.get("/api/v1/swagger")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets)  # nothing from a CDN
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
