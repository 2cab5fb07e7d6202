"""Storing a finished provider batch's results: one response per request, request states, retry decisions.

PostgreSQL does it in SQL (``ingest_sql``); this module's line-by-line reading serves SQLite.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.dialects import sqlite

from webapp import bulk

from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, BatchResponse, ProviderBatch, RequestStatus
from webapp.providers import Provider
from webapp.services import ingest_sql
from webapp.services.jobs import TOKEN_COLUMNS, token_sums
from webapp.services.results import CANCELLED, MISSING_RESULT, BadResultLine, Result, parse_result_line

log = logging.getLogger(__name__)
WRITE_CHUNK = 5000
RESPONSE_FIELDS = ingest_sql.RESPONSE_COLUMNS[2:]  # what a stored result sets (besides its request and job)


@dataclass
class IngestSummary:
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    missing: int = 0
    unknown_lines: int = 0
    bad_lines: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)  # what the job's token totals gain (a replaced response's are taken off)

    def counter_changes(self) -> dict[str, int]:
        """How the job's request counters move: every request of the batch leaves ``in_flight``."""
        return {"in_flight_requests": -(self.succeeded + self.failed + self.retried),
                "succeeded_requests": self.succeeded, "failed_requests": self.failed,
                "pending_requests": self.retried}

    def count(self, requests: int, *, succeeded: bool, retry: bool, code: str | None) -> None:
        """Tally ``requests`` requests that ended the same way."""
        if succeeded:
            self.succeeded += requests
            return
        self.error_codes[code or "error"] = self.error_codes.get(code or "error", 0) + requests
        if retry:
            self.retried += requests
        else:
            self.failed += requests

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

    Idempotent: responses are upserted by request, and a request's state is only ever set from this batch's
    results, so running it twice (or after a crash that rolled it back) leaves one response per request.
    """
    summary = IngestSummary()
    replaced = _replaced_tokens(batch)
    if bulk.is_postgresql():
        added = ingest_sql.ingest(batch, job, paths, summary, cancelled=cancelled)
    else:
        added = _ingest_lines(batch, job, paths, summary, cancelled=cancelled)
    summary.tokens = {name: added[name] - replaced[name] for name in TOKEN_COLUMNS}
    return summary


def _replaced_tokens(batch: ProviderBatch) -> dict[str, int]:
    """Token counts of the responses this ingest will replace: those of earlier tries of its requests."""
    return token_sums(BatchRequest.id == BatchResponse.request_id, BatchRequest.provider_batch_id == batch.id,
                      BatchRequest.status == RequestStatus.IN_FLIGHT)


def _ingest_lines(batch: ProviderBatch, job: BatchJob, paths: Iterable[Path], summary: IngestSummary, *,
                  cancelled: bool) -> dict[str, int]:
    """The line-by-line ingest (SQLite); returns the token counts of the responses it stored."""
    added = dict.fromkeys(TOKEN_COLUMNS, 0)
    index = dict(db.session.execute(
        select(BatchRequest.custom_id, BatchRequest.id)
        .where(BatchRequest.provider_batch_id == batch.id, BatchRequest.status == RequestStatus.IN_FLIGHT)
    ).all())
    retries = dict(db.session.execute(
        select(BatchRequest.id, BatchRequest.retry_count).where(BatchRequest.provider_batch_id == batch.id)
    ).all())
    outcomes: list[Outcome] = []
    seen: set[int] = set()
    for chunk in bulk.chunks(_results(paths, summary), WRITE_CHUNK):
        rows = []
        for result in chunk:
            request_id = index.get(result.custom_id)
            if request_id is None or request_id in seen:
                summary.unknown_lines += 1
                continue
            seen.add(request_id)
            rows.append(_response_row(result, request_id, batch))
            for name in TOKEN_COLUMNS:
                added[name] += getattr(result, name)
            outcomes.append(_decide(request_id, result.succeeded, result.error_code, result.error,
                                    result.retryable and not cancelled, retries[request_id], job.max_retries))
        _upsert_responses(rows)
    for custom_id, request_id in index.items():
        if request_id not in seen:
            code, message = (CANCELLED, "cancelled before it ran") if cancelled else (
                MISSING_RESULT, "the provider returned no result for this request")
            outcomes.append(_decide(request_id, False, code, message, not cancelled, retries[request_id],
                                    job.max_retries))
            summary.missing += 1
    _apply(outcomes, summary)
    return added


def _results(paths: Iterable[Path], summary: IngestSummary) -> Iterator[Result]:
    for path in paths:
        with open(path, "rb") as fh:  # orjson reads bytes: a line that is not UTF-8 is one bad line
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield parse_result_line(line)
                except BadResultLine as exc:
                    summary.bad_lines += 1
                    log.warning("skipping unreadable result line %s of %s: %s", number, path.name, exc)


def _decide(request_id: int, succeeded: bool, code: str | None, message: str | None, retryable: bool,
            retry_count: int, max_retries: int) -> Outcome:
    if succeeded:
        return Outcome(request_id, RequestStatus.SUCCEEDED, None, None, False)
    retry = retryable and retry_count < max_retries
    return Outcome(request_id, RequestStatus.PENDING if retry else RequestStatus.FAILED, code, message, retry)


def _response_row(result: Result, request_id: int, batch: ProviderBatch) -> dict:
    row = {name: getattr(result, name) for name in RESPONSE_FIELDS if name != "provider_batch_id"}
    row.update(request_id=request_id, job_id=batch.job_id, provider_batch_id=batch.id,
               created_at=datetime.now(timezone.utc))
    if row["error"]:
        row["error"] = row["error"][:10_000]
    return row


def _upsert_responses(rows: list[dict]) -> None:
    if not rows:
        return
    stmt = sqlite.insert(BatchResponse.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["request_id"],
        set_={name: stmt.excluded[name] for name in (*RESPONSE_FIELDS, "created_at")},
    )
    db.session.execute(stmt, rows)


def _apply(outcomes: list[Outcome], summary: IngestSummary) -> None:
    """Write the request states in bulk and tally the summary."""
    for outcome in outcomes:
        summary.count(1, succeeded=outcome.status == RequestStatus.SUCCEEDED, retry=outcome.retry,
                      code=outcome.error_code)
    params = ({"rid": o.request_id, "new_status": o.status, "new_code": o.error_code,
               "new_error": (o.error or "")[:10_000] or None, "bump": 1 if o.retry else 0,
               "keep_batch": 0 if o.retry else 1} for o in outcomes)
    for chunk in bulk.chunks(params, WRITE_CHUNK):
        db.session.execute(_state_update(BatchRequest.__table__), chunk)


def _state_update(table):
    return (
        update(table)
        .where(table.c.id == bindparam("rid"))
        .values(
            status=bindparam("new_status"), error_code=bindparam("new_code"), error=bindparam("new_error"),
            retry_count=table.c.retry_count + bindparam("bump"),
            provider_batch_id=case((bindparam("keep_batch") == 1, table.c.provider_batch_id), else_=None),
        )
    )


def temporary_workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="batches-ingest-")
