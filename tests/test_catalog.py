"""The model catalog: the price table's models and the provider's own list (cached, and tolerated when missing),
each with its batch price, and the one rule that refuses an unknown model unless it is confirmed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulator.openai.models import MODELS
from tests.simulated import add_fault
from webapp.errors import ValidationFailed
from webapp.providers import ProviderError
from webapp.providers.openai_provider import OpenAIProvider
from webapp.services import catalog
from webapp.services.pricing import price_table


@pytest.fixture
def asked(app, monkeypatch):
    """How often the provider was asked for its models; every test starts with nothing cached."""
    calls: list[str] = []
    real = OpenAIProvider.list_models

    def counted(self):
        calls.append(self.name)
        return real(self)

    monkeypatch.setattr(OpenAIProvider, "list_models", counted)
    app.extensions.pop(catalog.CACHE, None)
    yield calls
    app.extensions.pop(catalog.CACHE, None)


@pytest.fixture
def no_provider_list(app_ctx, asked, config):
    """The simulator provider points where nothing answers, so it gives no model list."""
    config(SIMULATOR_BASE_URL="http://127.0.0.1:9/simulator/v1")  # the discard port: connection refused
    return asked


def names(found: catalog.Catalog) -> list[str]:
    return [option.name for option in found.options]


def test_the_providers_models_join_the_price_table_with_their_batch_prices(app_ctx, simulator, asked):
    found = catalog.catalog("simulator")
    table = price_table()

    assert found.provider_listed and names(found) == sorted(set(MODELS) | set(table.models_of("openai")))
    options = {option.name: option for option in found.options}
    mini = options["gpt-4o-mini"]
    assert (mini.priced, mini.listed, mini.known) == (True, True, True)
    assert (mini.batch_price.input, mini.batch_price.output) == (Decimal("0.075"), Decimal("0.30"))
    dated = options["gpt-4o-mini-2024-07-18"]  # the simulator lists it; the table prices it as gpt-4o-mini
    assert (dated.priced, dated.listed, dated.batch_price) == (True, True, mini.batch_price)
    instruct = options["gpt-3.5-turbo-instruct"]  # listed; the table has no entry of its own for it
    assert (instruct.priced, instruct.listed, instruct.known) == (False, True, True)
    assert options["text-embedding-3-large"].batch_price.output == 0


def test_the_list_is_asked_once_while_it_is_kept(app_ctx, simulator, asked):
    for _ in range(3):
        catalog.catalog("simulator")
        catalog.describe("simulator", "gpt-4o-mini")
    assert asked == ["simulator"]


def test_a_list_kept_for_no_time_is_asked_each_time(app_ctx, simulator, asked, config):
    config(MODEL_LIST_CACHE_SECONDS=0)
    catalog.provider_models("simulator")
    catalog.provider_models("simulator")
    assert asked == ["simulator", "simulator"]


def test_a_provider_without_a_model_list_leaves_the_price_table(app_ctx, simulator, asked):
    add_fault(simulator, method="GET", path="/models", status=404, count=5)  # as a service without the endpoint
    found = catalog.catalog("simulator")
    assert not found.provider_listed and names(found) == sorted(price_table().models_of("openai"))
    assert catalog.describe("simulator", "gpt-4o-mini").known
    assert not catalog.describe("simulator", "gpt-3.5-turbo-instruct").known
    catalog.catalog("simulator")
    assert asked == ["simulator"]  # the failure is kept too: a page view does not ask again


def test_a_failure_is_kept_shorter_than_a_list(app_ctx, no_provider_list, monkeypatch):
    monkeypatch.setattr(catalog, "FAILURE_SECONDS", 0)
    assert catalog.provider_models("simulator") is None
    assert catalog.provider_models("simulator") is None
    assert no_provider_list == ["simulator", "simulator"]


def test_each_provider_address_has_its_own_list(app_ctx, simulator, asked, config):
    assert catalog.provider_models("simulator") == frozenset(MODELS)
    config(SIMULATOR_BASE_URL="http://127.0.0.1:9/simulator/v1")
    assert catalog.provider_models("simulator") is None
    assert len(asked) == 2


@pytest.mark.parametrize(
    "model, known",
    [
        ("gpt-4o-mini", True),
        ("gpt-4o-mini-2024-07-18", True),  # a dated version of a priced model
        ("gpt4o-mini", False),  # the typo of issue 15
        ("gpt-4o-minii", False),  # priced by the longest prefix, but named nowhere
        ("gpt-4o-mini-2024-7-18", False),
        ("my-azure-deployment", False),
    ],
)
def test_what_the_price_table_knows_without_a_provider_list(no_provider_list, model, known):
    assert catalog.describe("simulator", model).known is known


def test_an_unknown_model_is_refused_with_the_closest_name(no_provider_list):
    with pytest.raises(ValidationFailed) as caught:
        catalog.check_model("simulator", "gpt4o-mini", confirmed=False)
    error = caught.value
    assert (error.status, error.code) == (422, "unknown_model")
    assert "allow_unknown_model: true" in error.message
    fields = {detail["field"]: detail["message"] for detail in error.details}
    assert "Did you mean gpt-4o-mini?" in fields["model"] and "allow_unknown_model" in fields


def test_a_confirmed_unknown_model_passes_and_a_known_one_needs_no_confirmation(no_provider_list):
    assert catalog.check_model("simulator", "gpt4o-mini", confirmed=True) is False
    assert catalog.check_model("simulator", "gpt-4o", confirmed=False) is True


def test_a_model_only_the_provider_lists_is_known(app_ctx, simulator, asked):
    assert catalog.check_model("simulator", "gpt-3.5-turbo-instruct", confirmed=False) is True


def test_a_provider_not_offered_here_has_no_catalog(app_ctx):
    with pytest.raises(ValidationFailed) as caught:
        catalog.catalog("openai")
    assert caught.value.details == [{"field": "provider", "message": "provider 'openai' is not available here"}]


def provider_at(simulator, **options) -> OpenAIProvider:
    return OpenAIProvider("simulator", api_key="sim", base_url=f"{simulator.url}/simulator/v1", **options)


def test_the_provider_asks_once_and_says_why_it_has_no_list(simulator):
    provider = provider_at(simulator)
    assert provider.list_models() == list(MODELS)
    add_fault(simulator, method="GET", path="/models", status=503, count=1)
    with pytest.raises(ProviderError) as caught:  # not resent: a page is waiting, the price table will do
        provider.list_models()
    assert caught.value.status_code == 503 and caught.value.retryable
    assert provider.list_models() == list(MODELS)


def test_the_sdks_own_resends_are_named_apart_from_a_jobs_retries(simulator):
    provider = provider_at(simulator, http_retries=4)
    assert (provider.client.max_retries, provider.once.max_retries) == (4, 0)
