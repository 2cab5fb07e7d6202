"""A job can name Anthropic: its connection from the environment, its models with their batch prices (cache reads
and writes too), its place in the API and the new-job form, and the endpoint it runs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulator.anthropic.models import MODELS as CLAUDE_MODELS
from tests.conftest import sign_in
from webapp.config import ConfigError, from_env
from webapp.errors import ValidationFailed
from webapp.providers import available_providers, base_url, get_provider, provider_info
from webapp.providers.anthropic_provider import AnthropicProvider
from webapp.services import catalog, jobs
from webapp.services.pricing import price_table


@pytest.fixture
def fresh_lists(app):
    app.extensions.pop(catalog.CACHE, None)
    yield
    app.extensions.pop(catalog.CACHE, None)


# --- configuration -----------------------------------------------------------------------------------------------


def test_an_anthropic_key_makes_anthropic_the_provider_as_openais_key_makes_openai(tmp_path):
    config = from_env(str(tmp_path), {"ANTHROPIC_API_KEY": "sk-ant-x"})
    assert (config["DEFAULT_PROVIDER"], config["SIMULATOR_ENABLED"]) == ("anthropic", False)
    assert config["ANTHROPIC_BASE_URL"] is None and config["SYNC_INTERVAL_SECONDS"] == 30
    both = from_env(str(tmp_path), {"ANTHROPIC_API_KEY": "sk-ant-x", "OPENAI_API_KEY": "sk-x"})
    assert both["DEFAULT_PROVIDER"] == "openai"
    custom = from_env(str(tmp_path), {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": "https://gateway.example/claude"})
    assert custom["ANTHROPIC_BASE_URL"] == "https://gateway.example/claude"


def test_without_any_key_or_simulator_no_provider_could_run(tmp_path):
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        from_env(str(tmp_path), {"SIMULATOR_ENABLED": "false"})


def test_the_providers_a_key_and_the_simulator_offer(app_ctx, config):
    assert available_providers() == ["simulator", "simulator-anthropic"]
    assert base_url("simulator-anthropic").endswith("/simulator/anthropic")
    config(ANTHROPIC_API_KEY="sk-ant-x", SIMULATOR_ENABLED=False, DEFAULT_PROVIDER="anthropic")
    assert available_providers() == ["anthropic"]
    provider = get_provider("anthropic")
    assert isinstance(provider, AnthropicProvider) and str(provider.client.base_url).startswith(
        "https://api.anthropic.com"
    )
    info = provider_info()
    assert (info["default"], info["label"], info["api_key_configured"]) == ("anthropic", "Anthropic", True)
    config(ANTHROPIC_BASE_URL="https://gateway.example/claude")
    assert str(get_provider("anthropic").client.base_url).startswith("https://gateway.example/claude")


# --- models and prices -------------------------------------------------------------------------------------------


def test_the_anthropic_catalog_offers_claude_models_with_batch_prices(app_ctx, simulator, fresh_lists):
    found = catalog.catalog("simulator-anthropic")
    options = {option.name: option for option in found.options}
    assert found.provider_listed and set(options) == set(CLAUDE_MODELS) | set(price_table().models_of("anthropic"))
    assert not any(name.startswith("gpt") for name in options)
    sonnet = options["claude-sonnet-5-5"]
    assert sonnet.priced and sonnet.listed
    assert sonnet.batch_price.input == Decimal("1.0") and sonnet.batch_price.output == Decimal("5.0")
    assert sonnet.batch_price.cached_input == Decimal("0.05") and sonnet.batch_price.cache_write == Decimal("1.25")
    assert options["claude-haiku-4-5-20251001"].priced  # a dated version of a priced model


def test_a_gpt_model_is_not_known_to_anthropic_nor_a_claude_model_to_openai(app_ctx, simulator, fresh_lists):
    assert not catalog.describe("simulator-anthropic", "gpt-4o-mini").known
    assert not catalog.describe("simulator", "claude-sonnet-5-5").known
    with pytest.raises(ValidationFailed, match="unknown model"):
        catalog.check_model("simulator-anthropic", "gpt-4o-mini", confirmed=False)


def test_cache_writes_cost_their_own_price():
    table = price_table()
    # claude-sonnet-5-5: input 2, cache read 0.1, cache write 2.5, output 10 per million; half in a batch.
    cost = table.cost("claude-sonnet-5-5", prompt=1_000_000, completion=100_000, cached=200_000, cache_write=300_000)
    assert cost == Decimal("0.5") * (Decimal("1.0") + Decimal("0.02") + Decimal("0.75") + Decimal("1.0"))
    # OpenAI has no cache-write price: such tokens cost what input costs.
    assert table.cost("gpt-4o-mini", 1000, 0, cache_write=400) == table.cost("gpt-4o-mini", 1000, 0)


# --- jobs ----------------------------------------------------------------------------------------------------------


def test_an_anthropic_job_runs_chat_completions_only(app_ctx, simulator, fresh_lists):
    job = jobs.create_job({"name": "claude", "provider": "simulator-anthropic", "model": "claude-haiku-4-5"})
    assert job.provider == "simulator-anthropic"
    with pytest.raises(ValidationFailed, match="only /v1/chat/completions") as caught:
        jobs.create_job(
            {"name": "x", "provider": "simulator-anthropic", "model": "claude-haiku-4-5", "endpoint": "/v1/embeddings"}
        )
    assert caught.value.details[0]["field"] == "endpoint"


def test_the_new_job_form_offers_the_anthropic_dialect(client, member_user, simulator, fresh_lists):
    sign_in(client, member_user)
    page = client.get("/jobs/new").get_data(as_text=True)
    assert 'value="simulator-anthropic"' in page and "Simulator, Anthropic dialect" in page
