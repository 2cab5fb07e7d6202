"""Result ingest on the configured backend: what is stored and settled.

What is stored must be what ``results.parse_result_line`` reads, once it has been through the database (JSON
columns, text limits, PostgreSQL's refusal of NUL): the first test sends one line of every shape through
``ingest_files`` and compares each stored response field by field.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.factories import chat_body, new_job, set_states
from webapp.extensions import db
from webapp.intake import imports
from webapp.models import BatchRequest, BatchResponse, JobStatus, RequestStatus, request_states
from webapp.services import ingest, jobs, ledger, planning
from webapp.services.results import parse_result_line

FIELDS = (
    "succeeded",
    "status_code",
    "error_code",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "output_text",
    "provider_request_id",
    "body",
)


def chat(content, **message) -> dict:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


def ok(custom_id: str, body: dict, request_id: str = "req_1") -> dict:
    return {
        "id": "batch_req_1",
        "custom_id": custom_id,
        "error": None,
        "response": {"status_code": 200, "request_id": request_id, "body": body},
    }


def failed(custom_id: str, status, body=None, error=None) -> dict:
    response = None if status is None else {"status_code": status, "request_id": "req_9", "body": body or {}}
    return {"id": "batch_req_2", "custom_id": custom_id, "response": response, "error": error}


# Every shape of result line the reading has to handle, keyed by custom_id.
SHAPES = {
    "chat": ok(
        "chat",
        {
            **chat("Positive"),
            "usage": {
                "prompt_tokens": 2048,
                "completion_tokens": 300,
                "total_tokens": 2348,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 256},
            },
        },
    ),
    "unicode": ok("unicode", chat('Très bien — 好 "quoted" \\ back\nslash\ttab')),
    "tool-calls": ok(
        "tool-calls",
        chat(
            None,
            tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "label", "arguments": '{"x": 1}'}}],
        ),
    ),
    "refusal": ok("refusal", chat(None, refusal="I can't help with that")),
    "content-parts": ok("content-parts", chat([{"type": "text", "text": "a"}])),
    "legacy-completion": ok(
        "legacy-completion",
        {"choices": [{"text": "done", "index": 0}], "usage": {"prompt_tokens": 4, "completion_tokens": 1}},
    ),
    "responses": ok(
        "responses",
        {
            "output": [
                {"type": "reasoning", "summary": []},
                {
                    "type": "message",
                    "content": [
                        {"type": "output_text", "text": "Hello, "},
                        {"type": "refusal", "refusal": "no"},
                        {"type": "output_text", "text": "world"},
                    ],
                },
            ],
            "usage": {
                "input_tokens": 1500,
                "output_tokens": 400,
                "total_tokens": 1900,
                "input_tokens_details": {"cached_tokens": 1280},
                "output_tokens_details": {"reasoning_tokens": 128},
            },
        },
    ),
    "responses-empty": ok("responses-empty", {"output": [], "usage": {"input_tokens": 3, "output_tokens": 0}}),
    "embedding": ok(
        "embedding", {"data": [{"embedding": [0.1, 0.2]}], "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    ),
    "flagged": ok("flagged", {"results": [{"flagged": True}]}),
    "not-flagged": ok("not-flagged", {"results": [{"flagged": False}]}),
    "odd-usage": ok(
        "odd-usage",
        {
            **chat("x"),
            "usage": {
                "prompt_tokens": True,
                "completion_tokens": 2.5,
                "total_tokens": 10**12,
                "prompt_tokens_details": {},
                "input_tokens_details": {"cached_tokens": 7},
                "completion_tokens_details": None,
            },
        },
    ),
    "empty-error-object": {**ok("empty-error-object", chat("fine")), "error": {}},
    "error-file": failed(
        "error-file",
        None,
        error={
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        },
    ),
    "server-error": failed(
        "server-error", 500, {"error": {"message": "The server had an error", "type": "server_error"}}
    ),
    "rate-limited": failed("rate-limited", 429, {"error": {"message": "Rate limit", "code": "rate_limit_exceeded"}}),
    "bad-request": failed(
        "bad-request",
        400,
        {"error": {"message": "Invalid 'messages'", "type": "invalid_request_error", "code": "invalid_value"}},
    ),
    "bare-404": failed("bare-404", 404),
    "long-code": failed("long-code", 400, {"error": {"code": "c" * 100, "message": "m" * 20_000}}),
    "status-as-text": {"custom_id": "status-as-text", "response": {"status_code": "200", "body": chat("no")}},
    "200-with-error": {**ok("200-with-error", chat("no")), "error": {"code": "server_error", "message": "boom"}},
    "no-response": {"custom_id": "no-response"},
}


def in_flight_batch(custom_ids, max_retries=2):
    job = new_job(count=0, max_retries=max_retries)
    imports.add_requests(job, [{"custom_id": c, "body": chat_body(f"prompt {c}")} for c in custom_ids])
    jobs.submit_job(job)
    [batch] = planning.plan_batches(job)
    set_states(request_states.c.provider_batch_id == batch.id, status=RequestStatus.IN_FLIGHT)
    job.status = JobStatus.RUNNING
    db.session.flush()
    return job, batch


def write_lines(path, lines) -> list:
    with open(path, "wb") as out:
        for line in lines:
            out.write(
                line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()
            )
            out.write(b"\n")
    return [path]


def stored(job) -> dict[str, BatchResponse]:
    rows = db.session.execute(
        select(BatchRequest.custom_id, BatchResponse)
        .join(BatchResponse, BatchResponse.request_id == BatchRequest.id)
        .where(BatchRequest.job_id == job.id)
    ).all()
    return dict(rows)


def states(job) -> dict[str, tuple]:
    db.session.expire_all()
    return {
        r.custom_id: (r.status, r.error_code, r.retry_count)
        for r in db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job.id))
    }


def test_every_shape_of_result_is_stored_as_parse_result_line_reads_it(app_ctx, tmp_path):
    job, batch = in_flight_batch(list(SHAPES))
    summary = ingest.ingest_files(batch, job, write_lines(tmp_path / "out.jsonl", SHAPES.values()), cancelled=False)
    responses = stored(job)
    assert set(responses) == set(SHAPES)
    for custom_id, obj in SHAPES.items():
        expected = parse_result_line(json.dumps(obj))
        row = responses[custom_id]
        for name in FIELDS:
            want, got = getattr(expected, name), getattr(row, name)
            if name == "error" and want:
                want = want[:10_000]
            if custom_id in ("tool-calls", "content-parts") and name == "output_text":  # jsonb orders keys its own way
                want, got = json.loads(want), json.loads(got)
            assert got == want, f"{custom_id}.{name}: stored {got!r}, read {want!r}"
    assert summary.succeeded == sum(parse_result_line(json.dumps(o)).succeeded for o in SHAPES.values())
    assert summary.bad_lines == summary.unknown_lines == summary.missing == 0


def test_retryable_failures_go_back_to_pending_until_the_job_runs_out_of_retries(app_ctx, tmp_path):
    job, batch = in_flight_batch(["ok", "server", "limit", "invalid", "absent", "spent"], max_retries=2)
    set_states(custom_ids=("spent",), job_id=job.id, retry_count=2)
    lines = [
        ok("ok", chat("yes")),
        failed("server", 500),
        failed("limit", 429),
        failed("invalid", 400, {"error": {"code": "invalid_value", "message": "bad"}}),
        failed("spent", 503),
    ]
    summary = ingest.ingest_files(batch, job, write_lines(tmp_path / "out.jsonl", lines), cancelled=False)
    assert states(job) == {
        "ok": (RequestStatus.SUCCEEDED, None, 0),
        "server": (RequestStatus.PENDING, "http_500", 1),
        "limit": (RequestStatus.PENDING, "http_429", 1),
        "invalid": (RequestStatus.FAILED, "invalid_value", 0),
        "absent": (RequestStatus.PENDING, "missing_result", 1),
        "spent": (RequestStatus.FAILED, "http_503", 2),
    }
    assert (summary.succeeded, summary.retried, summary.failed, summary.missing) == (1, 3, 2, 1)
    assert summary.error_codes == {"http_500": 1, "http_429": 1, "invalid_value": 1, "missing_result": 1, "http_503": 1}
    retried = db.session.scalars(
        select(BatchRequest).where(BatchRequest.job_id == job.id, BatchRequest.status == RequestStatus.PENDING)
    ).all()
    assert all(r.provider_batch_id is None for r in retried)  # free for the follow-up batch


def test_a_retry_replaces_the_earlier_try_s_response_and_token_counts(app_ctx, tmp_path):
    job, batch = in_flight_batch(["again", "gone", "done"])
    first = ingest.ingest_files(
        batch,
        job,
        write_lines(
            tmp_path / "first.jsonl",
            [
                failed("again", 500, {"usage": {"prompt_tokens": 7}}),
                failed("gone", 503, {"usage": {"prompt_tokens": 5}}),
                ok("done", chat("yes")),
            ],
        ),
        cancelled=False,
    )
    assert first.retried == 2
    # The follow-up batch: "again" succeeds, "gone" gets no line at all.
    [retry] = planning.plan_batches(job)
    set_states(request_states.c.provider_batch_id == retry.id, status=RequestStatus.IN_FLIGHT)
    earlier = ledger.token_sums(
        BatchResponse.request_id.in_(select(BatchRequest.id).where(BatchRequest.provider_batch_id == retry.id))
    )
    second = ingest.ingest_files(
        retry, job, write_lines(tmp_path / "second.jsonl", [ok("again", chat("now"))]), cancelled=False
    )
    responses = stored(job)
    assert set(responses) == {"again", "done"}  # "gone" keeps no response of a try that was not the last
    assert responses["again"].output_text == "now" and responses["again"].provider_batch_id == retry.id
    assert states(job)["gone"] == (RequestStatus.PENDING, "missing_result", 2)
    assert earlier["prompt_tokens"] == 12  # the two earlier tries' tokens leave the job's totals
    assert second.tokens == {name: getattr(responses["again"], name) - earlier[name] for name in earlier}


def test_a_cancelled_job_settles_what_did_not_run_as_cancelled_without_retry(app_ctx, tmp_path):
    job, batch = in_flight_batch(["ran", "never", "broke"])
    lines = [ok("ran", chat("yes")), failed("broke", 500)]
    summary = ingest.ingest_files(batch, job, write_lines(tmp_path / "out.jsonl", lines), cancelled=True)
    assert states(job) == {
        "ran": (RequestStatus.SUCCEEDED, None, 0),
        "never": (RequestStatus.CANCELLED, "cancelled", 0),
        "broke": (RequestStatus.FAILED, "http_500", 0),  # it ran and failed: not the cancel's doing
    }
    assert (summary.succeeded, summary.failed, summary.cancelled, summary.retried, summary.missing) == (1, 1, 1, 0, 1)
    assert summary.counter_changes() == {
        "in_flight_requests": -3,
        "succeeded_requests": 1,
        "failed_requests": 1,
        "cancelled_requests": 1,
        "pending_requests": 0,
    }


@pytest.mark.parametrize(
    "damage", ["not-json", "crlf", "nul-escape", "duplicate", "not-utf8", "control-byte", "end-marker"]
)
def test_a_damaged_file_keeps_every_good_result(app_ctx, tmp_path, damage):
    """A file PostgreSQL cannot take as it is goes line by line: the good lines are all stored."""
    ids = [f"r{i}" for i in range(6)]
    job, batch = in_flight_batch(ids)
    lines: list = [json.dumps(ok(c, chat(f"answer {c}"))) for c in ids]
    expected_bad = expected_unknown = 0
    if damage == "not-json":
        lines.insert(2, '{"custom_id": "r9", "response": ')
        expected_bad = 1
    elif damage == "crlf":
        lines = [line + "\r" for line in lines]
    elif damage == "nul-escape":
        lines[1] = json.dumps(ok("r1", chat("before\u0000after")))
    elif damage == "duplicate":
        lines.append(json.dumps(ok("r0", chat("second answer"))))
        expected_unknown = 1
    elif damage == "not-utf8":
        lines.insert(0, b'{"custom_id": "r9", "x": "\xff\xfe"}')
        expected_bad = 1
    elif damage == "control-byte":
        lines.insert(0, '{"custom_id": "r8",\x02 "x": 1}')
        expected_bad = 1
    elif damage == "end-marker":  # COPY's end-of-data line: the lines after it must not be dropped
        lines.insert(3, "\\.")
        expected_bad = 1
    summary = ingest.ingest_files(batch, job, write_lines(tmp_path / "out.jsonl", lines), cancelled=False)
    responses = stored(job)
    assert set(responses) == set(ids) and summary.succeeded == 6
    assert responses["r0"].output_text == "answer r0"  # the first line of a repeated custom_id wins
    if damage == "nul-escape":
        assert responses["r1"].output_text.startswith("before") and responses["r1"].output_text.endswith("after")
    assert (summary.bad_lines, summary.unknown_lines) == (expected_bad, expected_unknown)


def test_lines_for_other_requests_and_lines_without_custom_id_are_counted_not_stored(app_ctx, tmp_path):
    job, batch = in_flight_batch(["a", "b"])
    lines = [
        ok("a", chat("x")),
        ok("stranger", chat("y")),
        {"custom_id": 7, "response": None},
        [1, 2],
        ok("b", chat("z")),
    ]
    summary = ingest.ingest_files(batch, job, write_lines(tmp_path / "out.jsonl", lines), cancelled=False)
    assert set(stored(job)) == {"a", "b"}
    assert (summary.unknown_lines, summary.bad_lines, summary.succeeded) == (1, 2, 2)


def test_ingesting_the_same_files_again_changes_nothing(app_ctx, tmp_path):
    job, batch = in_flight_batch(["a", "b", "c"])
    paths = write_lines(tmp_path / "out.jsonl", [ok("a", chat("x")), failed("b", 400), ok("c", chat("z"))])
    ingest.ingest_files(batch, job, paths, cancelled=False)
    before = states(job), {c: r.output_text for c, r in stored(job).items()}
    again = ingest.ingest_files(batch, job, paths, cancelled=False)
    assert (states(job), {c: r.output_text for c, r in stored(job).items()}) == before
    assert again.succeeded == again.failed == 0 and again.unknown_lines == 3  # nothing left in flight


def test_a_large_result_file_is_stored_whole(app_ctx, tmp_path):
    """CI-sized version of the benchmark: every result stored once with its own text and usage."""
    count = 3000
    ids = [f"row-{i}" for i in range(count)]
    job, batch = in_flight_batch(ids)
    lines = (
        ok(c, {**chat(f"answer {i}"), "usage": {"prompt_tokens": i, "completion_tokens": 1}}) for i, c in enumerate(ids)
    )
    summary = ingest.ingest_files(batch, job, write_lines(tmp_path / "out.jsonl", lines), cancelled=False)
    assert summary.succeeded == count
    responses = stored(job)
    assert len(responses) == count
    assert all(
        responses[f"row-{i}"].output_text == f"answer {i}" and responses[f"row-{i}"].total_tokens == i + 1
        for i in range(count)
    )


def counters(job) -> tuple:
    return (
        job.pending_requests,
        job.in_flight_requests,
        job.succeeded_requests,
        job.failed_requests,
        job.prompt_tokens,
        job.completion_tokens,
        job.cached_tokens,
        job.reasoning_tokens,
        job.actual_cost,
    )


def test_the_job_counters_move_by_what_the_ingest_changed_as_a_full_recount_would_set_them(app_ctx, tmp_path):
    job, batch = in_flight_batch(["ok", "retry", "fail", "absent", "again"])
    # "again" was answered by an earlier try with 7 prompt tokens: its new response replaces that one.
    again = db.session.scalar(
        select(BatchRequest).where(BatchRequest.job_id == job.id, BatchRequest.custom_id == "again")
    )
    db.session.add(BatchResponse(request_id=again.id, job_id=job.id, succeeded=False, status_code=500, prompt_tokens=7))
    ledger.recount(job)
    lines = [ok("ok", chat("yes")), failed("retry", 500), failed("fail", 400), ok("again", chat("now"))]
    summary = ingest.ingest_files(batch, job, write_lines(tmp_path / "out.jsonl", lines), cancelled=False)
    ledger.adjust_counters(job, tokens=summary.tokens, **summary.counter_changes())
    adjusted = counters(job)
    ledger.recount(job)
    assert adjusted == counters(job)
    assert (job.pending_requests, job.in_flight_requests, job.succeeded_requests, job.failed_requests) == (2, 0, 2, 1)
    assert job.prompt_tokens == 24 and summary.tokens["prompt_tokens"] == 24 - 7
