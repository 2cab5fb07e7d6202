"""A job setting's rules live in one place (webapp/models/job_settings.py): the model's default and column, the
API's schema, the form's fields and the page's attributes read them, and the service refuses what breaks them,
whoever calls it."""

from __future__ import annotations

import re

import pytest

from tests.dashboard.conftest import Browser
from tests.factories import new_job
from webapp.dashboard.forms import NewJobForm
from webapp.errors import ValidationFailed
from webapp.models import BatchJob
from webapp.models.job_settings import JOB_SETTINGS, MAX_RETRIES, MAX_TOKENS, MODEL, NAME, TEMPERATURE
from webapp.services import jobs

NUMBERS = [MAX_TOKENS, TEMPERATURE, MAX_RETRIES]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("max_retries", 11, "Retries per failed request must be between 0 and 10"),
        ("max_retries", -1, "Retries per failed request must be between 0 and 10"),
        ("max_retries", None, "Say how often a failed request is retried"),
        ("max_retries", "3", "Retries per failed request must be a whole number"),
        ("max_retries", True, "Retries per failed request must be a whole number"),
        ("max_retries", 2.5, "Retries per failed request must be a whole number"),
        ("max_tokens", 0, "Max output tokens must be between 1 and 1,000,000"),
        ("max_tokens", 1_000_001, "Max output tokens must be between 1 and 1,000,000"),
        ("temperature", 2.01, "Temperature must be between 0 and 2"),
        ("temperature", float("nan"), "Temperature must be a number"),
        ("temperature", "warm", "Temperature must be a number"),
        ("name", "", "Give the job a name"),
        ("name", "   ", "Give the job a name"),
        ("name", "x" * 201, "The name can be at most 200 characters"),
        ("description", "x" * 10_001, "The description can be at most 10,000 characters"),
        ("model", "m" * 101, "The model can be at most 100 characters"),
        ("model", None, "Name the model"),
    ],
)
def test_the_service_refuses_a_setting_out_of_bounds_whoever_calls(app_ctx, field, value, message):
    with pytest.raises(ValidationFailed) as created:
        jobs.create_job({"name": "direct", "model": "gpt-4o-mini", field: value})
    job = new_job(count=0)
    with pytest.raises(ValidationFailed) as updated:
        jobs.update_job(job, {field: value})

    for caught in (created, updated):
        assert caught.value.status == 422
        assert [d["field"] for d in caught.value.details] == [field]
        assert message in caught.value.details[0]["message"]
    assert (job.name, job.max_retries) == ("test job", 3)  # the refused update changed nothing


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
def test_the_bounds_themselves_are_accepted(app_ctx, setting):
    for value in (setting.minimum, setting.maximum):
        job = jobs.create_job({"name": "edge", "model": "gpt-4o-mini", setting.name: setting.kind(value)})
        assert getattr(job, setting.name) == value


def test_left_out_settings_take_their_defaults(app_ctx):
    job = jobs.create_job({"name": "defaults", "model": "gpt-4o-mini"})
    assert [getattr(job, s.name) for s in NUMBERS] == [s.default for s in NUMBERS] == [None, None, 3]


def test_the_model_reads_its_defaults_and_lengths():
    columns = BatchJob.__table__.c
    assert columns.max_retries.default.arg == MAX_RETRIES.default
    assert (columns.name.type.length, columns.model.type.length) == (NAME.maximum, MODEL.maximum)


def test_the_api_schema_reads_the_bounds_defaults_and_help(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    for schema in (schemas["JobCreate"], schemas["JobUpdate"]):
        for setting in NUMBERS:
            prop = schema["properties"][setting.name]
            bounds = next(option for option in prop.get("anyOf", [prop]) if option.get("type") != "null")
            assert (bounds["minimum"], bounds["maximum"]) == (setting.minimum, setting.maximum)
            assert setting.help in prop["description"]
        for setting in (NAME, MODEL):
            assert schema["properties"][setting.name]["maxLength"] == setting.maximum
    assert schemas["JobCreate"]["properties"]["max_retries"]["default"] == MAX_RETRIES.default


def test_the_form_reads_them_and_the_page_shows_them(app, client, admin_user):
    from tests.conftest import sign_in

    with app.test_request_context():
        form = NewJobForm(formdata=None)
        for setting in NUMBERS:
            assert (form[setting.name].flags.min, form[setting.name].flags.max) == (setting.minimum, setting.maximum)
        assert form.max_retries.data == MAX_RETRIES.default

    sign_in(client, admin_user)
    page = Browser(client).get("/jobs/new").text
    for setting in NUMBERS:
        tag = re.search(rf'<input [^>]*id="{setting.name}"[^>]*>', page).group(0)
        assert f'min="{setting.minimum}"' in tag and f'max="{setting.maximum}"' in tag
        assert setting.help in page.replace("&#39;", "'")
    assert 'step="0.1"' in re.search(r'<input [^>]*id="temperature"[^>]*>', page).group(0)
    for setting in (NAME, MODEL):
        assert f'maxlength="{setting.maximum}"' in re.search(rf'<input [^>]*id="{setting.name}"[^>]*>', page).group(0)
    assert f'value="{MAX_RETRIES.default}"' in re.search(r'<input [^>]*id="max_retries"[^>]*>', page).group(0)


def test_every_setting_is_defined_once_with_its_rules():
    for name, setting in JOB_SETTINGS.items():
        assert setting.name == name and setting.label
        if setting.required:
            assert setting.problem(None) == setting.missing_message
        else:
            assert setting.problem(None) is None
