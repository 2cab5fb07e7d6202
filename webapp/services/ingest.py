"""Storing a finished provider batch's results: one response per request, request states, retry decisions.

The result files are read line by line in Python (``results.parse_result_line``) while the database writes the
responses in bulk (``COPY`` on PostgreSQL, so parsing and writing run on two cores at once); the requests are
then settled set-wise: the succeeded ones by id, the others with their error and retry decision.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from sqlalchemy import Table, bindparam, case, delete, select, update

from webapp import bulk
from webapp.extensions import db
from webapp.models import BatchJob, BatchResponse, ProviderBatch, RequestStatus, request_rows, request_states
from webapp.providers import Provider
from webapp.services.ledger import TOKEN_COLUMNS
from webapp.services.results import (
    CANCELLED,
    CANCELLED_AT_PROVIDER,
    MISSING_RESULT,
    PROVIDER_CANCELLED,
    BadResultLine,
    Result,
    parse_result_line,
)
from webapp.words import count_of

log = logging.getLogger(__name__)
STATE = request_states.c
RESPONSES = cast(Table, BatchResponse.__table__)
WRITE_CHUNK = 5000
ERROR_LIMIT = 10_000
NO_RESULT = "the provider returned no result for this request"
RESPONSE_COLUMNS = (
    "request_id",
    "job_id",
    "provider_batch_id",
    "succeeded",
    "status_code",
    "body",
    "error_code",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "output_text",
    "provider_request_id",
    "created_at",
)


@dataclass
class IngestSummary:
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    missing: int = 0
    unknown_lines: int = 0
    bad_lines: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(
        default_factory=dict
    )  # what the job's token totals gain (a replaced response's are taken off)

    def counter_changes(self) -> dict[str, int]:
        """How the job's request counters move: every request of the batch leaves ``in_flight``."""
        return {
            "in_flight_requests": -(self.succeeded + self.failed + self.retried + self.cancelled),
            "succeeded_requests": self.succeeded,
            "failed_requests": self.failed,
            "cancelled_requests": self.cancelled,
            "pending_requests": self.retried,
        }

    def count(self, outcome: Outcome) -> None:
        """Tally one request that did not succeed."""
        if outcome.status == RequestStatus.CANCELLED:
            self.cancelled += 1
            return
        code = outcome.error_code or "error"
        self.error_codes[code] = self.error_codes.get(code, 0) + 1
        if outcome.retry:
            self.retried += 1
        else:
            self.failed += 1

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v and k != "tokens"}


@dataclass(frozen=True)
class Outcome:
    """What ingestion decides for one request; ``retry`` sends it to a follow-up batch."""

    request_id: int
    status: str
    error_code: str | None
    error: str | None
    retry: bool


def download_results(provider: Provider, batch: ProviderBatch, workdir: Path) -> list[Path]:
    """Fetch the output and error files to disk (before any transaction); return their paths."""
    paths = []
    for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
        if file_id:
            path = workdir / f"batch-{batch.id}-{kind}.jsonl"
            provider.download_file(file_id, path)
            paths.append(path)
    return paths


def ingest_files(batch: ProviderBatch, job: BatchJob, paths: Iterable[Path], *, cancelled: bool) -> IngestSummary:
    """Store every result of ``batch`` found in ``paths`` and settle each of its requests (no commit).

    Idempotent: the batch's in-flight requests lose any response of an earlier try first, and a request's
    state is only ever set from this batch's results, so running it again (or after a crash that rolled it
    back) leaves one response per request. Memory is bounded by the batch (at most the provider's 50,000
    requests), whatever the job's size.
    """
    summary = IngestSummary()
    requests = _in_flight(batch)
    replaced = _delete_earlier_responses(batch)
    reading = _Reading(batch, job, requests, cancelled, summary)
    if bulk.is_postgresql():  # one COPY, fed as the lines are read (the rows need no query)
        stamp = bulk.copy_text(reading.now.isoformat())
        stored = bulk.copy_lines(RESPONSES.name, RESPONSE_COLUMNS, (_copy_line(r, stamp) for r in reading.rows(paths)))
    else:
        stored = bulk.copy_rows(RESPONSES, RESPONSE_COLUMNS, reading.rows(paths), json_columns=("body",))
    reading.settle_unanswered()
    _apply(batch, reading.outcomes, succeeded=summary.succeeded)
    bulk.note_written(RESPONSES, stored)  # analyzed after the commit, if they are enough to matter
    bulk.note_written(request_states, summary.succeeded + len(reading.outcomes))
    summary.tokens = {name: reading.tokens[name] - replaced[name] for name in TOKEN_COLUMNS}
    return summary


def _in_flight(batch: ProviderBatch) -> dict[str, tuple[int, int]]:
    """custom_id -> (request id, tries so far) of the batch's requests waiting for a result.

    The status is checked here, not in SQL: with it in the WHERE clause PostgreSQL may combine the
    ``(job_id, status, request_id)`` index, every in-flight request of the job, with the batch's (measured 2-4x
    slower).
    """
    rows = bulk.stream_rows(
        select(request_rows.c.custom_id, STATE.request_id, STATE.retry_count, STATE.status)
        .join_from(request_states, request_rows, request_rows.c.id == STATE.request_id)
        .where(STATE.provider_batch_id == batch.id),
        WRITE_CHUNK,
    )
    return {
        custom_id: (request_id, tries)
        for chunk in rows
        for custom_id, request_id, tries, status in chunk
        if status == RequestStatus.IN_FLIGHT
    }


def _delete_earlier_responses(batch: ProviderBatch) -> dict[str, int]:
    """Remove the responses of earlier tries of the batch's requests; return the token counts they held."""
    waiting = select(STATE.request_id).where(
        STATE.provider_batch_id == batch.id, STATE.status == RequestStatus.IN_FLIGHT
    )
    rows = db.session.execute(
        delete(BatchResponse)
        .where(BatchResponse.request_id.in_(waiting.scalar_subquery()))
        .returning(*(getattr(BatchResponse, name) for name in TOKEN_COLUMNS))
        .execution_options(synchronize_session=False)
    ).all()
    return {name: sum(row[i] for row in rows) for i, name in enumerate(TOKEN_COLUMNS)}


class _Reading:
    """Reads a batch's result lines into response rows, noting each request's outcome on the way."""

    def __init__(
        self,
        batch: ProviderBatch,
        job: BatchJob,
        requests: dict[str, tuple[int, int]],
        cancelled: bool,
        summary: IngestSummary,
    ) -> None:
        self.batch, self.job, self.requests, self.cancelled, self.summary = batch, job, requests, cancelled, summary
        self.outcomes: list[Outcome] = []  # of the requests that did not succeed
        self.tokens = dict.fromkeys(TOKEN_COLUMNS, 0)
        self.now = datetime.now(UTC)

    def rows(self, paths: Iterable[Path]) -> Iterator[tuple]:
        # The batch's ids and the tallies as locals: read for each of up to 50,000 results.
        job_id, batch_id, requests, summary, tokens = (
            self.batch.job_id,
            self.batch.id,
            self.requests,
            self.summary,
            self.tokens,
        )
        for result in _results(paths, summary):
            found = requests.pop(result.custom_id, None)  # popped: a repeated line is an unknown one
            if found is None:
                summary.unknown_lines += 1
                continue
            request_id, tries = found
            for name in TOKEN_COLUMNS:
                tokens[name] += getattr(result, name)
            if result.succeeded:
                summary.succeeded += 1
            else:
                self._failed(request_id, tries, result.error_code, result.error, result.retryable)
            yield (
                request_id,
                job_id,
                batch_id,
                result.succeeded,
                result.status_code,
                result.body,
                result.error_code,
                result.error[:ERROR_LIMIT] if result.error else result.error,
                result.prompt_tokens,
                result.completion_tokens,
                result.total_tokens,
                result.cached_tokens,
                result.reasoning_tokens,
                result.output_text,
                result.provider_request_id,
                self.now,
            )

    def settle_unanswered(self) -> None:
        """The requests no line answered: missing (sent again) or, in a cancelled batch, cancelled."""
        self.summary.missing += len(self.requests)
        for request_id, tries in self.requests.values():
            if self.cancelled:
                self._settle(Outcome(request_id, RequestStatus.CANCELLED, CANCELLED, CANCELLED_AT_PROVIDER, False))
            else:
                self._failed(request_id, tries, MISSING_RESULT, NO_RESULT, True)
        self.requests.clear()

    def _failed(self, request_id: int, tries: int, code: str | None, message: str | None, retryable: bool) -> None:
        if self.cancelled and code == PROVIDER_CANCELLED:  # a provider that lists what its cancel stopped
            self._settle(Outcome(request_id, RequestStatus.CANCELLED, CANCELLED, message, False))
            return
        retry = retryable and not self.cancelled and tries < self.job.max_retries
        status = RequestStatus.PENDING if retry else RequestStatus.FAILED
        self._settle(Outcome(request_id, status, code, (message or "")[:ERROR_LIMIT] or None, retry))

    def _settle(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.summary.count(outcome)


def _copy_line(row: tuple, stamp: bytes) -> bytes:
    """A response row (in RESPONSE_COLUMNS' order) as a line of COPY's text format; ``stamp``: its created_at,
    the same for every row of an ingest and so formatted once."""
    (request_id, job_id, batch_id, succeeded, status_code, body, error_code, error, *tokens, text, provider_id, _) = row
    return b"%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n" % (
        request_id,
        job_id,
        batch_id,
        b"t" if succeeded else b"f",
        bulk.NULL if status_code is None else b"%d" % status_code,
        bulk.NULL if body is None else bulk.copy_json(body),
        bulk.NULL if error_code is None else bulk.copy_text(error_code),
        bulk.NULL if error is None else bulk.copy_text(error),
        *tokens,
        bulk.NULL if text is None else bulk.copy_text(text),
        bulk.NULL if provider_id is None else bulk.copy_text(provider_id),
        stamp,
    )


def _results(paths: Iterable[Path], summary: IngestSummary) -> Iterator[Result]:
    for path in paths:
        with open(path, "rb") as fh:  # orjson reads bytes: a line that is not UTF-8 is one bad line
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    result = parse_result_line(line)
                except BadResultLine as exc:
                    summary.bad_lines += 1
                    log.warning("skipping unreadable result line %s of %s: %s", number, path.name, exc)
                    continue
                yield _without_nul(result) if b"\\u0000" in line else result


def _without_nul(result: Result) -> Result:
    """PostgreSQL's ``jsonb`` and text refuse the NUL character: it becomes U+FFFD (the custom_id keeps it, so
    such a line matches no request, as no stored custom_id holds one)."""
    return Result(
        **{name: (_replace_nul(value) if name != "custom_id" else value) for name, value in result._asdict().items()}
    )


def _replace_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_replace_nul(v) for v in value]
    if isinstance(value, dict):
        return {_replace_nul(k): _replace_nul(v) for k, v in value.items()}
    return value


def _apply(batch: ProviderBatch, outcomes: list[Outcome], *, succeeded: int) -> None:
    """Write the request states in bulk: first those that did not succeed, each with its error and retry
    decision; then every request of the batch still in flight is one that succeeded, set in one statement."""
    table = request_states
    params = (
        {
            "rid": o.request_id,
            "new_status": o.status,
            "new_code": o.error_code,
            "new_error": o.error,
            "bump": 1 if o.retry else 0,
            "keep_batch": 0 if o.retry else 1,
        }
        for o in outcomes
    )
    for chunk in bulk.chunks(params, WRITE_CHUNK):
        db.session.execute(_state_update(table), chunk)
    settled = bulk.changed(
        update(table)
        .where(STATE.provider_batch_id == batch.id, STATE.status == RequestStatus.IN_FLIGHT)
        .values(status=RequestStatus.SUCCEEDED, error_code=None, error=None)
    )
    if settled != succeeded:  # the batch is leased: nothing else settles its requests
        raise RuntimeError(f"batch {batch.id}: {count_of(settled, 'request')} left in flight, {succeeded} succeeded")


def _state_update(table):
    return (
        update(table)
        .where(table.c.request_id == bindparam("rid"))
        .values(
            status=bindparam("new_status"),
            error_code=bindparam("new_code"),
            error=bindparam("new_error"),
            retry_count=table.c.retry_count + bindparam("bump"),
            provider_batch_id=case((bindparam("keep_batch") == 1, table.c.provider_batch_id), else_=None),
        )
    )


def temporary_workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="batches-ingest-")
