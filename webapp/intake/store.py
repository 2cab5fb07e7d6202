"""An upload's requests recorded on its job: inserted, counted, put on the timeline, or refused whole."""

from __future__ import annotations

from collections.abc import Iterator

from webapp.errors import ValidationFailed
from webapp.intake import requests as request_lines
from webapp.intake.requests import UploadReport
from webapp.models import BatchJob, EventKind
from webapp.services.ledger import record_event
from webapp.words import count_of


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
) -> UploadReport:
    """Insert a file's valid rows (those new to the job) and note them on the job (no commit). Raises
    UploadRejected for a bad row unless ``skip_invalid``, and ValidationFailed when no row is left (``nothing``
    says why): the caller rolls back."""
    count, tokens = request_lines.insert_new(job, rows, report)
    report.problems.sort(key=lambda problem: problem.line)  # repeats are found a chunk after the other problems
    if report.problem_count and not skip_invalid:
        raise UploadRejected(report)
    if not count:
        raise ValidationFailed(nothing)
    report.added, report.skipped = count, report.problem_count
    job.source = source
    filename = source["filename"]
    skipped = f", skipped {count_of(report.skipped, 'invalid line')}" if report.skipped else ""
    note_requests_added(
        job,
        count,
        tokens,
        f"Added {count_of(count, 'request')} from {filename}{skipped}",
        data={"count": count, "skipped": report.skipped, "file": filename},
        actor=actor,
    )
    return report


def note_requests_added(job: BatchJob, count: int, tokens: int, message: str, *, data: dict, actor: str) -> None:
    """Count newly inserted requests on the job and put them on its timeline (no commit)."""
    job.total_requests += count
    job.pending_requests += count
    job.estimated_tokens += tokens
    record_event(job, EventKind.REQUESTS_ADDED, message, data=data, actor=actor)
