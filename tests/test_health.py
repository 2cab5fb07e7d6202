"""GET / and GET /health: identity, dependencies (for signed-in callers), and 503 when the database is down."""

import pytest
from sqlalchemy import create_engine

from tests.conftest import TEST_REDIS_URL, api_token, sign_in
from webapp import __version__
from webapp.extensions import db
from webapp.services.health import check_health


def test_index_names_the_service(client):
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json == {"service": "ai-batch-processor", "version": __version__}


@pytest.mark.parametrize("caller", ["session", "token"])
def test_health_reports_each_dependency_to_signed_in_callers(client, member_user, caller):
    headers = {}
    if caller == "session":
        sign_in(client, member_user)
    else:
        headers = {"Authorization": f"Bearer {api_token(member_user)}"}
    response = client.get("/health", headers=headers)
    assert response.status_code == 200
    body = response.json
    assert body["database"]["ok"] is True
    assert body["queue"]["backend"] == ("redis" if TEST_REDIS_URL else "embedded")
    assert body["provider"]["default"] == "simulator"
    assert body["provider"]["api_key_configured"] is False
    assert "workers" in body


def test_anonymous_callers_see_only_the_status(app, client):
    app.config["OPENAI_BASE_URL"] = "https://internal-gateway.example.com/v1"
    try:
        response = client.get("/health")
    finally:
        app.config["OPENAI_BASE_URL"] = None
    assert response.status_code == 200
    assert response.json == {"status": response.json["status"]}
    assert response.json["status"] in ("ok", "degraded")
    assert "internal-gateway" not in response.get_data(as_text=True)


def test_a_bad_token_is_refused_not_ignored(client):
    response = client.get("/health", headers={"Authorization": "Bearer bp_not-a-token", "Accept": "application/json"})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"


def test_health_never_shows_the_api_key(app, client, member_user):
    app.config["OPENAI_API_KEY"] = "sk-secret-value-123"
    sign_in(client, member_user)
    try:
        text = client.get("/health").get_data(as_text=True)
    finally:
        app.config["OPENAI_API_KEY"] = None
    assert "provider" in text and "sk-secret-value-123" not in text


def test_health_is_503_when_the_database_is_down(app, client):
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    with app.app_context():
        engines = db._app_engines[app]
        saved = engines[None]
        engines[None] = dead
        db.session.remove()
        try:
            response = client.get("/health")
            report, healthy = check_health(app)
        finally:
            engines[None] = saved
            db.session.remove()
    assert response.status_code == 503
    assert response.json == {"status": "down"}
    assert not healthy and report["database"] == {"ok": False, "backend": "postgresql", "error": "database unreachable"}
    assert documented(client, "HealthReport").is_valid(report)  # what a signed-in caller gets then


def test_request_id_is_echoed_or_generated(client):
    given = client.get("/", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/")
    assert len(generated.headers["X-Request-ID"]) == 32
    hostile = client.get("/", headers={"X-Request-ID": "<script>" + "x" * 200})
    assert len(hostile.headers["X-Request-ID"]) == 32


def test_unknown_paths_get_json_under_api_and_html_elsewhere(client):
    api = client.get("/api/v1/nothing-here")
    assert api.status_code == 404
    assert api.json["error"]["code"] == "not_found"
    page = client.get("/nothing-here", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.mimetype == "text/html"


def documented(client, name: str):
    """A validator for the OpenAPI document's schema ``name`` (its references resolved within the document)."""
    from jsonschema import Draft202012Validator

    components = client.get("/api/v1/openapi.json").get_json()["components"]
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": components})


def test_the_openapi_document_has_the_index_and_health(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    index, health = paths["/"]["get"], paths["/health"]["get"]
    assert (index["operationId"], health["operationId"]) == ("index", "health")
    assert "Location" in index["responses"]["302"]["headers"]
    assert {"200", "401", "429", "503"} <= set(health["responses"])
    assert health["security"] == [{}, {"bearerAuth": []}]  # anyone may ask; a token gets more
    assert documented(client, "ServiceOut").is_valid(client.get("/", headers={"Accept": "application/json"}).json)


def test_each_health_answer_has_its_documented_shape(client, member_user):
    anonymous = client.get("/health").json
    detailed = client.get("/health", headers={"Authorization": f"Bearer {api_token(member_user)}"}).json
    assert documented(client, "HealthStatus").is_valid(anonymous)
    assert not documented(client, "HealthStatus").is_valid(detailed)  # the status alone, nothing more
    assert documented(client, "HealthReport").is_valid(detailed)
    assert not documented(client, "HealthReport").is_valid(anonymous)
    assert all(documented(client, "HealthOut").is_valid(body) for body in (anonymous, detailed))


def test_healths_errors_are_json_whatever_the_client_accepts(client):
    response = client.get("/health", headers={"Authorization": "Bearer bp_not-a-token", "Accept": "*/*"})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"
    assert documented(client, "ErrorOut").is_valid(response.json)
