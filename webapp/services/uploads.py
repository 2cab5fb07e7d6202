"""Request files from users: OpenAI batch JSONL checked line by line, and stored uploads awaiting a CSV mapping."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import psycopg
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webapp import bulk
from webapp.errors import ValidationFailed
from webapp.extensions import db
from webapp.models import BatchJob, request_rows
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
    validator = request_lines.RequestValidator(job, current_app.config["BATCH_MAX_BYTES"], track_repeats=False)
    rows = _valid_jsonl_rows(_lines(head, stream), validator, report)
    return store_file_rows(job, rows, report, source={"format": "jsonl", "filename": filename},
                           skip_invalid=skip_invalid, actor=actor, nothing="the file holds no requests")


def store_file_rows(job: BatchJob, rows: Iterator[dict], report: UploadReport, *, source: dict, skip_invalid: bool,
                    actor: str, nothing: str) -> UploadReport:
    """Insert a file's valid rows (those new to the job) and commit, or roll back when the file is refused:
    for a bad row unless ``skip_invalid``, or when no row is left (``nothing`` says why)."""
    count, tokens = _insert_new(job, rows, report)
    report.problems.sort(key=lambda problem: problem.line)  # repeats are found a chunk after the other problems
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


def _insert_new(job: BatchJob, rows: Iterator[dict], report: UploadReport) -> tuple[int, int]:
    """Insert the rows, a chunk at a time; return (count, estimated tokens) of those stored.

    A custom_id repeated in the file or already in the job is caught by the database's unique constraint
    rather than a set of every custom_id seen (which grows with the file): a chunk that hits it is rolled
    back to its savepoint and written again without the repeats, each reported on its own line.
    """
    before = db.session.scalar(select(func.max(request_rows.c.id)).where(request_rows.c.job_id == job.id)) or 0
    count = tokens = 0
    with bulk.gc_paused():  # parsing the next chunk is part of the bulk write
        for chunk in bulk.chunks(rows, bulk.COPY_CHUNK):
            try:
                with db.session.begin_nested():
                    added, estimated = request_lines.insert_rows(chunk)
            except (IntegrityError, psycopg.IntegrityError):
                added, estimated = request_lines.insert_rows(_without_repeats(job, chunk, before, report))
            count, tokens = count + added, tokens + estimated
            chunk.clear()  # before the next chunk is read, not after
    return count, tokens


def _without_repeats(job: BatchJob, chunk: list[dict], before: int, report: UploadReport) -> Iterator[dict]:
    """The chunk's rows whose custom_id is new; ``before`` is the job's last request id before this file."""
    stored = request_lines.existing_custom_ids(job.id, [row["custom_id"] for row in chunk])
    kept: set[str] = set()
    for row in chunk:
        custom_id = row["custom_id"]
        if custom_id in kept or stored.get(custom_id, 0) > before:
            message = request_lines.repeated(custom_id)
        elif custom_id in stored:
            message = f"custom_id {custom_id!r} is already in the job"
        else:
            kept.add(custom_id)
            yield row
            continue
        report.note(request_lines.LineProblem(row["source_line"], "duplicate_custom_id", message, custom_id))


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
