"""Request files: JSONL checked line by line (all or nothing), CSV detection, templates, previews and import."""

from __future__ import annotations

import gc
import io
import json
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.factories import chat_body, new_job
from webapp import bulk
from webapp.errors import Conflict, ValidationFailed
from webapp.extensions import db
from webapp.intake import files, imports, table_requests, tables
from webapp.intake.mapping import Mapping, check_mapping, parse_schema
from webapp.intake.store import UploadRejected
from webapp.models import BatchRequest
from webapp.services import jobs


def jsonl(*lines) -> io.BytesIO:
    return io.BytesIO("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode("utf-8"))


def line(custom_id: str, text: str = "hi", **overrides) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": chat_body(text),
        **overrides,
    }


def stored(job_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(BatchRequest).where(BatchRequest.job_id == job_id))


def test_valid_jsonl_is_stored_with_line_numbers(app_ctx):
    job = new_job([])
    report = imports.import_jsonl(job, jsonl(line("a"), "", line("b", "héllo")), filename="in.jsonl")
    assert (report.added, report.skipped) == (2, 0)
    rows = db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job.id).order_by(BatchRequest.id)).all()
    assert [(r.custom_id, r.source_line) for r in rows] == [("a", 1), ("b", 3)]
    assert rows[1].body["messages"][0]["content"] == "héllo"
    assert job.total_requests == job.pending_requests == 2
    assert job.source == {"format": "jsonl", "filename": "in.jsonl"}


def test_every_bad_line_is_reported_and_nothing_stored(app_ctx):
    job = new_job([])
    bad = [
        line("ok"),
        "{not json",
        {"method": "POST", "url": "/v1/chat/completions", "body": chat_body("x")},
        line("ok"),
        line("u", url="/v1/embeddings"),
        line("m", body=chat_body("x", model="gpt-4o")),
        line("s", body={**chat_body("x"), "stream": True}),
        line("n", body={"model": "gpt-4o-mini"}),
        "[1, 2]",
    ]
    with pytest.raises(UploadRejected) as caught:
        imports.import_jsonl(job, jsonl(*bad))
    problems = {p.line: p.code for p in caught.value.report.problems}
    assert problems == {
        2: "invalid_json_line",
        3: "missing_custom_id",
        4: "duplicate_custom_id",
        5: "url_mismatch",
        6: "model_mismatch",
        7: "stream_not_supported",
        8: "missing_input",
        9: "invalid_request",
    }
    assert caught.value.status == 422 and len(caught.value.details) == 8
    assert stored(job.id) == 0
    db.session.refresh(job)
    assert job.total_requests == 0


def test_bad_lines_can_be_skipped(app_ctx):
    job = new_job([])
    report = imports.import_jsonl(job, jsonl(line("a"), "{oops", line("b")), skip_invalid=True)
    assert (report.added, report.skipped) == (2, 1)
    assert stored(job.id) == 2
    assert "skipped 1 invalid line" in job.events[-1].message


def test_a_second_file_cannot_repeat_custom_ids(app_ctx):
    job = new_job([])
    imports.import_jsonl(job, jsonl(line("a")))
    with pytest.raises(UploadRejected) as caught:
        imports.import_jsonl(job, jsonl(line("b"), line("a")))
    assert caught.value.report.problems[0].code == "duplicate_custom_id"
    assert caught.value.report.problems[0].line == 2
    assert stored(job.id) == 1


def test_oversized_line_is_refused(app, app_ctx):
    job = new_job([])
    app.config["BATCH_MAX_BYTES"] = 200
    try:
        with pytest.raises(UploadRejected) as caught:
            imports.import_jsonl(job, jsonl(line("a", "x" * 500)))
    finally:
        app.config["BATCH_MAX_BYTES"] = 200 * 1024 * 1024
    assert caught.value.report.problems[0].code == "line_too_large"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a text file"),
    ],
)
def test_empty_and_binary_files_are_refused(app_ctx, content, message):
    job = new_job([])
    with pytest.raises(ValidationFailed, match=message):
        imports.import_jsonl(job, io.BytesIO(content))


def test_only_drafts_take_requests(app_ctx, simulator):
    job = new_job(count=1, submit=True)
    with pytest.raises(Conflict):
        imports.import_jsonl(job, jsonl(line("z")))


def test_job_settings_fill_in_what_requests_leave_out(app_ctx):
    job = new_job([], max_tokens=50, temperature=0.2)
    imports.import_jsonl(job, jsonl({"custom_id": "a", "body": {"messages": [{"role": "user", "content": "x"}]}}))
    body = db.session.scalars(select(BatchRequest.body).where(BatchRequest.job_id == job.id)).one()
    assert body == {
        "messages": [{"role": "user", "content": "x"}],
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "temperature": 0.2,
    }


@pytest.mark.parametrize("chunk", [3, 10_000])
def test_repeated_custom_ids_are_found_across_chunks_and_in_the_job(app_ctx, monkeypatch, chunk):
    """The database's unique constraint finds repeats, so they are caught whichever chunk holds them."""
    monkeypatch.setattr(bulk, "COPY_CHUNK", chunk)
    job = new_job(count=1)  # holds req-0
    ids = ["a", "b", "c", "d", "a", "req-0", "e", "e", "f"]
    with pytest.raises(UploadRejected) as caught:
        imports.import_jsonl(job, jsonl(*(line(i) for i in ids)))
    assert [(p.line, p.message) for p in caught.value.report.problems] == [
        (5, "custom_id 'a' appears more than once"),
        (6, "custom_id 'req-0' is already in the job"),
        (8, "custom_id 'e' appears more than once"),
    ]
    assert stored(job.id) == 1
    report = imports.import_jsonl(job, jsonl(*(line(i) for i in ids)), skip_invalid=True)
    assert (report.added, report.skipped) == (6, 3)
    rows = db.session.execute(
        select(BatchRequest.custom_id, BatchRequest.source_line)
        .where(BatchRequest.job_id == job.id)
        .order_by(BatchRequest.id)
    ).all()
    assert rows[1:] == [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 7), ("f", 9)]  # the first of each repeat


def test_large_file_is_streamed_in_chunks(app_ctx):
    job = new_job([])
    data = "\n".join(json.dumps(line(f"r{i}", f"text {i}")) for i in range(5000)).encode()
    report = imports.import_jsonl(job, io.BytesIO(data))
    assert report.added == 5000 == stored(job.id)


# --- CSV ----------------------------------------------------------------------------------------------


REVIEWS = 'Id,Text,Stars\n1,"Great, really great",5\n2,"Zürich café: ok\nsecond line",3\n3,"=cmd|\' /C calc\'!A0",1\n'


def csv_file(tmp_path: Path, text: str = REVIEWS, encoding: str = "utf-8", name: str = "reviews.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_inspect_detects_header_delimiter_encoding_and_quotes(tmp_path):
    info = tables.inspect(csv_file(tmp_path))
    assert info.columns == ["Id", "Text", "Stars"]
    assert (info.delimiter, info.encoding, info.row_count) == (",", "utf-8", 3)
    assert info.preview[1] == ["2", "Zürich café: ok\nsecond line", "3"]


def test_inspect_handles_semicolons_and_latin1(tmp_path):
    info = tables.inspect(csv_file(tmp_path, "Nom;Avis\nA;très bien\nB;pas mal\n", encoding="cp1252"))
    assert info.delimiter == ";"
    assert info.columns == ["Nom", "Avis"]
    assert info.preview[0] == ["A", "très bien"]


PANDAS_CSV = ",name,amount,name,column_1\n0,Ann,-12.50,x,y\n1,Bob,3,z,w\n"  # what df.to_csv() writes, index first


def test_a_pandas_export_gets_names_for_its_index_and_repeated_columns(tmp_path):
    info = tables.inspect(csv_file(tmp_path, PANDAS_CSV))
    assert info.columns == ["column_1_2", "name", "amount", "name_2", "column_1"]
    assert info.notes == [
        "Column 1 has no name in the header; it is called column_1_2 here",
        "Column 4 repeats the name 'name'; it is called name_2 here",
    ]
    assert tables.inspect(csv_file(tmp_path, ",Text,\n0,a,b\n")).columns == ["column_1", "Text", "column_3"]
    assert tables.inspect(csv_file(tmp_path, "a,a,a_2\n1,2,3\n")).columns == ["a", "a_3", "a_2"]


def test_a_pandas_export_renders_by_its_generated_names(app_ctx, tmp_path):
    job = new_job([])
    report = imports.import_table(
        job, csv_file(tmp_path, PANDAS_CSV), Mapping("{{ column_1_2 }}: {{ name }} {{ name_2 }}"), filename="df.csv"
    )
    assert report.added == 2
    first = db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job.id)).first()
    assert first.body["messages"][-1]["content"] == "0: Ann x"
    assert first.source_row == ["0", "Ann", "-12.50", "x", "y"]


def test_inspect_handles_a_byte_order_mark(tmp_path):
    info = tables.inspect(csv_file(tmp_path, "\ufeffText\nhello\n"))
    assert info.columns == ["Text"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("1,2,3\n4,5,6\n", "looks like data"),
        (",\nx\n", "no header row"),
        ("Text\n", "no rows"),
    ],
)
def test_unusable_csv_files_are_refused(tmp_path, text, message):
    with pytest.raises(ValidationFailed, match=message):
        tables.inspect(csv_file(tmp_path, text))


def test_template_naming_an_unknown_column_is_a_field_error(tmp_path):
    problems = check_mapping(Mapping("Rate: {{ Txt }}", id_column="Nope"), ["Id", "Text"])
    assert {p["field"] for p in problems} == {"template", "id_column"}
    assert "'Txt'" in problems[0]["message"] and "Id, Text" in problems[0]["message"]


def test_bad_json_schema_is_a_field_error():
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        parse_schema("{bad")
    assert check_mapping(Mapping("x", json_schema={"type": "string"}), [])[0]["field"] == "json_schema"
    assert check_mapping(Mapping("x", json_schema={"type": 12}), [])[0]["field"] == "json_schema"


def test_preview_renders_the_first_requests_and_estimates_cost(app_ctx, tmp_path):
    job = new_job([], max_tokens=20)
    path = csv_file(tmp_path)
    info = tables.inspect(path)
    result = table_requests.preview(
        job, path, info, Mapping("Classify: {{ Text }}", system_prompt="Be brief."), limit=2
    )
    assert result["request_count"] == 3
    first = result["requests"][0]
    assert first["custom_id"] == "row-1"
    assert first["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Classify: Great, really great"},
    ]
    assert result["estimated_output_tokens"] == 60
    assert result["estimated_cost"] > 0
    assert stored(job.id) == 0


def test_import_csv_stores_rows_with_their_original_values(app_ctx, tmp_path):
    job = new_job([])
    schema = {"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["pos", "neg"]}}}
    mapping = Mapping("Classify: {{ Text }}", id_column="Id", json_schema=schema)
    report = imports.import_table(job, csv_file(tmp_path), mapping, filename="reviews.csv")
    assert report.added == 3
    rows = db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job.id).order_by(BatchRequest.id)).all()
    assert [r.custom_id for r in rows] == ["1", "2", "3"]
    assert rows[1].source_row == ["2", "Zürich café: ok\nsecond line", "3"]
    assert rows[0].body["response_format"]["json_schema"]["schema"] == schema
    assert job.source["columns"] == ["Id", "Text", "Stars"] and job.source["template"] == "Classify: {{ Text }}"


def test_import_csv_with_duplicate_ids_is_all_or_nothing(app_ctx, tmp_path):
    job = new_job([])
    path = csv_file(tmp_path, "Id,Text\n1,a\n1,b\n2,c\n")
    with pytest.raises(UploadRejected) as caught:
        imports.import_table(job, path, Mapping("{{ Text }}", id_column="Id"), filename="x.csv")
    assert [(p.line, p.code) for p in caught.value.report.problems] == [(2, "duplicate_custom_id")]
    assert stored(job.id) == 0
    report = imports.import_table(job, path, Mapping("{{ Text }}", id_column="Id"), filename="x.csv", skip_invalid=True)
    assert (report.added, report.skipped) == (2, 1)


def test_csv_for_the_responses_and_embeddings_endpoints(app_ctx, tmp_path):
    path = csv_file(tmp_path)
    info = tables.inspect(path)
    responses = jobs.create_job({"name": "r", "model": "gpt-4o-mini", "endpoint": "/v1/responses"})
    body = table_requests.preview(responses, path, info, Mapping("{{ Text }}", system_prompt="Sys"))["requests"][0][
        "body"
    ]
    assert body == {"model": "gpt-4o-mini", "input": "Great, really great", "instructions": "Sys"}
    embeddings = jobs.create_job({"name": "e", "model": "text-embedding-3-small", "endpoint": "/v1/embeddings"})
    body = table_requests.preview(embeddings, path, info, Mapping("{{ Text }}"))["requests"][0]["body"]
    assert body == {"model": "text-embedding-3-small", "input": "Great, really great"}


def test_saved_uploads_are_found_by_token_only(app_ctx):
    token = files.save_upload(io.BytesIO(b"a,b\n1,2\n"), ".csv")
    assert files.upload_path(token).read_bytes() == b"a,b\n1,2\n"
    for bad in ("../secret_key", "x" * 32, ""):
        with pytest.raises(ValidationFailed):
            files.upload_path(bad)
    files.discard_upload(token)
    with pytest.raises(ValidationFailed):
        files.upload_path(token)


def test_the_garbage_collector_runs_again_after_an_upload_even_a_refused_one(app_ctx):
    """Bulk writes pause cyclic collection; it must resume however the write ends."""
    assert gc.isenabled()
    job = new_job([])
    imports.import_jsonl(job, jsonl(line("a"), line("b")))
    assert gc.isenabled()
    with pytest.raises(UploadRejected):
        imports.import_jsonl(new_job([]), jsonl(line("a"), "{broken"))
    assert gc.isenabled()
    with bulk.gc_paused(), bulk.gc_paused():  # nested pauses (two threads, or an upload inside a write)
        assert not gc.isenabled()
    assert gc.isenabled()


# --- hostile files ------------------------------------------------------------------------------------


def nested(depth: int, inner: str = "1") -> str:
    """A JSON value ``depth`` levels deep: ``[[...[1]...]]``."""
    return "[" * depth + inner + "]" * depth


def deep_line(custom_id: str, depth: int) -> dict:
    """A request whose body holds a value nested so that the whole line is ``depth`` levels deep."""
    body = {**chat_body("x"), "metadata_tree": json.loads(nested(depth - 2))}  # the line and its body: 2 levels
    return line(custom_id, body=body)


def test_json_lines_nested_past_the_limit_are_refused_by_their_line(app_ctx):
    job = new_job([])
    lines = [
        deep_line("at-limit", 64),
        deep_line("past-limit", 65),
        deep_line("orjson-writes-no-more", 300),
        '{"custom_id": "python-recursion", "body": ' + nested(1000) + "}",
        '{"custom_id": "orjson-recursion", "body": ' + nested(200_000),
    ]
    with pytest.raises(UploadRejected) as caught:
        imports.import_jsonl(job, jsonl(*lines))
    problems = {p.line: (p.code, p.message) for p in caught.value.report.problems}
    assert set(problems) == {2, 3, 4, 5}
    assert {code for code, _ in problems.values()} == {"nested_too_deep"}
    assert problems[2][1] == "nested deeper than 64 levels, the most accepted"
    assert stored(job.id) == 0
    report = imports.import_jsonl(job, jsonl(*lines), skip_invalid=True)
    assert report.added == 1 and stored(job.id) == 1


def test_integers_past_64_bits_are_refused_rather_than_rounded(app_ctx):
    job = new_job([])
    big = 123456789012345678901234567890
    edge = {"low": -(2**63), "high": 2**63 - 1, "as_text": str(big), "long_float": 0.12345678901234567890123}
    lines = [
        line("edges", body={**chat_body("x"), "metadata": edge}),
        line("big", body={**chat_body("x"), "seed": big}),
        line("just-past", body={**chat_body("x"), "seed": 2**63}),
        line("negative", body={**chat_body("x"), "seed": -(2**63) - 1}),
        json.dumps(line("5000-digits", body={**chat_body("x"), "seed": 0})).replace("0}", "9" * 5000 + "}"),
    ]
    with pytest.raises(UploadRejected) as caught:
        imports.import_jsonl(job, jsonl(*lines))
    problems = {p.line: (p.code, p.message) for p in caught.value.report.problems}
    assert set(problems) == {2, 3, 4, 5}
    assert {code for code, _ in problems.values()} == {"integer_out_of_range"}
    assert problems[2][1].startswith(f"the integer {big} does not fit in 64 bits")
    imports.import_jsonl(job, jsonl(lines[0]))
    body = db.session.scalars(select(BatchRequest.body).where(BatchRequest.job_id == job.id)).one()
    assert body["metadata"] == edge  # kept exactly, the float as a float


def test_a_line_longer_than_one_request_is_read_past_not_held(app_ctx, request_limit):
    request_limit(64 * 1024)
    job = new_job([])
    long_line = json.dumps(line("long", "x" * (8 * 1024 * 1024))).encode()
    data = jsonl(line("a")).getvalue() + b"\n" + long_line + b"\n" + jsonl(line("b")).getvalue()
    tracemalloc.start()
    try:
        with pytest.raises(UploadRejected) as caught:
            imports.import_jsonl(job, io.BytesIO(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(p.line, p.code) for p in caught.value.report.problems] == [(2, "line_too_large")]
    message = caught.value.report.problems[0].message
    assert message == "the line is larger than 0.0625 MB (65,536 bytes), the most one request may be (MAX_REQUEST_MB)"
    assert peak < 4 * 1024 * 1024, f"reading past an 8 MB line held {peak:,} bytes"
    report = imports.import_jsonl(job, io.BytesIO(data), skip_invalid=True)
    assert (report.added, report.skipped) == (2, 1)


@pytest.mark.parametrize(
    "content",
    [
        b'{"custom_id": "a", "body": {}}',  # the limit falls on the last line, which has no line end
        b'{"custom_id": "a", "body": {}}\r\n',
    ],
)
def test_a_line_exactly_at_the_limit_is_read_whole(app_ctx, request_limit, content):
    request_limit(len(content.rstrip(b"\r\n")))
    with pytest.raises(UploadRejected) as caught:
        imports.import_jsonl(new_job([]), io.BytesIO(content))
    assert [p.code for p in caught.value.report.problems] == ["missing_input"]  # read, not cut


def test_a_csv_wider_than_the_column_limit_is_refused(app_ctx, tmp_path):
    header = ",".join(f"c{i}" for i in range(1000))
    assert tables.inspect(csv_file(tmp_path, f"{header}\n{',' * 999}x\n")).columns[-1] == "c999"
    with pytest.raises(ValidationFailed, match="the header row names 1,001 columns; at most 1,000 are supported"):
        tables.inspect(csv_file(tmp_path, f"{header},c1000\nx\n"))
    repeated = tables.inspect(csv_file(tmp_path, f"{header.replace('c998', 'c3').replace('c999', 'c7')}\nx\n"))
    assert repeated.columns[-2:] == ["c3_2", "c7_2"] and len(repeated.notes) == 2


def test_a_csv_row_longer_than_one_request_is_refused_naming_its_line(app_ctx, tmp_path, request_limit):
    request_limit(1000)
    long_cell = 'Id,Text\n1,short\n2,"' + "x" * 600 + "\n" + "y" * 600 + '"\n3,short\n'
    with pytest.raises(ValidationFailed, match="cannot be read at line 4: a row is longer than 1,000 characters"):
        tables.inspect(csv_file(tmp_path, long_cell))
    wide_row = "Id,Text\n1,short\n" + "a," * 600 + "\n"
    with pytest.raises(ValidationFailed, match="cannot be read at line 3: a row is longer"):
        tables.inspect(csv_file(tmp_path, wide_row))
    assert tables.inspect(csv_file(tmp_path, "Id,Text\n1," + "z" * 990 + "\n")).row_count == 1


def test_a_csv_row_that_would_make_a_request_too_large_is_reported(app_ctx, tmp_path, request_limit):
    request_limit(1000)
    path = csv_file(tmp_path, "Id,Text\n1,short\n2," + "x" * 400 + "\n")
    with pytest.raises(UploadRejected) as caught:
        imports.import_table(new_job([]), path, Mapping("{{ Text }} {{ Text }} {{ Text }}"), filename="x.csv")
    assert [(p.line, p.code) for p in caught.value.report.problems] == [(2, "request_too_large")]


@pytest.mark.parametrize(
    "schema, message",
    [
        (nested(300, "{}"), "the JSON schema is refused: nested deeper than 64 levels"),
        (
            '{"type": "object", "properties": {"n": {"type": "integer", "maximum": 123456789012345678901}}}',
            "the JSON schema is refused: the integer 123456789012345678901 does not fit in 64 bits",
        ),
    ],
)
def test_a_json_schema_past_the_limits_is_a_field_error(schema, message):
    with pytest.raises(ValidationFailed, match=message) as caught:
        parse_schema(schema)
    assert caught.value.details[0]["field"] == "json_schema"


def test_a_json_schema_at_the_depth_limit_is_checked_without_recursion_errors():
    schema = {"type": "object", "properties": {}}
    for _ in range(31):  # each level of properties is two levels of JSON: 64 in all
        schema = {"type": "object", "properties": {"child": schema}}
    text = json.dumps(schema)
    parsed = parse_schema(text)
    assert check_mapping(Mapping("x", json_schema=parsed), []) == []


def test_a_line_that_is_not_utf8_is_named_as_such(app_ctx):
    content = jsonl(line("a")).getvalue() + b'\n{"custom_id": "b\xff", "body": {}}\n'
    with pytest.raises(UploadRejected) as caught:
        imports.import_jsonl(new_job([]), io.BytesIO(content))
    assert [(p.line, p.code) for p in caught.value.report.problems] == [(2, "invalid_encoding")]
