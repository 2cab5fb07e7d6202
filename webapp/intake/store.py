"""An upload's requests recorded on its job: inserted, counted, put on the timeline, or refused whole."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select

from webapp.errors import ValidationFailed
from webapp.extensions import db
from webapp.intake import requests as request_lines
from webapp.intake.requests import UploadReport
from webapp.models import BatchJob, EventKind, request_rows
from webapp.services import copies
from webapp.services.ledger import record_event
from webapp.words import count_of, rows_named


class UploadRejected(ValidationFailed):
    """The file has bad lines and nothing was stored; ``report`` lists them."""

    def __init__(self, report: UploadReport):
        shown = [p.as_dict() for p in report.problems]
        super().__init__(
            f"{count_of(report.problem_count, 'line of the file is', 'lines of the file are')} invalid; "
            "nothing was stored",
            details=[{"field": f"line {p['line']}", "message": f"{p['code']}: {p['message']}"} for p in shown],
        )
        self.report = report


def store_file_rows(
    job: BatchJob,
    rows: Iterator[dict],
    report: UploadReport,
    *,
    source: dict,
    skip_invalid: bool,
    actor: str,
    nothing: str,
    send_once: bool = False,
) -> UploadReport:
    """Insert a file's valid rows (those new to the job) and note them on the job (no commit). With
    ``send_once`` each request whose body an earlier one of the job has becomes a copy of it (``copies``): it is
    stored, and not sent. Raises UploadRejected for a bad row unless ``skip_invalid``, and ValidationFailed when
    no row is left (``nothing`` says why): the caller rolls back."""
    before = _last_request_id(job)
    count, tokens = request_lines.insert_new(job, rows, report)
    report.problems.sort(key=lambda problem: problem.line)  # repeats are found a chunk after the other problems
    if report.problem_count and not skip_invalid:
        raise UploadRejected(report)
    if not count:
        raise ValidationFailed(nothing)
    report.added, report.skipped = count, report.problem_count
    if send_once:
        report.copies, copied_tokens = copies.mark(job.id, before)
        report.repeated_rows = report.copies
        report.repeated_row_numbers = copies.copy_rows(job.id, before, request_lines.MAX_PROBLEMS_LISTED)
        tokens -= copied_tokens  # the job's estimate counts what will be sent
    job.source = source
    note_requests_added(job, count, tokens, _added(report, source["filename"]), data=_data(report, source), actor=actor)
    return report


def _last_request_id(job: BatchJob) -> int:
    rows = request_rows.c
    return db.session.scalar(select(func.max(rows.id)).where(rows.job_id == job.id)) or 0


def _added(report: UploadReport, filename: str) -> str:
    """The timeline's words for an upload: what was stored, and what was left out or will not be sent."""
    words = f"Added {count_of(report.added, 'request')} from {filename}"
    if report.skipped:
        words += f", skipped {count_of(report.skipped, 'invalid line')}"
    if report.skipped_empty:
        words += (
            f"; left out {count_of(report.skipped_empty, 'row')} with every placeholder empty "
            f"({rows_named(report.empty_row_numbers, report.skipped_empty)})"
        )
    if report.copies:
        words += (
            f"; {count_of(report.copies, 'row repeats', 'rows repeat')} the prompt of an earlier row and will "
            "take its answer (sent once)"
        )
    return words


def _data(report: UploadReport, source: dict) -> dict:
    data = {"count": report.added, "skipped": report.skipped, "file": source["filename"]}
    if report.skipped_empty:
        data |= {"skipped_empty": report.skipped_empty, "empty_rows": report.empty_row_numbers[:100]}
    if report.copies:
        data |= {"copies": report.copies, "copy_rows": report.repeated_row_numbers[:100]}
    return data


def note_requests_added(job: BatchJob, count: int, tokens: int, message: str, *, data: dict, actor: str) -> None:
    """Count newly inserted requests on the job and put them on its timeline (no commit)."""
    job.total_requests += count
    job.pending_requests += count
    job.estimated_tokens += tokens
    record_event(job, EventKind.REQUESTS_ADDED, message, data=data, actor=actor)
