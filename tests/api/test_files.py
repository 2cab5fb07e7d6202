"""File uploads through the API: JSONL and CSV with the dashboard's validation, previews, format detection."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.api.helpers import error_of
from tests.factories import chat_body

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REVIEWS = 'id,review,stars\nr1,"Great, really great",5\nr2,"Broke after\na week",1\nr3,Très bien — günstig,4\n'


def jsonl(*items) -> bytes:
    return "\n".join(i if isinstance(i, str) else json.dumps(i) for i in items).encode("utf-8")


def line(custom_id: str, text: str = "hi") -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": chat_body(text)}


def upload(api, job_id: int, content: bytes, filename: str = "requests.jsonl", expect=None, **fields):
    data = {"file": (io.BytesIO(content), filename), **fields}
    return api.post(f"/jobs/{job_id}/files", expect, data=data, content_type="multipart/form-data")


def test_jsonl_upload_returns_the_report(api):
    job = api.create_job()
    report = upload(api, job["id"], jsonl(line("a"), "", line("b", "héllo")), expect=201).get_json()
    assert report == {
        "added": 2,
        "skipped": 0,
        "problem_count": 0,
        "problems": [],
        "empty_rows": 0,
        "empty_row_numbers": [],
        "skipped_empty": 0,
        "repeated_rows": 0,
        "repeated_row_numbers": [],
        "copies": 0,
    }
    shown = api.get(f"/jobs/{job['id']}").get_json()
    assert shown["counts"]["total"] == 2
    assert shown["source"] == {"format": "jsonl", "filename": "requests.jsonl"}
    assert [e["actor"] for e in api.get(f"/jobs/{job['id']}/events").get_json()["data"]] == [
        "admin@example.com (api)"
    ] * 2


def test_bad_lines_reject_the_whole_file_with_line_numbers(api):
    job = api.create_job()
    content = jsonl(
        line("a"),
        "{oops",
        line("a"),
        '{"custom_id": "n", "body": {"messages": [{"role": "user", "content": "\\u0000"}]}}',
    )
    error = error_of(upload(api, job["id"], content, expect=422))
    assert error["message"] == "3 lines of the file are invalid; nothing was stored"
    assert [d["field"] for d in error["details"]] == ["line 2", "line 3", "line 4"]
    assert error["details"][0]["message"].startswith("invalid_json_line:")
    assert error["details"][2]["message"].startswith("unstorable_value:")
    assert api.get(f"/jobs/{job['id']}").get_json()["counts"]["total"] == 0


def test_skip_invalid_stores_the_good_lines_and_reports_the_rest(api):
    job = api.create_job()
    report = upload(api, job["id"], jsonl(line("a"), "{oops", line("b")), expect=201, skip_invalid="true").get_json()
    assert (report["added"], report["skipped"], report["problem_count"]) == (2, 1, 1)
    assert report["problems"] == [
        {
            "line": 2,
            "code": "invalid_json_line",
            "custom_id": None,
            "message": "not valid JSON (unexpected character, expected a string key at column 2)",
        }
    ]


def test_csv_upload_renders_the_template(api):
    job = api.create_job()
    schema = json.dumps({"type": "object", "properties": {"sentiment": {"type": "string"}}})
    report = upload(
        api,
        job["id"],
        REVIEWS.encode("utf-8"),
        filename="reviews.csv",
        expect=201,
        template="Classify: {{ review }}",
        system_prompt="Be brief.",
        id_column="id",
        json_schema=schema,
    ).get_json()
    assert report["added"] == 3
    rows = api.get(f"/jobs/{job['id']}/requests").get_json()["data"]
    assert [r["custom_id"] for r in rows] == ["r1", "r2", "r3"]
    assert rows[1]["body"]["messages"][1]["content"] == "Classify: Broke after\na week"
    assert rows[2]["body"]["messages"][1]["content"] == "Classify: Très bien — günstig"
    assert rows[0]["body"]["response_format"]["type"] == "json_schema"
    source = api.get(f"/jobs/{job['id']}").get_json()["source"]
    assert source["columns"] == ["id", "review", "stars"] and source["filename"] == "reviews.csv"


def test_csv_text_fields_are_taken_exactly_as_sent(api):
    job = api.create_job()
    report = upload(api, job["id"], b"n\n1\n2\n", filename="n.csv", expect=201, template='"42"').get_json()
    assert report["added"] == 2
    body = api.get(f"/jobs/{job['id']}/requests").get_json()["data"][0]["body"]
    assert body["messages"][0]["content"] == '"42"'


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({}, "template", "a CSV file needs a prompt template"),
        ({"template": "{{ nope }}"}, "template", "the mapping has problems"),
        ({"template": "{{ review }}", "id_column": "missing"}, "id_column", "the mapping has problems"),
        (
            {"template": "{{ review }}", "json_schema": "{bad"},
            "json_schema",
            "the JSON schema is refused: not valid JSON",
        ),
        ({"template": "{{ review }}", "json_schema": '{"type": "string"}'}, "json_schema", "the mapping has problems"),
    ],
)
def test_csv_mapping_problems_are_422(api, fields, field, message):
    job = api.create_job()
    error = error_of(upload(api, job["id"], REVIEWS.encode(), filename="reviews.csv", expect=422, **fields))
    assert error["message"].startswith(message)
    assert field in [d["field"] for d in error["details"]]


def test_format_comes_from_the_field_the_name_the_content_type_or_the_bytes(api):
    job = api.create_job()
    assert upload(api, job["id"], jsonl(line("a")), filename="data.txt", expect=201, format="jsonl")
    data = {"file": (io.BytesIO(jsonl(line("b"))), "data", "application/x-ndjson")}
    api.post(f"/jobs/{job['id']}/files", 201, data=data, content_type="multipart/form-data")
    # Neither name nor type tells: a JSON line starts with "{", as the dashboard reads it too.
    assert upload(api, job["id"], jsonl(line("c")), filename="data.bin", expect=201)
    assert upload(api, job["id"], b"x\n1\n", filename="data.bin", expect=201, template="{{ x }}")
    assert upload(
        api, job["id"], b"x\n2\n", filename="data.bin", expect=201, format="csv", template="{{ x }}", id_column="x"
    )


@pytest.mark.parametrize(
    "data, field",
    [
        ({}, "file"),
        ({"file": "not a file"}, "file"),
        ({"format": "xml"}, "format"),
        ({"skip_invalid": "maybe"}, "skip_invalid"),
    ],
)
def test_upload_form_fields_are_validated(api, data, field):
    job = api.create_job()
    form = {"file": (io.BytesIO(jsonl(line("a"))), "r.jsonl"), **data} if field != "file" else data
    error = error_of(api.post(f"/jobs/{job['id']}/files", 422, data=form, content_type="multipart/form-data"))
    assert field in [d["field"] for d in error["details"]]


def test_empty_and_binary_files_are_refused(api):
    job = api.create_job()
    assert error_of(upload(api, job["id"], b"  \n", expect=422))["message"] == "the file is empty"
    assert "binary" in error_of(upload(api, job["id"], b"\x00\x01", expect=422))["message"]


def test_uploads_need_multipart_a_draft_and_a_known_job(api):
    job = api.job_with_requests(1)
    error = error_of(api.post(f"/jobs/{job['id']}/files", 415, json={"file": "x"}))
    assert "multipart/form-data" in error["message"]
    api.post(f"/jobs/{job['id']}/submit", 200)
    assert "only drafts" in error_of(upload(api, job["id"], jsonl(line("z")), expect=409))["message"]
    assert (
        "only drafts"
        in error_of(upload(api, job["id"], REVIEWS.encode(), filename="r.csv", expect=409, template="{{ review }}"))[
            "message"
        ]
    )
    upload(api, 999999, jsonl(line("z")), expect=404)


def test_too_large_upload_is_413(api, app):
    job = api.create_job()
    previous = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        error = error_of(upload(api, job["id"], jsonl(*[line(f"r{i}") for i in range(50)]), expect=413))
    finally:
        app.config["MAX_CONTENT_LENGTH"] = previous
    assert error["code"] == "too_large"


def test_uploaded_csv_files_are_not_kept(api, app):
    uploads = Path(app.instance_path) / "uploads"
    before = set(uploads.glob("*"))  # other tests' dashboard uploads wait for their form's next step
    job = api.create_job()
    upload(api, job["id"], REVIEWS.encode(), filename="reviews.csv", expect=201, template="{{ review }}")
    upload(api, job["id"], REVIEWS.encode(), filename="reviews.csv", expect=422)
    assert set(uploads.glob("*")) == before


def test_preview_shows_the_file_and_the_first_requests_without_storing(api):
    job = api.create_job(max_tokens=20)
    data = {"file": (io.BytesIO(REVIEWS.encode()), "reviews.csv"), "template": "Rate: {{ review }}", "limit": "2"}
    preview = api.post(
        f"/jobs/{job['id']}/files/preview", 200, data=data, content_type="multipart/form-data"
    ).get_json()
    assert preview["file"] == {
        "format": "csv",
        "sheet": None,
        "sheets": [],
        "encoding": "utf-8",
        "delimiter": ",",
        "columns": ["id", "review", "stars"],
        "row_count": 3,
        "rows": [
            ["r1", "Great, really great", "5"],
            ["r2", "Broke after\na week", "1"],
            ["r3", "Très bien — günstig", "4"],
        ],
        "notes": [],
    }
    assert [r["custom_id"] for r in preview["requests"]] == ["row-1", "row-2"]
    assert preview["request_count"] == 3 and preview["estimated_output_tokens"] == 60
    assert preview["estimated_cost"] is not None and preview["report"]["problem_count"] == 0
    assert api.get(f"/jobs/{job['id']}").get_json()["counts"]["total"] == 0


def test_a_pandas_export_is_previewed_and_stored_with_the_names_made_for_it(api):
    job = api.create_job()
    content = b",review,review\n0,Good,Fine\n1,Bad,Poor\n"
    data = {"file": (io.BytesIO(content), "df.csv"), "template": "{{ column_1 }}: {{ review }} / {{ review_2 }}"}
    preview = api.post(f"/jobs/{job['id']}/files/preview", 200, data=data, content_type="multipart/form-data")
    found = preview.get_json()
    assert found["file"]["columns"] == ["column_1", "review", "review_2"]
    assert found["file"]["notes"] == [
        "Column 1 has no name in the header; it is called column_1 here",
        "Column 3 repeats the name 'review'; it is called review_2 here",
    ]
    assert found["requests"][0]["body"]["messages"][-1]["content"] == "0: Good / Fine"
    upload(api, job["id"], content, "df.csv", 201, template="{{ review_2 }}")
    assert api.get(f"/jobs/{job['id']}").get_json()["source"]["columns"] == ["column_1", "review", "review_2"]


def test_preview_without_template_only_inspects(api):
    job = api.create_job()
    data = {"file": (io.BytesIO(b"a;b\n1;2\n"), "x.csv")}
    preview = api.post(
        f"/jobs/{job['id']}/files/preview", 200, data=data, content_type="multipart/form-data"
    ).get_json()
    assert preview["file"]["delimiter"] == ";" and preview["requests"] == [] and preview["report"] is None
    data = {"file": (io.BytesIO(b"1,2\n3,4\n"), "x.csv")}
    error = error_of(api.post(f"/jobs/{job['id']}/files/preview", 422, data=data, content_type="multipart/form-data"))
    assert "header" in error["message"]


def test_example_files_import_cleanly(api):
    job = api.create_job()
    with open(EXAMPLES / "requests.jsonl", "rb") as fh:
        assert upload(api, job["id"], fh.read(), expect=201).get_json()["problem_count"] == 0
    other = api.create_job()
    with open(EXAMPLES / "reviews.csv", "rb") as fh:
        report = upload(
            api,
            other["id"],
            fh.read(),
            filename="reviews.csv",
            expect=201,
            id_column="review_id",
            template="Classify the sentiment of this review: {{ review }}",
        ).get_json()
    assert report["added"] >= 5 and report["problem_count"] == 0


@pytest.mark.parametrize("field", ["skip_invalid", "template", "json_schema"])
def test_form_fields_nested_past_the_limit_are_refused(api, field):
    """flask-openapi3 reads every form field as JSON first: 1,000 levels crashed its parser."""
    job = api.create_job()
    fields = {"template": "{{ review }}", field: "[" * 1000 + "]" * 1000}
    error = error_of(upload(api, job["id"], REVIEWS.encode(), "reviews.csv", 422, **fields))
    assert error["details"] == [{"field": field, "message": "nested deeper than 64 levels, the most accepted"}]
    assert api.get(f"/jobs/{job['id']}").get_json()["counts"]["total"] == 0


def test_a_json_schema_nested_past_the_limit_is_a_field_error(api):
    job = api.create_job()
    schema = '{"type": "object", "properties": {"a": ' + "[" * 300 + "]" * 300 + "}}"
    error = error_of(
        upload(api, job["id"], REVIEWS.encode(), "reviews.csv", 422, template="{{ review }}", json_schema=schema)
    )
    assert error["details"][0]["field"] == "json_schema"
    assert api.get(f"/jobs/{job['id']}").get_json()["counts"]["total"] == 0


# --- Excel workbooks -----------------------------------------------------------------------------------------

BOOK = {
    "Summary": [["what"], ["not this one"]],
    "Reviews": [["id", "review", "amount"], ["r1", "Good", -12.5], ["r2", "Bad", 3]],
}


def test_a_workbook_is_previewed_from_the_chosen_sheet(api):
    from tests.workbooks import xlsx_bytes

    job = api.create_job()
    data = {
        "file": (io.BytesIO(xlsx_bytes(BOOK)), "book.xlsx"),
        "sheet": "Reviews",
        "template": "{{ review }} {{ amount }}",
    }
    found = api.post(f"/jobs/{job['id']}/files/preview", 200, data=data, content_type="multipart/form-data").get_json()
    assert found["file"]["format"] == "xlsx"
    assert (found["file"]["sheet"], found["file"]["sheets"]) == ("Reviews", ["Summary", "Reviews"])
    assert found["file"]["rows"] == [["r1", "Good", "-12.5"], ["r2", "Bad", "3"]]
    assert found["requests"][1]["body"]["messages"][-1]["content"] == "Bad 3"
    first = {"file": (io.BytesIO(xlsx_bytes(BOOK)), "book.xlsx")}
    found = api.post(f"/jobs/{job['id']}/files/preview", 200, data=first, content_type="multipart/form-data")
    assert found.get_json()["file"]["columns"] == ["what"]


def test_a_workbook_upload_stores_its_sheet_even_named_csv(api):
    from tests.workbooks import xlsx_bytes

    job = api.create_job()
    report = upload(api, job["id"], xlsx_bytes(BOOK), "renamed.csv", 201, sheet="Reviews", template="{{ review }}")
    assert report.get_json()["added"] == 2
    source = api.get(f"/jobs/{job['id']}").get_json()["source"]
    assert (source["format"], source["sheet"], source["filename"]) == ("xlsx", "Reviews", "renamed.csv")
    rows = api.get(f"/jobs/{job['id']}/requests").get_json()["data"]
    assert [r["source_line"] for r in rows] == [1, 2]


@pytest.mark.parametrize(
    "content, fields, field, message",
    [
        ("book", {"sheet": "Nope", "template": "{{ x }}"}, "sheet", "no sheet named 'Nope'"),
        ("book", {}, "template", "a CSV file needs a prompt template"),
        ("cut", {"template": "{{ x }}"}, "file", "may be damaged"),
        ("ole", {"template": "{{ x }}"}, "file", "password-protected"),
        ("xls", {"template": "{{ x }}"}, "file", "old Excel .xls"),
    ],
)
def test_bad_workbooks_get_a_clear_422(api, content, fields, field, message):
    from tests.workbooks import xlsx_bytes

    book = xlsx_bytes(BOOK)
    files = {
        "book": (book, "book.xlsx"),
        "cut": (book[:300], "book.xlsx"),
        "ole": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "book.xlsx"),
        "xls": (b"whatever", "old.xls"),
    }
    data, name = files[content]
    job = api.create_job()
    for path in ("files", "files/preview"):
        form = {"file": (io.BytesIO(data), name), **fields}
        response = api.post(f"/jobs/{job['id']}/{path}", None, data=form, content_type="multipart/form-data")
        if path == "files/preview" and field == "template":
            assert response.status_code == 200  # a preview without a template only inspects
            continue
        error = error_of(response)
        assert response.status_code == 422 and message in error["message"], error
        assert field in [d["field"] for d in error["details"]]


# --- rows left out or sent once ------------------------------------------------------------------------------

REPEATS = b"id,text\n1,good\n2,good\n3,\n4,bad\n"


def test_the_preview_reports_empty_and_repeated_rows_and_the_options_change_the_estimate(api):
    job = api.create_job()

    def preview(**options):
        data = {"file": (io.BytesIO(REPEATS), "r.csv"), "template": "Review: {{ text }}", **options}
        return api.post(
            f"/jobs/{job['id']}/files/preview", 200, data=data, content_type="multipart/form-data"
        ).get_json()

    plain = preview()
    assert (plain["report"]["empty_rows"], plain["report"]["empty_row_numbers"]) == (1, [3])
    assert (plain["report"]["repeated_rows"], plain["report"]["repeated_row_numbers"]) == (1, [2])
    assert (plain["request_count"], plain["sent_count"]) == (4, 4)
    both = preview(skip_empty="true", send_duplicates_once="true")
    assert (both["request_count"], both["sent_count"], both["report"]["skipped_empty"]) == (3, 2, 1)


def test_an_upload_skips_empty_rows_and_sends_repeats_once(api):
    job = api.create_job()
    fields = {"template": "Review: {{ text }}", "id_column": "id", "skip_empty": "true", "send_duplicates_once": "true"}
    report = upload(api, job["id"], REPEATS, "r.csv", 201, **fields).get_json()
    assert (report["added"], report["skipped_empty"], report["empty_row_numbers"]) == (3, 1, [3])
    assert (report["copies"], report["repeated_row_numbers"]) == (1, [2])
    first, copy, _ = api.get(f"/jobs/{job['id']}/requests").get_json()["data"]
    assert (first["copy_of_id"], copy["copy_of_id"]) == (None, first["id"])
    events = api.get(f"/jobs/{job['id']}/events").get_json()["data"]
    assert "left out 1 row with every placeholder empty (row 3)" in events[-1]["message"]
    assert "1 row repeats the prompt of an earlier row" in events[-1]["message"]
    error = error_of(upload(api, job["id"], REPEATS, "r.csv", 422, template="x", skip_empty="perhaps"))
    assert "skip_empty" in [d["field"] for d in error["details"]]


# --- a job from a file in one call ---------------------------------------------------------------------------


def test_a_job_is_created_from_a_workbook_in_one_call(api):
    from tests.workbooks import xlsx_bytes

    form = {
        "file": (io.BytesIO(xlsx_bytes(BOOK)), "book.xlsx"),
        "name": "2024",  # text as sent, not the number JSON would make of it
        "model": "gpt-4o-mini",
        "max_tokens": "50",
        "sheet": "Reviews",
        "template": "{{ review }}",
        "id_column": "id",
    }
    response = api.post("/jobs/from-file", 201, data=form, content_type="multipart/form-data")
    made = response.get_json()
    assert made["report"]["added"] == 2 and made["job"]["name"] == "2024" and made["job"]["max_tokens"] == 50
    assert response.headers["Location"].endswith(f"/jobs/{made['job']['id']}")
    assert made["job"]["source"]["sheet"] == "Reviews"
    rows = api.get(f"/jobs/{made['job']['id']}/requests").get_json()["data"]
    assert [r["custom_id"] for r in rows] == ["r1", "r2"]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"template": "{{ nope }}"}, "template"),  # the mapping refused: no job
        ({"template": "{{ review }}", "max_retries": "99"}, "max_retries"),  # a setting refused
        ({"template": "{{ review }}", "sheet": "Nope"}, "sheet"),
    ],
)
def test_a_refused_file_or_setting_leaves_no_job(api, fields, field):
    from tests.workbooks import xlsx_bytes

    before = api.get("/jobs/").get_json()["total"]
    form = {"file": (io.BytesIO(xlsx_bytes(BOOK)), "b.xlsx"), "name": "x", "model": "gpt-4o-mini", "sheet": "Reviews"}
    error = error_of(api.post("/jobs/from-file", 422, data={**form, **fields}, content_type="multipart/form-data"))
    assert field in [d["field"] for d in error["details"]]
    assert api.get("/jobs/").get_json()["total"] == before


def test_bad_rows_refuse_the_whole_job(api):
    before = api.get("/jobs/").get_json()["total"]
    form = {"file": (io.BytesIO(jsonl(line("a"), "{oops")), "r.jsonl"), "name": "x", "model": "gpt-4o-mini"}
    error = error_of(api.post("/jobs/from-file", 422, data=form, content_type="multipart/form-data"))
    assert error["details"][0]["field"] == "line 2"
    assert api.get("/jobs/").get_json()["total"] == before
