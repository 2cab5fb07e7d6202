"""Request files from users: OpenAI batch JSONL checked line by line, and stored uploads awaiting a CSV mapping."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from flask import current_app

from webapp import bulk
from webapp.errors import ValidationFailed
from webapp.extensions import db
from webapp.models import BatchJob
from webapp.services import jobs as job_service
from webapp.services import requests as request_lines

MAX_PROBLEMS_LISTED = 1000
UPLOAD_TTL_SECONDS = 24 * 3600
TOKEN_RE = re.compile(r"^[a-f0-9]{32}$")
SNIFF_BYTES = 64 * 1024


class UploadRejected(ValidationFailed):
    """The file has bad lines and nothing was stored; ``report`` lists them."""

    def __init__(self, report: "UploadReport"):
        shown = [p.as_dict() for p in report.problems]
        super().__init__(
            f"{report.problem_count} line(s) of the file are invalid; nothing was stored",
            details=[{"field": f"line {p['line']}", "message": f"{p['code']}: {p['message']}"} for p in shown],
        )
        self.report = report


@dataclass
class UploadReport:
    """What happened to a file: requests added, lines skipped, and the problems found (first 1,000)."""

    added: int = 0
    skipped: int = 0
    problem_count: int = 0
    problems: list[request_lines.LineProblem] = field(default_factory=list)

    def note(self, problem: request_lines.LineProblem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_LISTED:
            self.problems.append(problem)

    def as_dict(self) -> dict:
        return {"added": self.added, "skipped": self.skipped, "problem_count": self.problem_count,
                "problems": [p.as_dict() for p in self.problems]}


def check_text_file(head: bytes) -> None:
    """Refuse empty and binary files before parsing them."""
    if not head.strip():
        raise ValidationFailed("the file is empty", details=[{"field": "file", "message": "the file is empty"}])
    if b"\x00" in head:
        raise ValidationFailed("this is not a text file (it contains binary data)",
                               details=[{"field": "file", "message": "binary files cannot be read"}])


def import_jsonl(job: BatchJob, stream: IO[bytes], *, filename: str = "requests.jsonl",
                 skip_invalid: bool = False, actor: str = "system") -> UploadReport:
    """Validate every line of an OpenAI batch file and store its requests in the draft job.

    All or nothing unless ``skip_invalid``: with a bad line, raises UploadRejected and stores none.
    The file is read as a stream and written in chunks, never held in memory.
    """
    job_service.require_draft(job, "add requests to")
    head = stream.read(SNIFF_BYTES)
    check_text_file(head)
    report = UploadReport()
    validator = request_lines.RequestValidator(job, current_app.config["BATCH_MAX_BYTES"])
    rows = _valid_jsonl_rows(_lines(head, stream), validator, report)
    return store_file_rows(job, rows, report, source={"format": "jsonl", "filename": filename},
                           skip_invalid=skip_invalid, actor=actor, nothing="the file holds no requests")


def store_file_rows(job: BatchJob, rows: Iterator[dict], report: UploadReport, *, source: dict, skip_invalid: bool,
                    actor: str, nothing: str) -> UploadReport:
    """Insert a file's valid rows (those new to the job) and commit, or roll back when the file is refused:
    for a bad row unless ``skip_invalid``, or when no row is left (``nothing`` says why)."""
    count, tokens = request_lines.insert_rows(new_to_job(job, rows, report))
    if report.problem_count and not skip_invalid:
        db.session.rollback()
        raise UploadRejected(report)
    if not count:
        db.session.rollback()
        raise ValidationFailed(nothing)
    report.added, report.skipped = count, report.problem_count
    job.source = source
    record_added(job, count, tokens, source["filename"], report, actor)
    return report


def _lines(head: bytes, stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    """(line number, text) for each non-blank line; undecodable lines come through as None text."""
    buffer = head
    number = 0
    while True:
        chunk = stream.read(1024 * 1024)
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            number += 1
            yield from _decoded(number, raw)
        if not chunk:
            break
    if buffer:
        number += 1
        yield from _decoded(number, buffer)


def _decoded(number: int, raw: bytes) -> Iterator[tuple[int, str | None]]:
    raw = raw.rstrip(b"\r")
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        return
    try:
        yield number, raw.decode("utf-8")
    except UnicodeDecodeError:
        yield number, None


def _valid_jsonl_rows(lines, validator, report: UploadReport) -> Iterator[dict]:
    for number, text in lines:
        try:
            if text is None:
                raise request_lines.InvalidLine("invalid_encoding", "the line is not valid UTF-8")
            yield validator.check_text(text, number)
        except request_lines.InvalidLine as exc:
            report.note(request_lines.LineProblem(number, exc.code, exc.message, exc.custom_id))


def new_to_job(job: BatchJob, rows: Iterator[dict], report: UploadReport) -> Iterator[dict]:
    """Pass rows on in chunks, dropping (and reporting) those whose custom_id the job already holds."""
    for chunk in bulk.chunks(rows, request_lines.INSERT_CHUNK):
        yield from _not_taken(job, chunk, report)


def _not_taken(job: BatchJob, rows: list[dict], report: UploadReport) -> Iterator[dict]:
    taken = request_lines.existing_custom_ids(job.id, [r["custom_id"] for r in rows]) if job.total_requests else set()
    for row in rows:
        if row["custom_id"] in taken:
            report.note(request_lines.LineProblem(
                row["source_line"], "duplicate_custom_id", f"custom_id {row['custom_id']!r} is already in the job",
                row["custom_id"]))
        else:
            yield row


def record_added(job: BatchJob, count: int, tokens: int, filename: str, report: UploadReport, actor: str) -> None:
    """Count a file's requests on the job, note it on the timeline, and commit the upload."""
    skipped = f", skipped {report.skipped} invalid line(s)" if report.skipped else ""
    job_service.note_requests_added(job, count, tokens, f"Added {count} request(s) from {filename}{skipped}",
                                    data={"count": count, "skipped": report.skipped, "file": filename}, actor=actor)
    db.session.commit()


# --- uploads kept between the two steps of the CSV flow ---------------------------------------------------


def uploads_dir() -> Path:
    path = Path(current_app.instance_path) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(stream: IO[bytes], suffix: str) -> str:
    """Store an uploaded file for a later step; return its token. Old uploads are removed on the way."""
    _remove_stale_uploads()
    token = secrets.token_hex(16)
    with open(uploads_dir() / f"{token}{suffix}", "wb") as out:
        while chunk := stream.read(1024 * 1024):
            out.write(chunk)
    return token


def upload_path(token: str) -> Path:
    """The stored file for ``token``; raises ValidationFailed when it is unknown or has expired."""
    if TOKEN_RE.match(token or ""):
        for path in uploads_dir().glob(f"{token}.*"):
            return path
    raise ValidationFailed("the uploaded file has expired; please upload it again",
                           details=[{"field": "upload", "message": "unknown or expired upload"}])


def discard_upload(token: str) -> None:
    try:
        upload_path(token).unlink(missing_ok=True)
    except ValidationFailed:
        pass


def _remove_stale_uploads() -> None:
    cutoff = time.time() - UPLOAD_TTL_SECONDS
    for path in uploads_dir().iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
