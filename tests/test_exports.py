"""Downloads: JSONL in OpenAI's output format and CSV in the user's columns, with formulas neutralised."""

from __future__ import annotations

import csv
import io
import json

from tests.factories import new_job, run_until_done
from tests.test_uploads import csv_file
from webapp.providers.simulator import simulated_text
from webapp.services import csv_import, exports
from webapp.services.csv_import import CsvMapping


def test_jsonl_export_has_one_output_line_per_request(app_ctx, simulator):
    job = run_until_done(new_job(["fine", "no [[sim:status=400]]", "dead [[sim:error=invalid_thing]]"],
                                 submit=True, max_retries=0).id)
    lines = [json.loads(line) for line in b"".join(exports.jsonl_lines(job)).splitlines()]
    assert [line["custom_id"] for line in lines] == ["req-0", "req-1", "req-2"]
    ok, http_error, other_error = lines
    assert ok["response"]["status_code"] == 200 and ok["error"] is None
    assert ok["response"]["body"]["choices"][0]["message"]["content"].startswith("Simulated reply")
    assert http_error["response"]["status_code"] == 400 and http_error["error"] is None
    assert other_error["response"] is None and other_error["error"]["code"] == "invalid_thing"
    failed = [json.loads(line) for line in b"".join(exports.jsonl_lines(job, failed_only=True)).splitlines()]
    assert [line["custom_id"] for line in failed] == ["req-1", "req-2"]


def test_jsonl_export_of_unfinished_requests_says_so(app_ctx):
    job = new_job(count=2)
    lines = [json.loads(line) for line in b"".join(exports.jsonl_lines(job)).splitlines()]
    assert lines[0]["error"] == {"code": "pending", "message": "no result yet"}


def test_csv_export_keeps_the_original_columns_and_adds_results(app_ctx, simulator, tmp_path):
    job = new_job([])
    schema = {"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["pos", "neg"]},
                                               "score": {"type": "integer"}}}
    csv_import.import_csv(job, csv_file(tmp_path), CsvMapping("Classify: {{ Text }}", json_schema=schema),
                          filename="reviews.csv")
    from webapp.services import jobs

    jobs.submit_job(job)
    job = run_until_done(job.id)
    rows = list(csv.reader(io.StringIO("".join(exports.csv_chunks(job)))))
    header = rows[0]
    assert header == ["Id", "Text", "Stars", "custom_id", "status", "output_text", "output.sentiment", "output.score",
                      "error", "prompt_tokens", "completion_tokens", "total_tokens"]
    assert [r[:3] for r in rows[1:]] == [["1", "Great, really great", "5"], ["2", "Zürich café: ok\nsecond line", "3"],
                                         ["3", "'=cmd|' /C calc'!A0", "1"]]  # the formula is neutralised
    for row in rows[1:]:
        assert row[4] == "succeeded"
        structured = json.loads(row[5])
        assert row[6] == structured["sentiment"] and row[6] in ("pos", "neg")
        assert int(row[7]) == structured["score"]
        assert int(row[9]) > 0


def test_csv_export_of_a_jsonl_job(app_ctx, simulator):
    job = run_until_done(new_job(["hello there"], submit=True).id)
    rows = list(csv.reader(io.StringIO("".join(exports.csv_chunks(job)))))
    assert rows[0][:3] == ["custom_id", "status", "output_text"]
    assert rows[1][:3] == ["req-0", "succeeded", simulated_text(_body(job))]


def _body(job):
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import BatchRequest

    return db.session.scalars(select(BatchRequest.body).where(BatchRequest.job_id == job.id)).one()


def test_neutralise_only_touches_formula_starts():
    assert exports.neutralise("=1+1") == "'=1+1"
    assert exports.neutralise("+33 6") == "'+33 6"
    assert exports.neutralise("-x") == "'-x"
    assert exports.neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert exports.neutralise("plain") == "plain"
    assert exports.neutralise(-5) == -5
