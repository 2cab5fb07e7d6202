"""Storing a finished provider batch's results: one response per request, request states, retry decisions."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy import Column, MetaData, Table, select, text, update
from sqlalchemy.dialects import sqlite

from webapp import bulk

from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, BatchResponse, ProviderBatch, RequestStatus
from webapp.providers import Provider
from webapp.services.results import CANCELLED, MISSING_RESULT, BadResultLine, Result, parse_result_line

log = logging.getLogger(__name__)
WRITE_CHUNK = 5000
RESPONSE_FIELDS = (
    "succeeded", "status_code", "body", "error_code", "error", "prompt_tokens", "completion_tokens",
    "total_tokens", "cached_tokens", "reasoning_tokens", "output_text", "provider_request_id", "provider_batch_id",
)


@dataclass
class IngestSummary:
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    missing: int = 0
    unknown_lines: int = 0
    bad_lines: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}


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
    index = dict(db.session.execute(
        select(BatchRequest.custom_id, BatchRequest.id)
        .where(BatchRequest.provider_batch_id == batch.id, BatchRequest.status == RequestStatus.IN_FLIGHT)
    ).all())
    retries = dict(db.session.execute(
        select(BatchRequest.id, BatchRequest.retry_count).where(BatchRequest.provider_batch_id == batch.id)
    ).all())
    summary = IngestSummary()
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
    return summary


def _results(paths: Iterable[Path], summary: IngestSummary) -> Iterator[Result]:
    for path in paths:
        with open(path, encoding="utf-8") as fh:
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
    if bulk.is_postgresql():
        return _upsert_responses_staged(rows)
    stmt = sqlite.insert(BatchResponse.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["request_id"],
        set_={name: stmt.excluded[name] for name in (*RESPONSE_FIELDS, "created_at")},
    )
    db.session.execute(stmt, rows)


STAGED_RESPONSE_COLUMNS = ("request_id", "job_id", "created_at", *RESPONSE_FIELDS)


def _upsert_responses_staged(rows: list[dict]) -> None:
    """PostgreSQL: COPY the chunk into a temporary table, then one set-based upsert."""
    columns = ", ".join(STAGED_RESPONSE_COLUMNS)
    _staging("ingest_responses", "(LIKE batch_responses INCLUDING DEFAULTS)")
    bulk.copy_rows(_stage_table("ingest_responses", STAGED_RESPONSE_COLUMNS), STAGED_RESPONSE_COLUMNS,
                   ([row[name] for name in STAGED_RESPONSE_COLUMNS] for row in rows), json_columns=("body",))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in (*RESPONSE_FIELDS, "created_at"))
    db.session.execute(text(
        f"INSERT INTO batch_responses ({columns}) SELECT {columns} FROM ingest_responses "
        f"ON CONFLICT (request_id) DO UPDATE SET {updates}"))


def _staging(name: str, shape: str) -> None:
    """An empty session-private table for this transaction's rows."""
    db.session.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {name} {shape} ON COMMIT DELETE ROWS"))
    db.session.execute(text(f"TRUNCATE {name}"))


def _stage_table(name: str, columns) -> Table:
    return Table(name, MetaData(), *(Column(c) for c in columns))


OUTCOME_COLUMNS = ("rid", "new_status", "new_code", "new_error", "bump", "keep_batch")


def _apply(outcomes: list[Outcome], summary: IngestSummary) -> None:
    """Write the request states in bulk and tally the summary."""
    for outcome in outcomes:
        _tally(outcome, summary)
    params = ({"rid": o.request_id, "new_status": o.status, "new_code": o.error_code,
               "new_error": (o.error or "")[:10_000] or None, "bump": 1 if o.retry else 0,
               "keep_batch": 0 if o.retry else 1} for o in outcomes)
    if bulk.is_postgresql():
        return _apply_staged(params)
    for chunk in bulk.chunks(params, WRITE_CHUNK):
        db.session.execute(_state_update(BatchRequest.__table__), chunk)


def _apply_staged(params: Iterable[dict]) -> None:
    """PostgreSQL: COPY the new states into a temporary table, then one UPDATE ... FROM."""
    _staging("ingest_outcomes", "(rid bigint, new_status text, new_code text, new_error text, bump int, "
                                "keep_batch int)")
    bulk.copy_rows(_stage_table("ingest_outcomes", OUTCOME_COLUMNS), OUTCOME_COLUMNS,
                   ([p[c] for c in OUTCOME_COLUMNS] for p in params))
    db.session.execute(text(
        "UPDATE batch_requests AS r SET status = o.new_status, error_code = o.new_code, error = o.new_error, "
        "retry_count = r.retry_count + o.bump, "
        "provider_batch_id = CASE WHEN o.keep_batch = 1 THEN r.provider_batch_id END "
        "FROM ingest_outcomes AS o WHERE r.id = o.rid"))


def _state_update(table):
    from sqlalchemy import bindparam, case

    return (
        update(table)
        .where(table.c.id == bindparam("rid"))
        .values(
            status=bindparam("new_status"), error_code=bindparam("new_code"), error=bindparam("new_error"),
            retry_count=table.c.retry_count + bindparam("bump"),
            provider_batch_id=case((bindparam("keep_batch") == 1, table.c.provider_batch_id), else_=None),
        )
    )


def _tally(outcome: Outcome, summary: IngestSummary) -> None:
    if outcome.status == RequestStatus.SUCCEEDED:
        summary.succeeded += 1
        return
    summary.error_codes[outcome.error_code or "error"] = summary.error_codes.get(outcome.error_code or "error", 0) + 1
    if outcome.retry:
        summary.retried += 1
    else:
        summary.failed += 1


def temporary_workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="batches-ingest-")
