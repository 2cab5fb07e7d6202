"""Request files from users: OpenAI batch JSONL checked line by line, and stored uploads awaiting a CSV mapping."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO

from flask import current_app

from webapp.errors import ValidationFailed
from webapp.extensions import db
from webapp.models import BatchJob
from webapp.services import jobs as job_service
from webapp.services import requests as request_lines
from webapp.services.requests import UploadReport
from webapp.words import count_of

UPLOAD_TTL_SECONDS = 24 * 3600
TOKEN_RE = re.compile(r"^[a-f0-9]{32}$")
SNIFF_BYTES = 64 * 1024
READ_SIZE = 1024 * 1024


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


def check_text_file(head: bytes) -> None:
    """Refuse empty and binary files before parsing them."""
    if not head.strip():
        raise ValidationFailed("the file is empty", details=[{"field": "file", "message": "the file is empty"}])
    if b"\x00" in head:
        raise ValidationFailed(
            "this is not a text file (it contains binary data)",
            details=[{"field": "file", "message": "binary files cannot be read"}],
        )


def import_jsonl(
    job: BatchJob,
    stream: IO[bytes],
    *,
    filename: str = "requests.jsonl",
    skip_invalid: bool = False,
    actor: str = "system",
) -> UploadReport:
    """Validate every line of an OpenAI batch file and store its requests in the draft job.

    All or nothing unless ``skip_invalid``: with a bad line, raises UploadRejected and stores none.
    The file is read as a stream and written in chunks, never held in memory.
    """
    job_service.require_draft(job, "add requests to")
    start = stream.tell()
    check_text_file(stream.read(SNIFF_BYTES))
    stream.seek(start)
    report = UploadReport()
    limit = request_lines.max_request_bytes()
    validator = request_lines.RequestValidator(job, limit)
    rows = request_lines.checked_rows(_lines(stream, limit), partial(_check_line, validator), report)
    return store_file_rows(
        job,
        rows,
        report,
        source={"format": "jsonl", "filename": filename},
        skip_invalid=skip_invalid,
        actor=actor,
        nothing="the file holds no requests",
    )


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
    """Insert a file's valid rows (those new to the job) and commit, or roll back when the file is refused:
    for a bad row unless ``skip_invalid``, or when no row is left (``nothing`` says why)."""
    count, tokens = request_lines.insert_new(job, rows, report)
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


def _lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each non-blank line, without its line end; None for a line over ``limit`` bytes,
    read past in pieces rather than kept (``readline`` takes linear time however long the line)."""
    number = 0
    while raw := stream.readline(limit + 2):  # the line, its "\r\n", or one byte more: it goes on
        number += 1
        whole = raw.endswith(b"\n") or len(raw) < limit + 2
        raw = raw.rstrip(b"\r\n")
        if not whole or len(raw) > limit:
            while not whole and (rest := stream.readline(READ_SIZE)):
                whole = rest.endswith(b"\n")
            yield number, None
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.strip():
            yield number, raw


def _check_line(validator: request_lines.RequestValidator, raw: bytes | None, number: int) -> dict:
    """Validate one JSONL line as read by ``_lines``: its length, its encoding, then the request it holds."""
    if raw is None:
        raise request_lines.InvalidLine(
            "line_too_large", f"the line is {request_lines.too_large(validator.max_request_bytes)}"
        )
    try:
        return validator.check_text(raw, number)  # orjson checks the UTF-8 as it parses
    except request_lines.InvalidLine as exc:
        if exc.code == "invalid_json_line" and not _is_utf8(raw):
            raise request_lines.InvalidLine("invalid_encoding", "the line is not valid UTF-8") from None
        raise


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def record_added(job: BatchJob, count: int, tokens: int, filename: str, report: UploadReport, actor: str) -> None:
    """Count a file's requests on the job, note it on the timeline, and commit the upload."""
    skipped = f", skipped {count_of(report.skipped, 'invalid line')}" if report.skipped else ""
    job_service.note_requests_added(
        job,
        count,
        tokens,
        f"Added {count_of(count, 'request')} from {filename}{skipped}",
        data={"count": count, "skipped": report.skipped, "file": filename},
        actor=actor,
    )
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
    path = uploads_dir() / f"{token}{suffix}"
    try:
        with open(path, "wb") as out:
            while chunk := stream.read(READ_SIZE):
                out.write(chunk)
    except BaseException:  # a client gone or a full disk: nothing half-written stays
        path.unlink(missing_ok=True)
        raise
    return token


def upload_path(token: str) -> Path:
    """The stored file for ``token``; raises ValidationFailed when it is unknown or has expired."""
    if TOKEN_RE.match(token or ""):
        for path in uploads_dir().glob(f"{token}.*"):
            return path
    raise ValidationFailed(
        "the uploaded file has expired; please upload it again",
        details=[{"field": "upload", "message": "unknown or expired upload"}],
    )


def discard_upload(token: str) -> None:
    """Remove a stored upload and what was kept beside it (``kept_beside``)."""
    if TOKEN_RE.match(token or ""):
        for path in uploads_dir().glob(f"{token}*"):
            path.unlink(missing_ok=True)


def kept_beside(path: Path, name: str) -> Path:
    """Where a later step keeps what it found in the upload at ``path`` (removed with it, never taken for it)."""
    return path.with_name(f"{path.stem}-{name}")


def _remove_stale_uploads() -> None:
    cutoff = time.time() - UPLOAD_TTL_SECONDS
    for path in uploads_dir().iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
