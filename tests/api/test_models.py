"""GET /api/v1/models (the models a job may name, with batch prices) and the confirmation an unknown model needs
when a job is created or changed."""

from __future__ import annotations

import pytest

from simulator.openai.models import MODELS
from tests.api.helpers import error_of
from webapp.services import catalog
from webapp.services.pricing import price_table


@pytest.fixture
def fresh_lists(app):
    app.extensions.pop(catalog.CACHE, None)
    yield
    app.extensions.pop(catalog.CACHE, None)


def test_the_models_of_the_simulator_with_their_batch_prices(api, simulator, fresh_lists):
    listed = api.get("/models?provider=simulator").get_json()
    assert (listed["provider"], listed["provider_listed"]) == ("simulator", True)
    models = {model["id"]: model for model in listed["data"]}
    assert list(models) == sorted(set(MODELS) | set(price_table().models_of("openai")))
    assert models["gpt-4o-mini"] == {
        "id": "gpt-4o-mini",
        "batch_price": {
            "input": "0.07500000",
            "cached_input": "0.03750000",
            "output": "0.30000000",
            "cache_write": "0.07500000",  # OpenAI has no cache-write price: the input's
            "currency": "USD",
        },
        "priced": True,
        "listed": True,
    }
    assert models["gpt-3.5-turbo-instruct"]["priced"] is False and models["gpt-3.5-turbo-instruct"]["listed"]
    assert api.get("/models").get_json() == listed  # the configured provider by default


def test_without_a_provider_list_the_price_table_is_listed(api, fresh_lists, config):
    config(SIMULATOR_BASE_URL="http://127.0.0.1:9/simulator/v1")
    listed = api.get("/models").get_json()
    assert listed["provider_listed"] is False
    assert [model["id"] for model in listed["data"]] == sorted(price_table().models_of("openai"))
    assert all(model["priced"] and not model["listed"] for model in listed["data"])


@pytest.mark.parametrize("provider", ["openai", "anthropic", ""])
def test_a_provider_not_offered_here_is_refused(api, provider):
    error = error_of(api.get(f"/models?provider={provider}", 422))
    assert error["details"][0]["field"] == "provider"


def test_an_unknown_model_needs_the_confirmation_to_create_a_job(api, fresh_lists, config):
    config(SIMULATOR_BASE_URL="http://127.0.0.1:9/simulator/v1")
    error = error_of(api.post("/jobs/", 422, json={"name": "typo", "model": "gpt4o-mini"}))
    assert error["code"] == "unknown_model" and "allow_unknown_model: true" in error["message"]
    assert "Did you mean gpt-4o-mini?" in error["details"][0]["message"]
    assert api.get("/jobs/").get_json()["total"] == 0

    job = api.post("/jobs/", 201, json={"name": "mine", "model": "my-deployment", "allow_unknown_model": True})
    created = job.get_json()
    assert created["model"] == "my-deployment" and "allow_unknown_model" not in created
    events = api.get(f"/jobs/{created['id']}/events").get_json()["data"]
    assert "confirmed" in events[0]["message"]


def test_a_known_model_needs_no_confirmation(api, simulator, fresh_lists):
    assert api.post("/jobs/", 201, json={"name": "listed", "model": "gpt-3.5-turbo-instruct"})
    assert api.post("/jobs/", 201, json={"name": "dated", "model": "gpt-4o-mini-2024-07-18"})


def test_changing_to_an_unknown_model_needs_the_confirmation_too(api, fresh_lists, config):
    config(SIMULATOR_BASE_URL="http://127.0.0.1:9/simulator/v1")
    job = api.create_job()
    path = f"/jobs/{job['id']}"
    assert error_of(api.put(path, 422, json={"model": "gpt4o-mini"}))["code"] == "unknown_model"
    assert api.get(path).get_json()["model"] == "gpt-4o-mini"
    changed = api.put(path, 200, json={"model": "gpt4o-mini", "allow_unknown_model": True}).get_json()
    assert changed["model"] == "gpt4o-mini"
    assert api.put(path, 200, json={"name": "renamed"}).get_json()["name"] == "renamed"  # the model stays as it is


def test_the_confirmation_is_a_boolean(api):
    error = error_of(api.post("/jobs/", 422, json={"name": "x", "model": "gpt-4o", "allow_unknown_model": "yes"}))
    assert error["details"][0]["field"] == "allow_unknown_model"


def test_the_api_takes_the_anthropic_providers(api, simulator, fresh_lists):
    created = api.post("/jobs/", 201, json={"name": "c", "provider": "simulator-anthropic", "model": "claude-opus-5-5"})
    assert created.get_json()["provider"] == "simulator-anthropic"
    listed = api.get("/models?provider=simulator-anthropic").get_json()
    assert "claude-opus-5-5" in [model["id"] for model in listed["data"]]
    error = error_of(api.post("/jobs/", 422, json={"name": "c", "provider": "anthropic", "model": "claude-opus-5-5"}))
    assert error["details"][0]["field"] == "provider"  # no ANTHROPIC_API_KEY here
