"""Rows left out or sent once: empty rows skipped on request, and each distinct prompt sent once with its answer
copied to every row that repeats it, exactly once, through the simulator end to end."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.factories import new_job, run_until_done, set_states
from tests.simulated import custom_ids_sent, provider_batches
from webapp.extensions import db
from webapp.intake import imports, table_requests, tables
from webapp.intake.mapping import Mapping
from webapp.models import BatchRequest, BatchResponse, JobEvent, RequestStatus, request_rows, request_states
from webapp.services import copies, exports, ingest, jobs, sync
from webapp.services.pricing import price_table

# Rows 2 and 5 repeat row 1's prompt, row 6 repeats row 3's; rows 4 and 7 have every placeholder empty (blank, or
# only a space: which makes row 7's prompt differ from row 4's).
TABLE = "Id,Text,Note\n1,good,a\n2,good,b\n3,bad,c\n4,,d\n5,good,e\n6,bad,f\n7, ,g\n"
TEMPLATE = "Review: {{ Text }}"


def table(tmp_path: Path, text: str = TABLE) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text(text)
    return path


def stored(job) -> list[BatchRequest]:
    return list(db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job.id).order_by(BatchRequest.id)))


def responses(job) -> dict[str, BatchResponse]:
    rows = db.session.execute(
        select(BatchRequest.custom_id, BatchResponse)
        .join(BatchResponse, BatchResponse.request_id == BatchRequest.id)
        .where(BatchRequest.job_id == job.id)
    ).all()
    return dict(rows)


def test_the_preview_counts_empty_and_repeated_rows(app_ctx, tmp_path):
    path = table(tmp_path)
    info = tables.inspect(path)
    draft = new_job([])
    found = table_requests.preview(draft, path, info, Mapping(TEMPLATE))
    assert (found["request_count"], found["sent_count"]) == (7, 7)
    report = found["report"]
    assert (report["empty_rows"], report["empty_row_numbers"]) == (2, [4, 7])
    assert (report["repeated_rows"], report["repeated_row_numbers"]) == (3, [2, 5, 6])
    both = table_requests.preview(draft, path, info, Mapping(TEMPLATE), skip_empty=True, send_once=True)
    assert (both["request_count"], both["sent_count"]) == (5, 2)
    assert both["report"]["repeated_row_numbers"] == [2, 5, 6]
    assert both["estimated_prompt_tokens"] < found["estimated_prompt_tokens"]
    no_placeholders = table_requests.preview(draft, path, info, Mapping("Say hi"))["report"]
    assert no_placeholders["empty_rows"] == 0  # a template without placeholders asks the same of every row


def test_empty_rows_are_left_out_counted_and_noted_on_the_timeline(app_ctx, tmp_path):
    job = new_job([])
    report = imports.import_table(job, table(tmp_path), Mapping(TEMPLATE), filename="reviews.csv", skip_empty=True)
    assert (report.added, report.skipped_empty, report.empty_row_numbers) == (5, 2, [4, 7])
    assert [r.source_line for r in stored(job)] == [1, 2, 3, 5, 6]
    event = db.session.scalars(select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id.desc())).first()
    assert "left out 2 rows with every placeholder empty (rows 4, 7)" in event.message
    assert event.data["empty_rows"] == [4, 7]


def test_empty_rows_are_sent_unless_asked(app_ctx, tmp_path):
    job = new_job([])
    report = imports.import_table(job, table(tmp_path), Mapping(TEMPLATE), filename="reviews.csv")
    assert (report.added, report.empty_rows, report.skipped_empty) == (7, 2, 0)


def test_repeats_are_stored_as_copies_of_the_first_and_not_counted_in_the_estimate(app_ctx, tmp_path):
    job = new_job([])
    report = imports.import_table(job, table(tmp_path), Mapping(TEMPLATE), filename="reviews.csv", send_once=True)
    requests = stored(job)
    by_row = {r.source_line: r for r in requests}
    assert (report.added, report.copies, report.repeated_row_numbers) == (7, 3, [2, 5, 6])
    assert [by_row[n].copy_of_id for n in (1, 2, 3, 4, 5, 6, 7)] == [
        None,
        by_row[1].id,
        None,
        None,
        by_row[1].id,
        by_row[3].id,
        None,
    ]
    assert job.estimated_tokens == sum(r.estimated_tokens for r in requests if r.copy_of_id is None)
    assert job.total_requests == job.pending_requests == 7


def run_send_once(tmp_path, text: str = TABLE, **settings):
    job = new_job([], **settings)
    imports.import_table(
        job, table(tmp_path, text), Mapping(TEMPLATE, id_column="Id"), filename="r.csv", send_once=True
    )
    jobs.submit_job(job)
    return run_until_done(job.id)


def test_only_distinct_prompts_reach_the_provider_and_every_row_gets_the_answer(app_ctx, simulator, tmp_path):
    job = run_send_once(tmp_path)
    sent = [cid for b in provider_batches(simulator) for cid in custom_ids_sent(simulator, b.id)]
    assert sorted(sent) == ["1", "3", "4", "7"]  # the first row of each distinct prompt
    assert job.status == "completed"
    assert (job.total_requests, job.succeeded_requests, job.pending_requests) == (7, 7, 0)
    answers = responses(job)
    assert len(answers) == 7
    for copy, first in (("2", "1"), ("5", "1"), ("6", "3")):
        assert answers[copy].body == answers[first].body and answers[copy].output_text == answers[first].output_text
        assert answers[copy].status_code == 200 and answers[copy].prompt_tokens == 0
    # Paid once: the job's tokens and cost are the originals'.
    paid = sum(answers[c].prompt_tokens for c in ("1", "3", "4", "7"))
    assert paid > 0 and job.prompt_tokens == paid
    completion = sum(answers[c].completion_tokens for c in ("1", "3", "4", "7"))
    assert job.completion_tokens == completion
    assert job.actual_cost == Decimal(price_table().cost(job.model, paid, completion))
    rows = list(csv.DictReader(io.StringIO(b"".join(exports.csv_chunks(job)).decode())))
    assert [row["Id"] for row in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    assert rows[1]["output_text"] == rows[0]["output_text"] and rows[1]["status"] == "succeeded"
    assert sum(int(row["prompt_tokens"] or 0) for row in rows) == paid


def test_settling_and_ingesting_again_gives_no_copy_a_second_response(app_ctx, simulator, tmp_path, monkeypatch):
    kept = {}
    original = ingest.ingest_files

    def keep(batch, job_, paths, cancelled):
        paths = list(paths)
        kept[batch.id] = [(p, p.read_bytes()) for p in paths]
        return original(batch, job_, paths, cancelled=cancelled)

    monkeypatch.setattr(ingest, "ingest_files", keep)
    job = run_send_once(tmp_path)
    assert copies.settle(job.id) == 0
    # The batch's results read again, its requests put back in flight as a crash half way would leave them.
    ((batch_id, files),) = kept.items()
    for path, data in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    set_states(request_states.c.job_id == job.id, request_states.c.copy_of_id.is_(None), status=RequestStatus.IN_FLIGHT)
    batch = job.batches[0]
    original(batch, job, [p for p, _ in files], cancelled=False)
    assert copies.settle(job.id) == 0
    db.session.commit()
    per_request = db.session.execute(
        select(BatchResponse.request_id, func.count())
        .where(BatchResponse.job_id == job.id)
        .group_by(BatchResponse.request_id)
    ).all()
    assert len(per_request) == 7 and all(n == 1 for _, n in per_request)


def test_a_failed_original_fails_its_copies_and_a_retry_settles_them_again(app_ctx, simulator, tmp_path):
    text = "Id,Text\n1,bad [[sim:status=400]]\n2,bad [[sim:status=400]]\n3,fine\n"
    job = run_send_once(tmp_path, text, max_retries=0)
    assert (job.status, job.failed_requests, job.succeeded_requests) == ("completed_with_errors", 2, 1)
    failed = responses(job)
    assert failed["2"].status_code == 400 and failed["2"].body == failed["1"].body
    # The provider would answer now (the marker gone from the first request's body): retry the failures.
    first = next(r for r in stored(job) if r.custom_id == "1")
    db.session.execute(
        update(request_rows)
        .where(request_rows.c.id == first.id)
        .values(body={**first.body, "messages": [{"role": "user", "content": "Review: fine now"}]})
    )
    db.session.commit()
    assert jobs.retry_failed(job) == 2
    job = run_until_done(job.id)
    assert (job.status, job.succeeded_requests, job.failed_requests) == ("completed", 3, 0)
    answers = responses(job)
    assert answers["2"].status_code == 200 and answers["2"].output_text == answers["1"].output_text
    assert len(answers) == 3


def test_a_cancelled_job_cancels_the_copies_that_wait(app_ctx, tmp_path):
    job = new_job([])
    imports.import_table(job, table(tmp_path), Mapping(TEMPLATE), filename="r.csv", send_once=True)
    jobs.submit_job(job)
    jobs.cancel_job(job)
    sync.sync_job(job.id)
    db.session.expire_all()
    assert job.status == "cancelled" and job.cancelled_requests == 7
    assert set(db.session.scalars(select(request_states.c.status).where(request_states.c.job_id == job.id))) == {
        RequestStatus.CANCELLED
    }


@pytest.mark.parametrize("send_once", [False, True])
def test_a_jsonl_file_can_be_sent_once_too(app_ctx, send_once):
    import json

    from tests.factories import chat_body

    lines = [{"custom_id": f"r{i}", "body": chat_body("same" if i < 2 else "other")} for i in range(3)]
    stream = io.BytesIO("\n".join(json.dumps(line) for line in lines).encode())
    job = new_job([])
    report = imports.import_jsonl(job, stream, send_once=send_once)
    assert report.copies == (1 if send_once else 0)
