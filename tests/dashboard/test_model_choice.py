"""The new-job page's model picker: the models offered with their batch prices, the price of the model typed,
and the warning with its checkbox for an unknown model, which the service refuses unless it is ticked."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from simulator.openai.models import MODELS
from tests.dashboard.conftest import chat_line, field_error, job_count, jsonl_file
from webapp.extensions import db
from webapp.models import BatchJob, EventKind
from webapp.services import catalog
from webapp.services.pricing import price_table


def jsonl_for(model: str) -> tuple[bytes, str]:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    return jsonl_file([chat_line("a", "hello", body=body)]), f"{model}.jsonl"


@pytest.fixture
def no_list(app, config):
    """The simulator provider gives no model list (nothing answers where it points)."""
    config(SIMULATOR_BASE_URL="http://127.0.0.1:9/simulator/v1")
    app.extensions.pop(catalog.CACHE, None)
    yield
    app.extensions.pop(catalog.CACHE, None)


@pytest.fixture
def listed(app, simulator):
    """The simulator provider lists its models."""
    app.extensions.pop(catalog.CACHE, None)
    yield
    app.extensions.pop(catalog.CACHE, None)


def datalist(page: str) -> dict[str, str]:
    block = re.search(r'<datalist id="models">(.*?)</datalist>', page, re.S).group(1)
    return dict(re.findall(r'<option value="([^"]+)" label="([^"]*)"', block))


def picker(browser, htmx=True, **query):
    return browser.get("/jobs/new/model", htmx=htmx, query_string={"provider": "simulator", **query})


def test_the_page_offers_the_price_tables_models_with_their_batch_prices(browser, no_list):
    page = browser.get("/jobs/new").text
    options = datalist(page)
    assert list(options) == sorted(price_table().models_of("openai"))
    assert options["gpt-4o-mini"] == "$0.075 in, $0.30 out per million tokens (batch)"
    assert options["gpt-4o"] == "$1.25 in, $5.00 out per million tokens (batch)"
    assert 'list="models"' in re.search(r'<input [^>]*id="model"[^>]*>', page).group(0)
    assert "<strong>gpt-4o-mini</strong>: $0.075 in, $0.30 out per million tokens (batch)" in page
    assert "(Simulator gave no model list)" in page
    assert 'id="allow_unknown_model"' not in page  # no warning, no checkbox for a known model


def test_the_providers_own_models_are_offered_too(browser, listed):
    options = datalist(browser.get("/jobs/new").text)
    assert list(options) == sorted(set(MODELS) | set(price_table().models_of("openai")))
    assert options["gpt-3.5-turbo-instruct"].startswith("$0.25 in")  # priced as the gpt-3.5-turbo entry
    fragment = picker(browser, model="gpt-3.5-turbo-instruct").text
    assert "<strong>gpt-3.5-turbo-instruct</strong>: $0.25 in" in fragment
    assert "Simulator&#39;s list" in fragment


def test_htmx_gets_the_price_of_the_model_typed(browser, no_list):
    response = picker(browser, model="o4-mini")
    assert response.status_code == 200 and "<html" not in response.text
    assert "<strong>o4-mini</strong>: $0.55 in, $2.20 out per million tokens (batch)" in response.text
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_gets_the_warning_and_the_checkbox_for_an_unknown_model(browser, no_list):
    fragment = picker(browser, model="gpt4o-mini").text
    warning = re.search(r'<div class="flash flash-warning model-warning".*?</div>', fragment, re.S).group(0)
    assert "<strong>gpt4o-mini</strong> is not in the price table" in warning
    assert "Did you mean <strong>gpt-4o-mini</strong>?" in warning
    assert '<input id="allow_unknown_model" name="allow_unknown_model" type="checkbox" value="y">' in warning
    ticked = picker(browser, model="gpt4o-mini", allow_unknown_model="y").text
    assert 'checked id="allow_unknown_model"' in ticked  # a tick survives the picker being asked again


def test_a_browser_gets_the_page_with_the_model_filled_in(browser, no_list):
    response = picker(browser, htmx=False, model="gpt4o-mini")
    assert response.status_code == 200 and "<form" in response.text
    assert 'value="gpt4o-mini"' in response.text and "model-warning" in response.text


@pytest.mark.parametrize("query", [{"model": "m" * 101}, {"provider": "openai", "model": "gpt-4o"}])
def test_a_value_the_form_refuses_shows_no_price(browser, no_list, query):
    page = picker(browser, htmx=False, **query)
    assert page.status_code == 422
    assert "can be at most 100 characters" in page.text or "Not a valid choice" in page.text
    assert picker(browser, **query).status_code == 200  # htmx: the picker, without a price for it


def test_creating_a_job_with_an_unknown_model_asks_for_the_checkbox(browser, app_ctx, no_list):
    response = browser.new_job(jsonl_for("gpt4o-mini"), model="gpt4o-mini", name="Typo")

    assert response.status_code == 422 and job_count() == 0
    assert "Did you mean gpt-4o-mini?" in field_error(response.text, "model")
    assert "Confirm to use this model anyway" in field_error(response.text, "allow_unknown_model")
    assert 'value="gpt4o-mini"' in response.text  # what was typed stays

    confirmed = browser.new_job(jsonl_for("gpt4o-mini"), model="gpt4o-mini", name="Typo", allow_unknown_model="y")
    assert confirmed.status_code == 302
    created = db.session.scalars(select(BatchJob)).one()
    assert created.model == "gpt4o-mini"
    assert "confirmed" in next(e.message for e in created.events if e.kind == EventKind.CREATED)


def test_a_known_model_is_created_without_the_checkbox(browser, app_ctx, no_list):
    dated = "gpt-4o-mini-2024-07-18"
    assert browser.new_job(jsonl_for(dated), model=dated).status_code == 302
    assert job_count() == 1
