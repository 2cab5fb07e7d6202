"""The Models API: the models the simulator offers by name, listed and retrieved through the SDK as OpenAI's."""

from __future__ import annotations

import openai
import pytest

from simulator.openai.models import MODELS
from tests.simulator.helpers import assert_openai_error, raw


def test_the_sdk_lists_the_models_the_simulator_offers(sim_client):
    models = list(sim_client.models.list())
    assert [model.id for model in models] == list(MODELS)
    assert {"gpt-4o-mini", "gpt-4o-mini-2024-07-18", "o4-mini", "text-embedding-3-small"} <= set(MODELS)
    assert all(model.object == "model" and model.owned_by and model.created > 0 for model in models)


def test_a_listed_model_is_retrieved_and_another_is_not_found(sim_client, sim_url):
    assert sim_client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError) as caught:
        sim_client.models.retrieve("gpt4o-mini")
    assert caught.value.code == "model_not_found"
    status, _, body = raw(f"{sim_url}/models/gpt4o-mini")
    assert status == 404 and assert_openai_error(body)["param"] == "model"


def test_the_list_needs_the_key(sim_url):
    status, _, body = raw(f"{sim_url}/models", headers={"Authorization": "Bearer wrong"})
    assert status == 401 and assert_openai_error(body)["code"] == "invalid_api_key"
