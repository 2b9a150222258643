"""The OpenAPI schema, the docs page (no CDN), and a bounded schemathesis run against the schema."""

from __future__ import annotations

import time

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def connections_kept_across_requests():
    """Keep the test's database connection open across the raw WSGI calls, as Django's test
    Client does: at the end of each request Django closes a connection that is inside a
    transaction (the test's), which on MySQL would end the test's transaction mid-run."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_the_schema_is_openapi_3_and_lists_every_endpoint(db):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/batches/",
        "/api/v1/batches/{batch_id}/",
        "/api/v1/jobs/",
        "/api/v1/jobs/{job_id}/",
        "/api/v1/jobs/{job_id}/image/",
        "/api/v1/jobs/{job_id}/signal/",
        "/api/v1/jobs/{job_id}/signal.csv",
        "/api/v1/jobs/{job_id}/fhir/",
        "/api/v1/jobs/{job_id}/explanation.png",
        "/api/v1/jobs/{job_id}/report.pdf",
        "/api/v1/batches/{batch_id}/fhir/",
        "/api/v1/batches/{batch_id}/report.pdf",
    }
    assert {"get", "delete"} <= set(schema["paths"]["/api/v1/batches/{batch_id}/"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_errors_are_documented_as_problem_json(db):
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    responses = schema["paths"]["/api/v1/batches/"]["post"]["responses"]
    for code in ("400", "401", "413", "415", "429"):
        assert list(responses[code]["content"]) == ["application/problem+json"]
    assert list(responses["201"]["content"]) == ["application/json"]


def test_the_docs_page_loads_its_assets_from_this_site_not_a_cdn(db):
    page = Client().get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "https://"):
        assert cdn not in page


def test_the_docs_assets_are_served(db):
    response = Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert response.status_code == 200


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    db, owner, owner_key, settings, media_root, connections_kept_across_requests
):
    settings.ECGSITE_API_THROTTLE_RATES = {"api": "100000/min", "api-upload": "100000/min"}
    settings.ECGSITE_MAX_UPLOAD_BYTES = 64 * 1024  # keeps generated uploads cheap; 413 is documented
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    checks = [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]
    headers = {"Authorization": f"Token {owner_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 14
    started = time.monotonic()
    statuses: list[int] = []
    for operation in operations:

        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def exercise(case) -> None:
            statuses.append(case.call_and_validate(headers=headers, checks=checks).status_code)

        exercise()
    assert time.monotonic() - started < 300
    assert len(statuses) >= 5 * len(operations)
    assert all(status < 500 for status in statuses)
