"""The new-job form: JSONL checked line by line, the CSV mapping step with its live preview, and bad input."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.dashboard.conftest import REVIEWS, SETTINGS, chat_line, csv_file, field_error, hidden, job_count, jsonl_file
from webapp.extensions import db
from webapp.intake import tables
from webapp.models import BatchJob, BatchRequest, JobStatus

TEMPLATE = "Classify this review: {{ Text }}"


def only_job() -> BatchJob:
    return db.session.scalars(select(BatchJob)).one()


def custom_ids(job: BatchJob) -> list[str]:
    return list(
        db.session.scalars(
            select(BatchRequest.custom_id).where(BatchRequest.job_id == job.id).order_by(BatchRequest.id)
        )
    )


def test_form_offers_the_providers_endpoints_and_file_types(browser):
    page = browser.get("/jobs/new")
    assert page.status_code == 200
    assert "Simulator (built-in, no real model calls)" in page.text
    for endpoint in ("/v1/chat/completions", "/v1/responses", "/v1/embeddings"):
        assert f'value="{endpoint}"' in page.text
    assert 'accept=".csv,.tsv,.txt,.xlsx,.xlsm,.jsonl,.ndjson,.json"' in page.text
    assert 'enctype="multipart/form-data"' in page.text


def test_the_simulator_is_described_as_it_is(browser, config):
    config(
        SIMULATOR_VALIDATING_SECONDS=1.0,
        SIMULATOR_IN_PROGRESS_SECONDS=5.0,
        SIMULATOR_FINALIZING_SECONDS=1.0,
        SYNC_INTERVAL_SECONDS=5,
    )
    text = html.unescape(browser.get("/jobs/new").text)
    assert "calls no model and charges nothing" in text and "about 7–12 s after you submit" in text
    assert "Costs are shown at the model's list prices (OpenAI's or Anthropic's)." in text
    assert "instantly" not in text and "costs nothing" not in text


def test_valid_jsonl_becomes_a_draft_job_that_is_not_submitted(browser, app_ctx):
    lines = [chat_line(f"t-{i}", f"Ticket {i}: my order is late") for i in range(3)]
    response = browser.new_job((jsonl_file(lines), "tickets.jsonl"), name="Tickets", temperature="0.2")

    job = only_job()
    assert response.status_code == 302 and response.headers["Location"] == f"/jobs/{job.id}"
    assert (job.name, job.status, job.total_requests, job.temperature) == ("Tickets", JobStatus.DRAFT, 3, 0.2)
    assert job.source == {"format": "jsonl", "filename": "tickets.jsonl"}
    page = browser.get(response.headers["Location"])
    assert "Created the job with 3 requests" in page.text
    assert "Submit 3 requests" in page.text


def bad_jsonl() -> bytes:
    return jsonl_file(
        [
            chat_line("ok-1", "fine"),
            '{"custom_id": "broken", "body": ',
            json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": {"messages": []}}),
            chat_line("ok-1", "same id again"),
            chat_line("wrong-url", "hi", url="/v1/embeddings"),
            chat_line("other-model", "hi", body={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
            chat_line("huge", "x" * 3000),
            chat_line("ok-2", "also fine"),
        ]
    )


def test_jsonl_with_bad_lines_lists_every_line_and_stores_nothing(browser, app_ctx, config):
    config(BATCH_MAX_BYTES=2000)
    response = browser.new_job((bad_jsonl(), "mixed.jsonl"), name="Mixed bag", description="keep me")

    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "6 lines of mixed.jsonl cannot be used. Nothing was stored." in text
    rows = {
        int(line): code
        for line, code in __import__("re").findall(
            r'<td class="num">(\d+)</td>\s*<td>[^<]*</td>\s*<td><code>(\w+)</code>', text
        )
    }
    assert rows == {
        2: "invalid_json_line",
        3: "missing_custom_id",
        4: "duplicate_custom_id",
        5: "url_mismatch",
        6: "model_mismatch",
        7: "line_too_large",
    }
    assert job_count() == 0
    assert 'value="Mixed bag"' in response.text and "keep me" in response.text  # what was typed stays
    assert hidden(response.text, "upload")  # the file is kept for the second submit
    assert "Skip the 6 invalid lines and create the job" in text


def test_second_submit_skips_the_bad_lines(browser, app_ctx, config):
    config(BATCH_MAX_BYTES=2000)
    rejected = browser.new_job((bad_jsonl(), "mixed.jsonl"), name="Mixed bag")
    response = browser.new_job(
        None,
        name="Mixed bag",
        upload=hidden(rejected.text, "upload"),
        filename=hidden(rejected.text, "filename"),
        skip_invalid="y",
    )

    assert response.status_code == 302
    job = only_job()
    assert custom_ids(job) == ["ok-1", "ok-2"]
    assert "skipped 6 invalid lines" in browser.get(response.headers["Location"]).text


def test_skip_checkbox_creates_the_job_at_the_first_submit(browser, app_ctx, config):
    config(BATCH_MAX_BYTES=2000)
    response = browser.new_job((bad_jsonl(), "mixed.jsonl"), skip_invalid="y")
    assert response.status_code == 302
    assert only_job().total_requests == 2


def test_a_fixed_file_replaces_the_rejected_one(browser, app_ctx):
    rejected = browser.new_job((jsonl_file(["not json"]), "bad.jsonl"))
    assert rejected.status_code == 422 and job_count() == 0
    response = browser.new_job(
        (jsonl_file([chat_line("a", "hello")]), "fixed.jsonl"),
        upload=hidden(rejected.text, "upload"),
        filename="bad.jsonl",
    )
    assert response.status_code == 302
    assert only_job().source["filename"] == "fixed.jsonl"


def test_csv_upload_leads_to_the_mapping_step_without_creating_a_job(browser, app_ctx):
    response = browser.new_job((csv_file(REVIEWS), "reviews.csv"))

    assert response.status_code == 200
    text = html.unescape(response.text)
    assert "Found 3 rows and 3 columns" in text.replace("<strong>", "").replace("</strong>", "")
    assert "separated by comma, text read as UTF-8)" in text
    for column in ("{{ Id }}", "{{ Text }}", "{{ Stars }}"):
        assert f"<code>{column}</code>" in text
    assert "Great, really great: would buy again" in text  # the sample rows, quoted comma intact
    assert '<option value="Id">Id</option>' in response.text  # id column choices
    assert job_count() == 0
    assert hidden(response.text, "upload") and hidden(response.text, "filename") == "reviews.csv"


def test_csv_detection_of_delimiter_and_encoding(browser, app_ctx):
    content = csv_file([["1", "Ça coûte très cher", "2"]], delimiter=";", encoding="cp1252")
    response = browser.new_job((content, "export.csv"))
    text = html.unescape(response.text)
    assert response.status_code == 200
    assert "separated by semicolon" in text
    assert "text read as Windows-1252 (Western European, as older Excel versions save it)" in text
    assert "cp1252" not in text
    assert "Ça coûte très cher" in text


def mapping_step(browser, rows=REVIEWS, **fields) -> dict:
    """Upload a CSV; return the form data of the mapping step, ready to post again."""
    page = browser.new_job((csv_file(rows), "reviews.csv"))
    return {
        **SETTINGS,
        "upload": hidden(page.text, "upload"),
        "filename": "reviews.csv",
        "template": TEMPLATE,
        **fields,
    }


def test_the_mapping_step_names_the_columns_a_pandas_export_left_unnamed(browser, app_ctx):
    page = browser.new_job((b",Text,Text\n0,good,fine\n", "df.csv"))
    text = html.unescape(page.text)
    assert "Column 1 has no name in the header; it is called column_1 here" in text
    assert "Column 3 repeats the name 'Text'; it is called Text_2 here" in text
    assert "{{ column_1 }}" in text and "{{ Text_2 }}" in text


def test_live_preview_renders_the_first_requests_and_the_estimate(browser, app_ctx):
    data = mapping_step(browser, id_column="Id", system_prompt="Answer in one word.")
    response = browser.post("/jobs/new/preview", data, htmx=True)

    assert response.status_code == 200
    assert response.headers["Vary"].startswith("HX-Request") or "HX-Request" in response.headers["Vary"]
    assert "<html" not in response.text and "<h2>Preview</h2>" in response.text
    text = html.unescape(response.text)
    assert "Classify this review: Great, really great: would buy again" in text
    assert "Classify this review: Très bien — mais un peu cher.\nSecond line of the review" in text
    assert "<code>r1</code>" in text
    assert "Answer in one word." in text  # the system prompt is in the request as sent
    assert "<strong>3</strong> requests" in text
    assert "Estimated cost: <strong>$" in text
    assert job_count() == 0


def test_preview_without_htmx_is_the_whole_page(browser, app_ctx):
    response = browser.post("/jobs/new/preview", mapping_step(browser))
    assert response.status_code == 200
    assert "<html" in response.text and 'id="csv-preview"' in response.text
    assert "Classify this review: Great" in html.unescape(response.text)


def test_template_naming_a_missing_column_is_a_form_error_not_a_crash(browser, app_ctx):
    data = mapping_step(browser, template="Classify: {{ Txet }}")
    preview = browser.post("/jobs/new/preview", data, htmx=True)
    assert preview.status_code == 200
    assert "no column named &#39;Txet&#39;; the columns are Id, Text, Stars" in preview.text

    response = browser.post("/jobs/new", data)
    assert response.status_code == 422
    assert "no column named" in field_error(response.text, "template")
    assert "Classify: {{ Txet }}" in html.unescape(response.text)  # the template typed stays
    assert job_count() == 0


def test_invalid_json_schema_is_shown_next_to_its_field(browser, app_ctx):
    data = mapping_step(browser, json_schema='{"type": "object", "properties": ')
    response = browser.post("/jobs/new", data)
    assert response.status_code == 422
    assert "not valid JSON" in field_error(response.text, "json_schema")
    assert job_count() == 0


def test_form_errors_are_said_once_in_words_with_the_validators_text_one_click_away(browser, app_ctx):
    schema = '{"type": "object", "properties": {"sentiment": "string"}}'
    response = browser.post("/jobs/new", mapping_step(browser, template="Rate: {{ Txt }}", json_schema=schema))
    assert response.status_code == 422
    summary = re.search(r'<div class="flash flash-error error-summary".*?</ul>', response.text, re.S).group(0)

    assert summary.count("no column named") == 1  # the preview's check of the same mapping adds nothing
    words = field_error(response.text, "json_schema")
    assert words == (
        "The JSON schema is not valid: “properties → sentiment” should be a schema in braces, such as "
        "{&#34;type&#34;: &#34;string&#34;}, not the text &#34;string&#34;."
    )
    assert summary.count(words) == 1 and "is not of type" not in summary
    detail = re.search(
        r'</small>\s*<details class="technical"><summary>Technical detail</summary><code>(.*?)</code>',
        response.text.split('id="json_schema-error"')[1],
        re.S,
    )
    assert detail and "is not of type &#39;object&#39;, &#39;boolean&#39;" in detail.group(1)
    assert job_count() == 0


def test_csv_job_is_created_with_one_request_per_row(browser, app_ctx):
    schema = {"type": "object", "properties": {"sentiment": {"type": "string"}}, "required": ["sentiment"]}
    data = mapping_step(browser, id_column="Id", json_schema=json.dumps(schema))
    response = browser.post("/jobs/new", data)

    assert response.status_code == 302
    job = only_job()
    assert job.status == JobStatus.DRAFT
    assert custom_ids(job) == ["r1", "r2", "r3"]
    assert job.source["columns"] == ["Id", "Text", "Stars"] and job.source["template"] == TEMPLATE
    body = db.session.scalars(select(BatchRequest.body).where(BatchRequest.job_id == job.id)).first()
    assert body["messages"][-1]["content"] == "Classify this review: Great, really great: would buy again"
    assert body["response_format"]["json_schema"]["schema"] == schema


def test_csv_rows_that_cannot_become_requests_are_listed(browser, app_ctx):
    rows = [*REVIEWS, ["r1", "duplicate id", "3"]]
    data = mapping_step(browser, rows=rows, id_column="Id")
    response = browser.post("/jobs/new", data)
    assert response.status_code == 422
    assert "1 row of reviews.csv cannot be used" in html.unescape(response.text)
    assert "duplicate_custom_id" in response.text
    assert job_count() == 0

    response = browser.post("/jobs/new", {**data, "skip_invalid": "y"})
    assert response.status_code == 302
    assert only_job().total_requests == 3


@pytest.mark.parametrize(
    "content, filename, message",
    [
        (b"", "empty.jsonl", "the file is empty"),
        (b"   \n\n", "blank.csv", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "picture.csv", "binary files cannot be read"),
        (b"\x00\x01\x02{", "data.jsonl", "binary files cannot be read"),
        (b"1,2,3\n4,5,6\n", "numbers.csv", "the first row looks like data, not column names"),
        (b"Id,Text\n", "header-only.csv", "the file has a header but no rows"),
    ],
)
def test_unusable_files_get_a_message_next_to_the_file_field(browser, app_ctx, content, filename, message):
    response = browser.new_job((content, filename), name="Keep this name")
    assert response.status_code == 422
    assert message in html.unescape(field_error(response.text, "file"))
    assert 'value="Keep this name"' in response.text
    assert job_count() == 0


def test_a_file_over_the_upload_limit_gets_a_friendly_page(browser, app_ctx, config):
    token = browser.token
    config(MAX_CONTENT_LENGTH=2048)
    response = browser.client.post(
        "/jobs/new",
        data={**SETTINGS, "csrf_token": token, "file": (__import__("io").BytesIO(b"x" * 5000), "big.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "larger than the upload limit" in field_error(response.text, "file")
    assert "<form" in response.text  # the form, to try again with a smaller file
    assert job_count() == 0


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"name": ""}, "name", "Give the job a name"),
        ({"name": "   "}, "name", "Give the job a name"),
        ({"name": "x" * 201}, "name", "The name can be at most 200 characters"),
        ({"temperature": "warm"}, "temperature", "Temperature must be a number, e.g. 0.7"),
        ({"temperature": "3"}, "temperature", "Temperature must be between 0 and 2"),
        ({"max_tokens": "lots"}, "max_tokens", "Max output tokens must be a number"),
        ({"max_retries": "-1"}, "max_retries", "Retries per failed request must be between 0 and 10"),
        ({"model": ""}, "model", "Name the model"),
        ({"provider": "openai"}, "provider", "Not a valid choice"),
    ],
)
def test_bad_settings_are_shown_next_to_their_field_and_nothing_is_created(browser, app_ctx, fields, field, message):
    lines = jsonl_file([chat_line("a", "hello")])
    response = browser.new_job((lines, "ok.jsonl"), description="typed by hand", **fields)

    assert response.status_code == 422
    assert message in field_error(response.text, field)
    if "must be a number" in message:
        assert "between" not in field_error(response.text, field)  # one message, not a range check of nothing
    assert "typed by hand" in response.text
    for name, value in fields.items():
        if name != "provider" and value.strip():
            assert f'value="{html.escape(value)}"' in response.text  # the form keeps what was typed
    assert job_count() == 0
    assert hidden(response.text, "upload")  # the file need not be chosen again


def test_blank_optional_numbers_are_no_error(browser, app_ctx):
    lines = jsonl_file([chat_line("a", "hello")])
    response = browser.new_job((lines, "ok.jsonl"), max_tokens="", temperature=" ")
    assert response.status_code == 302
    assert (only_job().max_tokens, only_job().temperature) == (None, None)


def test_no_file_chosen_is_an_error_on_the_file_field(browser, app_ctx):
    response = browser.new_job(None)
    assert response.status_code == 422
    assert "Choose the file" in field_error(response.text, "file")


def test_an_expired_upload_asks_for_the_file_again(browser, app_ctx):
    response = browser.new_job(None, upload="0" * 32, filename="gone.csv", template=TEMPLATE)
    assert response.status_code == 422
    assert "expired" in field_error(response.text, "file")
    assert job_count() == 0


# --- hostile files ------------------------------------------------------------------------------------


def stored_uploads(app) -> set[str]:
    """The files in the uploads folder (other tests leave theirs, kept for a second submit)."""
    folder = Path(app.instance_path) / "uploads"
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def test_a_csv_is_inspected_once_per_upload(browser, app, app_ctx, monkeypatch):
    """Every step read the whole file again: the mapping page, each live preview (one per keystroke), the create."""
    calls, before = [], stored_uploads(app)
    inspect = tables.inspect
    monkeypatch.setattr(tables, "inspect", lambda path, sheet=None: calls.append(path) or inspect(path, sheet))
    data = mapping_step(browser, id_column="Id")
    for template in ("Classify: {{ Text }}", "Classify this: {{ Text }}"):
        assert browser.post("/jobs/new/preview", {**data, "template": template}, htmx=True).status_code == 200
    assert browser.post("/jobs/new", data).status_code == 302
    assert len(calls) == 1
    assert only_job().total_requests == 3
    assert stored_uploads(app) == before  # neither the file nor what was kept beside it


def test_a_csv_that_cannot_be_read_is_refused_and_not_kept(browser, app, app_ctx, config):
    config(MAX_REQUEST_BYTES=1000)
    before = stored_uploads(app)
    content = csv_file([["r1", "short", "5"], ["r2", "x" * 2000, "4"]])
    response = browser.new_job((content, "long.csv"))
    assert response.status_code == 422
    assert "cannot be read at line 3: a row is longer than 1,000 characters" in field_error(response.text, "file")
    assert job_count() == 0 and stored_uploads(app) == before


def test_an_unexpected_error_leaves_no_upload_behind(browser, app, app_ctx, monkeypatch):
    def broken(path, sheet=None):
        raise OSError("disk gone")

    monkeypatch.setattr(tables, "inspect", broken)
    before = stored_uploads(app)
    response = browser.new_job((csv_file(REVIEWS), "reviews.csv"))
    assert response.status_code == 500
    assert job_count() == 0 and stored_uploads(app) == before


def test_a_json_schema_nested_past_the_limit_is_a_field_error(browser, app_ctx):
    schema = '{"type": "object", "properties": {"a": ' + nested_list(300) + "}}"
    response = browser.post("/jobs/new", mapping_step(browser, json_schema=schema))
    assert response.status_code == 422
    assert "nested deeper than 64 levels" in field_error(response.text, "json_schema")
    assert job_count() == 0


def test_a_jsonl_line_nested_past_the_limit_is_listed_and_nothing_stored(browser, app_ctx):
    lines = [chat_line("ok", "fine"), '{"custom_id": "deep", "body": ' + nested_list(300) + "}"]
    response = browser.new_job((jsonl_file(lines), "deep.jsonl"))
    assert response.status_code == 422
    assert "nested_too_deep" in response.text
    assert job_count() == 0


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- Excel workbooks -----------------------------------------------------------------------------------------


def test_a_workbook_goes_through_the_mapping_step_from_the_sheet_chosen(browser, app_ctx):
    from tests.workbooks import xlsx_bytes

    book = {
        "Summary": [["what"], ["totals"]],
        "Reviews": [["Id", "Text", "Stars"], ["r1", "Good", 5], ["r2", "Bad", 1]],
    }
    page = browser.new_job((xlsx_bytes(book), "reviews.xlsx"))
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "in the sheet “Summary”" in text and '<option value="Reviews">' in text
    data = {**SETTINGS, "upload": hidden(page.text, "upload"), "filename": "reviews.xlsx", "sheet": "Reviews"}
    chosen = html.unescape(browser.post("/jobs/new/preview", {**data, "use_sheet": "y"}).text)
    assert "in the sheet “Reviews”" in chosen and "{{ Stars }}" in chosen
    preview = browser.post("/jobs/new/preview", {**data, "template": "{{ Text }}: {{ Stars }} stars"}, htmx=True)
    assert "Good: 5 stars" in html.unescape(preview.text)
    assert browser.post("/jobs/new", {**data, "template": "{{ Text }}", "id_column": "Id"}).status_code == 302
    job = only_job()
    assert (job.source["format"], job.source["sheet"], custom_ids(job)) == ("xlsx", "Reviews", ["r1", "r2"])


def test_a_workbook_renamed_csv_is_read_as_a_workbook(browser, app_ctx):
    from tests.workbooks import xlsx_bytes

    page = browser.new_job((xlsx_bytes({"S": [["Text"], ["hello"]]}), "export.csv"))
    assert page.status_code == 200 and "binary" not in page.text
    assert "in the sheet “S”" in html.unescape(page.text)


def test_an_old_xls_file_gets_a_message_next_to_the_file_field(browser, app_ctx):
    response = browser.new_job((b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.xls"))
    assert response.status_code == 422
    assert "save it as .xlsx (Excel Workbook) or CSV" in field_error(response.text, "file")
    assert job_count() == 0


# --- rows left out or sent once ------------------------------------------------------------------------------


def test_the_live_preview_counts_empty_and_repeated_rows_and_the_options_apply(browser, app_ctx):
    rows = [["r1", "good", "5"], ["r2", "good", "4"], ["r3", "", "1"], ["r4", "bad", "2"]]
    data = mapping_step(browser, rows=rows, template="Review: {{ Text }}", id_column="Id")
    text = html.unescape(browser.post("/jobs/new/preview", data, htmx=True).text)
    assert "1 row has every placeholder empty (row 3)" in text and "Tick “Leave out" in text
    assert "1 row repeats the prompt of another row (row 2)" in text
    both = {**data, "skip_empty": "y", "send_duplicates_once": "y"}
    text = html.unescape(browser.post("/jobs/new/preview", both, htmx=True).text)
    assert "they are left out" in text and "each distinct prompt is sent once" in text
    assert "Sent to the provider: <strong>2</strong> distinct prompts" in text
    response = browser.post("/jobs/new", both)
    assert response.status_code == 302
    page = html.unescape(browser.get(response.headers["Location"]).text)
    assert "left out 1 row with every placeholder empty" in page
    job = only_job()
    assert (job.total_requests, custom_ids(job)) == (3, ["r1", "r2", "r4"])


def test_a_copys_page_names_the_request_it_takes_its_answer_from(browser, app_ctx):
    rows = [["r1", "same", "5"], ["r2", "same", "4"]]
    data = mapping_step(browser, rows=rows, template="{{ Text }}", id_column="Id", send_duplicates_once="y")
    assert browser.post("/jobs/new", data).status_code == 302
    first, copy = db.session.scalars(select(BatchRequest).order_by(BatchRequest.id)).all()
    page = html.unescape(browser.get(f"/jobs/{copy.job_id}/requests/{copy.id}").text)
    assert f"request {first.id}</a>, whose answer it takes" in page and f"/requests/{first.id}" in page
