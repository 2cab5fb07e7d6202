"""Structured logs: one JSON object per line, with the request id and the job id in context."""

import io
import json
import logging

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.logs import configure_logging, log_context
from webapp.models import ApiToken
from webapp.services import accounts


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
    assert access[-1]["remote_addr"] == "127.0.0.1"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_failed_statement_is_logged_without_its_values(app_ctx, member_user, fmt):
    """A token hash and prefix (the statement's parameters, and PostgreSQL's DETAIL line) stay out of the log."""
    token, plain = accounts.create_token(member_user, "laptop")
    stream = io.StringIO()
    configure_logging("INFO", fmt, stream)
    try:
        with db.session.begin_nested():
            db.session.execute(
                insert(ApiToken).values(
                    user_id=member_user.id, name="copy", token_hash=token.token_hash, prefix=plain[:10]
                )
            )
    except IntegrityError:
        logging.getLogger("webapp.test").exception("could not store the token")
    finally:
        configure_logging("WARNING", "text")
    logged = stream.getvalue()
    assert "could not store the token" in logged and "IntegrityError" in logged
    assert token.token_hash not in logged and plain[:10] not in logged
