"""Structured logs: one JSON object per line, with the request id and the job id in context."""

import json
import logging

from webapp.logs import log_context


def records(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_each_event_is_one_json_line(json_logs):
    logging.getLogger("webapp.test").info("hello %s", "world", extra={"count": 3})
    (record,) = records(json_logs)
    assert record["message"] == "hello world"
    assert record["level"] == "INFO"
    assert record["logger"] == "webapp.test"
    assert record["count"] == 3
    assert "time" in record


def test_context_fields_are_added(json_logs):
    with log_context(job_id=42, rq_job_id="abc"):
        logging.getLogger("webapp.test").info("inside")
    logging.getLogger("webapp.test").info("outside")
    inside, outside = records(json_logs)
    assert inside["job_id"] == 42 and inside["rq_job_id"] == "abc"
    assert "job_id" not in outside


def test_requests_are_logged_with_their_id(json_logs, client):
    client.get("/", headers={"X-Request-ID": "req-7"})
    access = [r for r in records(json_logs) if r["logger"] == "webapp.access"]
    assert access[-1]["request_id"] == "req-7"
    assert access[-1]["status"] == 200
    assert access[-1]["path"] == "/"
